"""The command line: happy path, and bad input as one line naming file, place and problem, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "fixtures" / "suites" / "support.yaml"
WORLD = ROOT / "fixtures" / "worlds" / "support.yaml"


def write_suite(tmp_path: Path, mutate) -> Path:
    """A copy of the support suite, changed by ``mutate(raw)``, next to a copy of its world and tiers."""
    raw = yaml.safe_load(SUITE.read_text())
    raw["world"] = str(WORLD)
    raw["scenarios"] = raw["scenarios"][:3]
    mutate(raw)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    (tmp_path / "tiers.yaml").write_text((ROOT / "fixtures" / "tiers.yaml").read_text())
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_writes_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", str(SUITE), "--seed", "1", "--only", "lookup-001", "--out", str(tmp_path))
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["episodes"] == 1 and summary["seed"] == 1
    assert str(tmp_path) in out


def test_module_entry_point_runs_as_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab", "run", str(SUITE), "--only", "lookup-002", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "summary.json").exists()


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("agentlab: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_yaml_syntax_error_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("suite: x\nscenarios:\n  - id: a\n    request: [unclosed\n")
    code, _, err = run_cli(capsys, "run", str(bad), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, str(bad), "line", "not valid YAML")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda r: r["scenarios"][1].pop("request"), ["scenarios[1] (", ".request", "Field required"]),
        (
            lambda r: r["scenarios"][0]["gold"]["steps"][0].update(tool="refund_everything"),
            ["scenarios[0] (", "gold.steps[0].tool", "unknown tool 'refund_everything'"],
        ),
        (
            lambda r: r["scenarios"][0]["gold"]["steps"][0]["args"].update(order="x"),
            ["gold.steps[0].args.order", "has no argument 'order'"],
        ),
        (lambda r: r["scenarios"][2]["user"].update(role="admin"), ["scenarios[2] (", "user.role", "unknown role"]),
        (lambda r: r["scenarios"][1].update(id=r["scenarios"][0]["id"]), ["scenarios[1]", "duplicate scenario id"]),
        (
            lambda r: r["scenarios"][0].update(world={"orders": [{"id": "ORD-1001", "colour": "red"}]}),
            ["world.orders[0].colour", "unknown column"],
        ),
        (lambda r: r["scenarios"][0].update(budget_usd=-1), ["scenarios[0] (", "budget_usd"]),
        (
            lambda r: r["scenarios"][0]["gold"].update(answer="Total ${nowhere.total}"),
            ["gold.answer", "reference to 'nowhere'"],
        ),
        (lambda r: r.update(world="missing-world.yaml"), ["missing-world.yaml", "file not found"]),
    ],
    ids=[
        "missing-field",
        "unknown-tool",
        "unknown-arg",
        "unknown-role",
        "duplicate-id",
        "unknown-column",
        "negative-budget",
        "dangling-reference",
        "missing-world",
    ],
)
def test_malformed_suite_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate, fragments: list[str]
) -> None:
    path = write_suite(tmp_path, mutate)
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists(), "bad input must not leave a run directory"


def test_bad_tier_file_and_tier_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text(
        "default: fast\ntiers:\n  fast: {model: m, input_per_1k: -1, output_per_1k: 0,"
        " latency: {median_s: 1, p95_s: 2}, p_correct: 0.9}\n"
    )
    code, _, err = run_cli(capsys, "run", str(SUITE), "--tiers", str(tiers), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, str(tiers), "tiers.fast.input_per_1k")
    code, _, err = run_cli(capsys, "run", str(SUITE), "--tier", "gigantic", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--tier", "unknown tier 'gigantic'")


def test_refuses_to_overwrite_a_directory_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "run", str(SUITE), "--only", "lookup-001", "--out", str(tmp_path))
    assert_one_line_error(code, err, "not empty and is not an agentlab run")
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unknown_scenario_in_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", str(SUITE), "--only", "no-such-scenario", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--only", "no-such-scenario")


def test_a_crash_mid_run_leaves_nothing_that_looks_complete(tmp_path: Path, monkeypatch) -> None:
    from agentlab.runs import runner

    calls = {"n": 0}
    original = runner.run_episode

    async def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return await original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_episode", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run_suite(runner.RunOptions(suite=str(SUITE), out=str(tmp_path), progress=False))
    names = {p.name for p in tmp_path.iterdir()}
    assert "summary.json" not in names and "events.jsonl" not in names
    assert "events.jsonl.partial" in names  # what was traced is kept for inspection, clearly unfinished


def test_rerunning_into_a_finished_run_replaces_it_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for only, force in (("lookup-001", []), ("lookup-002", ["--force"])):
        code, _, err = run_cli(capsys, "run", str(SUITE), "--only", only, "--out", str(tmp_path), *force)
        assert code == 0, err
    events = (tmp_path / "events.jsonl").read_text()
    assert "lookup-002#0" in events and "lookup-001#0" not in events
