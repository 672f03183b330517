"""Bad input through the CLI: one line on stderr, exit 2, and ``--out`` untouched.

Every case runs against an output directory that already holds a finished run and checks, byte for byte,
that the run is still there afterwards (issue 14, item 3; the CLI bits of item 4).
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "fixtures" / "suites" / "support.yaml"
WORLD = ROOT / "fixtures" / "worlds" / "support.yaml"
FINISHED_ARGS = ["run", str(SUITE), "--only", "lookup-001", "--quiet"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (and every directory, as b"<dir>"), by relative path."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main([*FINISHED_ARGS, "--out", str(out)]) == 0
    assert (out / "summary.json").exists()
    return out


@pytest.fixture
def finished(tmp_path: Path, finished_template: Path) -> Path:
    """A finished run, to be left alone by every bad command."""
    out = tmp_path / "finished"
    shutil.copytree(finished_template, out)
    return out


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *fragments: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def suite_copy(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    raw = yaml.safe_load(SUITE.read_text())
    raw["world"] = str(WORLD)
    mutate(raw)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    (tmp_path / "tiers.yaml").write_text((ROOT / "fixtures" / "tiers.yaml").read_text())
    (tmp_path / "prices.yaml").write_text((ROOT / "fixtures" / "prices.yaml").read_text())
    return path


def literal_refund(raw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(index, gold step) of the first scenario whose refund amount is a literal (not a ${reference})."""
    for i, sc in enumerate(raw["scenarios"]):
        for step in sc["gold"].get("steps", []):
            if step["tool"] == "issue_refund" and not str(step["args"]["amount"]).startswith("${"):
                return i, step
    raise AssertionError("no literal refund in the suite")


# --- suites, tiers, policies, prices ----------------------------------------------------------------------------


def wrong_gold_type(raw: dict[str, Any]) -> None:
    literal_refund(raw)[1]["args"]["amount"] = "a lot"


def patch_wrong_type(raw: dict[str, Any]) -> None:
    raw["scenarios"][0]["world"] = {"orders": [{"id": "ORD-1001", "total": "expensive"}]}


def patch_incomplete_new_row(raw: dict[str, Any]) -> None:
    raw["scenarios"][0]["world"] = {"orders": [{"id": "ORD-NEW-1", "total": 3.5}]}


def patch_bad_status(raw: dict[str, Any]) -> None:
    raw["scenarios"][0]["world"] = {"orders": [{"id": "ORD-1001", "status": "lost-in-space"}]}


def huge_int_in_suite(raw: dict[str, Any]) -> None:
    raw["scenarios"][0]["max_turns"] = 2**70


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (wrong_gold_type, ["suite.yaml", ".gold.steps[", ".args.amount", "number"]),
        (patch_wrong_type, ["scenarios[0] (", ".world.orders[0].total", "number"]),
        (patch_incomplete_new_row, [".world.orders[0].customer_id", "adds a new row"]),
        (patch_bad_status, [".world.orders[0].status"]),
        (huge_int_in_suite, ["scenarios[0].max_turns", "does not fit in 64 bits"]),
    ],
    ids=["gold-arg-type", "patch-type", "patch-new-row-incomplete", "patch-bad-literal", "yaml-int-beyond-64-bits"],
)
def test_a_bad_suite_is_caught_at_load_time(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str], mutate: Any, fragments: list[str]
) -> None:
    before = snapshot(finished)
    path = suite_copy(tmp_path, mutate)
    code, err = cli(capsys, "run", str(path), "--out", str(finished), "--force", "--quiet")
    assert_one_line(code, err, *fragments)
    assert snapshot(finished) == before


@pytest.mark.parametrize("which", ["suite", "tiers", "policy", "prices", "faults"])
def test_a_file_that_is_not_utf8(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    before = snapshot(finished)
    bad = tmp_path / f"{which}.yaml"
    bad.write_bytes(b"name: caf\xe9\n")  # Latin-1, not UTF-8
    args = [str(bad)] if which == "suite" else [str(SUITE), f"--{which}", str(bad)]
    code, err = cli(capsys, "run", *args, "--out", str(finished), "--force", "--quiet")
    assert_one_line(code, err, str(bad), "not UTF-8")
    assert snapshot(finished) == before


@pytest.mark.parametrize("which", ["prices", "policy", "tiers", "faults"])
def test_a_missing_file(tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str], which: str) -> None:
    before = snapshot(finished)
    missing = tmp_path / "nowhere.yaml"
    code, err = cli(capsys, "run", str(SUITE), f"--{which}", str(missing), "--out", str(finished), "--force")
    assert_one_line(code, err, str(missing), "file not found")
    assert snapshot(finished) == before


