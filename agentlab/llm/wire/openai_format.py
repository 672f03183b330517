"""The OpenAI Chat Completions wire format, server side: request JSON in, response JSON or SSE out.

The provider adapter (``agentlab.llm.providers.openai``) is the client side of the same format; this
module is its mirror image, so the simulated endpoint can sit under the real ``openai`` SDK. The
shapes follow recorded traffic from api.openai.com (``shared/real-cassettes/openai``): a
``chat.completion`` object with ``choices[0].message`` and ``usage`` (with the token-details
objects), or a stream of ``chat.completion.chunk`` events ending in ``data: [DONE]``, with a final
usage-only chunk when ``stream_options.include_usage`` is set.

Parsing keeps what a model would see: roles, text, tool calls with their *verbatim* argument text,
tool results by call id, tool definitions. ``ToolDefinition.tokens`` is computed exactly as the tool
registry does, so prompt sizes (and so usage and cost) match the in-process simulated path.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentlab.llm.types import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from agentlab.llm.wire.common import ARGUMENT_CHUNK, WireError, parse_arguments, pieces, raw_arguments, tool_definition


def _text(content: Any) -> str:
    """Message content: a string, or a list of parts of which the text parts count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise WireError(400, "invalid_request_error", "message content must be a string or a list of parts")


def parse_messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise WireError(400, "invalid_request_error", "'messages' must be a non-empty array", param="messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise WireError(400, "invalid_request_error", f"messages[{i}]: unknown role", param=f"messages[{i}]")
        role = "system" if m["role"] == "developer" else m["role"]
        if role == "tool":
            if not m.get("tool_call_id"):
                raise WireError(400, "invalid_request_error", f"messages[{i}]: a tool message needs tool_call_id")
            out.append(Message(role="tool", content=_text(m.get("content")), tool_call_id=m["tool_call_id"]))
            continue
        calls = []
        for c in m.get("tool_calls") or ():
            function = c.get("function") or {}
            raw_args = function.get("arguments") or ""
            calls.append(
                ToolCall(
                    id=c.get("id", ""),
                    name=function.get("name", ""),
                    arguments=parse_arguments(raw_args),
                    raw_arguments=raw_args,
                )
            )
        out.append(Message(role=role, content=_text(m.get("content")), tool_calls=tuple(calls), name=m.get("name")))
    return tuple(out)


def parse_tools(raw: Any) -> tuple[ToolDefinition, ...]:
    tools = []
    for t in raw or ():
        function = t.get("function") if isinstance(t, dict) else None
        if t.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise WireError(400, "invalid_request_error", "tools: only function tools are supported", param="tools")
        tools.append(tool_definition(function["name"], function.get("description", ""), function.get("parameters", {})))
    return tuple(tools)


def parse_request(body: dict[str, Any], tier_of: dict[str, str], metadata: dict[str, str]) -> ModelRequest:
    """A Chat Completions request body → ModelRequest; the tier comes from the model name."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(400, "invalid_request_error", "you must provide a model parameter", param="model")
    if model not in tier_of:
        raise WireError(
            404,
            "invalid_request_error",
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    response_format = body.get("response_format") or {}
    json_mode = isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")
    return ModelRequest(
        tier=tier_of[model],
        model=model,
        messages=parse_messages(body.get("messages")),
        tools=parse_tools(body.get("tools")),
        response_format="json" if json_mode else "text",
        max_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens") or 1024),
        metadata=metadata,
    )


# --- responses -------------------------------------------------------------------------------------


def _finish_reason(response: ModelResponse) -> str:
    if response.tool_calls:
        return "tool_calls"
    return {"max_tokens": "length", "refusal": "content_filter"}.get(response.stop_reason, "stop")


def usage_object(response: ModelResponse) -> dict[str, Any]:
    u = response.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": raw_arguments(call)},
    }


def render_completion(response: ModelResponse, *, completion_id: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object, shaped as api.openai.com returns it."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.text if response.text or not response.tool_calls else None,
    }
    if response.tool_calls:
        message["tool_calls"] = [_tool_call(c) for c in response.tool_calls]
    message["refusal"] = None
    message["annotations"] = []
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(response)}],
        "usage": usage_object(response),
        "service_tier": "default",
        "system_fingerprint": "fp_agentlab_sim",
    }


def render_stream(
    response: ModelResponse, *, completion_id: str, created: int, include_usage: bool, obfuscation: bool = True
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer, in order (without ``[DONE]``).

    OpenAI pads each chunk with an ``obfuscation`` string of random length (so chunk sizes do not
    reveal token lengths) unless ``stream_options.include_obfuscation`` is false; ours is fixed.
    """
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": response.model,
        "service_tier": "default",
        "system_fingerprint": "fp_agentlab_sim",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            out["usage"] = None
        if obfuscation:
            out["obfuscation"] = "agentlab"
        return out

    def call_start(i: int, call: ToolCall) -> dict[str, Any]:
        return {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}

    calls = response.tool_calls
    chunks: list[dict[str, Any]] = []
    started = -1
    if response.text or not calls:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(chunk({"content": piece}) for piece in pieces(response.text))
    else:
        first = {"role": "assistant", "content": None, "tool_calls": [call_start(0, calls[0])], "refusal": None}
        chunks.append(chunk(first))
        started = 0
    for i, call in enumerate(calls):
        if i > started:
            chunks.append(chunk({"tool_calls": [call_start(i, call)]}))
        raw = _tool_call(call)["function"]["arguments"]
        chunks.extend(
            chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            for piece in pieces(raw, ARGUMENT_CHUNK)
        )
    chunks.append(chunk({}, _finish_reason(response)))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage_object(response)})
        if obfuscation:
            chunks[-1]["obfuscation"] = "agentlab"
    return chunks


def sse(chunks: list[dict[str, Any]]) -> bytes:
    """Server-sent events as api.openai.com sends them: ``data:`` lines, blank-line separated."""
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def error_body(status: int, kind: str, message: str, *, code: str | None = None, param: str | None = None) -> bytes:
    """``{"error": {message, type, param, code}}``, the shape of every OpenAI error response."""
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


# The error ``type``/``code`` OpenAI sends with each status agentlab injects.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM). Please try again later.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The server is overloaded, please try again later."),
}
