"""The resilience primitives: retries, circuit breakers (and, next, rate limiters and checkpoints)."""

from agentlab.resilience.breaker import BreakerConfig, BreakerRegistry, CircuitBreaker
from agentlab.resilience.retry import RetryBudget, RetryPolicy

__all__ = ["BreakerConfig", "BreakerRegistry", "CircuitBreaker", "RetryBudget", "RetryPolicy"]
