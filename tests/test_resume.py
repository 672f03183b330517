"""A run SIGKILLed mid-suite (a real subprocess) and resumed ends exactly as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "run",
    str(ROOT / "fixtures/suites/support.yaml"),
    "--seed",
    "3",
    "--epochs",
    "2",
    "--faults",
    str(ROOT / "fixtures/faults/transient-10.yaml"),
    "--quiet",
]


def agentlab(*args: str, kill_after: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTLAB_KILL_AFTER_EVENTS"}
    if kill_after is not None:
        env["AGENTLAB_KILL_AFTER_EVENTS"] = str(kill_after)
    return subprocess.run(
        [sys.executable, "-m", "agentlab", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def events(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [{k: v for k, v in e.items() if k != "seq"} for e in lines if e["kind"] != "run_resumed"]


def comparable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("wall_seconds", "resumed_episodes")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    proc = agentlab(*ARGS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("durable", [False, True], ids=["memory-worlds", "durable-worlds"])
@pytest.mark.parametrize("where", [0.005, 0.37, 0.83])  # before the first checkpoint, early, late
def test_killed_and_resumed_run_equals_an_uninterrupted_one(
    tmp_path: Path, uninterrupted: Path, where: float, durable: bool
) -> None:
    out = tmp_path / "run"
    total = len((uninterrupted / "events.jsonl").read_text().splitlines())
    kill_after = max(1, int(total * where))
    extra = ["--durable-worlds"] if durable else []
    killed = agentlab(*ARGS, *extra, "--out", str(out), kill_after=kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "summary.json").exists() and (out / "events.jsonl.partial").exists()

    resumed = agentlab("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr

    assert events(out) == events(uninterrupted)  # every decision, time and world ledger, in order
    ledger = [e["effects"] for e in events(out) if e["kind"] == "episode_graded"]
    assert ledger == [e["effects"] for e in events(uninterrupted) if e["kind"] == "episode_graded"]
    assert any(ledger)
    whole = json.loads((uninterrupted / "summary.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert comparable(summary) == comparable(whole)
    assert summary["resumed_episodes"] == 1 and whole["resumed_episodes"] == 0
    assert summary["duplicate_side_effects"] == 0
    assert audit_rows(out) == audit_rows(uninterrupted)  # the audit log: every decision and execution
    assert grades(out) == grades(uninterrupted)


def audit_rows(run_dir: Path) -> list[dict]:
    from agentlab.components.audit import AuditLog

    log = AuditLog(run_dir / "audit.sqlite")
    try:
        return log.rows()
    finally:
        log.close()


def grades(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "effects"} for e in events(run_dir) if e["kind"] == "episode_graded"]


@pytest.mark.parametrize(("after_start", "in_flight"), [(0, 0), (1, 1), (2, 1)])
def test_resumed_episodes_counts_only_an_episode_the_kill_interrupted(
    tmp_path: Path, uninterrupted: Path, after_start: int, in_flight: int
) -> None:
    """Killed at an episode's ``episode_started`` (the event is never written: the kill falls between two episodes)
    or just after it (the episode was running). Either way the resumed run equals the uninterrupted one."""
    trace = [json.loads(line) for line in (uninterrupted / "events.jsonl").read_text().splitlines()]
    started = [e["seq"] for e in trace if e["kind"] == "episode_started"]
    kill_after = started[len(started) // 2] + after_start
    out = tmp_path / "run"
    killed = agentlab(*ARGS, "--out", str(out), kill_after=kill_after)
    assert killed.returncode == -signal.SIGKILL
    assert (out / "run.lock").exists()  # left behind by the killed run, but no longer locked
    assert agentlab("run", "--resume", str(out)).returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_episodes"] == in_flight
    resumed = [
        e for e in map(json.loads, (out / "events.jsonl").read_text().splitlines()) if e["kind"] == "run_resumed"
    ]
    assert [e["in_flight"] is not None for e in resumed] == [bool(in_flight)]
    assert events(out) == events(uninterrupted)
    assert audit_rows(out) == audit_rows(uninterrupted)


def test_a_refund_committed_just_before_the_kill_is_not_applied_again(tmp_path: Path, uninterrupted: Path) -> None:
    """Durable worlds: the kill lands right after a refund committed, inside an episode."""
    trace = [json.loads(line) for line in (uninterrupted / "events.jsonl").read_text().splitlines()]
    refund = next(
        e for e in trace if e["kind"] == "tool_call_end" and e["tool"] == "issue_refund" and e["ok"] and e["seq"] > 50
    )
    out = tmp_path / "run"
    killed = agentlab(*ARGS, "--durable-worlds", "--out", str(out), kill_after=refund["seq"])
    assert killed.returncode == -signal.SIGKILL

    # The killed process left its episode's world on disk, refund included, with its journal entry.
    world = sqlite3.connect(out / "world.sqlite")
    assert world.execute("SELECT value FROM meta WHERE key = 'episode'").fetchone()[0] == refund["episode_id"]
    applied = world.execute("SELECT COUNT(*) FROM effects WHERE tool = 'issue_refund' AND action = 'apply'").fetchone()
    journaled = world.execute(
        "SELECT COUNT(*) FROM journal WHERE tool = 'issue_refund' AND call_id = ? AND attempt = ? AND ok = 1",
        (refund["call_id"], refund["attempt"]),
    ).fetchone()
    world.close()
    assert applied == (1,) and journaled == (1,)

    resumed = agentlab("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert events(out) == events(uninterrupted)  # the replayed refund was answered from the journal
    graded = next(e for e in events(out) if e["kind"] == "episode_graded" and e["episode_id"] == refund["episode_id"])
    assert [e["tool"] for e in graded["effects"] if e["action"] == "apply"].count("issue_refund") == 1
    assert json.loads((out / "summary.json").read_text())["duplicate_side_effects"] == 0


def test_resume_refuses_a_finished_run(uninterrupted: Path) -> None:
    proc = agentlab("run", "--resume", str(uninterrupted))
    assert proc.returncode == 2
    assert "already finished" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
