"""Provider adapters and the cassette reader, unit by unit: conversions both ways, errors, streams.

Responses come from ``httpx2.MockTransport`` below the real SDK clients, so every test also runs the
SDK's request building, retry loop and SSE decoding. Everything runs on the virtual-time loop: the
SDKs' back-off sleeps cost no wall time, and how long they waited can be asserted.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx2
import openai
import pytest

from agentlab.errors import (
    AuthError,
    BadRequest,
    InputError,
    MalformedResponse,
    ModelConnectionError,
    ModelError,
    ModelTimeout,
    NotFound,
    Overloaded,
    ProviderServerError,
    RateLimited,
)
from agentlab.llm.providers import AnthropicMessagesModel, OpenAIChatModel
from agentlab.llm.providers import anthropic as anthropic_adapter
from agentlab.llm.providers import openai as openai_adapter
from agentlab.llm.providers.common import retry_after_s
from agentlab.llm.replay import Replayer, ReplayMismatch, load_cassette, normalized_body
from agentlab.llm.types import Message, ModelClient, ModelRequest, ToolCall, ToolDefinition
from agentlab.llm.wire.common import parse_arguments
from agentlab.sim.loop import run_virtual

T = TypeVar("T")
Handler = Callable[[httpx2.Request], httpx2.Response]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return run_virtual(coro, allow_blocking=True)  # the SDKs detect the platform in a worker thread


class Recorder:
    """A MockTransport handler serving canned responses in turn and keeping every request body."""

    def __init__(self, *responses: httpx2.Response | Exception) -> None:
        self.responses = list(responses)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        return item


def openai_model(handler: Handler, *, max_retries: int = 0, **kw: Any) -> OpenAIChatModel:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    client = openai.AsyncOpenAI(
        api_key="k", base_url="https://api.openai.com/v1", http_client=http, max_retries=max_retries
    )
    return OpenAIChatModel(client, **kw)


def anthropic_model(handler: Handler, *, max_retries: int = 0, **kw: Any) -> AnthropicMessagesModel:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    client = anthropic.AsyncAnthropic(
        api_key="k", base_url="https://api.anthropic.com", http_client=http, max_retries=max_retries
    )
    return AnthropicMessagesModel(client, **kw)


def json_response(status: int, body: Any, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers)


def sse(events: list[tuple[str | None, Any]]) -> httpx2.Response:
    lines = []
    for name, data in events:
        if name:
            lines.append(f"event: {name}")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n")
    body = "\n".join(lines) + "\n"  # every event, the last one too, ends with a blank line
    return httpx2.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL_A = ToolCall(id="call_a", name="get_weather", arguments={"city": "Paris"}, raw_arguments='{"city":"Paris"}')
CALL_B = ToolCall(id="call_b", name="get_weather", arguments={"city": "Rome"}, raw_arguments="")
CONVERSATION = (
    Message(role="system", content="You are terse."),
    Message(role="user", content="Weather in Paris and Rome?", name="ana"),
    Message(role="assistant", content="", tool_calls=(CALL_A, CALL_B)),
    Message(role="tool", content="18C", tool_call_id="call_a", name="get_weather"),
    Message(role="tool", content="24C", tool_call_id="call_b", name="get_weather"),
    Message(role="user", content="And tomorrow?"),
)


def ask(messages: tuple[Message, ...] = CONVERSATION, **kw: Any) -> ModelRequest:
    return ModelRequest(tier="t", model="m-1", messages=messages, tools=(WEATHER,), metadata={"secret": "x"}, **kw)


def chat_completion(message: dict[str, Any], finish: str, **usage: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m-1-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, **usage},
    }


def anthropic_message(content: list[dict[str, Any]], stop: str, **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


# --- protocol and helpers ------------------------------------------------------------------------


def test_adapters_are_model_clients() -> None:
    assert isinstance(openai_model(Recorder(json_response(200, {}))), ModelClient)
    assert isinstance(anthropic_model(Recorder(json_response(200, {}))), ModelClient)


def test_parse_arguments_keeps_broken_json_as_none() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("") == {}
    assert parse_arguments('{"a": ') is None
    assert parse_arguments("[1, 2]") is None


def test_retry_after_prefers_milliseconds_then_seconds_then_date() -> None:
    assert retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_s({"retry-after": "2"}) == 2.0
    date = {"retry-after": "Wed, 21 Oct 2026 07:28:30 GMT", "date": "Wed, 21 Oct 2026 07:28:00 GMT"}
    assert retry_after_s(date) == 30.0
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2026 07:28:30 GMT"}) is None  # no server clock to read it by
    assert retry_after_s({}) is None


# --- OpenAI: request conversion ------------------------------------------------------------------


def test_openai_messages_tools_and_params() -> None:
    rec = Recorder(json_response(200, chat_completion({"content": "ok"}, "stop")))
    run(openai_model(rec).complete(ask(response_format="json", max_tokens=300)))
    body = rec.bodies[0]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris and Rome?", "name": "ana"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "type": "function",
                    "id": "call_a",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "type": "function",
                    "id": "call_b",
                    # no raw text from the model: its arguments as compact JSON, as every other path writes them
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24C"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather for a city.", "parameters": WEATHER.parameters},
        }
    ]
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == 300
    assert body["model"] == "m-1" and "secret" not in json.dumps(body) and "stream" not in body


def test_openai_strict_tools_stream_options_and_legacy_max_tokens() -> None:
    params = openai_adapter.request_params(ask(), stream=True, strict_tools=True, max_tokens_param="max_tokens")
    assert params["tools"][0]["function"]["strict"] is True
    assert params["stream"] is True and params["stream_options"] == {"include_usage": True}
    assert params["max_tokens"] == 1024 and "max_completion_tokens" not in params
    assert "response_format" not in params


# --- OpenAI: response normalisation --------------------------------------------------------------


def test_openai_parallel_calls_broken_arguments_and_cached_tokens() -> None:
    message = {
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Ber'}},
        ],
    }
    completion = chat_completion(message, "tool_calls", prompt_tokens_details={"cached_tokens": 64})
    model = openai_model(Recorder(json_response(200, completion)))
    r = run(model.complete(ask()))
    assert r.model == "m-1-2025" and r.text == "" and r.stop_reason == "tool_use"
    assert [(c.id, c.name, c.arguments, c.raw_arguments) for c in r.tool_calls] == [
        ("c1", "get_weather", {"city": "Oslo"}, '{"city":"Oslo"}'),
        ("c2", "get_weather", None, '{"city": "Ber'),
    ]
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (100, 20, 64)
    assert r.cost_usd is None and model.last_attempts == 1


@pytest.mark.parametrize(
    ("finish", "message", "stop", "text"),
    [
        ("stop", {"content": "hi"}, "end_turn", "hi"),
        ("length", {"content": "cut"}, "max_tokens", "cut"),
        ("content_filter", {"content": None}, "refusal", ""),
        ("stop", {"content": None, "refusal": "I can't help with that."}, "refusal", "I can't help with that."),
    ],
)
def test_openai_stop_reasons(finish: str, message: dict[str, Any], stop: str, text: str) -> None:
    r = run(openai_model(Recorder(json_response(200, chat_completion(message, finish)))).complete(ask()))
    assert (r.stop_reason, r.text) == (stop, text)


def test_openai_stream_assembles_interleaved_parallel_calls_and_usage() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {
            "id": "s",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m-s",
            "choices": choices,
            "usage": usage,
        }

    def call(index: int, args: str, **first: str) -> dict[str, Any]:
        fn = {"arguments": args, **({"name": first["name"]} if first else {})}
        return {
            "tool_calls": [
                {"index": index, **({"id": first["id"], "type": "function"} if first else {}), "function": fn}
            ]
        }

    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 9,
        "total_tokens": 49,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": "Checking"})),
        (None, chunk({"content": " both."})),
        (None, chunk(call(0, "", id="c1", name="get_weather"))),
        (None, chunk(call(1, '{"ci', id="c2", name="get_weather"))),
        (None, chunk(call(0, '{"city":'))),
        (None, chunk(call(1, 'ty":"Rome"}'))),
        (None, chunk(call(0, '"Paris"}'))),
        (None, chunk({}, "tool_calls")),
        (None, chunk(None, usage=usage)),  # usage comes last, with no choices
        (None, "[DONE]"),
    ]
    rec = Recorder(sse(events))
    r = run(openai_model(rec, stream=True).complete(ask()))
    assert rec.bodies[0]["stream"] is True
    assert r.text == "Checking both." and r.stop_reason == "tool_use" and r.model == "m-s"
    assert [(c.id, c.arguments, c.raw_arguments) for c in r.tool_calls] == [
        ("c1", {"city": "Paris"}, '{"city":"Paris"}'),
        ("c2", {"city": "Rome"}, '{"city":"Rome"}'),
    ]
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (40, 9, 32)


# --- Anthropic: request conversion ---------------------------------------------------------------


def test_anthropic_system_blocks_and_merged_tool_results() -> None:
    rec = Recorder(json_response(200, anthropic_message([{"type": "text", "text": "ok"}], "end_turn")))
    broken = ToolCall(id="call_c", name="get_weather", arguments=None, raw_arguments="{oops")
    messages = (
        *CONVERSATION[:2],
        Message(role="assistant", content="Let me check.", tool_calls=(CALL_A, CALL_B, broken)),
        *CONVERSATION[3:5],
        Message(role="tool", content="bad arguments", tool_call_id="call_c"),
        CONVERSATION[5],
        Message(role="assistant", content=""),  # nothing to send: skipped
        Message(role="system", content="Be kind."),
    )
    run(anthropic_model(rec).complete(ask(messages, max_tokens=200)))
    body = rec.bodies[0]
    assert body["system"] == "You are terse.\n\nBe kind."
    assert body["max_tokens"] == 200 and body["model"] == "m-1" and "secret" not in json.dumps(body)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}},
                {"type": "tool_use", "id": "call_c", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "24C"},
                {"type": "tool_result", "tool_use_id": "call_c", "content": "bad arguments"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city.", "input_schema": WEATHER.parameters}
    ]


def test_anthropic_json_is_an_instruction_not_a_parameter() -> None:
    params = anthropic_adapter.request_params(ask(response_format="json"), stream=True)
    assert params["system"] == f"You are terse.\n\n{anthropic_adapter.JSON_INSTRUCTION}"
    assert params["stream"] is True and "response_format" not in params
    only_user = ask((Message(role="user", content="hi"),), response_format="json")
    assert anthropic_adapter.request_params(only_user, stream=False)["system"] == anthropic_adapter.JSON_INSTRUCTION


def test_anthropic_tool_message_needs_its_call_id() -> None:
    with pytest.raises(BadRequest, match="tool_call_id"):
        anthropic_adapter.to_anthropic_messages([Message(role="tool", content="x")])


# --- Anthropic: response normalisation -----------------------------------------------------------


def test_anthropic_text_parallel_tool_uses_and_cache_usage() -> None:
    content = [
        {"type": "text", "text": "Checking "},
        {"type": "text", "text": "both."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    body = anthropic_message(content, "tool_use", cache_read_input_tokens=300, cache_creation_input_tokens=50)
    model = anthropic_model(Recorder(json_response(200, body)))
    r = run(model.complete(ask()))
    assert r.text == "Checking both." and r.stop_reason == "tool_use" and r.model == "claude-x"
    assert [(c.id, c.arguments) for c in r.tool_calls] == [("t1", {"city": "Paris"}), ("t2", {"city": "Rome"})]
    assert json.loads(r.tool_calls[0].raw_arguments) == {"city": "Paris"}
    # agentlab counts cached tokens inside input_tokens (the tier price table discounts them).
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (360, 5, 300)
    assert model.last_attempts == 1


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("refusal", "refusal"),
        ("model_context_window_exceeded", "max_tokens"),
        ("pause_turn", "other"),
    ],
)
def test_anthropic_stop_reasons(reason: str, stop: str) -> None:
    body = anthropic_message([{"type": "text", "text": "x"}], reason)
    assert run(anthropic_model(Recorder(json_response(200, body))).complete(ask())).stop_reason == stop


def test_anthropic_stream_assembles_text_and_argument_fragments() -> None:
    start = anthropic_message([], "", cache_read_input_tokens=100)
    start["stop_reason"] = None

    def block(index: int, content_block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block}

    def delta(index: int, **d: str) -> tuple[str, dict[str, Any]]:
        kind = "text_delta" if "text" in d else "input_json_delta"
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": kind, **d}}

    def stop(index: int) -> tuple[str, dict[str, Any]]:
        return "content_block_stop", {"type": "content_block_stop", "index": index}

    def tool_use(id_: str) -> dict[str, Any]:
        return {"type": "tool_use", "id": id_, "name": "get_weather", "input": {}}

    end = {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        block(0, {"type": "text", "text": ""}),
        ("ping", {"type": "ping"}),
        delta(0, text="On "),
        delta(0, text="it."),
        stop(0),
        block(1, tool_use("t1")),
        delta(1, partial_json='{"city": "Pa'),
        delta(1, partial_json='ris"}'),
        stop(1),
        block(2, tool_use("t2")),
        delta(2, partial_json='{"city": '),
        stop(2),
        ("message_delta", end),
        ("message_stop", {"type": "message_stop"}),
    ]
    rec = Recorder(sse(events))
    r = run(anthropic_model(rec, stream=True).complete(ask()))
    assert rec.bodies[0]["stream"] is True
    assert r.text == "On it." and r.stop_reason == "tool_use"
    assert [(c.id, c.arguments, c.raw_arguments) for c in r.tool_calls] == [
        ("t1", {"city": "Paris"}, '{"city": "Paris"}'),
        ("t2", None, '{"city": '),  # cut off: kept raw for the Tool Router to reject
    ]
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (110, 42, 100)


# --- error mapping -------------------------------------------------------------------------------

OPENAI_ERROR = {"error": {"message": "boom", "type": "server_error", "code": None}}
ANTHROPIC_ERROR = {"type": "error", "error": {"type": "api_error", "message": "boom"}}


def _error_body(provider: str, status: int) -> dict[str, Any]:
    kinds = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error", 404: "not_found_error"}
    if provider == "openai":
        return OPENAI_ERROR
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": "boom"}}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (529, Overloaded),
        (500, ProviderServerError),
        (503, ProviderServerError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (400, BadRequest),
        (422, BadRequest),
    ],
)
def test_status_codes_map_to_typed_errors(provider: str, status: int, error: type[ModelError]) -> None:
    rec = Recorder(json_response(status, _error_body(provider, status)))
    model = (openai_model if provider == "openai" else anthropic_model)(rec)
    with pytest.raises(error) as info:
        run(model.complete(ask()))
    assert type(info.value) is error
    assert str(info.value).startswith(f"{provider} {status}") and "boom" in str(info.value)
    assert model.last_attempts == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_429_with_retry_after_ms_is_rate_limited_after_sdk_retries(provider: str) -> None:
    body = _error_body(provider, 429)
    rec = Recorder(json_response(429, body, **{"retry-after-ms": "2500", "retry-after": "9"}))
    model = (openai_model if provider == "openai" else anthropic_model)(rec, max_retries=2)

    async def call() -> tuple[RateLimited, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(RateLimited) as info:
            await model.complete(ask())
        return info.value, loop.time() - start

    error, waited = run(call())
    assert error.retry_after == 2.5 and error.transient
    assert model.last_attempts == 3 and len(rec.bodies) == 3
    assert waited == pytest.approx(5.0)  # the SDK honoured retry-after-ms twice, on virtual time


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_429_then_success_reports_the_attempts(provider: str) -> None:
    ok = (
        json_response(200, chat_completion({"content": "hi"}, "stop"))
        if provider == "openai"
        else json_response(200, anthropic_message([{"type": "text", "text": "hi"}], "end_turn"))
    )
    rec = Recorder(json_response(429, _error_body(provider, 429), **{"retry-after-ms": "10"}), ok)
    model = (openai_model if provider == "openai" else anthropic_model)(rec, max_retries=2)
    assert run(model.complete(ask())).text == "hi"
    assert model.last_attempts == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("raised", "error"),
    [(httpx2.ReadTimeout("slow"), ModelTimeout), (httpx2.ConnectError("refused"), ModelConnectionError)],
)
def test_transport_failures(provider: str, raised: Exception, error: type[ModelError]) -> None:
    model = (openai_model if provider == "openai" else anthropic_model)(Recorder(raised), max_retries=1)
    with pytest.raises(error) as info:
        run(model.complete(ask()))
    assert type(info.value) is error
    assert model.last_attempts == 2
    if error is ModelConnectionError:
        assert "ConnectError: refused" in str(info.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]"])
def test_undecodable_body_is_malformed(provider: str, payload: bytes) -> None:
    bad = httpx2.Response(200, content=payload, headers={"content-type": "application/json"})
    model = (openai_model if provider == "openai" else anthropic_model)(Recorder(bad))
    with pytest.raises(MalformedResponse):
        run(model.complete(ask()))


def test_openai_quota_429_is_not_a_rate_limit() -> None:
    body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": None}}
    with pytest.raises(AuthError, match="openai 429 insufficient_quota: You exceeded your current quota"):
        run(openai_model(Recorder(json_response(429, body))).complete(ask()))


def test_openai_compatible_200_with_an_error_body() -> None:
    body = {"error": {"code": 502, "message": "Provider returned error", "metadata": {"raw": "upstream 502"}}}
    with pytest.raises(ProviderServerError, match="openai 502: Provider returned error \\(upstream 502\\)"):
        run(openai_model(Recorder(json_response(200, body))).complete(ask()))


def test_openai_tool_message_needs_its_call_id() -> None:
    with pytest.raises(BadRequest, match="tool_call_id"):
        openai_adapter.to_openai_messages([Message(role="tool", content="x")])


def test_anthropic_count_tokens() -> None:
    rec = Recorder(json_response(200, {"input_tokens": 321}))
    model = anthropic_model(rec)
    assert run(model.count_tokens(ask())) == 321
    assert "max_tokens" not in rec.bodies[0] and rec.bodies[0]["system"] == "You are terse."
    assert model.last_attempts == 1


def test_anthropic_overloaded_error_event_inside_a_200_stream() -> None:
    start = anthropic_message([], "")
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]
    with pytest.raises(Overloaded, match="overloaded_error: Overloaded"):
        run(anthropic_model(Recorder(sse(events)), stream=True).complete(ask()))


def test_openai_error_chunk_inside_a_stream_is_a_server_error() -> None:
    events: list[tuple[str | None, Any]] = [(None, {"error": {"message": "upstream died", "type": "server_error"}})]
    with pytest.raises(ProviderServerError, match="server_error: upstream died"):
        run(openai_model(Recorder(sse(events)), stream=True).complete(ask()))


def test_openai_stream_garbage_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        run(openai_model(Recorder(sse([(None, "{oops")])), stream=True).complete(ask()))


# --- cassette reader -----------------------------------------------------------------------------

STOCK = """\
interactions:
- request:
    body: '{"model": "m-1",   "messages": [{"role": "user", "content": "hi"}]}'
    headers:
      Content-Type:
      - application/json
    method: POST
    uri: https://api.example.com/v1/chat/completions
  response:
    body:
      string: !!binary |
        {gz}
    headers:
      Content-Encoding:
      - gzip
      Content-Type:
      - application/json
      Set-Cookie:
      - a=1
      - b=2
    status:
      code: 200
      message: OK
