"""The default suite end to end: both strategies, every summary figure re-derived from the trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.analysis import load_run
from agentlab.runs import RunOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "fixtures" / "suites" / "support.yaml"

SUMMARY_KEYS = {
    "suite",
    "seed",
    "episodes",
    "epochs",
    "success_rate",
    "pass_hat_k",
    "llm_calls",
    "llm_calls_by_tier",
    "tool_calls",
    "tool_failures",
    "total_cost_usd",
    "cost_by_tier",
    "cost_by_tool",
    "sim_seconds",
    "wall_seconds",
}


@pytest.fixture(scope="module", params=["react", "plan"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp(f"run-{request.param}")
    result = run_suite(
        RunOptions(suite=str(SUITE), strategy=request.param, seed=3, epochs=2, out=str(out), progress=False)
    )
    return result, load_run(out)


def test_run_directory_is_complete(run) -> None:
    result, loaded = run
    names = {p.name for p in result.run_dir.iterdir()}
    assert {"run.json", "events.jsonl", "summary.json", "memory.sqlite"} <= names
    assert "events.jsonl.partial" not in names
    assert set(result.summary) >= SUMMARY_KEYS
    assert loaded.summary == result.summary


def test_every_summary_figure_comes_from_the_events(run) -> None:
    result, loaded = run
    s, ev, eps = result.summary, loaded.events, loaded.episodes
    model = ev[ev.kind == "model_call"]
    tools = ev[ev.kind == "tool_call_end"]
    assert s["episodes"] == len(eps) == 2 * 44
    assert s["success_rate"] == pytest.approx(eps.success.mean(), abs=1e-6)
    assert s["llm_calls"] == len(model)
    assert sum(s["llm_calls_by_tier"].values()) == len(model)
    assert s["tool_calls"] == len(tools)
    assert s["tool_failures"] == int((~tools.ok.astype(bool)).sum())
    failed = tools[~tools.ok.astype(bool)].episode_id.value_counts()
    per_episode = eps.set_index("episode_id").tool_failures
    assert per_episode.sum() == failed.sum() > 0 and all(per_episode[e] == n for e, n in failed.items())
    assert s["total_cost_usd"] == pytest.approx(model.cost_usd.sum() + tools.cost_usd.sum(), abs=1e-5)
    assert sum(s["cost_by_tier"].values()) == pytest.approx(model.cost_usd.sum(), abs=1e-5)
    assert s["sim_seconds"] == pytest.approx(ev.t.max() - ev.t.min(), abs=1e-5)
    assert s["pass_hat_k"]["1"] == pytest.approx(s["success_rate"], abs=1e-6)
    assert s["pass_hat_k"]["2"] <= s["pass_hat_k"]["1"]


def test_each_episode_runs_admit_execute_respond(run) -> None:
    _, loaded = run
    ev = loaded.events
    for _, episode in ev.groupby("episode_id"):
        kinds = list(episode.sort_values("seq").kind)
        assert kinds[0] == "episode_started"
        assert kinds[-2:] == ["final_response", "episode_graded"]
        if "request_admitted" in kinds:
            admitted = kinds.index("request_admitted")
            assert kinds.index("memory_loaded") > admitted
            first_model = kinds.index("model_call") if "model_call" in kinds else len(kinds)
            assert first_model > kinds.index("memory_loaded")
        else:
            assert "request_refused" in kinds and "model_call" not in kinds


def test_refusals_and_budget_scenarios_leave_the_world_untouched(run) -> None:
    _, loaded = run
    eps = loaded.episodes
    budget = eps[eps.category == "budget"]
    assert len(budget) > 0 and (budget.status == "budget_exhausted").all() and budget.success.all()
    denied = eps[eps.category == "permission_denied"]
    assert denied.world_ok.all(), "a permission-denied scenario changed the world"


def test_tool_calls_never_run_without_permission(run) -> None:
    _, loaded = run
    ev = loaded.events
    checks = ev[ev.kind == "permission_check"].set_index(["episode_id", "call_id"])
    starts = ev[ev.kind == "tool_call_start"]
    for (ep, call_id), _ in starts.groupby(["episode_id", "call_id"]):
        decisions = checks.loc[(ep, call_id), "decision"]
        decisions = [decisions] if isinstance(decisions, str) else list(decisions)
        assert decisions[-1] == "allow"


def test_powerful_tier_beats_fast_tier(tmp_path: Path) -> None:
    rates = {}
    for tier in ("fast", "powerful"):
        result = run_suite(
            RunOptions(suite=str(SUITE), tier=tier, seed=1, epochs=3, out=str(tmp_path / tier), progress=False)
        )
        rates[tier] = result.summary["success_rate"]
    assert rates["powerful"] >= rates["fast"] + 0.08, rates


def test_simulated_model_mistakes_are_recovered_from(tmp_path: Path) -> None:
    """The fast tier makes every kind of mistake; each reaches the agent as a typed, recoverable event."""
    result = run_suite(RunOptions(suite=str(SUITE), tier="fast", seed=5, epochs=3, out=str(tmp_path), progress=False))
    ev = load_run(result.run_dir).events
    rejected = ev[ev.kind == "step_rejected"]
    assert {"InvalidArguments"} <= set(rejected.error_type), "malformed JSON / missing arguments never surfaced"
    assert (ev[ev.kind == "recovery"].action == "correct").any(), "no hallucinated success was caught"
    # Rejected steps do not end the episode: the model is told and carries on.
    after = ev[ev.episode_id.isin(set(rejected.episode_id)) & (ev.kind == "model_call")]
    assert len(after) > len(set(rejected.episode_id))
