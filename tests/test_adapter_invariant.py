"""Invariant: whatever a provider answers, only a ModelError (or a ModelResponse) leaves an adapter.

The agent's recovery decides by error type; an AttributeError from an unexpected shape would crash
the episode instead. Hypothesis generates answers around the real shapes — valid bodies with fields
dropped, retyped or replaced by arbitrary JSON, event streams of such chunks (cut short or not),
garbage bytes, any status and content type — and serves them through ``httpx2.MockTransport`` below
the real SDKs, streamed and not.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_providers import anthropic_model, ask, openai_model, run

from agentlab.errors import ModelError
from agentlab.llm.types import ModelResponse

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def maybe(valid: Any, *others: Any) -> st.SearchStrategy[Any]:
    """Mostly the valid value (or one of the other real ones), sometimes any JSON at all."""
    return st.one_of(st.sampled_from([valid, *others]), st.sampled_from([valid, *others]), JSON)


def shaped(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object whose every field may be missing."""
    return st.fixed_dictionaries({}, optional=fields)


# --- OpenAI Chat Completions ----------------------------------------------------------------------

FUNCTION = shaped(name=maybe("get_weather", "", None), arguments=maybe('{"city": "Paris"}', '{"ci', "", None))
TOOL_CALL = shaped(
    index=maybe(0, 1),
    id=maybe("call_1", None),
    type=maybe("function", "custom"),
    function=FUNCTION | JSON,
    custom=shaped(name=maybe("t"), input=maybe("x")) | JSON,
)
MESSAGE = shaped(
    role=maybe("assistant"),
    content=maybe("hello", None, ""),
    refusal=maybe(None, "no"),
    tool_calls=st.lists(TOOL_CALL, max_size=2) | JSON,
    function_call=FUNCTION | JSON,
)
FINISH = maybe("stop", "tool_calls", "function_call", "length", "content_filter", None)
USAGE = shaped(prompt_tokens=maybe(5, None), completion_tokens=maybe(2, None), prompt_tokens_details=JSON) | JSON
CHOICE = shaped(
    index=maybe(0, 1),
    message=MESSAGE | JSON,
    delta=MESSAGE | JSON,
    finish_reason=FINISH,
    content_filter_results=JSON,
)
OPENAI_BODY = shaped(
    id=maybe("c1", ""),
    object=maybe("chat.completion", "chat.completion.chunk", ""),
    model=maybe("gpt-4o", "", None),
    choices=st.lists(CHOICE, max_size=2) | JSON,
    usage=USAGE,
    error=JSON,
)

# --- Anthropic Messages ---------------------------------------------------------------------------

BLOCK = shaped(
    type=maybe("text", "tool_use", "thinking", "server_tool_use"),
    text=maybe("hello", None),
    id=maybe("toolu_1"),
    name=maybe("get_weather"),
    input=maybe({"city": "Paris"}, {}),
)
ANTHROPIC_USAGE = (
    shaped(input_tokens=maybe(10, None), output_tokens=maybe(3, None), cache_read_input_tokens=maybe(None, 2)) | JSON
)
ANTHROPIC_BODY = shaped(
    id=maybe("msg_1"),
    type=maybe("message", "error"),
    role=maybe("assistant"),
    model=maybe("claude-x", None),
    content=st.lists(BLOCK, max_size=3) | JSON,
    stop_reason=maybe("end_turn", "tool_use", "max_tokens", "refusal", None),
    usage=ANTHROPIC_USAGE,
    error=JSON,
)
DELTA = shaped(
    type=maybe("text_delta", "input_json_delta", "thinking_delta"),
    text=maybe("lo", None),
    partial_json=maybe('{"city":', '"Rome"}', None),
    stop_reason=maybe("end_turn", None),
)
ANTHROPIC_EVENT = st.one_of(
    shaped(type=st.just("message_start"), message=ANTHROPIC_BODY | JSON),
    shaped(type=st.just("content_block_start"), index=maybe(0, 1), content_block=BLOCK | JSON),
    shaped(type=st.just("content_block_delta"), index=maybe(0, 1, 5), delta=DELTA | JSON),
    shaped(type=st.just("content_block_stop"), index=maybe(0)),
    shaped(type=st.just("message_delta"), delta=DELTA | JSON, usage=ANTHROPIC_USAGE),
    shaped(type=st.just("message_stop")),
    shaped(type=st.just("error"), error=JSON),
    shaped(type=st.just("ping")),
    JSON,
)

# --- what goes over the wire ----------------------------------------------------------------------

STATUS = st.sampled_from([200, 200, 200, 200, 201, 400, 404, 408, 409, 429, 500, 529])
CONTENT_TYPE = st.sampled_from(["application/json", "text/event-stream", "text/plain", ""])


def sse_body(events: list[Any], done: bool, cut: int) -> bytes:
    lines = []
    for event in events:
        name = event.get("type") if isinstance(event, dict) and isinstance(event.get("type"), str) else None
        if name:
            lines.append(f"event: {name}")
        lines.append(f"data: {json.dumps(event)}\n")
    if done:
        lines.append("data: [DONE]\n")
    body = ("\n".join(lines) + "\n").encode()
    return body[: len(body) - cut] if cut else body


@st.composite
def answers(draw: st.DrawFn, body: st.SearchStrategy[Any], event: st.SearchStrategy[Any]) -> httpx2.Response:
    """One HTTP answer: a shaped JSON body, a shaped event stream, or garbage; any status and type."""
    kind = draw(st.sampled_from(["json", "json", "sse", "sse", "garbage"]))
    if kind == "json":
        content = json.dumps(draw(body)).encode()
        default_type = "application/json"
    elif kind == "sse":
        events = draw(st.lists(event, max_size=6))
        content = sse_body(events, draw(st.booleans()), draw(st.integers(0, 3) | st.just(0)))
        default_type = "text/event-stream"
    else:
        content = draw(st.binary(max_size=40))
        default_type = draw(CONTENT_TYPE)
    content_type = draw(st.just(default_type) | CONTENT_TYPE)
    headers = {"content-type": content_type} if content_type else {}
    if draw(st.booleans()):
        headers["retry-after"] = draw(st.sampled_from(["1", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]))
    return httpx2.Response(draw(STATUS), content=content, headers=headers)


def check(model: Any) -> None:
    try:
        result = run(model.complete(ask()))
    except ModelError:
        return
    assert isinstance(result, ModelResponse)


# Derandomized: the same examples every run, so a red build reproduces.
SETTINGS = settings(
    max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@SETTINGS
@given(answer=answers(OPENAI_BODY, OPENAI_BODY))
def test_openai_adapter_raises_only_model_errors(stream: bool, answer: httpx2.Response) -> None:
    check(openai_model(lambda _: answer, stream=stream))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@SETTINGS
@given(answer=answers(ANTHROPIC_BODY, ANTHROPIC_EVENT))
def test_anthropic_adapter_raises_only_model_errors(stream: bool, answer: httpx2.Response) -> None:
    check(anthropic_model(lambda _: answer, stream=stream))
