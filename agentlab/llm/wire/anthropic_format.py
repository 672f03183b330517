"""The Anthropic Messages wire format, server side: request JSON in, response JSON or SSE out.

The mirror image of the adapter in ``agentlab.llm.providers.anthropic``. Shapes follow recorded
traffic from api.anthropic.com (``shared/real-cassettes/anthropic``): a ``message`` object with
content blocks and ``usage`` (cache fields included), or the event stream ``message_start`` →
(``content_block_start`` → ``content_block_delta``… → ``content_block_stop``)… → ``message_delta`` →
``message_stop``, with a ``ping`` after the first block starts, each as ``event:``/``data:`` lines.

Parsing undoes what the adapter does: the ``system`` parameter becomes a system message (and the
adapter's JSON instruction, if it ends the system prompt, becomes ``response_format="json"``); a
user turn's ``tool_result`` blocks become tool messages; an assistant turn's ``tool_use`` blocks
become tool calls. Arguments are re-serialised compactly, as the simulated model writes them.

One deliberate difference from the simulated model's own output: a non-streamed Messages response
always carries a tool call's ``input`` as a JSON object (the real API parses it server-side), so a
simulated *malformed JSON* mistake is sent as ``{}`` there; a streamed one sends the broken text as
``input_json_delta`` fragments, as a model cut off mid-arguments would.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentlab.llm.types import Message, ModelRequest, ModelResponse, ToolDefinition
from agentlab.llm.wire.common import (
    ARGUMENT_CHUNK,
    WireError,
    pieces,
    raw_arguments,
    tool_call_from_input,
    tool_definition,
)

# Must equal agentlab.llm.providers.anthropic.JSON_INSTRUCTION (a test checks): Anthropic has no JSON
# mode, so the adapter asks for JSON in the system prompt, and the endpoint reads that back.
JSON_INSTRUCTION = "Respond with a single JSON object and nothing else: no prose, no code fences."


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise WireError(400, "invalid_request_error", f"{where}: content must be a string or a list of blocks")
    return content


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def parse_messages(system: Any, raw: Any) -> tuple[tuple[Message, ...], bool]:
    """(messages, json mode) from the ``system`` parameter and the alternating turns."""
    if not isinstance(raw, list) or not raw:
        raise WireError(400, "invalid_request_error", "messages: at least one message is required")
    out: list[Message] = []
    system_text = _result_text(system) if system is not None else ""
    json_mode = system_text.endswith(JSON_INSTRUCTION)
    if json_mode:
        system_text = system_text[: -len(JSON_INSTRUCTION)].rstrip("\n")
    if system_text:
        out.append(Message(role="system", content=system_text))
    for i, turn in enumerate(raw):
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ("user", "assistant"):
            raise WireError(400, "invalid_request_error", f"messages.{i}.role: must be 'user' or 'assistant'")
        blocks = _blocks(turn.get("content"), f"messages.{i}")
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        if role == "assistant":
            calls = tuple(
                tool_call_from_input(b.get("id", ""), b.get("name", ""), b.get("input"))
                for b in blocks
                if b.get("type") == "tool_use"
            )
            out.append(Message(role="assistant", content=text, tool_calls=calls))
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append(
                    Message(role="tool", content=_result_text(b.get("content")), tool_call_id=b.get("tool_use_id"))
                )
        if text:
            out.append(Message(role="user", content=text))
    return tuple(out), json_mode


def parse_tools(raw: Any) -> tuple[ToolDefinition, ...]:
    tools = []
    for i, t in enumerate(raw or ()):
        if not isinstance(t, dict) or not t.get("name") or not isinstance(t.get("input_schema"), dict):
            raise WireError(400, "invalid_request_error", f"tools.{i}: a tool needs 'name' and 'input_schema'")
        tools.append(tool_definition(t["name"], t.get("description", ""), t["input_schema"]))
    return tuple(tools)


def parse_request(body: dict[str, Any], tier_of: dict[str, str], metadata: dict[str, str]) -> ModelRequest:
    """A Messages request body → ModelRequest; the tier comes from the model name."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(400, "invalid_request_error", "model: Field required")
    if model not in tier_of:
        raise WireError(404, "not_found_error", f"model: {model}")
    if not isinstance(body.get("max_tokens"), int):
        raise WireError(400, "invalid_request_error", "max_tokens: Field required")
    messages, json_mode = parse_messages(body.get("system"), body.get("messages"))
    return ModelRequest(
        tier=tier_of[model],
        model=model,
        messages=messages,
        tools=parse_tools(body.get("tools")),
        response_format="json" if json_mode else "text",
        max_tokens=body["max_tokens"],
        metadata=metadata,
    )


# --- responses -------------------------------------------------------------------------------------


def _stop_reason(response: ModelResponse) -> str:
    if response.tool_calls:
        return "tool_use"
    return {"max_tokens": "max_tokens", "stop_sequence": "stop_sequence", "refusal": "refusal"}.get(
        response.stop_reason, "end_turn"
    )


def usage_object(response: ModelResponse, *, output_tokens: int | None = None) -> dict[str, Any]:
    """Anthropic counts cache reads apart from ``input_tokens``; agentlab counts them inside."""
    u = response.usage
    return {
        "input_tokens": u.input_tokens - u.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def render_message(response: ModelResponse, *, message_id: str) -> dict[str, Any]:
    """A ``message`` object, shaped as api.anthropic.com returns it."""
    content: list[dict[str, Any]] = []
    if response.text:
        content.append({"type": "text", "text": response.text})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}} for c in response.tool_calls
    )
    return {
        "model": response.model,
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": _stop_reason(response),
        "stop_sequence": None,
        "stop_details": None,
        "usage": usage_object(response),
    }


def render_stream(response: ModelResponse, *, message_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of a streamed answer, in order."""
    start = {**render_message(response, message_id=message_id), "content": [], "stop_reason": None}
    start["usage"] = usage_object(response, output_tokens=1)
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if response.text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces(response.text)])
    for c in response.tool_calls:
        raw = raw_arguments(c)
        deltas = [{"type": "input_json_delta", "partial_json": ""}]
        deltas += [{"type": "input_json_delta", "partial_json": p} for p in pieces(raw, ARGUMENT_CHUNK)]
        block({"type": "tool_use", "id": c.id, "name": c.name, "input": {}}, deltas)
    u = response.usage
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(response), "stop_sequence": None, "stop_details": None},
                "usage": {
                    "input_tokens": u.input_tokens - u.cached_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": u.cached_tokens,
                    "output_tokens": u.output_tokens,
                },
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Server-sent events as api.anthropic.com sends them: ``event:`` and ``data:`` lines."""
    return b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(data)) for name, data in events)


def error_body(kind: str, message: str, *, request_id: str | None = None) -> bytes:
    """``{"type": "error", "error": {type, message}, "request_id": ...}``, every Anthropic error."""
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


# The error ``type`` Anthropic sends with each status agentlab injects.
ERRORS: dict[int, tuple[str, str]] = {
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def count_tokens_body(request: ModelRequest) -> dict[str, Any]:
    return {"input_tokens": request.prompt_tokens()}
