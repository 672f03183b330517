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
