"""Provider faults at the HTTP layer, under the real SDKs: typed errors, SDK retries on virtual time.

Each fault kind is injected by FaultyTransport below a real SDK client; the SDK classifies it,
retries it (or not) and backs off exactly as in production. Waits run on the virtual clock, so a
600 s read timeout or two 20 s retry-afters cost milliseconds of wall time.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic import _constants as anthropic_constants
from openai import _constants as openai_constants
from openai._models import FinalRequestOptions

from agentlab.cli import main
from agentlab.errors import (
    InputError,
    MalformedResponse,
    ModelConnectionError,
    ModelError,
    ModelTimeout,
    Overloaded,
    ProviderServerError,
    RateLimited,
)
from agentlab.faults import (
    FaultInjector,
    FaultPlan,
    burst,
    http_5xx,
    http_429,
    http_529,
    load_fault_plan,
    models,
    providers,
    read_timeout,
    reset,
    slow_first_byte,
    truncated_body,
)
from agentlab.faults.http import FaultyTransport
from agentlab.llm.stack import SeededAsyncAnthropic, SeededAsyncOpenAI, sdk_model
from agentlab.llm.tiers import load_tiers
from agentlab.llm.types import Message, ModelRequest, ModelResponse, Usage
from agentlab.llm.wire import SimulatedEndpoint
from agentlab.sim.clock import Clock
from agentlab.sim.loop import run_virtual
from agentlab.trace.recorder import EpisodeTrace, Recorder

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures" / "suites" / "support.yaml")
TIERS = load_tiers(ROOT / "fixtures" / "tiers.yaml")
PROVIDERS = ["openai", "anthropic"]
REQUEST = ModelRequest(
    tier="balanced",
    model="sim-balanced",
    messages=(Message(role="user", content="hi"),),
    metadata={"scenario_id": "s", "episode_id": "s#0"},
)


class Answer:
    """The provider behind the faults: answers at once."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(model="sim-balanced", text="hello", usage=Usage(input_tokens=3, output_tokens=1))


def call(provider: str, fault: Any, *, retries: int = 0, stream: bool = False) -> tuple[Any, float, list[Any]]:
    """One model call through SDK → FaultyTransport → simulated endpoint; (result or error, seconds, events)."""
    recorder = Recorder("t")
    injector = FaultInjector(fault, seed=0)
    transport = FaultyTransport(
        SimulatedEndpoint(Answer(), TIERS), injector, provider, lambda e: EpisodeTrace(recorder, e, Clock())
    )
    model = sdk_model(provider, transport, max_retries=retries, stream=stream, metadata_headers=True)  # type: ignore[arg-type]

    async def go() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            result: Any = await model.complete(REQUEST)
        except ModelError as err:
            result = err
        return result, loop.time() - start

    result, waited = run_virtual(go(), allow_blocking=True)
    return result, waited, recorder.events


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("fault", "error", "waited"),
    [
        (http_429(retry_after_s=7), RateLimited, 0),
        (http_5xx(500), ProviderServerError, 0),
        (http_5xx(502), ProviderServerError, 0),
        (http_5xx(503), ProviderServerError, 0),
        (http_529(), Overloaded, 0),
        (reset(), ModelConnectionError, 0),
        (read_timeout(), ModelTimeout, 600),  # the SDK's own read timeout, on the virtual clock
        (slow_first_byte(900), ModelTimeout, 600),  # slower than the read timeout
        (truncated_body(), MalformedResponse, 0),
    ],
)
def test_each_fault_kind_is_its_typed_error(provider: str, fault: Any, error: type, waited: float) -> None:
    result, seconds, events = call(provider, fault.on(providers(provider)))
    assert type(result) is error, result
    assert result.attempts == 1 and seconds == pytest.approx(waited)
    [event] = events
    assert (event.kind, event.fault_kind, event.target_type, event.target) == (
        "fault_injected",
        fault.kind,
        "provider",
        provider,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_retry_after_headers_reach_the_error(provider: str) -> None:
    seconds_header, _, events = call(provider, http_429(retry_after_s=7).on(providers()))
    ms_header, _, _ = call(provider, http_429(retry_after_ms=1500).on(providers()))
    assert seconds_header.retry_after == 7 and ms_header.retry_after == 1.5
    assert events[0].status == 429 and events[0].retry_after_s == 7


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "fault", [http_429(retry_after_ms=250), http_5xx(502), http_529(), reset(), read_timeout(30), truncated_body()]
)
def test_sdk_retries_recover_from_one_fault(provider: str, fault: Any) -> None:
    result, _, events = call(provider, fault.on(providers()).when(burst(0, 1)), retries=2)
    if fault.kind == "truncated_body":  # a 200 with a broken body: the SDK does not retry it
        assert isinstance(result, MalformedResponse) and result.attempts == 1
        return
    assert isinstance(result, ModelResponse), result
    assert result.text == "hello" and result.attempts == 2 and len(events) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_first_byte_delays_the_real_answer(provider: str) -> None:
    result, seconds, _ = call(provider, slow_first_byte(12.5).on(providers()))
    assert result.text == "hello" and seconds == pytest.approx(12.5) and result.latency_s == pytest.approx(12.5)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_x_should_retry_false_stops_the_sdk(provider: str) -> None:
    result, _, events = call(provider, http_5xx(503, should_retry=False).on(providers()), retries=2)
    assert isinstance(result, ProviderServerError) and result.attempts == 1 and len(events) == 1
    retried, _, events = call(provider, http_5xx(503).on(providers()), retries=2)
    assert isinstance(retried, ProviderServerError) and retried.attempts == 3 and len(events) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_stream_is_not_a_clean_answer(provider: str) -> None:
    result, _, _ = call(provider, truncated_body().on(providers()), stream=True)
    if provider == "anthropic":  # the Messages protocol always ends with a stop reason: its absence is a cut
        assert isinstance(result, MalformedResponse) and "truncated" in str(result)
    else:
        # OpenAI-compatible servers may end a complete stream without a finish_reason (a real Kimi/OpenRouter
        # cassette does, test_replay_real_cassettes), and the SDK swallows the [DONE] sentinel: from the chunks a
        # cut stream cannot be told from a whole one. It arrives as an answer with no stop reason ("other").
        assert not isinstance(result, ModelError) and result.stop_reason == "other"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_backoff_without_retry_after_is_reproducible(provider: str) -> None:
    """The SDKs jitter with the global random module; ours is seeded per episode, so runs repeat."""
    plan = http_5xx(500).on(providers()).when(burst(0, 2))
    first = [call(provider, plan, retries=2)[1] for _ in range(3)]
    assert first[0] == first[1] == first[2]
    assert 0.75 * 1.5 <= first[0] <= 1.5  # 0.5 s then 1 s, each less up to 25 % jitter


