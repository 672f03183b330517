"""The benchmark workload itself: it must do the work it claims to measure (figures are never asserted)."""

from __future__ import annotations

from pathlib import Path

import orjson

from agentlab.bench import run_support5
from agentlab.components.audit import AuditLog


def test_safety_workload_runs_every_component_and_leaves_a_complete_audit_log(tmp_path: Path) -> None:
    result = run_support5(3, tmp_path / "events.jsonl", safety=True)
    assert result["completed"] == 3
    kinds = [orjson.loads(line)["kind"] for line in (tmp_path / "events.jsonl").open("rb")]
    assert kinds.count("tool_call_end") == 15 and kinds.count("permission_check") == 15
    assert kinds.count("routing") == 3  # cascade routing is on
    log = AuditLog(tmp_path / "audit.sqlite")
    rows = log.rows()
    log.close()
    # Every permission check and every execution is on record once the bench returns (the last batch too).
    assert [r["kind"] for r in rows].count("execution") == 15
    assert [r["kind"] for r in rows].count("permission") == 15


def test_serve_workload_does_its_three_phases() -> None:
    """A small ``bench --workload serve``: real requests answered, the overload phase ran, the server was really
    killed mid-request and every request still finished once (figures are not asserted: no timed tests)."""
    from agentlab.bench_serve import main_serve

    figures = main_serve("fixtures/suites/support.yaml", requests=24, workers=4, kills=1, overload_s=2.0)
    assert figures["steady"]["requests"] == 24 and figures["steady"]["states"] == {"done": 24}
    overload = figures["overload_2x"]
    assert sum(overload["status_codes"].values()) == overload["sent"] and not overload["transport_errors"]
    admitted, total = overload["admitted_finished"].split("/")
    assert admitted == total
    kills = figures["kills"]
    assert kills["kills"] == 1 and kills["rerun_after_kill"] >= 1
    assert kills["lost"] == 0 and kills["duplicate_side_effects"] == 0 and kills["ledger_duplicates"] == 0
