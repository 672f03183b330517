"""Budgets at every scope through the whole agent: never exceeded, and a cheaper tier before a refusal."""

from __future__ import annotations

from pathlib import Path

from agentlab.analysis import load_run
from agentlab.runs import RunOptions, run_suite
from agentlab.sim.clock import DEFAULT_EPOCH

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")


def test_a_user_day_budget_is_never_exceeded_and_refuses_the_rest(tmp_path: Path) -> None:
    limit = 0.02
    result = run_suite(RunOptions(suite=SUITE, epochs=2, budget_user_day_usd=limit, out=str(tmp_path), progress=False))
    ev = load_run(result.run_dir).events
    started = ev[ev.kind == "episode_started"].set_index("episode_id")
    spent = ev[ev.kind.isin(["model_call", "tool_call_end"])].groupby("episode_id").cost_usd.sum()
    days = (DEFAULT_EPOCH.timestamp() + started.t).map(lambda ts: int(ts // 86400))
    per_user_day = spent.groupby([started.user_id.reindex(spent.index), days.reindex(spent.index)]).sum()
    assert per_user_day.max() <= limit + 1e-12  # computed from the trace, not from the ledger
    refusals = ev[(ev.kind == "budget_check") & (ev.scope == "user_day")]
    assert len(refusals) > 0 and not refusals.allowed.astype(bool).any()
    assert result.summary["status_counts"].get("budget_exhausted", 0) > 4  # more than the 4 budget scenarios


def test_a_tight_budget_downgrades_to_a_cheaper_tier_before_refusing(tmp_path: Path) -> None:
    result = run_suite(
        RunOptions(
            suite=SUITE,
            only=["multi-001"],
            budget_session_usd=0.004,
            tier="balanced",
            out=str(tmp_path),
            progress=False,
        )
    )
    ev = load_run(result.run_dir).events
    downgrades = ev[(ev.kind == "routing") & ev.reason.fillna("").str.startswith("downgraded")]
    assert list(zip(downgrades.previous, downgrades.tier, strict=True)) == [("balanced", "fast")]
    calls = ev[(ev.kind == "model_call") & ev.ok.astype(bool)]
    assert set(calls.tier) == {"balanced", "fast"}
    assert calls.cost_usd.sum() <= 0.004


def test_a_budget_that_fits_only_the_cheapest_tier_is_admitted_and_served_there(tmp_path: Path) -> None:
    """Admission asks whether the request can pay for one call at *some* tier: it may be downgraded to it."""
    result = run_suite(
        RunOptions(
            suite=SUITE,
            only=["lookup-001"],
            budget_session_usd=0.001,
            tier="balanced",
            out=str(tmp_path),
            progress=False,
        )
    )
    ev = load_run(result.run_dir).events
    assert (ev.kind == "request_admitted").sum() == 1
    calls = ev[(ev.kind == "model_call") & ev.ok.astype(bool)]
    assert len(calls) > 0 and set(calls.tier) == {"fast"}
    assert calls.cost_usd.sum() <= 0.001


def test_a_budget_below_any_tier_is_still_refused_at_admission(tmp_path: Path) -> None:
    result = run_suite(RunOptions(suite=SUITE, only=["budget-001"], out=str(tmp_path), progress=False))
    ev = load_run(result.run_dir).events
    assert (ev.kind == "request_refused").sum() == 1 and (ev.kind == "model_call").sum() == 0


def test_a_checkpoint_keeps_only_the_spend_that_can_still_be_charged(tmp_path: Path) -> None:
    # Each simulated episode is its own session and request: once it ends, its spend can never be charged
    # again, so the checkpoint (rewritten after every episode) must not carry it into every later one.
    from agentlab.components.memory import MemoryManager
    from agentlab.runs.checkpoint import RunCheckpoints

    result = run_suite(
        RunOptions(
            suite=SUITE, epochs=2, budget_session_usd=1.0, budget_user_day_usd=5.0, out=str(tmp_path), progress=False
        )
    )
    memory = MemoryManager(result.run_dir / "memory.sqlite")
    checkpoint = RunCheckpoints(memory).load()
    memory.close()
    assert checkpoint is not None and checkpoint.next_episode == result.summary["episodes"]
    kinds = {key.split(":", 1)[0] for key in checkpoint.state["budgets"]}
    assert kinds == {"day"}
    users = set(load_run(result.run_dir).events.query("kind == 'episode_started'").user_id)
    assert len(checkpoint.state["budgets"]) <= len(users)  # one simulated day: a key per user at most
