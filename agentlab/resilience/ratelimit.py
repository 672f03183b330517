"""Token-bucket rate limiting per tool and per model tier, on the loop's clock.

A limit is ``capacity`` tokens refilled at ``per_second``. A call that finds its bucket empty
waits (simulated time) for its token if that takes at most ``max_wait_s``; otherwise it is
refused with a local :class:`RateLimited` carrying the wait as retry-after, so the retry policy
and budget decide what happens next. The buckets live in a :class:`~agentlab.resilience.store.StateStore`:
in memory, or in Redis to share them between replicas.
"""

from __future__ import annotations

import asyncio
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentlab.errors import RateLimited, ToolRateLimited
from agentlab.resilience.store import MemoryStore, StateStore
from agentlab.trace.events import CallRejected, RateLimitWait


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: float = Field(gt=0)
    per_second: float = Field(gt=0)


class RateLimiter:
    def __init__(self, limits: dict[str, Limit], store: StateStore | None = None, *, max_wait_s: float = 30.0) -> None:
        """``limits`` maps glob patterns over ``tool:NAME`` / ``model:TIER`` keys to limits."""
        self.limits = limits
        self.store = store or MemoryStore()
        self.max_wait_s = max_wait_s
        self._resolved: dict[str, Limit | None] = {}

    def limit_for(self, key: str) -> Limit | None:
        if key not in self._resolved:
            self._resolved[key] = next((lim for pat, lim in self.limits.items() if fnmatchcase(key, pat)), None)
        return self._resolved[key]

    async def acquire(self, key: str, trace: Any, *, tool: bool = False) -> None:
        limit = self.limit_for(key)
        if limit is None:
            return
        loop = asyncio.get_running_loop()
        waited = 0.0
        while True:
            wait = self.store.take(key, limit.capacity, limit.per_second, loop.time())
            if wait <= 0:
                return
            if waited + wait > self.max_wait_s:
                trace.emit(CallRejected(target=key, reason=f"rate limit: next token in {wait:.2f}s"))
                error = ToolRateLimited if tool else RateLimited
                raise error(f"{key} is rate limited by this agent", retry_after=wait)
            trace.emit(RateLimitWait(target=key, wait_s=round(wait, 6)))
            await asyncio.sleep(wait)
            waited += wait
