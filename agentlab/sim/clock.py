"""The one clock every component reads.

Components never call ``time.time()`` or ``time.monotonic()``: they read ``clock.now()``, which is
the running event loop's time. On a :class:`~agentlab.sim.loop.VirtualTimeLoop` that is simulated
time; on a normal loop (live providers) it is the loop's monotonic clock, so the same code serves
both. Calendar time (for daily/monthly budgets) is ``epoch + now()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """Reads the running loop's time; ``datetime()`` maps it onto a calendar."""

    __slots__ = ("_loop", "epoch")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, epoch: datetime = DEFAULT_EPOCH):
        self._loop = loop
        self.epoch = epoch

    def now(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def timer(self) -> Callable[[], float]:
        """The fastest way to read this clock from inside the running loop (its bound ``time``)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.time

    def datetime(self) -> datetime:
        return self.epoch + timedelta(seconds=self.now())
