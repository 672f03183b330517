"""Every real recorded cassette replays through the real SDKs into agentlab's provider adapters.

The cassettes (../shared/real-cassettes) were recorded by simonw/llm, simonw/llm-anthropic and
pydantic-ai against the live APIs; they are read where they are, never copied.

Matching: wherever our adapters can send the very request a cassette recorded, the replayer matches
on method, host, path AND the normalised JSON body (model, messages, tools, system) — so these tests
also prove that our message/tool conversion produces what real clients sent. Two pydantic-ai
Anthropic cassettes send ``"is_error": false`` in every tool result, which our adapter leaves out
(it is the default); for them the body match covers model, tools and system but not messages.

Everything runs on agentlab's virtual-time loop: the SDKs back off with ``anyio.sleep``, which there
costs no wall time, so the 429 test keeps the SDK's real retry policy and checks its back-off.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import msgspec
import openai
import pytest

from agentlab.errors import BadRequest, ModelConnectionError, NotFound, RateLimited
from agentlab.llm.providers import AnthropicMessagesModel, OpenAIChatModel
from agentlab.llm.providers.openai import request_params
from agentlab.llm.replay import Replayer, ReplayMismatch, body_digest
from agentlab.llm.types import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from agentlab.sim.loop import run_virtual

ROOT = Path(__file__).resolve().parents[1]
# Beside the checkout, or where AGENTLAB_REAL_CASSETTES says; a user's clone has none, and every test here skips.
REAL = Path(os.environ.get("AGENTLAB_REAL_CASSETTES") or ROOT.parent / "shared" / "real-cassettes")
pytestmark = [
    pytest.mark.skipif(not REAL.is_dir(), reason=f"no real-cassette corpus at {REAL} (AGENTLAB_REAL_CASSETTES)"),
    # Recorded with models the SDK now flags as deprecated; the warning says nothing about our code.
    pytest.mark.filterwarnings("ignore:The model '.*' is deprecated:DeprecationWarning"),
]
T = TypeVar("T")
COVERED: set[str] = set()


def replays(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the cassettes a test replays, so the coverage test can demand one test per file."""
    COVERED.update(names)
    return lambda fn: fn


def cassette(name: str) -> Path:
    path = REAL / name
    assert path.is_file(), f"real cassette missing: {path} (expected next to the project, in shared/real-cassettes)"
    return path


def run(coro: Coroutine[Any, Any, T]) -> T:
    return run_virtual(coro, allow_blocking=True)  # the SDKs detect the platform in a worker thread


def openai_model(replayer: Replayer, *, base_url: str = "https://api.openai.com/v1", **kwargs: Any) -> OpenAIChatModel:
    retries = kwargs.pop("max_retries", 0)
    client = openai.AsyncOpenAI(api_key="replay", base_url=base_url, http_client=replayer.client(), max_retries=retries)
    return OpenAIChatModel(client, **kwargs)


def anthropic_model(replayer: Replayer, **kwargs: Any) -> AnthropicMessagesModel:
    client = anthropic.AsyncAnthropic(
        api_key="replay", base_url="https://api.anthropic.com", http_client=replayer.client(), max_retries=0
    )
    return AnthropicMessagesModel(client, **kwargs)


def request(model: str, messages: list[Message], tools: tuple[ToolDefinition, ...] = (), **kw: Any) -> ModelRequest:
    return ModelRequest(tier="replay", model=model, messages=tuple(messages), tools=tools, **kw)


def tool(name: str, description: str, parameters: dict[str, Any]) -> ToolDefinition:
    return ToolDefinition(name=name, description=description, parameters=parameters)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def system(text: str) -> Message:
    return Message(role="system", content=text)


def follow(
    history: list[Message],
    response: ModelResponse,
    *results: str,
    rewrite: Callable[[ToolCall], ToolCall] | None = None,
) -> None:
    """Append the assistant turn and one tool result per call, as an agent would."""
    calls = tuple(rewrite(c) for c in response.tool_calls) if rewrite else response.tool_calls
    history.append(Message(role="assistant", content=response.text, tool_calls=calls))
    assert len(results) == len(calls)
    history.extend(Message(role="tool", content=r, tool_call_id=c.id) for c, r in zip(calls, results, strict=True))


