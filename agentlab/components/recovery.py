"""Recovery Handler: decides how the agent survives a failure.

It owns the resilience policy of one agent:

* **retries** — a :class:`~agentlab.resilience.retry.RetryPolicy` (tenacity strategies on the
  virtual clock, transient errors only, server retry-after honoured, a retry budget per request);
  the first attempt of every call runs outside it, so the happy path pays nothing;
* **one retry layer per model call** — a provider SDK retries by itself (``max_retries``, honouring
  ``retry-after``). When it does (``sdk_retries > 0``), this handler does not retry model calls
  (``retry_model_calls=False``): retries never multiply silently (3 SDK attempts × 3 agent attempts
  would be 9 requests and a back-off nobody chose). Breakers and tier fallbacks still apply — a
  fallback is a different call, not a repeat — and each ``model_call`` event's ``http_attempts``
  shows the SDK's requests. With ``sdk_retries=0`` (or the in-process model) this handler retries;
* **circuit breakers** — one per tool and per model tier;
* **degradation** — a failed tool's fallback tool, other model tiers when one is down, and a partial
  answer when nothing else works;
* **idempotency** — keys for non-idempotent tools that accept them, and at-most-once for those
  that do not;
* **rate limits** — token buckets per tool and model tier (optional), shared through Redis across
  replicas if the store is;
* **rollback** — when a request ends unfinished, the side effects it applied are compensated in
  reverse order with their tools' rollback functions (a saga); those without one are reported;
* **re-planning and corrections** — how many times a planner may re-plan or correct an answer.

``RecoveryHandler.disabled()`` switches all of it off: the baseline that shows what resilience buys.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import stop_after_attempt, wait_exponential

from agentlab.errors import AgentError
from agentlab.resilience.breaker import BreakerConfig, BreakerRegistry
from agentlab.resilience.ratelimit import RateLimiter
from agentlab.resilience.retry import RetryBudget, RetryPolicy, SeededJitter, VirtualRetryState, _Outcome, wait_capped
from agentlab.resilience.store import StateStore

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
        policy: RetryPolicy | None = None,
        breakers: BreakerRegistry | None = None,
        tool_fallbacks: bool = True,
        model_fallbacks: bool = True,
        idempotency: bool = True,
        max_breaker_wait_s: float = 60.0,
        limiter: RateLimiter | None = None,
        rollback: bool = True,
        retry_model_calls: bool = True,
    ) -> None:
        self.max_attempts = max_attempts
        self.max_replans = max_replans
        self.max_corrections = max_corrections
        self.policy = policy or RetryPolicy(
            stop=stop_after_attempt(max_attempts),
            wait=wait_capped(
                SeededJitter(jitter, wait_exponential(multiplier=base_delay_s, max=max_delay_s)), max_delay_s
            ),
        )
        self.breakers = breakers
        self.tool_fallbacks = tool_fallbacks
        self.model_fallbacks = model_fallbacks
        self.idempotency = idempotency
        # How long a request may wait for an open breaker to half-open when it has nowhere else to go.
        self.max_breaker_wait_s = max_breaker_wait_s
        self.limiter = limiter
        # Undo (saga-compensate) what an unfinished request already did.
        self.rollback = rollback
        # False when the model client retries by itself (a provider SDK with max_retries > 0).
        self.retry_model_calls = retry_model_calls

    @classmethod
    def resilient(
        cls, breaker_config: BreakerConfig | None = None, *, store: StateStore | None = None, **kwargs: Any
    ) -> RecoveryHandler:
        """Everything on: retries, breakers, fallbacks, idempotency (and rate limits, if given).

        ``store`` shares breaker state (and the limiter's buckets, if it uses the same store) with
        other replicas, e.g. a :class:`~agentlab.resilience.store.RedisStore`.
        """
        return cls(breakers=BreakerRegistry(breaker_config, store=store), **kwargs)

    @classmethod
    def disabled(cls) -> RecoveryHandler:
        """No retries, breakers, fallbacks, idempotency keys or rollback: the ``--no-resilience`` baseline."""
        return cls(
            max_attempts=1,
            policy=RetryPolicy.none(),
            breakers=None,
            tool_fallbacks=False,
            model_fallbacks=False,
            idempotency=False,
            rollback=False,
        )

    def new_budget(self) -> RetryBudget:
        return self.policy.new_budget()

    def delay(self, attempt: int, error: AgentError, rng: random.Random) -> float:
        """Back-off before ``attempt`` (2, 3, …) after ``error``."""
        return self.policy.delay(VirtualRetryState(attempt - 1, _Outcome(error), 0.0, rng=rng))

    async def retry(
        self,
        op: Callable[[int], Awaitable[T]],
        error: AgentError,
        *,
        target: str,
        trace: Any,
        rng: Callable[[], random.Random],
        budget: RetryBudget | None = None,
        now: Callable[[], float] | None = None,
        may_retry: Callable[[AgentError], bool] | None = None,
    ) -> T:
        """After attempt 1 of ``op`` failed with ``error``: retry per the policy, or re-raise."""
        if now is None:
            import asyncio

            now = asyncio.get_running_loop().time
        return await self.policy.run(
            op, error, target=target, trace=trace, rng=rng, budget=budget, now=now, may_retry=may_retry
        )
