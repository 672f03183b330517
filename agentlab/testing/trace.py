"""A trace for a component's unit test: events in a list, no recorder, no file.

Components emit through anything with ``emit`` (and, for some, ``now`` and ``episode_id``), so a test
can drive one component alone — a breaker, the gate, the cost controller — and assert on what it emitted.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ListTrace:
    """Collects emitted events in :attr:`events`. Inside a running loop each event is stamped with the loop's
    (simulated) time, as :class:`~agentlab.trace.recorder.EpisodeTrace` stamps it; outside one, ``t`` is None."""

    def __init__(self, episode_id: str = "e1") -> None:
        self.episode_id = episode_id
        self.events: list[Any] = []

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def emit(self, event: Any) -> None:
        try:
            event.t = asyncio.get_running_loop().time()
        except RuntimeError:  # driven synchronously: the test passes times explicitly
            event.t = None
        self.events.append(event)