def check(
    r: ModelResponse,
    *,
    text: str | None = None,
    contains: tuple[str, ...] = (),
    calls: list[tuple[str, dict[str, Any]]] | None = None,
    stop: str,
    usage: tuple[int, int, int],
    model: str | None = None,
) -> None:
    if text is not None:
        assert r.text == text
    for part in contains:
        assert part in r.text
    assert [(c.name, c.arguments) for c in r.tool_calls] == (calls or [])
    assert r.stop_reason == stop
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == usage
    if model is not None:
        assert r.model == model
    assert r.cost_usd is None


# --- OpenAI --------------------------------------------------------------------------------------


@replays("openai/pydantic-ai__test_valid_response.yaml")
def test_openai_plain_text() -> None:
    replayer = Replayer([cassette("openai/pydantic-ai__test_valid_response.yaml")])
    model = openai_model(replayer)
    r = run(model.complete(request("gpt-4o", [user("What is the capital of France?")])))
    check(r, text="The capital of France is Paris.", stop="end_turn", usage=(14, 7, 0), model="gpt-4o-2024-08-06")
    assert model.last_attempts == 1 and r.attempts == 1 and replayer.all_played


DRAGON_TOOLS = (
    tool(
        "lookup_population",
        "Returns the current population of the specified fictional country",
        {"properties": {"country": {"type": "string"}}, "required": ["country"], "type": "object"},
    ),
    tool(
        "can_have_dragons",
        "Returns True if the specified population can have dragons, False otherwise",
        {"properties": {"population": {"type": "integer"}}, "required": ["population"], "type": "object"},
    ),
)


@replays("openai/llm__test_tool_use_chain_of_two_calls.yaml")
def test_openai_chain_of_two_tool_calls_gzip_bodies() -> None:
    replayer = Replayer([cassette("openai/llm__test_tool_use_chain_of_two_calls.yaml")])
    model = openai_model(replayer)
    history = [user("Can the country of Crumpet have dragons? Answer with only YES or NO")]
    # simonw/llm re-serialised the arguments it sent back (json.dumps spacing), so we do the same.
    like_llm = lambda c: msgspec.structs.replace(c, raw_arguments=json.dumps(c.arguments))  # noqa: E731

    async def chat() -> list[ModelResponse]:
        first = await model.complete(request("gpt-4o-mini", history, DRAGON_TOOLS))
        follow(history, first, "123124", rewrite=like_llm)
        second = await model.complete(request("gpt-4o-mini", history, DRAGON_TOOLS))
        follow(history, second, "true", rewrite=like_llm)
        return [first, second, await model.complete(request("gpt-4o-mini", history, DRAGON_TOOLS))]

    first, second, third = run(chat())
    check(first, calls=[("lookup_population", {"country": "Crumpet"})], stop="tool_use", usage=(92, 17, 0))
    assert first.tool_calls[0].id == "call_TTY8UFNo7rNCaOBUNtlRSvMG"
    assert first.tool_calls[0].raw_arguments == '{"country":"Crumpet"}'
    check(second, calls=[("can_have_dragons", {"population": 123124})], stop="tool_use", usage=(118, 18, 0))
    check(third, text="YES", stop="end_turn", usage=(146, 3, 0), model="gpt-4o-mini-2024-07-18")
    assert replayer.all_played


@replays("openai/llm__test_tools_streaming_variant_a.yaml")
def test_openai_stream_tool_call_without_finish_reason() -> None:
    """An OpenAI-compatible server (Kimi via OpenRouter) repeats the call's id and name in two deltas
    and ends the stream with no finish_reason."""
    replayer = Replayer([cassette("openai/llm__test_tools_streaming_variant_a.yaml")])
    model = openai_model(replayer, stream=True)
    tools = (tool("llm_version", "Return the installed version of llm", {"properties": {}, "type": "object"}),)
    history = [user("What is the current llm version?")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("gpt-4.1-mini", history, tools))
        # llm's history holds the empty text turn and the tool-call turn as two assistant messages.
        history.append(Message(role="assistant", content=""))
        history.append(Message(role="assistant", tool_calls=first.tool_calls))
        history.append(Message(role="tool", content="0.fixed-version", tool_call_id=first.tool_calls[0].id))
        return first, await model.complete(request("gpt-4.1-mini", history, tools))

    first, second = run(chat())
    check(first, text="", calls=[("llm_version", {})], stop="tool_use", usage=(57, 17, 0), model="moonshotai/kimi-k2")
    assert first.tool_calls[0].id == "0" and first.tool_calls[0].raw_arguments == "{}"
    check(second, text="The current version of *llm* is **0.fixed-version**.", stop="end_turn", usage=(107, 15, 0))
    assert replayer.all_played


