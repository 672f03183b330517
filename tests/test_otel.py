"""OpenTelemetry GenAI spans from the trace: the mapping, and a real OTLP receiver reading them back.

The receiver is Arize Phoenix (``arize-phoenix``): a real OTLP/HTTP server started here on a loopback
port, whose REST API gives the stored spans back. It cannot share agentlab's environment (it pins
``anthropic<2``), so ``.ci/run`` installs it in ``.venv-phoenix``; without it these tests skip locally
and fail in CI. The spans read back are
compared with the trace they were built from: names, parent/child structure, attributes, times.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from agentlab.cli import main
from agentlab.observe.spans import base_ns, episode_spans, span_id_for, trace_id_for
from agentlab.runs import RunOptions, run_suite

SUITE = "fixtures/suites/support.yaml"
FAULTS = "fixtures/faults/transient-10.yaml"
ONLY = ["refund-cond-003", "multi-005", "inject-003", "lookup-006"]  # faulted model and tool calls (seed 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(run_dir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (run_dir / "events.jsonl").read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("otel") / "run"
    run_suite(RunOptions(suite=SUITE, faults=FAULTS, only=ONLY, out=str(out), progress=False))
    return out


def test_one_trace_per_episode_one_span_per_model_and_tool_attempt(faulted_run: Path) -> None:
    events = _events(faulted_run)
    episodes = episode_spans(events)
    started = [e for e in events if e["kind"] == "episode_started"]
    assert [ep.episode_id for ep in episodes] == [e["episode_id"] for e in started]
    base = base_ns()
    for ep in episodes:
        mine = [e for e in events if e["episode_id"] == ep.episode_id]
        calls = [e for e in mine if e["kind"] == "model_call"]
        tools = [e for e in mine if e["kind"] == "tool_call_end"]
        root, *children = ep.spans
        assert root.name == "invoke_agent agentlab" and root.parent is None
        assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert root.start_ns == base + round(mine[0]["t"] * 1e9)
        assert root.end_ns == base + round(max(e["t"] for e in mine) * 1e9)
        assert all(c.parent == 0 for c in children)
        chats = [c for c in children if c.name.startswith("chat ")]
        assert len(chats) == len(calls)
        assert len([c for c in children if c.name.startswith("execute_tool ")]) == len(tools)
        for span, call in zip(chats, calls, strict=True):
            assert span.name == f"chat {call['model']}"
            assert span.end_ns == base + round(call["t"] * 1e9)
            assert span.start_ns == base + round((call["t"] - call["latency_s"]) * 1e9)
            assert span.attributes["agentlab.attempt"] == call["attempt"]
            assert span.attributes["agentlab.tier"] == call["tier"]
            if call["ok"]:
                assert span.attributes["gen_ai.usage.input_tokens"] == call["input_tokens"]
                assert span.attributes["gen_ai.usage.output_tokens"] == call["output_tokens"]
                assert "error.type" not in span.attributes and span.error is None
            else:
                assert span.error is not None
        assert root.attributes["gen_ai.usage.input_tokens"] == sum(c["input_tokens"] for c in calls)


def test_failed_model_calls_carry_the_http_status_and_the_injected_fault(faulted_run: Path) -> None:
    spans = [s for ep in episode_spans(_events(faulted_run)) for s in ep.spans]
    failed = {s.attributes["error.type"]: s for s in spans if s.name.startswith("chat ") and s.error}
    # transient-10 injects a 429, a 502 and a 529 into these scenarios (seed 0); error.type is the status.
    assert {"429", "502", "529"} <= set(failed)
    assert failed["429"].attributes["agentlab.fault.kind"] == "rate_limit"
    assert failed["502"].attributes["agentlab.fault.kind"] == "server_error"
    assert failed["529"].attributes["agentlab.fault.kind"] == "overloaded"
    tool_faults = [s for s in spans if s.name.startswith("execute_tool ") and "agentlab.fault.kind" in s.attributes]
    assert tool_faults and all(s.error for s in tool_faults)


def test_ids_and_times_are_a_function_of_the_trace(faulted_run: Path) -> None:
    events = _events(faulted_run)
    a, b = episode_spans(events), episode_spans(events, base=base_ns() + 5_000_000_000)
    assert [ep.trace_id for ep in a] == [ep.trace_id for ep in b]
    assert [ep.span_ids for ep in a] == [ep.span_ids for ep in b]
    assert all(
        sb.start_ns - sa.start_ns == 5_000_000_000
        for ea, eb in zip(a, b, strict=True)
        for sa, sb in zip(ea.spans, eb.spans, strict=True)
    )


# --- a real receiver ----------------------------------------------------------------------------


def _phoenix_executable() -> str:
    """Phoenix lives in its own environment: it pins anthropic<2, agentlab needs anthropic>=2 (.ci/run makes it)."""
    root = Path(__file__).resolve().parents[1]
    exe = os.environ.get("AGENTLAB_PHOENIX") or str(root / ".venv-phoenix" / "bin" / "phoenix")
    if Path(exe).exists():
        return exe
    reason = (
        f"no Phoenix OTLP receiver at {exe}: python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install "
        "arize-phoenix==20.26.1 (.ci/run does this), or set AGENTLAB_PHOENIX to a phoenix executable"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = _phoenix_executable()
    port = _free_port()
    workdir = tmp_path_factory.mktemp("phoenix")
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (workdir / "phoenix.log").open("wb")
    proc = subprocess.Popen([exe, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # wall-clock wait for a real server to start (setup, not a timed test)
            if proc.poll() is not None:
                pytest.fail(f"phoenix serve exited: {(workdir / 'phoenix.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("phoenix serve did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _by_id(spans: list[dict]) -> dict[str, dict]:
    return {s["context"]["span_id"]: s for s in spans}


def _iso_ns(value: str) -> int:
    from datetime import datetime

    when = datetime.fromisoformat(value)
    return base_ns(when)


def test_the_receiver_stores_the_traces_spans(faulted_run: Path, phoenix: str, capsys) -> None:
    events = _events(faulted_run)
    run_id = events[0]["run_id"]
    expected = episode_spans(events)
    n = sum(len(ep.spans) for ep in expected)
    assert main(["export", "otel", str(faulted_run), "--endpoint", phoenix]) == 0
    assert orjson.loads(capsys.readouterr().out) == {
        "run_id": run_id,
        "endpoint": f"{phoenix}/v1/traces",
        "traces": len(expected),
        "spans": n,
    }
    stored = _read_back_traces(phoenix, {f"{ep.trace_id:032x}" for ep in expected}, n)
    assert len(stored) == n
    by_id = _by_id(stored)
    for ep in expected:
        for index, spec in enumerate(ep.spans):
            got = by_id[f"{span_id_for(run_id, ep.episode_id, index):016x}"]
            assert got["context"]["trace_id"] == f"{trace_id_for(run_id, ep.episode_id):032x}"
            assert got["name"] == spec.name
            want_parent = None if spec.parent is None else f"{ep.span_ids[spec.parent]:016x}"
            assert got["parent_id"] == want_parent
            assert _iso_ns(got["start_time"]) == spec.start_ns // 1000 * 1000  # the receiver keeps microseconds
            assert _iso_ns(got["end_time"]) == spec.end_ns // 1000 * 1000
            assert got["status_code"] == ("ERROR" if spec.error else "UNSET")
            for key, value in spec.attributes.items():
                assert got["attributes"][key] == (list(value) if isinstance(value, tuple) else value), key
    roots = [s for s in stored if s["parent_id"] is None]
    assert sorted(r["attributes"]["gen_ai.conversation.id"] for r in roots) == sorted(ep.episode_id for ep in expected)


def _read_back_traces(url: str, trace_ids: set[str], expected: int) -> list[dict]:
    spans: list[dict] = []
    for _ in range(120):
        spans, cursor = [], None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(f"{url}/v1/projects/default/spans", params=params, timeout=10).json()
            spans += [s for s in page["data"] if s["context"]["trace_id"] in trace_ids]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if len(spans) >= expected:
            return spans
        time.sleep(0.5)
    return spans


def test_run_otel_exports_each_episode_live(tmp_path: Path, phoenix: str) -> None:
    out = tmp_path / "live"
    code = main(
        [
            "run", SUITE, "--only", "lookup-001", "--only", "refund-cond-001", "--seed", "7",
            "--out", str(out), "--quiet", "--otel", phoenix, "--otel-base-time", "2030-05-01T12:00:00+00:00",
        ]
    )  # fmt: skip
    assert code == 0
    events = _events(out)
    from datetime import UTC, datetime

    expected = episode_spans(events, base=base_ns(datetime(2030, 5, 1, 12, tzinfo=UTC)))
    n = sum(len(ep.spans) for ep in expected)
    stored = _read_back_traces(phoenix, {f"{ep.trace_id:032x}" for ep in expected}, n)
    assert len(stored) == n
    by_id = _by_id(stored)
    for ep in expected:
        for index, spec in enumerate(ep.spans):
            got = by_id[f"{ep.span_ids[index]:016x}"]
            assert (got["name"], _iso_ns(got["start_time"])) == (spec.name, spec.start_ns // 1000 * 1000)


def test_a_live_run_writes_the_same_trace_with_or_without_otel(tmp_path: Path, phoenix: str) -> None:
    args = ["run", SUITE, "--only", "multi-005", "--faults", FAULTS, "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--otel", phoenix]) == 0
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == (tmp_path / "b" / "events.jsonl").read_bytes()


# --- bad input ----------------------------------------------------------------------------------


def test_bad_export_input_is_one_line(tmp_path: Path, faulted_run: Path, capsys) -> None:
    assert main(["export", "otel", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"agentlab: error: {tmp_path}: not an agentlab run directory (no run.json and events.jsonl)"
    )
    assert main(["export", "otel", str(faulted_run), "--endpoint", "localhost:4318"]) == 2
    assert "--endpoint: not an http(s) URL" in capsys.readouterr().err
    assert main(["export", "otel", str(faulted_run), "--base-time", "yesterday"]) == 2
    assert "--base-time: not an ISO 8601 time" in capsys.readouterr().err
    closed = f"http://127.0.0.1:{_free_port()}"
    assert main(["export", "otel", str(faulted_run), "--endpoint", closed]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1]
        == f"agentlab: error: {closed}/v1/traces: export: the OTLP receiver refused the spans or could not be reached"
    )


def test_serve_exports_each_request_as_a_trace(tmp_path: Path, phoenix: str) -> None:
    from agentlab.serve.harness import ServerProcess

    data = tmp_path / "srv"
    with ServerProcess(SUITE, data, "--time-scale", "50", "--otel", phoenix) as server:
        r = httpx.post(f"{server.url}/v1/requests", params={"wait": 60}, json={"scenario_id": "refund-cond-001"})
        assert r.json()["state"] == "done"
        request_id = r.json()["id"]
    events = _events(data)  # the server has stopped: its spans were flushed on the way out
    assert {e["episode_id"] for e in events} == {request_id}
    (expected,) = [ep for ep in episode_spans(events) if ep.episode_id == request_id]
    stored = _read_back_traces(phoenix, {f"{expected.trace_id:032x}"}, len(expected.spans))
    assert sorted(s["name"] for s in stored) == sorted(s.name for s in expected.spans)
    root = next(s for s in stored if s["parent_id"] is None)
    assert root["attributes"]["gen_ai.conversation.id"] == request_id
    # The served request runs on the real-time loop, so whether it succeeded can vary; the span must say what the
    # trace says.
    (graded,) = [e for e in events if e["kind"] == "episode_graded"]
    assert root["attributes"]["agentlab.success"] is graded["success"]
