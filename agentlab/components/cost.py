"""Cost Controller: prices every model and tool call and refuses one that could break the budget.

Before a model call it estimates the worst case — the actual prompt size plus the full
``max_tokens`` of output — so a call that is allowed can never overrun. After the call it charges
what the usage really cost.

Trace: a refused check is a ``budget_check`` event (nothing else follows it); an allowed check's
estimate is recorded on the ``model_call`` event it allowed, so the common case costs no extra line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentlab.errors import BudgetExceeded
from agentlab.llm.tiers import TierProfile
from agentlab.llm.types import ModelRequest, Usage
from agentlab.trace.events import BudgetChecked


@dataclass(slots=True)
class RequestBudget:
    limit_usd: float
    spent_usd: float = 0.0

    @property
    def remaining_usd(self) -> float:
        return self.limit_usd - self.spent_usd


def _trace_check(trace: Any, budget: RequestBudget, estimate: float, allowed: bool) -> None:
    trace.emit(
        BudgetChecked(
            scope="request",
            estimate_usd=estimate,
            spent_usd=budget.spent_usd,
            limit_usd=budget.limit_usd,
            allowed=allowed,
        )
    )


class CostController:
    def __init__(self, *, min_prompt_tokens: int = 200) -> None:
        self.min_prompt_tokens = min_prompt_tokens

    def open(self, limit_usd: float) -> RequestBudget:
        return RequestBudget(limit_usd)

    def admit(self, budget: RequestBudget, profile: TierProfile, max_tokens: int, trace: Any) -> bool:
        """Refuse up front a request whose budget cannot pay for even one small model call."""
        estimate = profile.price(self.min_prompt_tokens, max_tokens)
        allowed = estimate <= budget.remaining_usd
        _trace_check(trace, budget, estimate, allowed)
        return allowed

    def check_model(self, budget: RequestBudget, request: ModelRequest, profile: TierProfile, trace: Any) -> float:
        """The call's worst-case cost; raises :class:`BudgetExceeded` (and traces it) if it could overrun."""
        estimate = profile.price(request.prompt_tokens(), request.max_tokens)
        self._require(budget, estimate, trace)
        return estimate

    def check_tool(self, budget: RequestBudget, name: str, cost_usd: float, trace: Any) -> None:
        if cost_usd:
            self._require(budget, cost_usd, trace)

    @staticmethod
    def _require(budget: RequestBudget, estimate: float, trace: Any) -> None:
        if budget.spent_usd + estimate > budget.limit_usd:
            _trace_check(trace, budget, estimate, False)
            raise BudgetExceeded("request", estimate, budget.spent_usd, budget.limit_usd)

    @staticmethod
    def price(profile: TierProfile, usage: Usage) -> float:
        return profile.price(usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    @staticmethod
    def charge(budget: RequestBudget, amount_usd: float) -> None:
        budget.spent_usd += amount_usd
