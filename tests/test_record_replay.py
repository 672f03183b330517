"""Record and replay through the real SDKs: shipped cassettes, round trips, the written format, the CLI.

The shipped cassettes (cassettes/<provider>/support/) were recorded from the simulated endpoint;
these tests replay them end to end, record new ones and replay those, and check what a recording
contains (stock vcrpy YAML, no credentials) and what a bad run says (one line, exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx2
import pytest
import vcr
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from agentlab.cli import main
from agentlab.errors import ModelConnectionError, ReplayMismatch
from agentlab.llm.replay import (
    SENSITIVE_HEADERS,
    CassetteLibrary,
    Replayer,
    episode_file,
    load_cassette,
    read_metadata,
)
from agentlab.llm.stack import LiveTransport, build_sdk_stack, sdk_model
from agentlab.llm.tiers import load_tiers
from agentlab.llm.types import Message, ModelRequest, ModelResponse, Usage
from agentlab.llm.wire import SimulatedEndpoint
from agentlab.sim.loop import run_virtual

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures" / "suites" / "support.yaml")
SHIPPED = ROOT / "cassettes"
TIERS = load_tiers(ROOT / "fixtures" / "tiers.yaml")
PROVIDERS = ["openai", "anthropic"]
SUBSET = ["lookup-002", "refund-cond-002", "refund-cond-007", "multi-001", "inject-002", "perm-003", "budget-001"]


def run(coro: Any) -> Any:
    return run_virtual(coro, allow_blocking=True)  # the SDKs detect the platform in a worker thread


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").open()]


def outcomes(run_dir: Path) -> dict[str, tuple[bool, str]]:
    return {e["episode_id"]: (e["success"], e["status"]) for e in events(run_dir) if e["kind"] == "episode_graded"}


# --- (a) the shipped cassettes replay the default suite, byte for byte --------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_default_suite_replays_from_the_shipped_cassettes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    args = ["run", SUITE, "--llm", "replay", "--provider", provider, "--cassettes", str(SHIPPED), "--quiet"]
    code, _, err = cli(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert cli(capsys, *args, "--out", str(tmp_path / "b"))[0] == 0
    first, second = (tmp_path / "a" / "events.jsonl").read_bytes(), (tmp_path / "b" / "events.jsonl").read_bytes()
    assert first == second
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["episodes"] == 44 and summary["llm"] == "replay" and summary["provider"] == provider
    calls = [e for e in events(tmp_path / "a") if e["kind"] == "model_call"]
    assert calls and all(e["http_attempts"] == 1 and e["model"] == "sim-balanced" for e in calls)
    # The shipped cassettes were recorded (seed 0, default tier) from the run the simulator gives.
    sim_dir = tmp_path / "sim"
    assert cli(capsys, "run", SUITE, "--quiet", "--out", str(sim_dir))[0] == 0
    assert outcomes(tmp_path / "a") == outcomes(sim_dir)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_shipped_cassettes_say_they_came_from_the_simulated_endpoint(provider: str) -> None:
    files = sorted((SHIPPED / provider / "support").glob("*.yaml"))
    assert len(files) == 40  # 44 scenarios; the 4 budget refusals never call a model
    for path in files:
        metadata = read_metadata(path)
        assert metadata["recorded_from"] == "agentlab-sim-endpoint" and metadata["provider"] == provider
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*.yaml"))
    assert total < 3_000_000


# --- (b) round trip: record against the simulated endpoint, replay, same outcomes ---------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_record_then_replay_gives_the_same_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    only = [a for s in SUBSET for a in ("--only", s)]
    cassettes = tmp_path / "cassettes"
    recorded, replayed = tmp_path / "recorded", tmp_path / "replayed"
    code, _, err = cli(
        capsys, "run", SUITE, "--llm", f"sim-{provider}", "--record", str(cassettes), "--out", str(recorded), *only
    )
    assert code == 0, err
    written = sorted(p.name for p in (cassettes / provider / "support").glob("*.yaml"))
    assert written == sorted(episode_file(f"{s}#0") for s in SUBSET if not s.startswith("budget"))
    code, _, err = cli(
        capsys, "run", SUITE, "--llm", "replay", "--cassettes", str(cassettes), "--out", str(replayed), *only
    )
    assert code == 0, err
    assert outcomes(replayed) == outcomes(recorded) and len(outcomes(recorded)) == len(SUBSET)
    # More than outcomes: the replayed trace is the recorded one (recorded server times are slept again).
    for a, b in zip(events(recorded), events(replayed), strict=True):
        a.pop("run_id"), b.pop("run_id")
        for key in ("t", "latency_s"):
            if key in a:
                assert b[key] == pytest.approx(a[key], abs=1e-6)
                a.pop(key), b.pop(key)
        assert a == b


def test_record_missing_replays_what_it_has_and_records_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassettes = tmp_path / "c"
    base = ["run", SUITE, "--llm", "sim-openai", "--record", str(cassettes), "--quiet"]
    assert cli(capsys, *base, "--only", "lookup-002", "--out", str(tmp_path / "one"))[0] == 0
    path = cassettes / "openai" / "support" / episode_file("lookup-002#0")
    before = path.read_bytes()
    code, _, err = cli(
        capsys, *base, "--record-mode", "record-missing", "--only", "lookup-002", "--only", "multi-001",
        "--out", str(tmp_path / "two"),
    )  # fmt: skip
    assert code == 0, err
    assert path.read_bytes() == before  # fully replayed: nothing new to write
    assert (cassettes / "openai" / "support" / episode_file("multi-001#0")).is_file()


# --- (f) what a recording contains --------------------------------------------------------------------


class Echo(httpx2.AsyncBaseTransport):
    """Stands in for a provider: answers with a session cookie and an organisation header."""

    def __init__(self) -> None:
        self.seen: list[httpx2.Request] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(request)
        endpoint = SimulatedEndpoint(Fixed(), TIERS)
        response = await endpoint.handle_async_request(request)
        body = await response.aread()
        headers = [*response.headers.multi_items(), ("set-cookie", "session=secret"), ("openai-organization", "org-1")]
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request)


class Fixed:
    async def complete(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(model="sim-balanced", text="hi", usage=Usage(input_tokens=2, output_tokens=1))


REQUEST = ModelRequest(
    tier="balanced",
    model="sim-balanced",
    messages=(Message(role="user", content="hello"),),
    metadata={"scenario_id": "s", "episode_id": "s#0"},
)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_recording_strips_credentials_and_loads_with_vcrpy_and_load_cassette(tmp_path: Path, provider: str) -> None:
    path = tmp_path / "rec.yaml"
    replayer = Replayer([path], mode="record", inner=Echo(), metadata={"recorded_from": "agentlab-sim-endpoint"})
    model = sdk_model(provider, replayer, api_key="sk-very-secret")  # type: ignore[arg-type]
    assert run(model.complete(REQUEST)).text == "hi"
    assert replayer.save() == path and not list(tmp_path.glob(".*.tmp"))  # written by rename, nothing left over
    text = path.read_text()
    assert "sk-very-secret" not in text and "session=secret" not in text and "org-1" not in text
    # vcrpy reads it, as a cassette object and through its own public API.
    requests, responses, metadata = deserialize(text, yamlserializer)
    assert metadata == {"recorded_from": "agentlab-sim-endpoint"} and len(requests) == 1
    assert not {h.lower() for h in requests[0].headers} & SENSITIVE_HEADERS
    assert not {h.lower() for h in responses[0]["headers"]} & SENSITIVE_HEADERS
    with vcr.use_cassette(str(path), record_mode="none") as cassette:
        assert len(cassette) == 1
    # agentlab reads it too, and replays it through the SDK without the inner transport.
    [interaction] = load_cassette(path)
    assert interaction.response.status == 200 and interaction.request.json()["model"] == "sim-balanced"
    assert run(sdk_model(provider, Replayer([path])).complete(REQUEST)).text == "hi"  # type: ignore[arg-type]


def test_record_mode_needs_one_path_and_an_inner_transport(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one cassette path"):
        Replayer([tmp_path / "a.yaml"], mode="record")
    with pytest.raises(ValueError, match="unknown mode"):
        Replayer([tmp_path / "a.yaml"], mode="recrod")  # type: ignore[arg-type]


def test_live_transport_never_sends_agentlab_headers(tmp_path: Path) -> None:
    network = Echo()
    stack_model = sdk_model("openai", LiveTransport(network), metadata_headers=True)
    run(stack_model.complete(REQUEST))
    assert "x-agentlab-episode" not in network.seen[0].headers and "x-agentlab-scenario" not in network.seen[0].headers


def test_live_recording_files_per_episode_and_says_live(tmp_path: Path) -> None:
    """A live run records into the same layout; the network here is a stand-in (there is none)."""
    network = Echo()
    stack = build_sdk_stack("openai", tiers=TIERS, suite="support", record=tmp_path, api_key="sk-live")
    stack.adapter.client._client._transport.inner.inner = network  # type: ignore[attr-defined]

    async def go() -> None:
        await stack.model.complete(REQUEST)
        stack.end_episode("s#0")
        await stack.aclose()

    run(go())
    path = tmp_path / "openai" / "support" / "s_0.yaml"
    assert read_metadata(path)["recorded_from"] == "live" and read_metadata(path)["episode_id"] == "s#0"
    assert "sk-live" not in path.read_text()


# --- misses, missing keys: one line, exit 2 ------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_replay_miss_ends_the_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    cassettes = tmp_path / "c"
    shutil.copytree(SHIPPED / provider, cassettes / provider)
    tampered = cassettes / provider / "support" / episode_file("lookup-001#0")
    tampered.write_text(tampered.read_text().replace("ORD-1001", "ORD-1999"))
    code, _, err = cli(
        capsys, "run", SUITE, "--llm", "replay", "--cassettes", str(cassettes), "--only", "lookup-001",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("agentlab: error: replay: no unplayed interaction in lookup-001_0.yaml matches POST /v1/")
    assert "body sha256" in err and "closest: lookup-001_0.yaml interactions[0]: body differs in messages" in err
    assert not (tmp_path / "o" / "summary.json").exists()  # an unfinished run never looks complete


def test_anthropic_sdk_wraps_a_miss_but_the_run_still_sees_it() -> None:
    library = CassetteLibrary(SHIPPED / "anthropic" / "support")
    plain = sdk_model("anthropic", library, metadata_headers=True)
    with pytest.raises(ModelConnectionError):  # what the adapter alone reports
        run(plain.complete(REQUEST))
    stack = build_sdk_stack("replay", tiers=TIERS, suite="support", replay_provider="anthropic", cassettes=SHIPPED)
    with pytest.raises(ReplayMismatch, match=r"no cassette for episode s#0"):
        run(stack.model.complete(REQUEST))


@pytest.mark.parametrize(("llm", "env"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")])
def test_missing_api_key_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, llm: str, env: str
) -> None:
    monkeypatch.delenv(env, raising=False)
    out, record = tmp_path / "out", tmp_path / "rec"
    code, stdout, err = cli(
        capsys, "run", SUITE, "--llm", llm, "--model", "m", "--record", str(record), "--out", str(out)
    )
    assert code == 2 and stdout == ""
    problem = f"{env} is not set: a live run needs an API key (--llm sim-{llm} runs offline instead)"
    assert err == f"agentlab: error: --llm {llm}: {problem}\n"
    assert not out.exists() and not record.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--llm", "sim", "--record", "x"], "--llm sim makes no HTTP requests to record"),
        (["--llm", "replay"], "replay needs --cassettes DIR"),
        (["--llm", "replay", "--cassettes", str(ROOT / "cassettes")], "cassettes for both openai and anthropic"),
        (["--llm", "sim-openai", "--model", "gpt-4o"], "only live providers take a model name"),
        (["--llm", "sim-openai", "--cassettes", "x"], "only --llm replay reads cassettes"),
        (["--llm", "sim-openai", "--provider", "anthropic"], "contradicts --llm sim-openai"),
        (["--llm", "sim-openai", "--sdk-retries", "-1"], "must be 0 or more"),
        (["--stream"], "--llm sim has no wire format to stream"),
    ],
)
def test_backend_misuse_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, _, err = cli(capsys, "run", SUITE, *args, "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and fragment in err
    assert not (tmp_path / "o").exists()


def test_live_runs_need_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = cli(capsys, "run", SUITE, "--llm", "openai", "--out", str(tmp_path / "o"))
    assert code == 2 and "a live run needs --model" in err and not (tmp_path / "o").exists()


def test_run_ids_and_directories_name_the_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = set()
    for llm in ("sim", "sim-openai", "sim-anthropic"):
        out = tmp_path / llm
        assert cli(capsys, "run", SUITE, "--llm", llm, "--only", "lookup-001", "--out", str(out))[0] == 0
        ids.add(json.loads((out / "run.json").read_text())["run_id"])
    assert len(ids) == 3
    os.chdir(tmp_path)
    try:
        assert cli(capsys, "run", SUITE, "--llm", "sim-anthropic", "--only", "lookup-001")[0] == 0
    finally:
        os.chdir(ROOT)
    assert (tmp_path / "runs" / "support-react-balanced-s0-sim-anthropic" / "summary.json").is_file()


def test_library_saves_each_episode_when_it_ends(tmp_path: Path) -> None:
    library = CassetteLibrary(tmp_path, mode="record", inner=Echo(), metadata={"recorded_from": "test"})
    model = sdk_model("openai", library, metadata_headers=True)

    async def go() -> None:
        await model.complete(REQUEST)
        assert not list(tmp_path.glob("*.yaml"))  # nothing written mid-episode
        library.end_episode("s#0")

    run(go())
    assert [p.name for p in tmp_path.glob("*.yaml")] == ["s_0.yaml"]


def test_replay_benchmark_runs_the_recorded_requests_through_the_sdk() -> None:
    """The bench workload rebuilds each recorded request from the wire; every one must match again."""
    from agentlab.bench_replay import main_replay
    from agentlab.llm.replay.cassette import load_cassette

    for provider in PROVIDERS:
        files = sorted((SHIPPED / provider / "support").glob("*.yaml"))
        recorded = sum(len(load_cassette(f)) for f in files)
        result = main_replay(str(SHIPPED), provider, "support", calls=10, profile=provider == "anthropic")
        assert result["workload"] == "replay" and result["cassettes"] == len(files) == 40
        assert result["calls"] == recorded and result["calls_per_s"] > 0  # one whole pass; the rate is not asserted
    assert set(result["profile_layers_pct"]) >= {
        "agentlab transport: vcrpy matching",
        "SDK: response parsing (JSON to pydantic models)",
    }


def test_the_default_path_never_loads_an_sdk(tmp_path: Path) -> None:
    """--llm sim stays the fast path: no provider SDK, no httpx2, no vcrpy in the process."""
    import subprocess
    import sys

    code = (
        "import sys; from agentlab.runs import RunOptions, run_suite; "
        f"run_suite(RunOptions(suite={SUITE!r}, only=['lookup-002'], out={str(tmp_path / 'o')!r}, progress=False)); "
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2', 'vcr') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_record_and_replay_under_the_same_http_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Faults sit above the cassettes: recorded with a plan, a run replays under the same plan exactly."""
    plan = str(ROOT / "fixtures" / "faults" / "provider-http.yaml")
    only = [a for s in SUBSET for a in ("--only", s)]
    cassettes, recorded, replayed = tmp_path / "c", tmp_path / "rec", tmp_path / "rep"
    common = ["run", SUITE, "--faults", plan, "--quiet", *only]
    assert cli(capsys, *common, "--llm", "sim-anthropic", "--record", str(cassettes), "--out", str(recorded))[0] == 0
    code, _, err = cli(capsys, *common, "--llm", "replay", "--cassettes", str(cassettes), "--out", str(replayed))
    assert code == 0, err
    kinds = [(e["kind"], e.get("fault_kind"), e.get("http_attempts")) for e in events(recorded)]
    assert kinds == [(e["kind"], e.get("fault_kind"), e.get("http_attempts")) for e in events(replayed)]
    assert outcomes(recorded) == outcomes(replayed)
