"""The benchmark workload itself: it must do the work it claims to measure (figures are never asserted)."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

import orjson

from agentlab.bench import run_floor, run_support5
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


def test_the_safety_workload_gates_with_the_support_policy_and_needs_no_checkout(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """``--safety``'s policy is written into the workload (an installed package has no fixtures) and is the support
    fixture's: a change to either fails here, so the benchmark never changes by accident."""
    from agentlab.components.policy import load_policy
    from agentlab.domains.support.bench5 import BENCH_POLICY

    fixture = load_policy(Path(__file__).parents[1] / "fixtures/policies/support.yaml")
    assert fixture.model_dump() == BENCH_POLICY.model_dump()

    def no_files(path: Path) -> Any:
        raise AssertionError(f"the benchmark read {path}")

    monkeypatch.setattr("agentlab.yamlfile.read_yaml", no_files)  # as in an installed package: no fixtures to read
    assert run_support5(2, tmp_path / "events.jsonl", safety=True)["completed"] == 2


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


def _recording_tools(monkeypatch: Any, log: list[Any]) -> None:
    """Swap each support-5 tool for one that logs ``(tool, args, result)``: the effects both runs have."""
    from agentlab.domains.support.bench5 import bench_tools

    for spec in list(bench_tools):

        async def recorded(ctx: Any, _fn: Any = spec.fn, _name: str = spec.name, **args: Any) -> Any:
            result = await _fn(ctx, **args)
            log.append((_name, args, result))
            return result

        monkeypatch.setitem(bench_tools._tools, spec.name, dataclasses.replace(spec, fn=recorded))


def test_the_floor_makes_the_same_tool_calls_and_answers_as_support5(tmp_path: Path, monkeypatch: Any) -> None:
    agent_log: list[Any] = []
    _recording_tools(monkeypatch, agent_log)
    assert run_support5(3, tmp_path / "events.jsonl")["completed"] == 3
    answers = [
        e["text"] for e in map(orjson.loads, (tmp_path / "events.jsonl").open("rb")) if e["kind"] == "final_response"
    ]

    monkeypatch.undo()
    floor_log: list[Any] = []
    _recording_tools(monkeypatch, floor_log)
    collected: list[Any] = []
    assert run_floor(3, calls=collected)["completed"] == 3

    assert len(agent_log) == 15 and [c[0] for c in agent_log[:5]] == [
        "lookup_order", "check_inventory", "issue_refund", "send_email", "log_note"
    ]  # fmt: skip
    assert floor_log == agent_log  # the same tools, in the same order, with the same arguments and results
    assert [c for c in collected if isinstance(c, str)] == answers and len(answers) == 3
    calls_only: list[Any] = []
    assert run_floor(3, turns=False, calls=calls_only)["completed"] == 3
    assert calls_only == collected


def test_the_floor_takes_one_loop_turn_a_call_and_the_calls_only_floor_none(monkeypatch: Any) -> None:
    from agentlab.sim.loop import VirtualTimeLoop

    turns = 0
    run_once = VirtualTimeLoop._run_once  # type: ignore[attr-defined]

    def counted(self: Any) -> None:
        nonlocal turns
        turns += 1
        run_once(self)

    monkeypatch.setattr(VirtualTimeLoop, "_run_once", counted)
    for kwargs, per_episode in (({}, 11), ({"turns": False}, 0)):  # six model calls and five tool calls
        counts = []
        for episodes in (10, 20):  # the difference leaves out the turns that start and stop the loop
            turns = 0
            run_floor(episodes, **kwargs)
            counts.append(turns)
        assert counts[1] - counts[0] == 10 * per_episode


def test_vs_floor_reports_both_rates_and_their_ratio(tmp_path: Path, capsys: Any) -> None:
    from agentlab.cli import main

    for extra in ([], ["--safety"], ["--fault-rate", "0.10"]):
        assert main(["bench", "--episodes", "4", "--vs-floor", "3", *extra]) == 0
        line = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert line["rounds"] == 3 and line["episodes"] == 4 and line["floor_episodes"] == 20
        assert line["completed"] == 4 and line["events_per_episode"] >= 32  # the agent really ran
        for key in ("episodes_per_s", "floor_episodes_per_s", "calls_only_floor_episodes_per_s"):
            assert len(line[f"{key}_rounds"]) == 3 and line[key] == statistics.median(line[f"{key}_rounds"])
        assert line["ratio"] == round(line["floor_episodes_per_s"] / line["episodes_per_s"], 2)
        assert line["calls_only_ratio"] == round(line["calls_only_floor_episodes_per_s"] / line["episodes_per_s"], 2)
        assert line["safety"] == ("--safety" in extra) and (line["faults"] is not None) == ("--fault-rate" in extra)