@replays("openai/pydantic-ai__test_openai_instructions_with_tool_calls_keep_instructions.yaml")
def test_openai_strict_tool_then_answer() -> None:
    replayer = Replayer(
        [cassette("openai/pydantic-ai__test_openai_instructions_with_tool_calls_keep_instructions.yaml")]
    )
    model = openai_model(replayer, strict_tools=True)
    schema = {
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "type": "object",
    }
    tools = (tool("get_temperature", "", schema),)
    history = [system("You are a helpful assistant."), user("What is the temperature in Tokyo?")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("gpt-4.1-mini", history, tools))
        follow(history, first, "20.0")
        return first, await model.complete(request("gpt-4.1-mini", history, tools))

    first, second = run(chat())
    check(first, calls=[("get_temperature", {"city": "Tokyo"})], stop="tool_use", usage=(50, 15, 0))
    check(
        second, text="The temperature in Tokyo is currently 20.0 degrees Celsius.", stop="end_turn", usage=(75, 15, 0)
    )
    assert replayer.all_played


CITY_TOOLS = (
    tool("get_user_country", "", {"additionalProperties": False, "properties": {}, "type": "object"}),
    tool(
        "final_result",
        "The final response which ends this conversation",
        {
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city", "country"],
            "type": "object",
        },
    ),
)


@replays("openai/pydantic-ai__test_openai_tool_output.yaml")
def test_openai_both_turns_call_tools() -> None:
    replayer = Replayer([cassette("openai/pydantic-ai__test_openai_tool_output.yaml")])
    model = openai_model(replayer)
    history = [user("What is the largest city in the user country?")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("gpt-4o", history, CITY_TOOLS))
        follow(history, first, "Mexico")
        return first, await model.complete(request("gpt-4o", history, CITY_TOOLS))

    first, second = run(chat())
    check(first, calls=[("get_user_country", {})], stop="tool_use", usage=(68, 12, 0))
    check(
        second,
        calls=[("final_result", {"city": "Mexico City", "country": "Mexico"})],
        stop="tool_use",
        usage=(89, 36, 0),
    )
    assert second.tool_calls[0].raw_arguments == '{"city": "Mexico City", "country": "Mexico"}'
    assert replayer.all_played


@replays("openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml")
def test_openai_stream_argument_deltas_then_text() -> None:
    """Recorded with ``"content": null`` on the tool-call turn; our adapter omits the key: same call."""
    replayer = Replayer([cassette("openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml")])
    model = openai_model(replayer, stream=True, strict_tools=True)
    schema = {
        "additionalProperties": False,
        "properties": {"country": {"type": "string"}},
        "required": ["country"],
        "type": "object",
    }
    tools = (tool("get_capital", "", schema),)
    history = [user("What is the capital of the UK? Use the tool, then answer.")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("gpt-4o-mini", history, tools))
        follow(history, first, "London")
        return first, await model.complete(request("gpt-4o-mini", history, tools))

    first, second = run(chat())
    check(first, text="", calls=[("get_capital", {"country": "UK"})], stop="tool_use", usage=(53, 15, 0))
    assert first.tool_calls[0].raw_arguments == '{"country":"UK"}'  # five deltas, concatenated
    check(second, contains=("London",), stop="end_turn", usage=(78, 9, 0), model="gpt-4o-mini-2024-07-18")
    assert replayer.all_played


@replays("openai/pydantic-ai__test_openai_web_search_tool_model_not_supported.yaml")
def test_openai_400_is_bad_request_without_retry() -> None:
    replayer = Replayer([cassette("openai/pydantic-ai__test_openai_web_search_tool_model_not_supported.yaml")])
    model = openai_model(replayer, max_retries=2)
    req = request("gpt-4o", [system("You are a helpful assistant."), user("What day is today?")])
    with pytest.raises(BadRequest) as info:
        run(model.complete(req))
    assert "400" in str(info.value) and "invalid_request_error" in str(info.value)
    assert "Web search options not supported with this model." in str(info.value)
    assert not info.value.transient
    assert model.last_attempts == 1 and len(replayer.requests) == 1


