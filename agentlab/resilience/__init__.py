"""The resilience primitives: retries, circuit breakers, rate limiters, and the store they share."""

from agentlab.resilience.breaker import BreakerConfig, BreakerRegistry, CircuitBreaker
from agentlab.resilience.ratelimit import Limit, RateLimiter
from agentlab.resilience.retry import RetryBudget, RetryPolicy
from agentlab.resilience.store import MemoryStore, RedisStore, StateStore

__all__ = [
    "BreakerConfig",
    "BreakerRegistry",
    "CircuitBreaker",
    "Limit",
    "MemoryStore",
    "RateLimiter",
    "RedisStore",
    "RetryBudget",
    "RetryPolicy",
    "StateStore",
]
