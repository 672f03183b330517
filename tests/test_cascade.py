"""Cascade routing on the support suite: most of the savings of the cheapest tier, the quality of the best."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from agentlab.analysis import load_run
from agentlab.runs import RunOptions, run_suite

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")
POLICIES = ("always-cheapest", "always-most-capable", "cascade", "budget-aware-cascade")


@pytest.fixture(scope="module")
def policy_table(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Seeds 1-3 × 3 epochs per policy (396 episodes each)."""
    rows = []
    for policy in POLICIES:
        successes = episodes = 0
        cost = 0.0
        hits, escalations = [], 0
        for seed in (1, 2, 3):
            out = tmp_path_factory.mktemp(policy)
            s = run_suite(
                RunOptions(suite=SUITE, routing=policy, seed=seed, epochs=3, out=str(out), progress=False)
            ).summary
            successes += round(s["success_rate"] * s["episodes"])
            episodes += s["episodes"]
            cost += s["total_cost_usd"]
            hits.append(s["cascade_hit_rate"])
            escalations += s["escalations"]
        rows.append(
            {
                "policy": policy,
                "success_rate": successes / episodes,
                "cost_usd": cost,
                "cost_per_success": cost / successes,
                "cascade_hit_rate": sum(hits) / len(hits),
                "escalations": escalations,
            }
        )
    table = pd.DataFrame(rows).set_index("policy")
    print("\n" + table.round(4).to_string())
    return table


def test_cascade_saves_at_least_60_percent_within_two_points(policy_table: pd.DataFrame) -> None:
    best, cascade = policy_table.loc["always-most-capable"], policy_table.loc["cascade"]
    assert cascade.cost_usd <= 0.40 * best.cost_usd
    assert cascade.success_rate >= best.success_rate - 0.02


def test_hit_rates_and_escalations_mean_what_they_say(policy_table: pd.DataFrame) -> None:
    assert policy_table.loc["always-cheapest", "cascade_hit_rate"] == 1.0
    assert policy_table.loc["always-most-capable", "cascade_hit_rate"] == 0.0
    assert 0.0 < policy_table.loc["cascade", "cascade_hit_rate"] < 1.0
    assert policy_table.loc["cascade", "escalations"] > 0
    assert policy_table.loc["always-cheapest", "escalations"] == 0


def test_every_escalation_is_traced_with_its_reason(tmp_path: Path) -> None:
    run_suite(RunOptions(suite=SUITE, routing="cascade", seed=1, out=str(tmp_path), progress=False))
    ev = load_run(tmp_path).events
    routing = ev[ev.kind == "routing"]
    starts = routing[routing.previous.isna()]
    assert len(starts) == ev[ev.kind == "request_admitted"].shape[0]  # one start decision per admitted request
    assert set(starts.tier) == {"fast"}
    climbs = routing[routing.previous.notna()]
    assert len(climbs) > 0 and climbs.reason.str.startswith("escalated after:").all()
    order = {"fast": 0, "balanced": 1, "powerful": 2}
    assert all(order[row.tier] == order[row.previous] + 1 for row in climbs.itertuples())


def test_a_routed_run_names_no_single_tier(tmp_path: Path) -> None:
    """Under a routing policy the configured default tier answers nothing by right: the summary must not name it."""
    routed = run_suite(RunOptions(suite=SUITE, routing="cascade", seed=1, out=str(tmp_path / "r"), progress=False))
    fixed = run_suite(RunOptions(suite=SUITE, tier="fast", seed=1, out=str(tmp_path / "f"), progress=False))
    assert routed.summary["tier"] is None and routed.summary["routing"] == "cascade"
    assert len(routed.summary["llm_calls_by_tier"]) > 1
    assert fixed.summary["tier"] == "fast" and set(fixed.summary["llm_calls_by_tier"]) == {"fast"}