@replays("openai/pydantic-ai__test_openrouter_errors_raised.yaml")
def test_openrouter_three_429s_exhaust_the_sdk_retries() -> None:
    """No retry-after header: the SDK backs off 0.5 s then 1 s (less up to 25 % jitter), on virtual time."""
    replayer = Replayer([cassette("openai/pydantic-ai__test_openrouter_errors_raised.yaml")])
    client = openai.AsyncOpenAI(
        api_key="replay", base_url="https://openrouter.ai/api/v1", http_client=replayer.client()
    )
    assert client.max_retries == 2  # the SDK default, kept
    model = OpenAIChatModel(client)
    req = request("google/gemini-2.0-flash-exp:free", [system("Be helpful."), user("Tell me a joke.")])

    async def call() -> tuple[BaseException, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(RateLimited) as info:
            await model.complete(req)
        return info.value, loop.time() - start

    error, waited = run(call())
    assert isinstance(error, RateLimited) and error.transient and error.retry_after is None
    assert "429" in str(error) and "temporarily rate-limited upstream" in str(error)
    assert model.last_attempts == 3 and len(replayer.requests) == 3 and replayer.all_played
    assert error.attempts == 3  # on the error itself, for the agent's trace (http_attempts)
    assert [r.headers["x-stainless-retry-count"] for r in replayer.requests] == ["0", "1", "2"]
    assert 0.75 * 1.5 <= waited <= 1.5


# --- Anthropic -----------------------------------------------------------------------------------


@replays("anthropic/pydantic-ai__test_anthropic_model_instructions.yaml")
def test_anthropic_plain_text_with_system() -> None:
    replayer = Replayer([cassette("anthropic/pydantic-ai__test_anthropic_model_instructions.yaml")])
    model = anthropic_model(replayer)
    req = request(
        "claude-3-opus-latest",
        [system("You are a helpful assistant.\n\n"), user("What is the capital of France?")],
        max_tokens=4096,
    )
    r = run(model.complete(req))
    check(r, text="The capital of France is Paris.", stop="end_turn", usage=(20, 10, 0), model="claude-3-opus-20240229")
    assert model.last_attempts == 1 and replayer.all_played


@replays("anthropic/llm-anthropic__test_stream_events_text.yaml")
def test_anthropic_stream_text() -> None:
    replayer = Replayer([cassette("anthropic/llm-anthropic__test_stream_events_text.yaml")])
    model = anthropic_model(replayer, stream=True)
    r = run(model.complete(request("claude-haiku-4-5-20251001", [user("Say just hello")], max_tokens=8192)))
    check(r, text="Hello", stop="end_turn", usage=(10, 4, 0), model="claude-haiku-4-5-20251001")
    assert model.last_attempts == 1 and replayer.all_played


@replays("anthropic/pydantic-ai__test_request_stream_fallback_for_high_max_tokens.yaml")
def test_anthropic_stream_for_high_max_tokens() -> None:
    replayer = Replayer([cassette("anthropic/pydantic-ai__test_request_stream_fallback_for_high_max_tokens.yaml")])
    model = anthropic_model(replayer, stream=True)
    req = request("claude-sonnet-4-5", [user("What is 1+1? Answer with just the number.")], max_tokens=32000)
    check(run(model.complete(req)), text="2", stop="end_turn", usage=(20, 5, 0), model="claude-sonnet-4-5-20250929")
    assert replayer.all_played


@replays("anthropic/llm-anthropic__test_fixed_version_tool_chain_regression.yaml")
def test_anthropic_stream_tool_use_with_empty_input_then_answer() -> None:
    replayer = Replayer([cassette("anthropic/llm-anthropic__test_fixed_version_tool_chain_regression.yaml")])
    model = anthropic_model(replayer, stream=True)
    tools = (tool("fixed_version", "Return a fixed test version string", {"properties": {}, "type": "object"}),)
    history = [user("Use the fixed_version tool. Then tell me the version and make one short joke about it.")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("claude-haiku-4-5-20251001", history, tools, max_tokens=64000))
        follow(history, first, "0.32a0")
        return first, await model.complete(request("claude-haiku-4-5-20251001", history, tools, max_tokens=64000))

    first, second = run(chat())
    check(first, text="", calls=[("fixed_version", {})], stop="tool_use", usage=(563, 37, 0))
    assert first.tool_calls[0].id == "toolu_01UmKD1vMphVCN9vw8PEMk1q"
    check(second, contains=("The version is **0.32a0**.", "alpha"), stop="end_turn", usage=(617, 41, 0))
    assert replayer.all_played


@replays("anthropic/llm-anthropic__test_tools.yaml")
def test_anthropic_gzip_stream_two_parallel_tool_uses() -> None:
    replayer = Replayer([cassette("anthropic/llm-anthropic__test_tools.yaml")])
    model = anthropic_model(replayer, stream=True)
    tools = (tool("pelican_name_generator", "", {"properties": {}, "type": "object"}),)
    history = [user("Two names for a pet pelican")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("claude-haiku-4-5-20251001", history, tools, max_tokens=8192))
        # llm-anthropic sent an assistant text block of one space alongside the two tool_use blocks.
        follow(history, msgspec.structs.replace(first, text=" "), "Charles", "Sammy")
        return first, await model.complete(request("claude-haiku-4-5-20251001", history, tools, max_tokens=8192))

    first, second = run(chat())
    check(
        first,
        text="",
        calls=[("pelican_name_generator", {}), ("pelican_name_generator", {})],
        stop="tool_use",
        usage=(542, 62, 0),
    )
    assert len({c.id for c in first.tool_calls}) == 2
    check(second, contains=("**Charles**", "**Sammy**"), stop="end_turn", usage=(678, 82, 0))
    assert replayer.all_played


# pydantic-ai sends "is_error": false in each tool_result: compare everything but the messages.
NOT_MESSAGES = ("model", "tools", "system")


@replays("anthropic/pydantic-ai__test_anthropic_tool_output.yaml")
def test_anthropic_both_turns_use_tools() -> None:
    replayer = Replayer([cassette("anthropic/pydantic-ai__test_anthropic_tool_output.yaml")], body_keys=NOT_MESSAGES)
    model = anthropic_model(replayer)
    tools = (
        CITY_TOOLS[0],
        CITY_TOOLS[1].model_copy(update={"parameters": {**CITY_TOOLS[1].parameters, "title": "CityLocation"}}),
    )
    history = [user("What is the largest city in the user country?")]

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("claude-sonnet-4-5", history, tools, max_tokens=4096))
        follow(history, first, "Mexico")
        return first, await model.complete(request("claude-sonnet-4-5", history, tools, max_tokens=4096))

    first, second = run(chat())
    check(first, text="", calls=[("get_user_country", {})], stop="tool_use", usage=(445, 23, 0))
    check(
        second,
        calls=[("final_result", {"city": "Mexico City", "country": "Mexico"})],
        stop="tool_use",
        usage=(497, 56, 0),
        model="claude-sonnet-4-5-20250929",
    )
    assert replayer.all_played


