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
    """Reads the running loop's time (or a given loop's); ``datetime()`` maps it onto a calendar."""

    __slots__ = ("_loop", "epoch")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, epoch: datetime = DEFAULT_EPOCH):
        self._loop = loop
        self.epoch = epoch

    def now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def timer(self) -> Callable[[], float]:
        """The fastest way to read this clock during one episode: the running loop's bound ``time``.

        The loop is looked up on every call (not remembered), so one clock — and one agent — can
        serve several loops in turn, as a notebook does when it runs the simulator twice.
        """
        return (self._loop or asyncio.get_running_loop()).time

    def datetime(self) -> datetime:
        return self.epoch + timedelta(seconds=self.now())
