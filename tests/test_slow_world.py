"""Virtual time: over an hour of slow tools, timeouts and retries runs in a blink of wall time."""

from __future__ import annotations

from pathlib import Path

from agentlab.analysis import load_run
from agentlab.runs import RunOptions, run_suite

SLOW = Path(__file__).resolve().parents[1] / "fixtures" / "suites" / "support-slow.yaml"


def test_an_hour_of_agent_time_is_simulated(tmp_path: Path) -> None:
    result = run_suite(RunOptions(suite=str(SLOW), seed=1, epochs=8, out=str(tmp_path), progress=False))
    summary = result.summary
    assert summary["sim_seconds"] >= 3600
    events = load_run(tmp_path).events
    # The world really was slow: tools timed out on the virtual clock and were retried after back-off.
    ends = events[events.kind == "tool_call_end"]
    timeouts = ends[ends.error_type == "ToolTimeout"]
    assert len(timeouts) > 10
    assert (timeouts.latency_s >= 10.0 - 1e-9).all()
    retries = events[events.kind == "retry"]
    assert len(retries) >= len(timeouts) // 2
    assert summary["suite"] == "support-slow"


def test_extends_inherits_the_scenarios_and_overrides_the_environment() -> None:
    from agentlab.scenarios import load_suite

    base = load_suite(SLOW.parent / "support.yaml")
    slow = load_suite(SLOW)
    assert [s.id for s in slow.scenarios] == [s.id for s in base.scenarios]
    assert slow.environment.default_latency.median_s == 10.0
    assert base.environment.default_latency.median_s < 1.0
    assert slow.digest != base.digest
