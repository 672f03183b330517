"""Recovery Handler: retries transient failures with back-off; decides when to re-plan or correct.

The first attempt runs straight through (no retry machinery on the happy path: the simulator's
per-step cost matters). Only a transient failure enters the back-off loop, which sleeps on the
loop's clock and draws jitter from a seeded RNG. Permanent failures are returned to the planner,
which re-plans or shows them to the model.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agentlab.errors import AgentError, RateLimited
from agentlab.trace.events import RetryScheduled

T = TypeVar("T")


class RecoveryHandler:
    def __init__(
        self,
        *,
        max_attempts: int = 3,
        base_delay_s: float = 0.5,
        max_delay_s: float = 8.0,
        jitter: float = 0.25,
        max_replans: int = 2,
        max_corrections: int = 2,
    ) -> None:
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.jitter = jitter
        self.max_replans = max_replans
        self.max_corrections = max_corrections

    def delay(self, attempt: int, error: AgentError, rng: random.Random) -> float:
        """Back-off before ``attempt`` (2, 3, …): exponential with jitter, or the server's retry-after."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after
        raw = self.base_delay_s * 2 ** (attempt - 2) * (1 + self.jitter * rng.random())
        return round(min(raw, self.max_delay_s), 6)

    async def retry(
        self,
        op: Callable[[int], Awaitable[T]],
        error: AgentError,
        *,
        target: str,
        trace: Any,
        rng: Callable[[], random.Random],
    ) -> T:
        """After attempt 1 of ``op`` failed with ``error``: retry while transient, up to ``max_attempts``.

        Callers make the first attempt themselves, so the happy path pays nothing for recovery.
        """
        if not error.transient or self.max_attempts <= 1:
            raise error
        generator = rng()
        for attempt in range(2, self.max_attempts + 1):
            wait = self.delay(attempt, error, generator)
            trace.emit(RetryScheduled(target=target, attempt=attempt, delay_s=wait, error_type=error.type_name))
            await asyncio.sleep(wait)
            try:
                return await op(attempt)
            except AgentError as exc:
                if not exc.transient:
                    raise
                error = exc
        raise error
