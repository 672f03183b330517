"""Budgets at four scopes: per request, per session, per user per day and per user per month.

Calendar periods come from the simulated clock's calendar (``Clock.datetime()``), so a month of
spend simulates in seconds. Every charge counts against all four scopes; a check refuses a call
whose worst-case cost would exceed the headroom of any of them. Because the check uses the worst
case (the real prompt plus the full ``max_tokens`` of output) and the charge the actual usage,
actual spend can never exceed a budget: the property tests in tests/test_budgets.py hold this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from agentlab.errors import BudgetExceeded

SCOPES = ("request", "session", "user_day", "user_month")


class BudgetLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_usd: float | None = Field(default=None, ge=0)
    session_usd: float | None = Field(default=None, ge=0)
    user_day_usd: float | None = Field(default=None, ge=0)
    user_month_usd: float | None = Field(default=None, ge=0)

    def limit(self, scope: str) -> float | None:
        return getattr(self, f"{scope}_usd")


@dataclass(frozen=True, slots=True)
class ScopeKeys:
    """The ledger keys one call is charged to."""

    request: str
    session: str
    user_day: str
    user_month: str

    @staticmethod
    def session_key(session_id: str) -> str:
        return f"session:{session_id}"

    @classmethod
    def of(cls, user_id: str, session_id: str, request_id: str, when: datetime) -> ScopeKeys:
        return cls(
            f"request:{request_id}",
            cls.session_key(session_id),
            f"day:{user_id}:{when:%Y-%m-%d}",
            f"month:{user_id}:{when:%Y-%m}",
        )


class BudgetLedger:
    """Spend per scope key (in memory; a deployment would keep it in its shared store)."""

    def __init__(self, limits: BudgetLimits) -> None:
        self.limits = limits
        # The limits are frozen: the scopes that have one are resolved once, not on every call's check.
        self._limited = tuple((scope, limit) for scope in SCOPES if (limit := limits.limit(scope)) is not None)
        self.spent: dict[str, float] = {}

    def headroom(self, keys: ScopeKeys) -> tuple[str, float]:
        """The tightest scope and what is left in it (``inf`` if no scope has a limit)."""
        tightest, left = "none", float("inf")
        for scope, limit in self._limited:
            remaining = limit - self.spent.get(getattr(keys, scope), 0.0)
            if remaining < left:
                tightest, left = scope, remaining
        return tightest, left

    def check(self, keys: ScopeKeys, estimate_usd: float) -> None:
        scope, left = self.headroom(keys)
        if estimate_usd > left:
            limit = self.limits.limit(scope) or 0.0
            raise BudgetExceeded(scope, estimate_usd, limit - left, limit)

    def charge(self, keys: ScopeKeys, amount_usd: float) -> None:
        """Count ``amount_usd`` against every limited scope (spend nobody limits is not kept)."""
        for scope, _ in self._limited:
            key = getattr(keys, scope)
            self.spent[key] = self.spent.get(key, 0.0) + amount_usd

    def end_request(self, keys: ScopeKeys) -> None:
        """Forget a finished request's spend: nothing can be charged to it again (and checkpoints stay small)."""
        self.spent.pop(keys.request, None)

    def end_session(self, session_id: str) -> None:
        """Forget an ended session's spend (the simulator ends each episode's session with the episode)."""
        self.spent.pop(ScopeKeys.session_key(session_id), None)

    def over_budget(self) -> list[tuple[str, float, float]]:
        """(key, spent, limit) for every key whose spend exceeds its scope's limit (should be empty)."""
        out = []
        for key, spent in self.spent.items():
            scope = {"request": "request", "session": "session", "day": "user_day", "month": "user_month"}[
                key.split(":", 1)[0]
            ]
            limit = self.limits.limit(scope)
            if limit is not None and spent > limit + 1e-12:
                out.append((key, spent, limit))
        return out
