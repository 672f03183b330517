"""A run is a pure function of (suite, seed, tiers, strategy, code version): byte-identical traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.runs import RunOptions, run_suite

SUITE = Path(__file__).resolve().parents[1] / "fixtures" / "suites" / "support.yaml"


@pytest.mark.parametrize("strategy", ["react", "plan"])
def test_same_seed_gives_byte_identical_events(tmp_path: Path, strategy: str) -> None:
    paths = []
    for name in ("a", "b"):
        run_suite(
            RunOptions(suite=str(SUITE), strategy=strategy, seed=1, epochs=2, out=str(tmp_path / name), progress=False)
        )
        paths.append(tmp_path / name / "events.jsonl")
    first, second = (p.read_bytes() for p in paths)
    assert len(first) > 10_000
    assert first == second


def test_different_seed_gives_a_different_run(tmp_path: Path) -> None:
    for seed in (1, 2):
        run_suite(RunOptions(suite=str(SUITE), seed=seed, out=str(tmp_path / str(seed)), progress=False))
    assert (tmp_path / "1" / "events.jsonl").read_bytes() != (tmp_path / "2" / "events.jsonl").read_bytes()


def test_episode_results_do_not_depend_on_which_other_scenarios_run(tmp_path: Path) -> None:
    """Each episode draws from its own seeded RNG stream, so --only reproduces an episode exactly."""
    full = run_suite(RunOptions(suite=str(SUITE), seed=4, out=str(tmp_path / "full"), progress=False))
    only = run_suite(
        RunOptions(suite=str(SUITE), seed=4, only=["multi-003"], out=str(tmp_path / "one"), progress=False)
    )
    from agentlab.analysis import load_run

    def kinds(run_dir: Path) -> list[tuple]:
        ev = load_run(run_dir).events
        ep = ev[ev.episode_id == "multi-003#0"].sort_values("seq")
        return list(zip(ep.kind, ep.tool.fillna(""), ep.ok.fillna(""), strict=True))

    assert kinds(full.run_dir) == kinds(only.run_dir)


def test_the_run_id_changes_with_every_option_that_changes_the_run(tmp_path: Path) -> None:
    """The id identifies a run by its inputs; an option forgotten in the hash would make two different runs
    share one id. Options that cannot change the run (output dir, progress bar) must not change it."""
    from agentlab.faults.presets import transient
    from agentlab.runs.planning import run_id_for
    from agentlab.scenarios import load_suite

    suite = load_suite(SUITE)
    tiers = (SUITE.parents[1] / "tiers.yaml").read_bytes()
    policy = SUITE.parents[1] / "policies" / "support.yaml"

    def rid(**options) -> str:
        opts = RunOptions(suite=str(SUITE), **options)
        plan = opts.faults if not isinstance(opts.faults, str) else None
        return run_id_for(suite, tiers, opts, opts.tier or "balanced", plan)

    base = rid()
    assert rid(out=str(tmp_path), progress=False) == base
    variants = [
        {"seed": 1},
        {"epochs": 2},
        {"strategy": "plan"},
        {"faults": transient(0.1)},
        {"resilience": False},
        {"routing": "cascade"},
        {"guardrails": False},
        {"gate": False},
        {"policy": str(policy)},
        {"approver": "deny"},
        {"budget_user_day_usd": 1.0},
        {"only": ["lookup-001"]},
        {"llm": "sim-openai"},
    ]
    ids = [rid(**v) for v in variants]
    assert base not in ids and len(set(ids)) == len(ids)


def test_a_replayed_runs_id_follows_its_cassettes_content_not_their_path(tmp_path: Path) -> None:
    """--resume compares ids: swapping the recordings under a replayed run must make it a different run."""
    import shutil

    from agentlab.runs.planning import run_id_for
    from agentlab.scenarios import load_suite

    suite = load_suite(SUITE)
    tiers = (SUITE.parents[1] / "tiers.yaml").read_bytes()
    shipped = SUITE.parents[2] / "cassettes"
    copy = tmp_path / "copy"
    shutil.copytree(shipped / "openai", copy / "openai")

    def rid(cassettes: Path) -> str:
        opts = RunOptions(suite=str(SUITE), llm="replay", provider="openai", cassettes=str(cassettes))
        return run_id_for(suite, tiers, opts, "balanced", None)

    assert rid(copy) == rid(shipped)  # the same recordings elsewhere: the same run
    episode = sorted((copy / "openai" / suite.name).glob("*.yaml"))[0]
    episode.write_text(episode.read_text().replace("chatcmpl", "chatcmpX", 1))
    assert rid(copy) != rid(shipped)
