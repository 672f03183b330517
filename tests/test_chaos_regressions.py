"""Bugs the chaos search found, each kept as the minimal case that showed it."""

from __future__ import annotations

from pathlib import Path

import orjson

from agentlab.components.audit import AuditLog
from agentlab.runs import RunOptions, run_suite
from agentlab.testing import ChaosCase, ChaosHarness, RunView

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")


def test_a_resumed_run_keeps_the_days_spend(tmp_path: Path) -> None:
    """Found by resume_equivalent: the budget ledger was not in the checkpoint, so a run killed between two
    requests of one user forgot the day's spend and served a request the day's budget had no room for."""
    case = ChaosCase(suite=SUITE, scenarios=("inject-005",), epochs=2, seed=20452, budget_user_day_usd=0.001,
                     kill_at=0.52, routing="always-cheapest")  # fmt: skip
    with ChaosHarness(tmp_path) as harness:
        result = harness.check(case)
    assert result.runs == 4 and result.events > 20
    assert result.violations == []


def test_a_run_into_an_earlier_runs_directory_starts_a_fresh_audit_log(tmp_path: Path) -> None:
    """Found by executions_authorized_and_audited: re-running into the same --out kept the earlier run's
    audit rows, so every execution seemed to have several."""
    opts = RunOptions(suite=SUITE, only=["refund-cond-001"], out=str(tmp_path / "run"), progress=False)
    run_suite(opts)
    log = AuditLog(tmp_path / "run" / "audit.sqlite")
    once = len(log.rows())
    log.close()
    run_suite(opts.model_copy(update={"force": True}))  # replacing a finished run takes force=True
    log = AuditLog(tmp_path / "run" / "audit.sqlite")
    assert once > 0 and len(log.rows()) == once
    log.close()


def test_a_model_that_never_answers_is_abandoned_after_the_tiers_timeout(tmp_path: Path) -> None:
    """Found by episodes_end: model calls had no timeout of their own, so a provider that hung for an hour held
    the request for an hour per attempt (one generated case took seven simulated hours)."""
    from agentlab.analysis import load_run
    from agentlab.faults import burst, models, timeout

    plan = timeout(3600).on(models("*")).when(burst(0, 2))  # the first two model calls hang
    result = run_suite(RunOptions(suite=SUITE, only=["lookup-002"], faults=plan, out=str(tmp_path), progress=False))
    calls = load_run(result.run_dir).events.query("kind == 'model_call'")
    hung = calls[calls.error_type == "ModelTimeout"]
    assert len(hung) == 2 and (hung.latency_s.round(6) == 120.0).all()
    assert hung.error.str.contains("agent's 120s timeout").all()
    assert result.summary["sim_seconds"] < 600


def test_a_repeated_refund_with_other_wording_is_the_same_refund(tmp_path: Path) -> None:
    """Found by no_duplicate_side_effects (agentlab chaos --seed 7, no faults at all): the fast tier refunded
    $25 with an empty reason, then again with the right one; the idempotency key hashed every argument, so the
    reason text made it a second refund. Keys now hash the fields that identify the action (key_fields)."""
    case = ChaosCase(suite=SUITE, scenarios=("refund-cond-005",), seed=8067, budget_user_month_usd=0.002,
                     routing="cascade")  # fmt: skip
    with ChaosHarness(tmp_path, cross_run=False) as harness:
        result = harness.check(case)
        view = RunView.load(tmp_path / "a")
    refunds = [e for e in view.events if e["kind"] == "tool_call_start" and e["tool"] == "issue_refund"]
    assert [r["args"]["reason"] for r in refunds] == ["", "broken buckle"]  # the model did ask twice
    assert result.violations == []


def test_key_fields_are_the_fields_the_world_records_an_effect_by(tmp_path: Path) -> None:
    """What the agent treats as one action is what the world's ledger (and the duplicate count) calls one."""
    from agentlab.domains.support import registry

    result = run_suite(RunOptions(suite=SUITE, out=str(tmp_path), progress=False))
    view = RunView.load(result.run_dir)
    applied = [e for effects in view.ledger.values() for e in effects if e["action"] == "apply"]
    checked = set()
    for effect in applied:
        spec = registry.get(effect["tool"])
        if not spec.idempotent:
            assert spec.key_fields is not None and set(spec.key_fields) == set(orjson.loads(effect["args"]))
            checked.add(spec.name)
    assert {"issue_refund", "send_email", "create_ticket", "escalate_to_human"} <= checked


def test_an_answer_resting_on_a_fallback_tool_says_so_even_if_the_model_does_not(tmp_path: Path) -> None:
    """Found by degraded_answers_disclose (agentlab chaos --seed 7): web_search failed three times, kb_search
    answered in its place, and the answer said nothing about it; disclosure was left to the model. The agent
    now adds the note itself when a stand-in answered and the answer does not already say so."""
    case = ChaosCase(suite=SUITE, scenarios=("refund-cond-006",), seed=270, routing="cascade")
    with ChaosHarness(tmp_path, cross_run=False) as harness:
        result = harness.check(case)
        view = RunView.load(tmp_path / "a")
    assert any(e["kind"] == "degraded" and e["mode"] == "fallback_tool" for e in view.events)
    final = next(e for e in view.events if e["kind"] == "final_response")
    assert final["status"] == "completed"
    assert "web_search was unavailable, so kb_search answered instead" in final["text"]
    assert result.violations == []


def test_a_resumed_episode_replaying_a_refund_is_not_denied_by_the_balance_it_reduced(tmp_path: Path) -> None:
    """Found by resume_equivalent (agentlab chaos --seed 7): with --durable-worlds, a run killed after a refund
    resumed the episode against the world the refund had already changed, and the gate's constraint (a refund
    may not exceed what is left of the order) denied the replayed refund. A call the journal holds is not
    re-checked against the world it changed."""
    from agentlab.components.policy import Policy

    case = ChaosCase(suite=SUITE, scenarios=("refund-cond-006",), policy=Policy(rules=(), default="allow"),
                     kill_at=1.0, durable_worlds=True)  # fmt: skip
    with ChaosHarness(tmp_path) as harness:
        result = harness.check(case)
    assert result.runs == 4 and result.violations == []
