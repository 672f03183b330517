"""`agentlab chaos` and `agentlab run --check` from the shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")


def agentlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentlab", *args], capture_output=True, text=True, env=env)


def test_chaos_reports_examples_per_second_and_the_invariants(tmp_path: Path) -> None:
    done = agentlab("chaos", SUITE, "--examples", "8", "--seed", "3", "--repro-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert report["passed"] and report["examples"] == 8 and report["runs"] == 32
    assert report["examples_per_second"] > 0 and "resume_equivalent" in report["invariants"]


def test_run_check_passes_on_a_healthy_run_and_names_the_invariants(tmp_path: Path) -> None:
    done = agentlab("run", SUITE, "--only", "refund-cond-005", "--out", str(tmp_path / "r"), "--quiet", "--check")
    assert done.returncode == 0, done.stderr
    assert "invariants hold: no_duplicate_side_effects, budgets_respected" in done.stdout


def test_an_unknown_mutant_is_one_line_and_exit_2() -> None:
    done = agentlab("chaos", SUITE, "--examples", "1", "--mutant", "no-such-thing")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown mutant 'no-such-thing'" in done.stderr
