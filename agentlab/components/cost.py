"""Cost Controller: prices every model and tool call and refuses one that could break the budget.

Before a model call it estimates the worst case — the actual prompt size plus the full
``max_tokens`` of output — so a call that is allowed can never overrun. After the call it charges
what the usage really cost.

Budgets have four scopes: the request's own limit, and — with a :class:`~agentlab.components.budgets.
BudgetLedger` — the session, the user's day and the user's month on the simulated calendar. With a
:class:`~agentlab.llm.pricing.PriceTable`, actual usage is priced by the model's own entry (an unlisted
model raises rather than costing nothing).

Trace: a refused check is a ``budget_check`` event (nothing else follows it); an allowed check's
estimate is recorded on the ``model_call`` event it allowed, so the common case costs no extra line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentlab.components.budgets import BudgetLedger, ScopeKeys
from agentlab.errors import BudgetExceeded
from agentlab.llm.pricing import PriceTable
from agentlab.llm.tiers import TierProfile
from agentlab.llm.types import ModelRequest, Usage
from agentlab.trace.events import BudgetChecked


@dataclass(slots=True)
class RequestBudget:
    limit_usd: float
    spent_usd: float = 0.0
    keys: ScopeKeys | None = None  # the session/day/month ledger keys, when a ledger is in use
    ledger: BudgetLedger | None = None

    @property
    def remaining_usd(self) -> float:
        """Headroom across every scope: the request's own and the ledger's."""
        left = self.limit_usd - self.spent_usd
        if self.ledger is not None and self.keys is not None:
            left = min(left, self.ledger.headroom(self.keys)[1])
        return left


def _trace_check(trace: Any, budget: RequestBudget, estimate: float, allowed: bool, scope: str = "request") -> None:
    trace.emit(
        BudgetChecked(
            scope=scope,
            estimate_usd=estimate,
            spent_usd=budget.spent_usd,
            limit_usd=budget.limit_usd,
            allowed=allowed,
        )
    )


class CostController:
    def __init__(
        self, *, min_prompt_tokens: int = 200, prices: PriceTable | None = None, ledger: BudgetLedger | None = None
    ) -> None:
        self.min_prompt_tokens = min_prompt_tokens
        self.prices = prices
        self.ledger = ledger

    def open(self, limit_usd: float, keys: ScopeKeys | None = None) -> RequestBudget:
        if self.ledger is None:
            return RequestBudget(limit_usd)
        return RequestBudget(limit_usd, keys=keys, ledger=self.ledger)

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
        if budget.ledger is not None and budget.keys is not None:
            try:
                budget.ledger.check(budget.keys, estimate)
            except BudgetExceeded as exc:
                _trace_check(trace, budget, estimate, False, scope=exc.scope)
                raise

    def price(self, profile: TierProfile, usage: Usage, model: str | None = None) -> float:
        """What ``usage`` cost: from the price table by model when there is one, else the tier's rates."""
        if self.prices is not None:
            return self.prices.cost(model or profile.model, usage)
        return profile.price(usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    @staticmethod
    def charge(budget: RequestBudget, amount_usd: float) -> None:
        budget.spent_usd += amount_usd
        if budget.ledger is not None and budget.keys is not None:
            budget.ledger.charge(budget.keys, amount_usd)
