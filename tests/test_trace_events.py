"""The trace file's contract: one JSON line per event, ``kind`` first, the event's own fields, then the stamps."""

from __future__ import annotations

from pathlib import Path

import orjson

from agentlab.sim.clock import Clock
from agentlab.sim.loop import VirtualTimeLoop
from agentlab.trace import events as ev
from agentlab.trace.recorder import EpisodeTrace, Recorder

STAMPS = ["seq", "t", "run_id", "episode_id"]


def event_classes() -> list[type[ev.Event]]:
    return [c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.Event) and c is not ev.Event]


def test_every_event_has_its_own_kind() -> None:
    kinds = [c.__struct_config__.tag for c in event_classes()]
    assert len(kinds) == len(set(kinds)) == 28
    assert "event" not in kinds and all(isinstance(k, str) and k for k in kinds)


def test_a_line_reads_kind_then_the_event_fields_then_the_stamps(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    loop = VirtualTimeLoop(start=12.5)
    recorder = Recorder("run-x", path)
    trace = EpisodeTrace(recorder, "e1", Clock(loop))
    trace.emit(ev.ToolCallEnded(call_id="c1", tool="lookup_order", attempt=2, ok=False, latency_s=0.25, error="x"))
    trace.emit(ev.RunResumed(next_episode=3))
    recorder.close()
    loop.close()
    first, second = (orjson.loads(line) for line in path.read_bytes().splitlines())
    own = [f for f in ev.ToolCallEnded.__struct_fields__ if f not in STAMPS]
    assert list(first) == ["kind", *own, *STAMPS]
    assert first["kind"] == "tool_call_end" and first["attempt"] == 2 and first["error"] == "x"
    assert [first[s] for s in STAMPS] == [1, 12.5, "run-x", "e1"]
    assert second == {
        "kind": "run_resumed",
        "next_episode": 3,
        "in_flight": None,  # no episode was interrupted (see RunResumed)
        "seq": 2,
        "t": 12.5,
        "run_id": "run-x",
        "episode_id": "e1",
    }


def test_the_recorder_writes_everything_across_its_write_buffer(tmp_path: Path) -> None:
    """More than one 64 KiB buffer's worth of lines: none lost or cut at a buffer boundary, in order."""
    path = tmp_path / "events.jsonl"
    loop = VirtualTimeLoop()
    recorder = Recorder("run-x", path)
    trace = EpisodeTrace(recorder, "e1", Clock(loop))
    for i in range(3000):
        trace.emit(ev.RecoveryAction(action="retry", reason=f"attempt {i} " + "x" * 20))
    offset, seq = recorder.position()
    recorder.close()
    loop.close()
    lines = path.read_bytes().splitlines()
    assert offset == path.stat().st_size > 1 << 16 and seq == 3000
    assert [orjson.loads(line)["seq"] for line in lines] == list(range(1, 3001))