# --- through the agent: the trace ---------------------------------------------------------------------


def run_cli(tmp_path: Path, name: str, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / name
    assert main(["run", SUITE, "--out", str(out), "--quiet", *args]) == 0
    return [json.loads(line) for line in (out / "events.jsonl").open()]


def plan_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_two_429s_with_retry_after_20_show_in_the_trace(tmp_path: Path, provider: str) -> None:
    """The SDK's retries at +20 s and +40 s after the first request: one model call, 3 HTTP attempts."""
    plan = plan_file(
        tmp_path,
        "faults:\n  - {id: two-429s, target: {providers: ['*']}, kind: http_429, burst: {start_s: 0, count: 2},"
        " params: {retry_after_s: 20}}\n",
    )
    llm = f"sim-{provider}"
    clean = run_cli(tmp_path, "clean", "--llm", llm, "--only", "lookup-001")
    faulty = run_cli(tmp_path, "faulty", "--llm", llm, "--only", "lookup-001", "--faults", plan)
    first_clean = next(e for e in clean if e["kind"] == "model_call")
    first = next(e for e in faulty if e["kind"] == "model_call")
    sent_at = first["t"] - first["latency_s"]
    injected = [e for e in faulty if e["kind"] == "fault_injected"]
    assert [(e["fault_kind"], e["status"], e["retry_after_s"]) for e in injected] == [("http_429", 429, 20.0)] * 2
    assert [e["t"] - sent_at for e in injected] == pytest.approx([0.0, 20.0])
    assert first["ok"] and first["http_attempts"] == 3 and first_clean["http_attempts"] == 1
    # The third request went out at +40 s and took the same simulated latency as the clean run's.
    assert first["latency_s"] == pytest.approx(40.0 + first_clean["latency_s"])
    assert not [e for e in faulty if e["kind"] == "retry"]  # the agent did not retry on top


def test_one_retry_layer_per_model_call(tmp_path: Path) -> None:
    """SDK retries on: the agent does not retry model calls. SDK retries off: the agent's policy does."""
    plan = plan_file(tmp_path, "faults:\n  - {target: {providers: ['*']}, kind: http_5xx, params: {status: 503}}\n")
    sdk = run_cli(tmp_path, "sdk", "--llm", "sim-openai", "--only", "lookup-001", "--faults", plan)
    agent = run_cli(
        tmp_path, "agent", "--llm", "sim-openai", "--only", "lookup-001", "--faults", plan, "--sdk-retries", "0"
    )

    def summary(events: list[dict[str, Any]]) -> tuple[list[int], int]:
        calls = [e["http_attempts"] for e in events if e["kind"] == "model_call"]
        retries = sum(1 for e in events if e["kind"] == "retry" and e["target"].startswith("model:"))
        return calls, retries

    sdk_calls, sdk_agent_retries = summary(sdk)
    agent_calls, agent_retries = summary(agent)
    assert sdk_agent_retries == 0 and set(sdk_calls) == {3}  # 3 HTTP attempts per call, each tier once
    assert agent_retries > 0 and set(agent_calls) == {1}
    assert sum(sdk_calls) == sum(1 for e in sdk if e["kind"] == "fault_injected")


# --- the plan schema --------------------------------------------------------------------------------


def test_yaml_and_python_give_the_same_provider_faults(tmp_path: Path) -> None:
    built = (
        http_429(retry_after_s=20, retry_after_ms=1500).on(providers("openai")).when(burst(0, 2)).named("a")
        | http_5xx(502, should_retry=False).on(providers("anthropic", "sim-*")).named("b")
        | http_529().on(providers()).named("c")
        | reset().on(providers()).named("d")
        | read_timeout(30).on(providers()).named("e")
        | slow_first_byte(3).on(providers()).named("f")
        | truncated_body().on(providers()).named("g")
    )
    text = """
name: p
faults:
  - {id: a, kind: http_429, target: {providers: [openai]}, burst: {start_s: 0, count: 2},
     params: {status: 429, retry_after_s: 20, retry_after_ms: 1500}}
  - {id: b, kind: http_5xx, target: {providers: [anthropic, 'sim-*']}, params: {status: 502, should_retry: false}}
  - {id: c, kind: http_529, target: {providers: ['*']}, params: {status: 529}}
  - {id: d, kind: reset, target: {providers: ['*']}}
  - {id: e, kind: read_timeout, target: {providers: ['*']}, params: {latency_s: 30}}
  - {id: f, kind: slow_first_byte, target: {providers: ['*']}, params: {latency_s: 3}}
  - {id: g, kind: truncated_body, target: {providers: ['*']}}
"""
    assert load_fault_plan(plan_file(tmp_path, text)) == built.model_copy(update={"name": "p"})


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("faults:\n  - {target: {providers: ['*']}, kind: timeout}\n", ["faults[0]", "not a provider fault"]),
        ("faults:\n  - {target: {models: ['*']}, kind: http_429}\n", ["faults[0]", "not a model fault"]),
        ("faults:\n  - {target: {providers: ['*']}, kind: http_5xx, params: {status: 429}}\n", ["500 and 599"]),
        (
            "faults:\n  - {target: {providers: ['*']}, kind: http_429, params: {retry_after_ms: -1}}\n",
            ["retry_after_ms"],
        ),
    ],
)
def test_bad_provider_faults_are_one_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    with pytest.raises(InputError) as info:
        load_fault_plan(plan_file(tmp_path, text))
    assert "\n" not in str(info.value) and all(f in str(info.value) for f in fragments)


