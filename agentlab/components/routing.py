"""Cascade routing: which model tier serves each call of an episode.

A policy picks the starting tier and decides, when the Evaluator reports a weak step (a low quality
score, a failed step, a call whose arguments are not grounded in the conversation, an answer that
fails its checks), whether to escalate. Escalation is sticky for the rest of the episode: a model
that has just shown it is out of its depth does not get the next step back. Every decision is a
``routing`` event with its reason; the summary's cascade hit rate is the share of model calls the
cheapest tier served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class RoutingPolicy(Protocol):
    name: str

    def start(self, tiers: list[str], budget_left: float) -> tuple[str, str]:
        """(tier, reason) for an episode's first call. ``tiers`` is cheapest first."""
        ...

    def escalate(
        self, current: str, tiers: list[str], reason: str, budget_left: float, cost_at: Callable[[str], float]
    ) -> tuple[str, str] | None:
        """(tier, reason) to move to after a weak step, or None to stay."""
        ...


class Fixed:
    """Always the same tier (no escalation): the baselines."""

    def __init__(self, which: str) -> None:
        self.which = which
        self.name = f"always-{which}"

    def start(self, tiers: list[str], budget_left: float) -> tuple[str, str]:
        tier = tiers[0] if self.which == "cheapest" else tiers[-1] if self.which == "most-capable" else self.which
        return tier, f"policy {self.name}"

    def escalate(self, current, tiers, reason, budget_left, cost_at):  # type: ignore[no-untyped-def]
        return None


class Cascade:
    """Start at the cheapest tier; climb one tier whenever the Evaluator fails a step or the answer.

    The Evaluator's verdict is the threshold: its scores are 1 (ok), 0.5 (answered by a fallback tool: a tool's
    outage, which a more capable model would not fix) and 0 (failed), and only a failed verdict escalates.
    """

    name = "cascade"

    def start(self, tiers: list[str], budget_left: float) -> tuple[str, str]:
        return tiers[0], "cascade starts at the cheapest tier"

    def escalate(self, current, tiers, reason, budget_left, cost_at):  # type: ignore[no-untyped-def]
        at = tiers.index(current)
        if at + 1 >= len(tiers):
            return None
        return tiers[at + 1], f"escalated after: {reason}"


class BudgetAwareCascade(Cascade):
    """A cascade that only climbs when the request can still afford a few calls at the next tier."""

    name = "budget-aware-cascade"

    def __init__(self, calls_to_afford: int = 3) -> None:
        self.calls_to_afford = calls_to_afford

    def escalate(self, current, tiers, reason, budget_left, cost_at):  # type: ignore[no-untyped-def]
        step = super().escalate(current, tiers, reason, budget_left, cost_at)
        if step is None:
            return None
        needed = self.calls_to_afford * cost_at(step[0])
        if needed > budget_left:
            return None  # cannot afford the climb: stay, and let the step be retried or fail here
        return step


POLICIES: dict[str, Callable[[], RoutingPolicy]] = {
    "always-cheapest": lambda: Fixed("cheapest"),
    "always-most-capable": lambda: Fixed("most-capable"),
    "cascade": Cascade,
    "budget-aware-cascade": BudgetAwareCascade,
}