def test_an_integer_beyond_64_bits_in_a_tier_file(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(finished)
    tiers = yaml.safe_load((ROOT / "fixtures" / "tiers.yaml").read_text())
    first = next(iter(tiers["tiers"].values()))
    first["context_window"] = 2**64
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(tiers))
    code, err = cli(capsys, "run", str(SUITE), "--tiers", str(path), "--out", str(finished), "--force")
    assert_one_line(code, err, str(path), "context_window", "does not fit in 64 bits")
    assert snapshot(finished) == before


# --- command-line values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--seed", str(2**70)], ["--seed"]),
        (["--seed", str(-(2**64))], ["--seed"]),
        (["--epochs", str(2**64)], ["--epochs"]),
        (["--budget-session", "-1"], ["--budget-session", "-1.0"]),
        (["--budget-user-day", "nan"], ["--budget-user-day", "nan"]),
        (["--budget-user-month", "-0.01"], ["--budget-user-month"]),
        (["--budget-session", "inf"], ["--budget-session", "inf"]),
        (["--record-mode", "record-missing"], ["--record-mode", "--record DIR"]),
    ],
    ids=[
        "seed-2**70",
        "seed-below-int64",
        "epochs-2**64",
        "negative-session",
        "nan-day",
        "negative-month",
        "infinite-session",
        "record-mode-without-record",
    ],
)
def test_a_bad_run_option(
    finished: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]
) -> None:
    before = snapshot(finished)
    code, err = cli(capsys, *FINISHED_ARGS, *args, "--out", str(finished), "--force")
    assert_one_line(code, err, *fragments)
    assert snapshot(finished) == before


