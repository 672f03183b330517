"""Retries: tenacity's composable policies, driven on the virtual clock.

The *policy* — when to stop, how long to wait, which errors to retry — is made of tenacity's own
strategy objects, so it composes the way tenacity users expect (``stop_after_attempt(4) |
stop_after_delay(30)``, ``wait_exponential(...) + SeededJitter(...)``). The *driver* is ours, in a
dozen lines, because tenacity's reads ``time.monotonic()`` for ``stop_after_delay`` and its random
waits use the global ``random``: here ``seconds_since_start`` is simulated time and jitter comes
from the run's seeded RNG tree, so a back-off is reproducible and costs no wall time.

On top of the policy: a server's ``retry-after`` wins over the computed wait, only transient
errors are retried, and each request has a retry budget shared by all its calls, so a storm of
failures cannot turn one request into hundreds of attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from agentlab.errors import AgentError
from agentlab.trace.events import CallRejected, RetryScheduled

T = TypeVar("T")


class _Outcome:
    """The slice of a concurrent Future that tenacity's strategies read."""

    __slots__ = ("_exc",)

    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    @property
    def failed(self) -> bool:
        return True

    def exception(self) -> BaseException:
        return self._exc


@dataclass(slots=True)
class VirtualRetryState:
    """Duck-types tenacity's ``RetryCallState`` with simulated time."""

    attempt_number: int
    outcome: _Outcome
    seconds_since_start: float
    idle_for: float = 0.0
    rng: random.Random | None = None


class SeededJitter(wait_base):
    """Adds ``uniform(0, max_s) * factor-of-previous`` jitter drawn from the state's seeded RNG."""

    def __init__(self, fraction: float = 0.25, base: wait_base | None = None) -> None:
        self.fraction = fraction
        self.base = base

    def __call__(self, retry_state: Any) -> float:
        base = self.base(retry_state) if self.base is not None else 0.0
        rng = getattr(retry_state, "rng", None)
        return base * (1 + self.fraction * (rng.random() if rng is not None else 0.5))


class wait_capped(wait_base):
    def __init__(self, inner: wait_base, max_s: float) -> None:
        self.inner, self.max_s = inner, max_s

    def __call__(self, retry_state: Any) -> float:
        return min(self.inner(retry_state), self.max_s)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, AgentError) and exc.transient


@dataclass
class RetryBudget:
    """Retries left for one request, shared by all its model and tool calls."""

    remaining: int

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class RetryPolicy:
    stop: stop_base = field(default_factory=lambda: stop_after_attempt(3))
    wait: wait_base = field(
        default_factory=lambda: wait_capped(SeededJitter(0.25, wait_exponential(multiplier=0.5, max=8)), 8.0)
    )
    retry: retry_base = field(default_factory=lambda: retry_if_exception(is_transient))
    honour_retry_after: bool = True
    max_retry_after_s: float = 120.0
    budget_per_request: int = 8

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries at all (the ``--no-resilience`` baseline)."""
        return cls(stop=stop_after_attempt(1), budget_per_request=0)

    def new_budget(self) -> RetryBudget:
        return RetryBudget(self.budget_per_request)

    def delay(self, state: VirtualRetryState) -> float:
        """The server's (or an open breaker's) ``retry_after`` if it gave one, else the wait strategy's."""
        retry_after = getattr(state.outcome.exception(), "retry_after", None)
        if self.honour_retry_after and retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return round(self.wait(state), 6)

    async def run(
        self,
        op: Callable[[int], Awaitable[T]],
        error: AgentError,
        *,
        target: str,
        trace: Any,
        rng: Callable[[], random.Random],
        budget: RetryBudget | None = None,
        now: Callable[[], float],
        may_retry: Callable[[AgentError], bool] | None = None,
    ) -> T:
        """After attempt 1 of ``op`` failed with ``error``: retry while the policy allows.

        The caller makes the first attempt itself, so the happy path pays nothing for retries.
        """
        start = now()
        generator: random.Random | None = None
        attempt = 1
        while True:
            if generator is None:
                generator = rng()
            state = VirtualRetryState(attempt, _Outcome(error), now() - start, rng=generator)
            if not self.retry(state) or (may_retry is not None and not may_retry(error)) or self.stop(state):
                raise error
            if budget is not None and not budget.take():
                trace.emit(CallRejected(target=target, reason="retry budget for this request is used up"))
                raise error
            wait = self.delay(state)
            attempt += 1
            trace.emit(RetryScheduled(target=target, attempt=attempt, delay_s=wait, error_type=error.type_name))
            await asyncio.sleep(wait)
            try:
                return await op(attempt)
            except AgentError as exc:
                error = exc
