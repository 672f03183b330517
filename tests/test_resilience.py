"""The resilience layer against injected faults: idempotency, at-most-once, degradation, and the
fault-rate table (success with resilience on and off)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from agentlab.analysis import load_run
from agentlab.faults import burst, error, models, server_error, timeout_after_commit, tools
from agentlab.faults.presets import transient
from agentlab.runs import RunOptions, run_suite

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures" / "suites" / "support.yaml")


def run(tmp_path: Path, name: str, **options) -> tuple[dict, pd.DataFrame]:
    result = run_suite(RunOptions(suite=SUITE, out=str(tmp_path / name), progress=False, **options))
    return result.summary, load_run(result.run_dir).events


def lost_first_response(tool: str):
    """The first call to ``tool`` in each episode commits its side effect, then its response is lost."""
    return timeout_after_commit(600).on(tools(tool)).when(burst(0, 1)).per_episode()


@pytest.mark.parametrize("resilience", [True, False])
def test_refund_whose_response_was_lost_is_applied_once_with_idempotency_keys(tmp_path: Path, resilience) -> None:
    summary, events = run(tmp_path, str(resilience), only=["refund-cond-005"], tier="powerful", seed=2,
                          faults=lost_first_response("issue_refund"), resilience=resilience)  # fmt: skip
    assert summary["faults_injected"] == {"timeout_after_commit": 1}
    if resilience:
        assert summary["duplicate_side_effects"] == 0
        assert summary["success_rate"] == 1.0  # the retry carried the same key: the world answered from its ledger
        assert (events[events.kind == "retry"].target == "tool:issue_refund").any()
    else:
        assert summary["duplicate_side_effects"] == 1  # the model asked again; the refund ran twice
        assert summary["success_rate"] == 0.0


@pytest.mark.parametrize("resilience", [True, False])
def test_an_email_that_may_have_been_sent_is_never_sent_again(tmp_path: Path, resilience: bool) -> None:
    summary, events = run(tmp_path, str(resilience), only=["multi-001"], tier="powerful", seed=2,
                          faults=lost_first_response("send_email"), resilience=resilience)  # fmt: skip
    ends = events[(events.kind == "tool_call_end") & (events.tool == "send_email")]
    if resilience:
        assert summary["duplicate_side_effects"] == 0
        assert len(ends) == 1  # not retried after an ambiguous timeout
        rejected = events[(events.kind == "step_rejected") | (events.kind == "evaluation")]
        assert rejected.reason.fillna("").str.contains("AlreadyAttempted").any()
    else:
        assert summary["duplicate_side_effects"] >= 1
        assert len(ends) >= 2


def test_a_dead_external_tool_degrades_to_its_fallback_and_opens_its_breaker(tmp_path: Path) -> None:
    dead = error().on(tools("web_search"))
    summary, events = run(tmp_path, "web", only=["lookup-006"], tier="powerful", seed=1, epochs=4, faults=dead)
    degraded = events[events.kind == "degraded"]
    assert set(degraded["mode"]) == {"fallback_tool"}
    assert set(degraded.replacement) == {"tool:kb_search"}
    assert summary["breaker_opens"] >= 1
    rejected = events[events.kind == "call_rejected"]
    assert (rejected.target == "tool:web_search").any()  # later episodes skip the dead tool at once
    answers = events[events.kind == "final_response"].text
    assert answers.str.contains("could not verify", case=False).all()  # degraded answers say so


def test_a_tier_outage_is_answered_by_another_tier(tmp_path: Path) -> None:
    summary, events = run(tmp_path, "tier", only=["lookup-001", "refund-cond-001"], seed=1, epochs=3,
                          faults=server_error(503).on(models("balanced")))  # fmt: skip
    assert summary["success_rate"] == 1.0
    fallbacks = events[(events.kind == "degraded") & (events["mode"] == "fallback_model")]
    assert set(fallbacks.replacement) == {"model:powerful"}
    assert set(events[(events.kind == "model_call") & events.ok.astype(bool)].tier) == {"powerful"}
    assert summary["breaker_opens"] >= 1


def test_when_every_model_is_down_the_agent_answers_partially_instead_of_crashing(tmp_path: Path) -> None:
    summary, events = run(tmp_path, "down", only=["lookup-001"], seed=1, faults=server_error().on(models("*")))
    assert summary["status_counts"] == {"unavailable": 1}
    assert (events[events.kind == "degraded"]["mode"] == "partial_answer").any()
    text = events[events.kind == "final_response"].text.iloc[0]
    assert "could not verify" in text


def test_without_resilience_a_model_outage_fails_the_request_not_the_agent(tmp_path: Path) -> None:
    summary, _ = run(tmp_path, "down", only=["lookup-001"], seed=1, resilience=False,
                     faults=server_error().on(models("*")))  # fmt: skip
    assert summary["status_counts"] == {"failed": 1}


RATES = (0.0, 0.05, 0.10, 0.20, 0.40)


@pytest.fixture(scope="module")
def fault_rate_table(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Success rate on the support suite per fault rate, resilience on and off (seeds 1-3, 3 epochs)."""
    rows = []
    for p in RATES:
        for resilience in (True, False):
            successes = episodes = duplicates = 0
            for seed in (1, 2, 3):
                out = tmp_path_factory.mktemp("table")
                s = run_suite(RunOptions(suite=SUITE, faults=transient(p), resilience=resilience, seed=seed,
                                         epochs=3, out=str(out), progress=False)).summary  # fmt: skip
                successes += round(s["success_rate"] * s["episodes"])
                episodes += s["episodes"]
                duplicates += s["duplicate_side_effects"]
            rows.append({"fault_rate": p, "resilience": resilience, "success_rate": successes / episodes,
                         "duplicate_side_effects": duplicates})  # fmt: skip
    table = pd.DataFrame(rows)
    print("\n" + table.pivot(index="fault_rate", columns="resilience", values="success_rate").to_string())
    return table


def test_resilience_keeps_success_at_ten_percent_faults(fault_rate_table: pd.DataFrame) -> None:
    on = fault_rate_table[fault_rate_table.resilience].set_index("fault_rate").success_rate
    assert on[0.10] >= 0.99 * on[0.0]


def test_resilience_never_applies_a_side_effect_twice(fault_rate_table: pd.DataFrame) -> None:
    on = fault_rate_table[fault_rate_table.resilience]
    off = fault_rate_table[~fault_rate_table.resilience]
    assert (on.duplicate_side_effects == 0).all()
    assert off.duplicate_side_effects.sum() > 0  # the check can fail: without resilience it does


def test_resilience_beats_no_resilience_under_faults(fault_rate_table: pd.DataFrame) -> None:
    pivot = fault_rate_table.pivot(index="fault_rate", columns="resilience", values="success_rate")
    assert pivot.loc[0.0, True] == pivot.loc[0.0, False]  # no faults: the layer changes nothing
    for p in RATES[1:]:
        assert pivot.loc[p, True] > pivot.loc[p, False] + 0.05
