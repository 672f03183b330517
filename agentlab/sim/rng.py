"""One seeded tree of random generators.

Every consumer of randomness (the simulated model, the world's latency and flakiness, retry
jitter) asks the tree for a child named after what it is for, e.g. ``tree.child("model",
scenario_id, epoch)``. A child's seed is a hash of the root seed and the path, so a draw in one
place never shifts the draws anywhere else, and results do not depend on episode order.
"""

from __future__ import annotations

import hashlib
import random


class RngTree:
    __slots__ = ("_path", "seed")

    def __init__(self, seed: int, _path: tuple[str, ...] = ()) -> None:
        self.seed = seed
        self._path = _path

    def child(self, *names: object) -> RngTree:
        return RngTree(self.seed, self._path + tuple(str(n) for n in names))

    def derive_seed(self) -> int:
        key = "\x1f".join((str(self.seed), *self._path)).encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")

    def random(self) -> random.Random:
        """A fresh ``random.Random`` for this node (same node, same sequence)."""
        return random.Random(self.derive_seed())
