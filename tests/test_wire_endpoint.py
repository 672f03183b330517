"""The simulated endpoint speaks the real wire formats, and the full SDK path runs offline on it.

Shapes are checked against real recorded traffic (../shared/real-cassettes, read in place): our
objects must carry every key the live APIs send, nested objects included, and stream the same
event sequence. Behaviour is checked end to end: the agent through the real SDKs against the
endpoint reaches exactly the outcomes of the in-process simulated model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from agentlab.errors import NotFound
from agentlab.llm.providers import anthropic as anthropic_adapter
from agentlab.llm.providers import openai as openai_adapter
from agentlab.llm.replay import load_cassette
from agentlab.llm.stack import sdk_model
from agentlab.llm.tiers import load_tiers
from agentlab.llm.types import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition, Usage
from agentlab.llm.wire import SimulatedEndpoint, anthropic_format, openai_format
from agentlab.llm.wire.common import tool_definition
from agentlab.runs import RunOptions, run_suite
from agentlab.sim.loop import run_virtual

ROOT = Path(__file__).resolve().parents[1]
# Real recorded traffic, beside the checkout or where AGENTLAB_REAL_CASSETTES says (a user's clone has none).
REAL = Path(os.environ.get("AGENTLAB_REAL_CASSETTES") or ROOT.parent / "shared" / "real-cassettes")
SUITE = str(ROOT / "fixtures" / "suites" / "support.yaml")
TIERS = load_tiers(ROOT / "fixtures" / "tiers.yaml")
SUBSET = ["lookup-001", "refund-cond-001", "refund-cond-005", "multi-002", "inject-001", "perm-001", "ambiguous-001"]


def run(coro: Any) -> Any:
    return run_virtual(coro, allow_blocking=True)  # the SDKs detect the platform in a worker thread


def real_cassette(name: str) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"the real-cassette corpus {REAL} is absent (AGENTLAB_REAL_CASSETTES)")
    return REAL / name


def real_json(name: str, index: int = 0) -> Any:
    return json.loads(load_cassette(real_cassette(name))[index].response.body)


def real_sse(name: str, index: int = 0) -> bytes:
    return load_cassette(real_cassette(name))[index].response.body


def assert_has_shape(ours: Any, real: Any, where: str = "$") -> None:
    """Every key of ``real`` is in ``ours``, recursively (first element of lists)."""
    if isinstance(real, dict):
        assert isinstance(ours, dict), where
        missing = sorted(set(real) - set(ours))
        assert not missing, f"{where}: missing {missing}"
        for key, value in real.items():
            if value is not None and ours[key] is not None:
                assert_has_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(real, list) and real and ours:
        assert isinstance(ours, list), where
        assert_has_shape(ours[0], real[0], f"{where}[0]")


CALL = ToolCall(
    id="call_1_0", name="lookup_order", arguments={"order_id": "ORD-1"}, raw_arguments='{"order_id":"ORD-1"}'
)
TEXT = ModelResponse(model="sim-balanced", text="The capital of France is Paris.", usage=Usage(input_tokens=14))
TOOLS = ModelResponse(model="sim-balanced", tool_calls=(CALL,), stop_reason="tool_use", usage=Usage(input_tokens=9))


# --- shapes against real traffic ---------------------------------------------------------------------


def test_openai_completion_has_every_key_the_real_api_sends() -> None:
    ours = openai_format.render_completion(TEXT, completion_id="chatcmpl-x", created=1)
    assert_has_shape(ours, real_json("openai/pydantic-ai__test_valid_response.yaml"))
    with_tools = openai_format.render_completion(TOOLS, completion_id="chatcmpl-x", created=1)
    assert_has_shape(with_tools, real_json("openai/pydantic-ai__test_openai_tool_output.yaml"))
    assert with_tools["choices"][0]["message"]["content"] is None  # as the API sends a tool-only turn
    assert with_tools["choices"][0]["finish_reason"] == "tool_calls"


def _sse_data(body: bytes) -> list[Any]:
    lines = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    return [json.loads(x) for x in lines if x != "[DONE]"]


def test_openai_stream_chunks_have_the_real_shape_and_end_with_done() -> None:
    body = openai_format.sse(openai_format.render_stream(TOOLS, completion_id="c", created=1, include_usage=True))
    real = _sse_data(real_sse("openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml"))
    ours = _sse_data(body)
    assert body.endswith(b"data: [DONE]\n\n")
    assert_has_shape(ours[0], real[0])  # the first chunk carries the call's id and name
    assert_has_shape(ours[-1], real[-1])  # the usage-only chunk
    assert ours[-1]["choices"] == [] and ours[-1]["usage"]["prompt_tokens"] == 9
    arguments = "".join(
        d["function"]["arguments"] for c in ours if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert arguments == CALL.raw_arguments


def test_anthropic_message_has_every_key_the_real_api_sends() -> None:
    ours = anthropic_format.render_message(TOOLS, message_id="msg_x")
    assert_has_shape(ours, real_json("anthropic/pydantic-ai__test_anthropic_tool_output.yaml"))
    assert ours["content"][0] == {
        "type": "tool_use",
        "id": "call_1_0",
        "name": "lookup_order",
        "input": {"order_id": "ORD-1"},
    }


def test_anthropic_stream_has_the_real_event_sequence() -> None:
    one_word = ModelResponse(model="m", text="Hello", usage=Usage(input_tokens=10, output_tokens=4))
    body = anthropic_format.sse(anthropic_format.render_stream(one_word, message_id="msg_x"))
    real = real_sse("anthropic/llm-anthropic__test_stream_events_text.yaml").decode()

    def events(text: str) -> list[str]:
        return [line[7:] for line in text.splitlines() if line.startswith("event: ")]

    assert events(body.decode()) == events(real)
    ours, theirs = _sse_data(body), _sse_data(real.encode())
    for mine, real_event in zip(ours, theirs, strict=True):
        assert_has_shape(mine, real_event)


def test_error_bodies_are_the_providers_shapes() -> None:
    openai_error = json.loads(openai_format.error_body(400, "invalid_request_error", "bad", param="x"))
    assert_has_shape(
        openai_error, real_json("openai/pydantic-ai__test_openai_web_search_tool_model_not_supported.yaml")
    )
    anthropic_error = json.loads(anthropic_format.error_body("not_found_error", "model: x", request_id="req_1"))
    assert_has_shape(anthropic_error, real_json("anthropic/pydantic-ai__test_anthropic_count_tokens_error.yaml"))


# --- the wire round trip ---------------------------------------------------------------------------

HISTORY = (
    Message(role="system", content="You are terse."),
    Message(role="user", content="Refund ORD-1?"),
    Message(role="assistant", content="Checking.", tool_calls=(CALL,)),
    Message(role="tool", content='{"status":"shipped"}', tool_call_id="call_1_0", name="lookup_order"),
    Message(role="user", content="And?"),
)
TOOL_DEFS = (ToolDefinition(name="lookup_order", description="Look up.", parameters={"type": "object"}, tokens=12),)


@pytest.mark.parametrize("response_format", ["text", "json"])
def test_what_an_adapter_sends_parses_back_into_the_same_request(response_format: str) -> None:
    request = ModelRequest(
        tier="balanced", model="sim-balanced", messages=HISTORY, tools=TOOL_DEFS, response_format=response_format
    )
    tier_of = {"sim-balanced": "balanced"}
    sent_openai = json.loads(json.dumps(openai_adapter.request_params(request, stream=False)))
    sent_anthropic = json.loads(json.dumps(anthropic_adapter.request_params(request, stream=False)))
    for parsed in (
        openai_format.parse_request(sent_openai, tier_of, {}),
        anthropic_format.parse_request(sent_anthropic, tier_of, {}),
    ):
        assert parsed.tier == "balanced" and parsed.response_format == response_format
        assert [(m.role, m.content, m.tool_call_id) for m in parsed.messages] == [
            (m.role, m.content, m.tool_call_id) for m in HISTORY
        ]
        assert parsed.messages[2].tool_calls[0].arguments == {"order_id": "ORD-1"}
        assert [t.name for t in parsed.tools] == ["lookup_order"]


# --- through the real SDKs -------------------------------------------------------------------------


class Fixed:
    """A ModelClient that always gives one answer, and remembers the requests."""

    def __init__(self, response: ModelResponse) -> None:
        self.response, self.seen = response, []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.seen.append(request)
        return self.response


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_sdk_round_trip_through_the_endpoint(provider: str, stream: bool) -> None:
    inner = Fixed(
        ModelResponse(
            model="sim-balanced", text="On it.", tool_calls=(CALL,), usage=Usage(input_tokens=7, output_tokens=3)
        )
    )
    model = sdk_model(provider, SimulatedEndpoint(inner, TIERS), stream=stream, metadata_headers=True)  # type: ignore[arg-type]
    request = ModelRequest(
        tier="balanced",
        model="sim-balanced",
        messages=HISTORY,
        tools=TOOL_DEFS,
        metadata={"scenario_id": "s", "episode_id": "s#0"},
    )
    r = run(model.complete(request))
    assert r.text == "On it." and r.stop_reason == "tool_use" and r.model == "sim-balanced"
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [("call_1_0", "lookup_order", {"order_id": "ORD-1"})]
    assert (r.usage.input_tokens, r.usage.output_tokens) == (7, 3) and r.attempts == 1
    assert inner.seen[0].metadata == {"scenario_id": "s", "episode_id": "s#0"}  # the x-agentlab-* headers


def test_metadata_headers_are_off_by_default() -> None:
    seen: list[httpx2.Request] = []

    class Spy(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            seen.append(request)
            return await SimulatedEndpoint(Fixed(TEXT), TIERS).handle_async_request(request)

    request = ModelRequest(tier="balanced", model="sim-balanced", messages=HISTORY[:2], metadata={"episode_id": "e#0"})
    client = openai.AsyncOpenAI(api_key="k", http_client=httpx2.AsyncClient(transport=Spy()), max_retries=0)
    run(openai_adapter.OpenAIChatModel(client).complete(request))
    run(sdk_model("openai", Spy()).complete(request))
    run(sdk_model("openai", Spy(), metadata_headers=True).complete(request))
    assert "x-agentlab-episode" not in seen[0].headers and "x-agentlab-episode" not in seen[1].headers
    assert seen[2].headers["x-agentlab-episode"] == "e#0"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_unknown_model_and_bad_body_are_the_providers_errors(provider: str) -> None:
    model = sdk_model(provider, SimulatedEndpoint(Fixed(TEXT), TIERS), max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="gpt-9"):
        run(model.complete(ModelRequest(tier="x", model="gpt-9", messages=HISTORY[:2])))

    async def post(path: str) -> httpx2.Response:
        async with httpx2.AsyncClient(transport=SimulatedEndpoint(Fixed(TEXT), TIERS)) as client:
            return await client.post(f"https://api.example.com{path}", content=b"{not json")

    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    response = run(post(path))
    assert response.status_code == 400 and "not valid JSON" in response.text


def test_the_sdk_path_reaches_the_in_process_outcomes(tmp_path: Path) -> None:
    """Same seed, same scenarios: --llm sim-openai, sim-anthropic (streamed) and sim agree episode by episode."""

    def outcomes(llm: str, **extra: Any) -> dict[str, tuple[bool, str]]:
        out = tmp_path / f"{llm}-{len(extra)}"
        run_suite(RunOptions(suite=SUITE, llm=llm, only=SUBSET, out=str(out), progress=False, **extra))
        graded = [json.loads(line) for line in (out / "events.jsonl").open()]
        return {e["episode_id"]: (e["success"], e["status"]) for e in graded if e["kind"] == "episode_graded"}

    baseline = outcomes("sim")
    assert len(baseline) == len(SUBSET)
    assert outcomes("sim-openai") == baseline
    assert outcomes("sim-openai", stream=True) == baseline
    assert outcomes("sim-anthropic", stream=True) == baseline


def test_anthropic_count_tokens_through_the_endpoint() -> None:
    model = sdk_model("anthropic", SimulatedEndpoint(Fixed(TEXT), TIERS))
    tools = (tool_definition("lookup_order", "Look up.", {"type": "object"}),)  # tokens as the registry counts
    request = ModelRequest(tier="balanced", model="sim-balanced", messages=HISTORY, tools=tools)
    counted = run(model.count_tokens(request))  # type: ignore[union-attr]
    # The endpoint counts what it parsed: the same messages and tools, so the same estimate.
    assert counted == request.prompt_tokens() > 0
