"""Input files loaded once per content, not once per run.

A sweep or a chaos search calls :func:`~agentlab.runs.runner.run_suite` thousands of times with the
same suite, tiers, prices and policy; parsing and validating them again each time cost more than
simulating a short episode. Loaded objects are keyed by the file's resolved path, size and
modification time, so an edited file is read again. They are treated as immutable by every caller
(``Suite.only`` and ``backend_tiers`` return new objects).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def load_cached(loader: Callable[..., T], path: str | Path, *args: Any) -> T:
    """``loader(path, *args)``, reused while the file is unchanged (``args`` must be hashable)."""
    resolved = Path(path).resolve()
    try:
        st = os.stat(resolved)
    except OSError:
        return loader(path, *args)  # let the loader report the missing file in its own words
    return _load(loader, resolved, st.st_size, st.st_mtime_ns, args, str(path))  # type: ignore[no-any-return]


@lru_cache(maxsize=64)
def _load(
    loader: Callable[..., Any], resolved: Path, size: int, mtime_ns: int, args: tuple[Any, ...], shown: str
) -> Any:
    # ``shown`` is the path as the user gave it, so an error message names the file as they typed it.
    return loader(Path(shown), *args)
