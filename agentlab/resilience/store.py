"""Where shared resilience state lives: token buckets and circuit-breaker states.

:class:`MemoryStore` (the embedded default) keeps them in this process. :class:`RedisStore`
keeps them in Redis so several replicas of the agent share one bucket per tool or model and see
each other's breaker trips. Bucket updates are one atomic Lua script; the caller passes its own
(virtual) time, so a simulated fleet shares buckets on simulated time.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson


class StateStore(Protocol):
    def take(self, key: str, capacity: float, refill_per_s: float, now: float, tokens: float = 1.0) -> float:
        """Take ``tokens`` from bucket ``key`` if it holds them; return 0.0, or else the seconds to wait."""
        ...

    def get_breaker(self, name: str) -> dict[str, Any] | None: ...

    def set_breaker(self, name: str, state: dict[str, Any]) -> None: ...


def _refill(tokens: float, ts: float, capacity: float, refill_per_s: float, now: float) -> tuple[float, float]:
    if now > ts:
        return min(capacity, tokens + (now - ts) * refill_per_s), now
    return tokens, ts


class MemoryStore:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._breakers: dict[str, dict[str, Any]] = {}

    def take(self, key: str, capacity: float, refill_per_s: float, now: float, tokens: float = 1.0) -> float:
        level, ts = self._buckets.get(key, (capacity, now))
        level, ts = _refill(level, ts, capacity, refill_per_s, now)
        if level >= tokens:
            self._buckets[key] = (level - tokens, ts)
            return 0.0
        self._buckets[key] = (level, ts)
        return (tokens - level) / refill_per_s

    def get_breaker(self, name: str) -> dict[str, Any] | None:
        return self._breakers.get(name)

    def set_breaker(self, name: str, state: dict[str, Any]) -> None:
        self._breakers[name] = dict(state)


# Lua numbers reach Redis as integers, so the wait is returned as a string.
_TAKE = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local capacity, rate, now, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens = capacity; ts = now end
if now > ts then tokens = math.min(capacity, tokens + (now - ts) * rate); ts = now end
local wait = 0
if tokens >= want then tokens = tokens - want else wait = (want - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
return string.format('%.17g', wait)
"""


class RedisStore:
    """Shared state in Redis (redis-py's synchronous client: one round trip, zero simulated time)."""

    def __init__(self, client: Any, *, prefix: str = "agentlab:") -> None:
        self.client = client
        self.prefix = prefix
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        import redis

        return cls(redis.Redis.from_url(url), **kwargs)

    def take(self, key: str, capacity: float, refill_per_s: float, now: float, tokens: float = 1.0) -> float:
        wait = self._take(keys=[f"{self.prefix}bucket:{key}"], args=[capacity, refill_per_s, now, tokens])
        return float(wait)

    def get_breaker(self, name: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.prefix}breaker:{name}")
        return orjson.loads(raw) if raw else None

    def set_breaker(self, name: str, state: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}breaker:{name}", orjson.dumps(state))