FAMILY_SYSTEM = (
    "\n    Use the `retrieve_entity_info` tool to get information about a specific person.\n"
    "    If you need to use `retrieve_entity_info` to get information about multiple people, try\n"
    "    to call them in parallel as much as possible.\n"
    "    Think step by step and then provide a single most probable concise answer.\n    "
)


@replays("anthropic/pydantic-ai__test_multiple_parallel_tool_calls.yaml")
def test_anthropic_text_and_four_parallel_tool_uses() -> None:
    replayer = Replayer(
        [cassette("anthropic/pydantic-ai__test_multiple_parallel_tool_calls.yaml")], body_keys=NOT_MESSAGES
    )
    model = anthropic_model(replayer)
    schema = {
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "type": "object",
    }
    tools = (tool("retrieve_entity_info", "Get the knowledge about the given entity.", schema),)
    history = [system(FAMILY_SYSTEM), user("Alice, Bob, Charlie and Daisy are a family. Who is the youngest?")]
    facts = (
        "alice is bob's wife",
        "bob is alice's husband",
        "charlie is alice's son",
        "daisy is bob's daughter and charlie's younger sister",
    )

    async def chat() -> tuple[ModelResponse, ModelResponse]:
        first = await model.complete(request("claude-haiku-4-5", history, tools, max_tokens=4096))
        follow(history, first, *facts)
        return first, await model.complete(request("claude-haiku-4-5", history, tools, max_tokens=4096))

    first, second = run(chat())
    names = ["Alice", "Bob", "Charlie", "Daisy"]
    check(
        first,
        contains=("I'll help you find out who is the youngest",),
        calls=[("retrieve_entity_info", {"name": n}) for n in names],
        stop="tool_use",
        usage=(423, 202, 0),
    )
    assert len(first.tool_calls) == 4
    check(second, contains=("Daisy is the youngest",), stop="end_turn", usage=(771, 77, 0))
    # The four results went back as one user turn: check what was actually sent.
    sent = json.loads(replayer.requests[1].content)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][2]["content"]] == ["tool_result"] * 4
    assert replayer.all_played