version: 1
"""

PARSED = """\
interactions:
- request:
    headers:
      content-type:
      - application/json
    method: POST
    parsed_body:
      messages:
      - content: hi
        role: user
      model: m-1
    uri: https://api.example.com/v1/messages?beta=true
  response:
    headers:
      content-type:
      - application/json
      content-length:
      - '9999'
    parsed_body:
      answer: 42
    status:
      code: 200
      message: OK
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _stock(tmp_path: Path) -> Path:
    import base64

    gz = base64.b64encode(gzip.compress(b'{"answer": 41}')).decode()
    return _write(tmp_path, "stock.yaml", STOCK.replace("{gz}", gz))


def test_loader_reads_stock_vcrpy_with_gzip_binary(tmp_path: Path) -> None:
    [it] = load_cassette(_stock(tmp_path))
    assert (it.index, it.request.method, it.request.host, it.request.path) == (
        0,
        "POST",
        "api.example.com",
        "/v1/chat/completions",
    )
    assert it.request.json() == {"model": "m-1", "messages": [{"role": "user", "content": "hi"}]}
    assert it.response.status == 200 and it.response.header("content-encoding") == "gzip"
    assert gzip.decompress(it.response.body) == b'{"answer": 41}'
    assert [v for k, v in it.response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]


def test_loader_reads_pydantic_ai_parsed_body_variant(tmp_path: Path) -> None:
    [it] = load_cassette(_write(tmp_path, "parsed.yaml", PARSED))
    assert it.request.path == "/v1/messages" and it.request.json()["model"] == "m-1"
    assert json.loads(it.response.body) == {"answer": 42}


