"""A virtual-time asyncio event loop.

Simulated latency, timeouts, back-off and breaker cool-downs are ordinary ``asyncio.sleep`` /
``asyncio.timeout`` calls; on this loop they cost no wall time, because whenever the loop would
block waiting for a timer it instead jumps its clock to that timer. An hour-long outage runs in
milliseconds, and the order of events depends only on the program, never on the machine.

Why our own loop rather than ``looptime``: looptime is built around pytest fixtures, while the CLI,
notebooks and benchmarks all need to start a simulated loop directly, and every component reads
time from one injected clock (:class:`agentlab.sim.clock.Clock`) that we control.

Real I/O is still served if it is already ready, but it takes zero virtual time, and the loop never
waits for it while timers are pending: use synchronous clients (e.g. Redis) inside a simulation.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SimulationDeadlock(RuntimeError):
    """Raised when nothing is scheduled and nothing can ever wake the loop."""


class _TimeSkippingSelector(selectors.DefaultSelector):
    """A selector that advances the loop's virtual clock instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        loop = self.loop
        assert loop is not None
        if timeout is None:
            # Nothing scheduled. Only real I/O or another thread could wake us; with just the
            # loop's own self-pipe registered, waiting would hang forever.
            if len(self.get_map()) <= 1 and not loop.allow_blocking:
                raise SimulationDeadlock("simulation deadlock: no timer is scheduled and no I/O is pending")
            return super().select(None)
        # Jump exactly to the earliest timer (``_run_once`` has already dropped cancelled heads);
        # ``now + timeout`` would be capped at a day and could fall short by a rounding error.
        scheduled = loop._scheduled  # type: ignore[attr-defined]
        target = scheduled[0]._when if scheduled else loop._now + timeout
        if target > loop._now:
            loop._now = target
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is simulated and advances only when the loop is idle."""

    def __init__(self, start: float = 0.0, *, allow_blocking: bool = False) -> None:
        self._now = float(start)
        self.allow_blocking = allow_blocking
        selector = _TimeSkippingSelector()
        super().__init__(selector=selector)
        selector.loop = self
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._now


class _ScaledSelector(selectors.DefaultSelector):
    """Waits ``timeout / speed`` real seconds: the loop's clock runs ``speed`` times faster than the wall."""

    def __init__(self, speed: float) -> None:
        super().__init__()
        self.speed = speed

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(None if timeout is None else timeout / self.speed)


class RealTimeLoop(asyncio.SelectorEventLoop):
    """A normal event loop whose clock reads ``start`` when it is created.

    For runs against a live provider: real network I/O and its timeouts need real time, but the
    trace should still count seconds from the run's start, as a simulated run's does.

    ``speed`` > 1 (``agentlab serve --time-scale``) runs the clock faster than the wall: a served
    simulated model's latencies, back-offs and deadlines pass ``speed`` times sooner, so a load
    test on loopback is not bound by a simulated provider's seconds. Real I/O is unaffected.
    """

    def __init__(self, start: float = 0.0, *, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        super().__init__(selector=_ScaledSelector(speed) if speed != 1.0 else None)
        self.speed = float(speed)
        self._origin = super().time()
        self._start = float(start)

    def time(self) -> float:
        return self._start + (super().time() - self._origin) * self.speed


def run_virtual(coro: Coroutine[Any, Any, T], *, start: float = 0.0, allow_blocking: bool = False) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop and close the loop.

    ``allow_blocking``: let the loop wait for a worker thread when nothing else is scheduled (the
    provider SDKs probe the platform in one on first use).
    """
    loop = VirtualTimeLoop(start, allow_blocking=allow_blocking)
    try:
        return loop.run_until_complete(coro)
    finally:
        close_loop(loop)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Finish ``loop``'s async generators, then close it.

    An SDK's server-sent-event stream is an async generator that can still be suspended when the
    run's coroutine returns; closing the loop without ``shutdown_asyncgens`` leaves its ``aclose``
    pending, and asyncio prints "Task was destroyed but it is pending!" when it is collected.
    ``asyncio.run`` does the same clean-up; we run our own loops, so we do it here.
    """
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