def test_the_python_api_refuses_the_same_faults() -> None:
    with pytest.raises(ValueError, match="not a model fault"):
        FaultPlan(faults=(http_429().on(models("*")),))
    with pytest.raises(ValueError, match="500 and 599"):
        http_5xx(429)


def test_provider_faults_need_an_sdk_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_file(tmp_path, "faults:\n  - {target: {providers: ['*']}, kind: reset}\n")
    assert main(["run", SUITE, "--faults", plan, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "provider (HTTP) faults need an SDK backend" in err
    assert not (tmp_path / "o").exists()


def test_the_seeded_backoff_override_still_fits_the_installed_sdks() -> None:
    """stack.py overrides one private SDK method; if an SDK upgrade moves it, this fails first."""
    for sdk, constants in ((openai.AsyncOpenAI, openai_constants), (anthropic.AsyncAnthropic, anthropic_constants)):
        parameters = list(inspect.signature(sdk._calculate_retry_timeout).parameters)
        assert parameters == ["self", "remaining_retries", "options", "response_headers"]
        assert (constants.INITIAL_RETRY_DELAY, constants.MAX_RETRY_DELAY) == (0.5, 8.0)  # the formula we keep
    options = FinalRequestOptions(method="post", url="/x", headers={"x-agentlab-episode": "e#0"})
    for cls in (SeededAsyncOpenAI, SeededAsyncAnthropic):
        client = cls(api_key="k", max_retries=2, jitter_seed=7)
        twin = cls(api_key="k", max_retries=2, jitter_seed=7)
        delays = [client._calculate_retry_timeout(r, options) for r in (2, 1)]
        assert delays == [twin._calculate_retry_timeout(r, options) for r in (2, 1)]
        assert 0.375 <= delays[0] <= 0.5 and 0.75 <= delays[1] <= 1.0
        assert client._calculate_retry_timeout(2, options, httpx2.Headers({"retry-after": "20"})) == 20
        assert client.user_agent.startswith(cls.__mro__[2].__name__ + "/Python ")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_shipped_http_fault_plan_runs_and_repeats(tmp_path: Path, provider: str) -> None:
    plan = str(ROOT / "fixtures" / "faults" / "provider-http.yaml")
    assert {f.kind for f in load_fault_plan(plan).faults} == {
        "http_429", "http_5xx", "http_529", "reset", "read_timeout", "slow_first_byte", "truncated_body",
    }  # fmt: skip
    args = ["--llm", f"sim-{provider}", "--faults", plan, "--only", "multi-001", "--only", "refund-cond-003"]
    first, second = run_cli(tmp_path, "a", *args), run_cli(tmp_path, "b", *args)
    assert [{**e, "run_id": ""} for e in first] == [{**e, "run_id": ""} for e in second]
    assert any(e["kind"] == "model_call" for e in first)