ONE = "interactions:\n- request: {method: GET, uri: 'https://x/'}\n"


@pytest.mark.parametrize(
    ("text", "place", "problem"),
    [
        ("interactions: [\n  {request: }\n oops", "line ", "not valid YAML"),
        ("version: 1\n", "interactions", "'interactions' list"),
        ("- 1\n- 2\n", "interactions", "'interactions' list"),
        (PARSED + "- request: {method: GET, uri: 'https://x/'}\n", "interactions[1]", "missing 'response'"),
        ("interactions:\n- response: {status: {code: 200}}\n", "interactions[0]", "missing 'request'"),
        ("interactions:\n- 3\n", "interactions[0]", "must be a mapping"),
        (f"{ONE}  response: {{status: {{code: 200}}}}\n".replace("method: GET, ", ""), "interactions[0]", "'method'"),
        (f"{ONE}  response: {{}}\n", "interactions[0]", "status.code"),
        (f"{ONE}  response: {{status: {{code: 200}}, body: 7}}\n", "interactions[0]", "'body'"),
        ("x: !!python/object/apply:os.system ['true']\n", "", "not valid YAML"),  # vcrpy's safe loader refuses it
    ],
)
def test_loader_errors_are_one_line_naming_file_and_interaction(
    tmp_path: Path, text: str, place: str, problem: str
) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_cassette(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {place}") and problem in message
    assert info.value.file == str(path)


def test_loader_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_cassette(tmp_path / "nope.yaml")


# --- replayer ------------------------------------------------------------------------------------


def test_normalized_body_ignores_order_whitespace_nulls_and_other_keys() -> None:
    a = b'{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[]}],"stream":true}'
    b = b'{ "messages" : [ {"tool_calls": [], "role": "assistant"} ],\n "model": "m", "max_tokens": 5 }'
    assert (
        normalized_body(a)
        == normalized_body(b)
        == {"model": "m", "messages": [{"role": "assistant", "tool_calls": []}]}
    )
    assert normalized_body(b"not json") == "not json"


def test_replayer_serves_gzip_and_parsed_cassettes_ignoring_query(tmp_path: Path) -> None:
    replayer = Replayer([_stock(tmp_path), _write(tmp_path, "parsed.yaml", PARSED)])

    async def go() -> list[httpx2.Response]:
        async with replayer.client() as client:
            body = {"messages": [{"content": "hi", "role": "user"}], "model": "m-1", "temperature": 0}
            first = await client.post("https://api.example.com/v1/messages", json=body)
            second = await client.post("https://api.example.com/v1/chat/completions?x=1", json=body)
            return [first, second]

    first, second = run(go())
    assert first.json() == {"answer": 42} and "content-length" not in first.headers
    assert second.json() == {"answer": 41} and second.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert replayer.served == [("parsed.yaml", 0), ("stock.yaml", 0)] and replayer.all_played


def test_replayer_mismatch_names_the_difference(tmp_path: Path) -> None:
    replayer = Replayer([_stock(tmp_path)])

    async def go() -> None:
        async with replayer.client() as client:
            await client.post("https://api.example.com/v1/chat/completions", json={"model": "m-2", "messages": []})

    with pytest.raises(ReplayMismatch) as info:
        run(go())
    message = str(info.value)
    assert message.startswith("no unplayed interaction in stock.yaml matches POST /v1/chat/completions (body sha256 ")
    assert message.endswith("closest: stock.yaml interactions[0]: body differs in messages, model")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_replay_miss_ends_the_call_at_once_through_either_sdk(tmp_path: Path, provider: str) -> None:
    # A miss means the run left its recording: no retry can fix it, so the SDK must not retry it (the
    # anthropic SDK retries any transport exception unless told otherwise) and it surfaces as itself.
    from agentlab.llm.stack import SurfaceReplayMismatch, sdk_model

    replayer = Replayer([_stock(tmp_path)])
    model = SurfaceReplayMismatch(sdk_model(provider, replayer, max_retries=2))  # type: ignore[arg-type]
    request = ModelRequest(tier="t", model="m-2", messages=(Message(role="user", content="hi"),))
    with pytest.raises(ReplayMismatch, match=r"no unplayed interaction in stock\.yaml"):
        run(model.complete(request))
    assert len(replayer.requests) == 1


def test_replayer_rejects_unknown_matchers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown matcher 'bodyy'"):
        Replayer([_stock(tmp_path)], match_on=("method", "bodyy"))


def test_replayer_reports_malformed_cassettes_as_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"interactions\[1\]: missing 'response'"):
        Replayer([_write(tmp_path, "bad.yaml", PARSED + "- request: {method: GET, uri: 'https://x/'}\n")])
