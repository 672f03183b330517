"""Bugs the chaos search found, each kept as the minimal case that showed it."""

from __future__ import annotations

from pathlib import Path

from agentlab.components.audit import AuditLog
from agentlab.sim.runner import RunOptions, run_suite
from agentlab.testing import ChaosCase, ChaosHarness

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
    run_suite(opts)
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