def test_a_finished_run_is_not_replaced_without_force(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(finished)
    code, err = cli(capsys, *FINISHED_ARGS, "--out", str(finished))
    assert_one_line(code, err, str(finished), "finished run", "--force")
    assert snapshot(finished) == before


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["bench", "--episodes", "0"], ["--episodes"]),
        (["bench", "--episodes", "-5"], ["--episodes"]),
        (["bench", "--fault-rate", "2", "--episodes", "10"], ["--fault-rate"]),
        (["bench", "--fault-rate", "-0.5", "--episodes", "10"], ["--fault-rate"]),
        (["bench", "--fault-rate", "nan", "--episodes", "10"], ["--fault-rate"]),
        (["chaos", "--examples", "0", "--quiet"], ["--examples"]),
    ],
    ids=["bench-episodes-0", "bench-episodes-neg", "bench-rate-2", "bench-rate-neg", "bench-rate-nan", "chaos-0"],
)
def test_bad_bench_and_chaos_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str],
    fragments: list[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # chaos would write its repro files under runs/
    code, err = cli(capsys, *args)
    assert_one_line(code, err, *fragments)
    assert list(tmp_path.iterdir()) == []


# --- the disk --------------------------------------------------------------------------------------------------


def test_a_read_only_output_is_one_line_and_the_run_is_untouched(
    finished: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file system refuses the first write into DIR (as a read-only mount does: EROFS)."""
    from agentlab.runs import runner

    def refuse(path: Path, **_: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path / "summary.json"))

    monkeypatch.setattr(runner, "prepare_run_dir", refuse)
    before = snapshot(finished)
    code, err = cli(capsys, *FINISHED_ARGS, "--out", str(finished), "--force")
    assert_one_line(code, err, str(finished / "summary.json"), "Read-only file system")
    assert snapshot(finished) == before  # the lock file came and went; nothing else was written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_a_really_read_only_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        code, err = cli(capsys, *FINISHED_ARGS, "--out", str(parent / "run"))
    finally:
        parent.chmod(0o700)
    assert_one_line(code, err, str(parent / "run"), "cannot write the run")


def test_a_full_disk_mid_run_is_one_line_and_nothing_looks_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlab.trace.recorder import Recorder

    def full(self: Recorder) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(Recorder, "_write_pending", full)
    out = tmp_path / "run"
    code, err = cli(capsys, "run", str(SUITE), "--only", "lookup-001", "--only", "lookup-002", "--out", str(out))
    assert_one_line(code, err, str(out / "events.jsonl.partial"), "No space left on device")
    names = {p.name for p in out.iterdir()}
    assert "summary.json" not in names and "events.jsonl" not in names and "run.lock" not in names


# --- report ----------------------------------------------------------------------------------------------------


def test_report_to_a_directory(tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "reports"
    target.mkdir()
    code, err = cli(capsys, "report", str(finished), "-o", str(target))
    assert_one_line(code, err, str(target), "is a directory")
    assert list(target.iterdir()) == [] and not (tmp_path / "reports.tmp").exists()


def test_report_onto_a_special_file_is_refused_not_replaced(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device or a pipe as ``-o`` (say /dev/full): the atomic rename would replace it with a regular file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = cli(capsys, "report", str(finished), "-o", str(fifo))
    assert_one_line(code, err, str(fifo), "not a regular file")
    assert fifo.is_fifo() and not Path(f"{fifo}.tmp").exists()


def test_report_on_a_full_disk_leaves_no_tmp_and_keeps_the_old_report(
    tmp_path: Path, finished: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    out.write_text("the old report")
    original = Path.write_text

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.suffix == ".tmp":
            original(self, "half a rep", encoding="utf-8")  # some bytes reached the disk, then it filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    code, err = cli(capsys, "report", str(finished), "-o", str(out))
    assert_one_line(code, err, "report.html.tmp", "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finished", "report.html"]
    assert out.read_text() == "the old report"


def test_a_cassette_recording_that_fails_leaves_no_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentlab.llm.replay import writer

    def full(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(writer.os, "replace", full)
    with pytest.raises(OSError):
        writer.write_cassette(tmp_path / "c" / "episode.yaml", [], [])
    assert list((tmp_path / "c").iterdir()) == []


# --- Ctrl-C ----------------------------------------------------------------------------------------------------


def test_ctrl_c_says_how_to_resume_and_the_resume_finishes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlab.runs import runner

    original = runner.run_episode
    calls = [0]

    async def interrupted(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        await original(*args, **kwargs)

    args = ["run", str(SUITE), "--seed", "2", "--quiet"]
    only = [a for sid in ("lookup-001", "lookup-002", "refund-cond-001", "multi-001") for a in ("--only", sid)]
    whole = tmp_path / "whole"
    assert main([*args, *only, "--out", str(whole)]) == 0
    capsys.readouterr()

    out = tmp_path / "run"
    monkeypatch.setattr(runner, "run_episode", interrupted)
    code, err = cli(capsys, *args, *only, "--out", str(out))
    assert_one_line(code, err, f"agentlab run --resume {out}", exit_code=130)
    assert "Traceback" not in err and not (out / "summary.json").exists()

    monkeypatch.setattr(runner, "run_episode", original)
    code, err = cli(capsys, "run", "--resume", str(out))
    assert code == 0, err
    import json

    def trace(folder: Path) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
        return [{k: v for k, v in e.items() if k != "seq"} for e in lines if e["kind"] != "run_resumed"]

    assert trace(out) == trace(whole)
    # Ctrl-C fell between two episodes (before the third started): no episode was interrupted.
    assert json.loads((out / "summary.json").read_text())["resumed_episodes"] == 0


# --- the CLI bits of item 4 ------------------------------------------------------------------------------------


def test_audit_of_an_episode_the_run_does_not_have(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "audit", str(finished), "--episode", "lookup-999#0")
    assert_one_line(code, err, "--episode", "lookup-999#0")
    code, err = cli(capsys, "audit", str(finished), "--episode", "lookup-001#0")
    assert code == 0, err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--seed", "4"], ["--seed"]),
        (["--faults", "x.yaml", "--epochs", "3"], ["--epochs", "--faults"]),
        ([str(SUITE)], ["SUITE"]),
        (["--force"], ["--force"]),
        (["--out", "elsewhere"], ["--out"]),
    ],
    ids=["seed", "faults-epochs", "suite", "force", "out"],
)
def test_options_resume_would_ignore_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], named: list[str]
) -> None:
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "run.json").write_text("{}")
    before = snapshot(killed)
    code, err = cli(capsys, "run", "--resume", str(killed), *extra)
    assert_one_line(code, err, "--resume", *named)
    assert snapshot(killed) == before


def test_nan_is_never_a_budget() -> None:
    """The Python side refuses what the CLI refuses (RunOptions), so a script cannot pass NaN either."""
    from pydantic import ValidationError

    from agentlab.runs import RunOptions

    for bad in (math.nan, -1.0, math.inf):
        with pytest.raises(ValidationError):
            RunOptions(suite=str(SUITE), budget_session_usd=bad)
