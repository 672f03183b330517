"""The run directory: a finished run is never lost to bad input or a rerun without --force (issue 14, item 1),
and one run at a time writes it (item 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentlab.cli import main
from agentlab.errors import InputError
from agentlab.runs.options import RunOptions
from agentlab.runs.planning import run_id_for
from agentlab.runs.rundir import LOCK_FILE, RunDirLock
from agentlab.runs.runner import run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "fixtures" / "suites" / "support.yaml"
ONLY = ["--only", "lookup-001", "--only", "lookup-002"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", str(SUITE), *ONLY, "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture
def finished(tmp_path: Path, finished_template: Path) -> Path:
    out = tmp_path / "finished"
    shutil.copytree(finished_template, out)
    return out


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- item 1: nothing lost -------------------------------------------------------------------------------------


def test_errors_found_late_today_leave_a_finished_run_untouched_even_with_force(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these was found only after the old runner had cleared --out: the run was lost, a partial left."""
    before = snapshot(finished)
    bad_prices = tmp_path / "prices.yaml"
    prices = yaml.safe_load((ROOT / "fixtures" / "prices.yaml").read_text())
    prices["models"].pop("sim-balanced")
    bad_prices.write_text(yaml.safe_dump(prices))
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("rules: [{effect: allow, role: agent, tool: lookup_order, colour: red}]\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-used")
    cases = {
        "prices": ["--prices", str(bad_prices)],
        "policy": ["--policy", str(bad_policy)],
        "budget": ["--budget-user-day", "-1"],
        "model": ["--llm", "openai", "--model", "gpt-unpriced-9"],
    }
    for name, extra in cases.items():
        code = main(["run", str(SUITE), *ONLY, "--quiet", "--out", str(finished), "--force", *extra])
        assert code == 2, name
        one_line(capsys)
        assert snapshot(finished) == before, name


def test_a_budget_changed_after_validation_is_still_refused_before_writing(finished: Path) -> None:
    """The Python side: RunOptions refuses a negative budget, and so does run_suite if one slips in afterwards."""
    before = snapshot(finished)
    opts = RunOptions(suite=str(SUITE), only=["lookup-001"], out=str(finished), force=True, progress=False)
    opts.budget_session_usd = -1.0  # pydantic does not validate assignment
    with pytest.raises(InputError, match="--budget-session"):
        run_suite(opts)
    assert snapshot(finished) == before


def test_a_broken_cassette_is_found_before_the_run_dir_is_touched(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes" / "openai", cassettes / "openai")
    (cassettes / "openai" / "support" / "lookup-002_0.yaml").write_text("interactions: [unclosed\n")
    before = snapshot(finished)
    args = ["run", str(SUITE), *ONLY, "--quiet", "--out", str(finished), "--force", "--llm", "replay"]
    assert main([*args, "--cassettes", str(cassettes)]) == 2
    assert "lookup-002_0.yaml" in one_line(capsys)
    assert snapshot(finished) == before


def test_a_finished_run_is_kept_without_force_and_replaced_with_it(finished: Path) -> None:
    before = snapshot(finished)
    opts = RunOptions(suite=str(SUITE), only=["lookup-003"], out=str(finished), progress=False)
    with pytest.raises(InputError, match="finished run"):
        run_suite(opts)
    assert snapshot(finished) == before
    run_suite(opts.model_copy(update={"force": True}))
    assert "lookup-003#0" in (finished / "events.jsonl").read_text()
    assert not (finished / LOCK_FILE).exists()  # a finished run holds no lock file


def test_an_unfinished_run_is_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "events.jsonl.partial").write_text("")
    run_suite(RunOptions(suite=str(SUITE), only=["lookup-001"], out=str(out), progress=False))
    assert (out / "summary.json").exists() and not (out / "events.jsonl.partial").exists()


def test_force_is_not_part_of_the_run_id() -> None:
    from agentlab.scenarios.loader import load_suite

    suite = load_suite(SUITE)
    tiers = (ROOT / "fixtures" / "tiers.yaml").read_bytes()
    ids = {run_id_for(suite, tiers, RunOptions(suite=str(SUITE), force=f), "balanced", None) for f in (False, True)}
    assert len(ids) == 1


# --- item 2: one writer ---------------------------------------------------------------------------------------


def agentlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentlab", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_second_run_into_a_locked_directory_refuses_at_once(tmp_path: Path) -> None:
    """Another process holds the lock (as a run does while it writes): a new run and a resume both refuse."""
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-m", "agentlab", "run", str(SUITE), *ONLY, "--out", str(out), "--quiet"],
        env={**os.environ, "AGENTLAB_KILL_AFTER_EVENTS": "20"},
        check=False,
        timeout=300,
    )
    assert killed.returncode < 0 and (out / "run.json").exists()  # a real killed run, ready to resume
    lock = RunDirLock(out)
    lock.acquire()
    try:
        before = snapshot(out)
        for args in (["run", str(SUITE), *ONLY, "--out", str(out)], ["run", "--resume", str(out)]):
            proc = agentlab(*args)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "another agentlab run is writing this directory" in lines[0], proc.stderr
            assert snapshot(out) == before
    finally:
        lock.release()
    proc = agentlab("run", "--resume", str(out))  # free again: the resume goes ahead
    assert proc.returncode == 0, proc.stderr
    assert (out / "summary.json").exists()


def test_two_locks_on_one_directory_conflict_in_one_process_too(tmp_path: Path) -> None:
    """flock is per open file: two runs in one process (a notebook's threads) exclude each other as well."""
    first = RunDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(InputError, match="another agentlab run"):
            RunDirLock(tmp_path).acquire()
    finally:
        first.release()
    with RunDirLock(tmp_path):
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_killed_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    """The lock dies with its process (SIGKILL included): --resume can always take it."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from agentlab.runs.rundir import RunDirLock;"  # noqa: E501
         f" RunDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(InputError):
            RunDirLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()
    assert (tmp_path / LOCK_FILE).exists()  # the file stays behind, unlocked
    with RunDirLock(tmp_path):
        pass
    assert os.listdir(tmp_path) == []
