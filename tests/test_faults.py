"""Fault plans: YAML and Python build the same plan; schedules and scopes decide deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.cli import main
from agentlab.errors import InputError
from agentlab.faults import (
    FaultInjector,
    burst,
    error,
    every_nth,
    load_fault_plan,
    models,
    partial,
    rate,
    rate_limit,
    tools,
    window,
)
from agentlab.faults.presets import transient
from agentlab.testing.trace import ListTrace

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_and_python_build_the_same_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "name: p\nfaults:\n"
        "  - {target: {tools: ['issue_*']}, kind: error, rate: 0.2, window: {start_s: 30, end_s: 90}}\n"
        "  - {target: {models: [fast]}, kind: rate_limit, params: {status: 429, retry_after_s: 20}}\n"
    )
    built = (
        error().on(tools("issue_*")).when(rate(0.2) & window(30, 90)) | rate_limit(retry_after_s=20).on(models("fast"))
    ).model_copy(update={"name": "p"})
    assert load_fault_plan(path) == built


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("faults:\n  - {target: {tools: ['*']}, kind: explode}\n", ["faults[0]", "not a tool fault"]),
        ("faults:\n  - {target: {models: ['*']}, kind: partial}\n", ["faults[0]", "not a model fault"]),
        ("faults:\n  - {target: {tools: ['*']}, kind: error, rate: 1.5}\n", ["faults[0].rate"]),
        ("faults:\n  - {target: {tools: ['*']}, kind: error, window: {start_s: 9, end_s: 3}}\n", ["faults[0].window"]),
        ("faults:\n  - {kind: error}\n", ["faults[0]", "target needs tools or models"]),
        ("faults:\n  - {target: {tools: ['*']}, kind: error, colour: red}\n", ["faults[0].colour"]),
    ],
)
def test_invalid_plan_is_one_line_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(InputError):
        load_fault_plan(path)
    code = main(
        ["run", str(ROOT / "fixtures/suites/support.yaml"), "--faults", str(path), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    for fragment in [str(path), *fragments]:
        assert fragment in err
    assert not (tmp_path / "o").exists()


def test_fluent_api_rejects_a_kind_that_does_not_fit_its_target() -> None:
    with pytest.raises(ValueError, match="not a model fault"):
        partial().on(models("fast"))
    with pytest.raises(ValueError, match="already has a 'rate'"):
        rate(0.1) & rate(0.2)


def decisions(plan, calls: list[tuple[str, float]], episode: str = "e1", start: float = 0.0) -> list[str | None]:
    injector = FaultInjector(plan, seed=7)
    injector.start_episode(episode, start)
    trace = ListTrace()
    out = [f.kind if (f := injector.for_tool(name, episode, t, trace)) else None for name, t in calls]
    assert len(trace.events) == sum(1 for d in out if d)  # one fault_injected event per injected fault
    return out


def test_window_every_nth_and_burst() -> None:
    calls = [("lookup_order", float(t)) for t in range(0, 120, 10)]
    assert decisions(error().on(tools("*")).when(window(30, 60)), calls) == [
        None, None, None, "error", "error", "error", None, None, None, None, None, None,
    ]  # fmt: skip
    assert decisions(error().on(tools("*")).when(every_nth(4)), calls) == [
        None, None, None, "error", None, None, None, "error", None, None, None, "error",
    ]  # fmt: skip
    assert decisions(error().on(tools("*")).when(burst(50, 2)), calls) == [
        None, None, None, None, None, "error", "error", None, None, None, None, None,
    ]  # fmt: skip


def test_targets_match_globs_only() -> None:
    plan = error().on(tools("issue_*")) | error().on(tools("web_search"))
    got = decisions(plan, [("issue_refund", 0), ("lookup_order", 0), ("web_search", 0), ("kb_search", 0)])
    assert got == ["error", None, "error", None]


def test_rate_is_deterministic_and_close_to_its_value() -> None:
    plan = error().on(tools("*")).when(rate(0.2))
    calls = [("lookup_order", 0.0)] * 2000
    first, second = decisions(plan, calls), decisions(plan, calls)
    assert first == second
    assert 0.17 < sum(d is not None for d in first) / len(first) < 0.23


def test_episode_scope_uses_the_episodes_own_clock() -> None:
    plan = error().on(tools("*")).when(window(0, 10)).per_episode()
    # The episode started at t=1000: its own clock reads 0..
    got = decisions(plan, [("lookup_order", 1005.0), ("lookup_order", 1015.0)], start=1000.0)
    assert got == ["error", None]


def test_presets_split_the_rate_across_kinds() -> None:
    plan = transient(0.10)
    tool_rate = sum(f.rate for f in plan.faults if f.target.tools)
    model_rate = sum(f.rate for f in plan.faults if f.target.models)
    assert tool_rate == pytest.approx(0.10) and model_rate == pytest.approx(0.10)
    assert not transient(0.0)
