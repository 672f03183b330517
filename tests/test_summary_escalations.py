"""The summary's escalations count climbs to a more capable tier, not a budget's downgrades."""

from __future__ import annotations

from pathlib import Path

from agentlab.analysis import load_run
from agentlab.runs import RunOptions, run_suite

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")
ORDER = ["fast", "balanced", "powerful"]


def test_escalations_exclude_budget_downgrades(tmp_path: Path) -> None:
    opts = RunOptions(suite=SUITE, seed=1, epochs=3, routing="cascade", budget_session_usd=0.008, out=str(tmp_path),
                      progress=False)  # fmt: skip
    result = run_suite(opts)
    routing = load_run(result.run_dir).events.query("kind == 'routing' and previous.notna()")
    up = (routing.tier.map(ORDER.index) > routing.previous.map(ORDER.index)).sum()
    down = (routing.tier.map(ORDER.index) < routing.previous.map(ORDER.index)).sum()
    assert up > 0 and down > 0  # this budget makes the cascade both climb and fall back
    assert result.summary["escalations"] == up