@replays("anthropic/pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml")
def test_anthropic_400_is_bad_request() -> None:
    replayer = Replayer(
        [cassette("anthropic/pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml")]
    )
    model = anthropic_model(replayer)
    with pytest.raises(BadRequest) as info:
        run(model.complete(request("claude-opus-4-6", [user("What is 2+2?")], max_tokens=4096)))
    message = str(info.value)
    assert message.startswith("anthropic 400 invalid_request_error: ")
    assert "This model does not support effort level 'xhigh'" in message
    assert model.last_attempts == 1 and replayer.all_played


@replays("anthropic/pydantic-ai__test_anthropic_count_tokens_error.yaml")
def test_anthropic_count_tokens_404_is_not_found() -> None:
    replayer = Replayer([cassette("anthropic/pydantic-ai__test_anthropic_count_tokens_error.yaml")])
    model = anthropic_model(replayer)
    with pytest.raises(NotFound) as info:
        run(model.count_tokens(request("claude-does-not-exist", [user("hello")])))
    assert str(info.value) == "anthropic 404 not_found_error: model: claude-does-not-exist"
    assert model.last_attempts == 1 and replayer.all_played


# --- coverage and misses -------------------------------------------------------------------------


def test_every_real_cassette_is_replayed() -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for d in ("openai", "anthropic") for p in (REAL / d).glob("*.yaml")}
    assert on_disk, f"no cassettes under {REAL}"
    assert on_disk == COVERED


def test_unmatched_request_names_cassette_method_path_and_digest() -> None:
    path = cassette("openai/pydantic-ai__test_valid_response.yaml")
    replayer = Replayer([path])
    model = openai_model(replayer)
    req = request("gpt-4o", [user("What is the capital of Spain?")])
    with pytest.raises(ReplayMismatch) as info:  # openai lets transport errors of its own kind through
        run(model.complete(req))
    message = str(info.value)
    sent = json.dumps(request_params(req, stream=False))
    assert (
        f"pydantic-ai__test_valid_response.yaml matches POST /v1/chat/completions (body sha256 {body_digest(sent)})"
        in message
    )
    assert "closest: pydantic-ai__test_valid_response.yaml interactions[0]: body differs in messages" in message
    assert "\n" not in message and replayer.unplayed() == ["pydantic-ai__test_valid_response.yaml interactions[0]"]


def test_unmatched_request_through_anthropic_surfaces_in_the_connection_error() -> None:
    """The anthropic SDK wraps any transport exception as a connection error; the cause stays readable."""
    replayer = Replayer([cassette("anthropic/llm-anthropic__test_stream_events_text.yaml")])
    model = anthropic_model(replayer, stream=True)
    with pytest.raises(ModelConnectionError) as info:
        run(model.complete(request("claude-haiku-4-5-20251001", [user("Say just goodbye")], max_tokens=8192)))
    assert "ReplayMismatch: no unplayed interaction in llm-anthropic__test_stream_events_text.yaml" in str(info.value)


def test_each_interaction_is_served_once_in_order() -> None:
    path = cassette("openai/pydantic-ai__test_openrouter_errors_raised.yaml")
    replayer = Replayer([path], match_on=("method", "host", "path"))
    model = openai_model(replayer, base_url="https://openrouter.ai/api/v1")
    for _ in range(3):
        with pytest.raises(RateLimited):
            run(model.complete(request("any", [user("anything")])))
    assert replayer.served == [(path.name, 0), (path.name, 1), (path.name, 2)]
    with pytest.raises(ReplayMismatch, match="already played"):
        run(model.complete(request("any", [user("anything")])))
