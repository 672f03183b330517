"""The episode view and the notebook viewer show what the trace holds for one episode, and nothing of another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlab.analysis import load_run
from agentlab.analysis.episode import episode_html, episode_view
from agentlab.faults.presets import transient
from agentlab.notebook.viewer import RunViewer, show_episode
from agentlab.runs import RunOptions, run_suite

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("viewer") / "run"
    only = ["multi-001", "multi-003", "multi-004", "lookup-001"]
    run_suite(RunOptions(suite=SUITE, only=only, epochs=2, seed=1, faults=transient(0.4), out=str(out), progress=False))
    return out


def raw(run_dir: Path, episode: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("episode_id") == episode]


def test_the_view_holds_the_episodes_events(run_dir: Path) -> None:
    run = load_run(run_dir)
    for episode in run.episodes["episode_id"]:
        ev = raw(run_dir, episode)
        view = episode_view(run, episode)
        assert len(view.timeline) == len(ev)
        assert view.request == next(e["request"] for e in ev if e["kind"] == "episode_started")
        assert view.answer == next(e["text"] for e in ev if e["kind"] == "final_response")
        ends = [e for e in ev if e["kind"] == "tool_call_end"]
        assert list(view.tool_calls["tool"]) == [e["tool"] for e in ends]
        assert list(view.tool_calls["ok"]) == [e["ok"] for e in ends]
        assert len(view.faults) == sum(e["kind"] == "fault_injected" for e in ev)
        assert len(view.breakers) == sum(e["kind"] == "breaker_transition" for e in ev)
        assert len(view.model_calls) == sum(e["kind"] == "model_call" for e in ev)
    assert sum(len(episode_view(run, ep).faults) for ep in run.episodes["episode_id"]) > 0  # faults were shown


def test_args_of_each_call_are_shown(run_dir: Path) -> None:
    run = load_run(run_dir)
    episode = run.episodes["episode_id"].iloc[0]
    page = episode_html(episode_view(run, episode))
    for e in raw(run_dir, episode):
        if e["kind"] == "tool_call_start":
            first = next(iter(e["args"].items()))
            assert f"{first[0]}=&#x27;{first[1]}&#x27;" in page or f"{first[0]}={first[1]!r}" in page


def test_viewer_dropdown_switches_episode(run_dir: Path) -> None:
    run = load_run(run_dir)
    viewer = RunViewer(run)
    failed = set(run.episodes.loc[~run.episodes["success"], "episode_id"])
    labels = [label for label, _ in viewer.dropdown.options]
    assert all(label.startswith("✗") for label in labels[: len(failed)])  # failures first
    for episode in run.episodes["episode_id"]:
        viewer.select(episode)
        assert f"<h4>{episode} ·" in viewer.html.value
        assert viewer.html.value.endswith(episode_html(episode_view(run, episode)))
    assert "<h4>lookup-001#1 ·" in show_episode(run_dir, "lookup-001#1").data
    with pytest.raises(KeyError):
        episode_view(run, "no-such#0")
