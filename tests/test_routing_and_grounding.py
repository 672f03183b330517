"""Routing policies and the Evaluator's grounding check (the signals a cascade escalates on)."""

from __future__ import annotations

import pytest

from agentlab.components.evaluator import Evaluator, known_facts
from agentlab.components.routing import POLICIES, BudgetAwareCascade, Cascade

TIERS = ["fast", "balanced", "powerful"]


def test_baselines_never_move() -> None:
    cheapest, capable = POLICIES["always-cheapest"](), POLICIES["always-most-capable"]()
    assert cheapest.start(TIERS, 1.0)[0] == "fast" and capable.start(TIERS, 1.0)[0] == "powerful"
    assert cheapest.escalate("fast", TIERS, "weak", 1.0, lambda t: 0.0) is None


def test_cascade_climbs_one_tier_at_a_time_and_stops_at_the_top() -> None:
    cascade = Cascade()
    tier, _ = cascade.start(TIERS, 1.0)
    seen = [tier]
    while (step := cascade.escalate(tier, TIERS, "step failed", 1.0, lambda t: 0.0)) is not None:
        tier = step[0]
        seen.append(tier)
        assert "step failed" in step[1]
    assert seen == TIERS


def test_budget_aware_cascade_does_not_climb_into_what_it_cannot_afford() -> None:
    policy = BudgetAwareCascade(calls_to_afford=3)
    prices = {"balanced": 0.01, "powerful": 0.05}
    assert policy.escalate("fast", TIERS, "weak", 0.05, prices.__getitem__) == ("balanced", "escalated after: weak")
    assert policy.escalate("balanced", TIERS, "weak", 0.05, prices.__getitem__) is None  # 3 × 0.05 > 0.05


KNOWN = known_facts(
    [
        "Refund ORD-1004 in full if it was delivered.",
        '{"id": "ORD-1004", "total": 89.99, "status": "delivered", "refunded": 0}',
    ]
)


@pytest.mark.parametrize(
    ("value", "score", "unknown"),
    [
        ({"order_id": "ORD-1004", "amount": 89.99, "reason": "damaged"}, 1.0, []),
        ({"order_id": "ORD-1005", "amount": 89.99}, 0.5, ["ORD-1005"]),  # a wrong id
        ({"order_id": "ORD-1004", "amount": 134.99}, 0.5, ["134.99"]),  # a made-up amount
        ("Order ORD-1004 was delivered; I've issued a refund of $89.99.", 1.0, []),
        ("Order ORD-1004 totals $123.45 and ships Friday.", 0.5, ["123.45"]),  # a hallucinated total
        ("Could you tell me which order you mean?", 1.0, []),
    ],
)
def test_grounding_catches_made_up_ids_and_figures(value, score: float, unknown: list[str]) -> None:
    assert Evaluator.grounding(value, KNOWN) == (pytest.approx(score), unknown)


def test_ids_do_not_double_count_as_numbers() -> None:
    assert known_facts(["ORD-1004"]) == {"ORD-1004"}
