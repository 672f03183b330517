"""The OpenAI Chat Completions adapter: agentlab's ModelClient over the ``openai`` SDK, native tools.

Why Chat Completions rather than the Responses API: it is the wire format OpenAI-compatible
endpoints (OpenRouter, vLLM, Ollama …) also speak, so one adapter serves them all.

The conversions are module functions, not methods, so tests can check them without a client.
The SDK keeps its own retries (``max_retries`` on the client); the number of HTTP requests it made
for a call is ``ModelResponse.attempts`` (or ``ModelError.attempts`` when the call failed), so the
agent's trace shows them as ``http_attempts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agentlab.errors import (
    BadRequest,
    ContentFiltered,
    MalformedResponse,
    ModelConnectionError,
    ModelError,
    ModelTimeout,
)
from agentlab.llm.providers.common import (
    error_detail,
    root_cause,
    sdk_call,
    status_error,
)
from agentlab.llm.types import Message, ModelRequest, ModelResponse, StopReason, ToolCall, ToolDefinition, Usage
from agentlab.llm.wire.common import parse_arguments, raw_arguments  # shared by both ends
from agentlab.llm.wire.headers import metadata_headers

PROVIDER = "openai"

_STOP: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


# --- request -------------------------------------------------------------------------------------


def to_openai_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """agentlab messages → Chat Completions messages (system/user/assistant+tool_calls/tool).

    An assistant turn that only calls tools carries no ``content`` key, as the SDKs send it.
    Arguments go back verbatim (``raw_arguments``) so the model sees exactly what it wrote.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            if not m.tool_call_id:
                raise BadRequest(f"{PROVIDER}: a tool message needs the tool_call_id it answers")
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            continue
        item: dict[str, Any] = {"role": m.role}
        if m.content or not m.tool_calls:
            item["content"] = m.content
        if m.tool_calls:
            item["tool_calls"] = [
                {
                    "type": "function",
                    "id": c.id,
                    "function": {"name": c.name, "arguments": raw_arguments(c)},
                }
                for c in m.tool_calls
            ]
        if m.name:
            item["name"] = m.name
        out.append(item)
    return out


def to_openai_tools(tools: Iterable[ToolDefinition], *, strict: bool = False) -> list[dict[str, Any]]:
    """Tool definitions → ``{"type": "function", "function": {...}}``; ``strict`` turns on structured outputs."""
    result = []
    for t in tools:
        function: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": t.parameters}
        if strict:
            function["strict"] = True
        result.append({"type": "function", "function": function})
    return result


def request_params(
    request: ModelRequest,
    *,
    stream: bool,
    strict_tools: bool = False,
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create``. ``request.metadata`` is never sent."""
    params: dict[str, Any] = {
        "model": request.model,
        "messages": to_openai_messages(request.messages),
        max_tokens_param: request.max_tokens,
    }
    if request.tools:
        params["tools"] = to_openai_tools(request.tools, strict=strict_tools)
    if request.response_format == "json":
        params["response_format"] = {"type": "json_object"}
    if stream:
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
    return params


# --- response ------------------------------------------------------------------------------------


def _stop_reason(finish: str | None, has_calls: bool) -> StopReason:
    if finish is None:
        # Some OpenAI-compatible servers end a tool-call stream without a finish_reason.
        return "tool_use" if has_calls else "other"
    return _STOP.get(finish, "other")


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
    )


def _tool_call(call: Any) -> ToolCall:
    if getattr(call, "type", "function") == "custom":  # free-text custom tools: never JSON
        return ToolCall(id=call.id, name=call.custom.name, arguments=None, raw_arguments=call.custom.input)
    raw = call.function.arguments or ""
    return ToolCall(id=call.id, name=call.function.name, arguments=parse_arguments(raw), raw_arguments=raw)


# The pre-tools ``function_call`` answer carries no id; the one call it holds gets this one.
LEGACY_CALL_ID = "function_call"


def _legacy_call(function_call: Any) -> ToolCall | None:
    """OpenAI's pre-tools answer (``message.function_call``: name, arguments) as one ToolCall."""
    name = getattr(function_call, "name", None)
    if not name:
        return None
    raw = getattr(function_call, "arguments", None) or ""
    return ToolCall(id=LEGACY_CALL_ID, name=name, arguments=parse_arguments(raw), raw_arguments=raw)


def _filtered(choice: Any) -> ContentFiltered:
    results = getattr(choice, "content_filter_results", None)  # Azure's extra field, when present
    if not isinstance(results, dict):
        results = {}
    hit = sorted(k for k, v in results.items() if isinstance(v, dict) and v.get("filtered"))
    detail = f" ({', '.join(hit)})" if hit else ""
    return ContentFiltered(f"{PROVIDER}: finish_reason content_filter with no message: the answer was withheld{detail}")


def from_openai_completion(completion: ChatCompletion, *, fallback_model: str = "") -> ModelResponse:
    """A ChatCompletion → ModelResponse (first choice; a refusal's text becomes the answer text).

    A choice with no message is Azure's content filter (``finish_reason: content_filter``):
    :class:`ContentFiltered`; for any other reason the body is malformed. A legacy
    ``function_call`` answer becomes one tool call.
    """
    choices = getattr(completion, "choices", None)
    error = getattr(completion, "error", None)
    if isinstance(error, dict) and not choices:
        # OpenAI-compatible gateways (OpenRouter) can answer 200 with an error body instead.
        kind, message = error_detail({"error": error})
        code = error.get("code")
        raise status_error(PROVIDER, code if isinstance(code, int) else None, kind, message, None)
    if not isinstance(completion, ChatCompletion) or not choices:
        raise MalformedResponse(f"{PROVIDER}: response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    finish = getattr(choice, "finish_reason", None)
    if message is None:
        if finish == "content_filter":
            raise _filtered(choice)
        raise MalformedResponse(f"{PROVIDER}: the first choice has no message (finish_reason {finish})")
    calls = tuple(_tool_call(c) for c in message.tool_calls or ())
    if not calls and (legacy := _legacy_call(getattr(message, "function_call", None))) is not None:
        calls = (legacy,)
    refusal = getattr(message, "refusal", None)
    stop = "refusal" if refusal else _stop_reason(finish, bool(calls))
    return ModelResponse(
        model=getattr(completion, "model", None) or fallback_model,
        text=message.content or refusal or "",
        tool_calls=calls,
        stop_reason=stop,
        usage=_usage(getattr(completion, "usage", None)),
    )


class ChatStreamAssembler:
    """Folds ``chat.completion.chunk`` events into the ModelResponse a non-streamed call would give.

    Tool calls arrive as deltas keyed by ``index``: the id and name come once (some servers repeat
    them, so they are set, not appended), the argument text is concatenated. A legacy
    ``function_call`` delta is the one call at index 0. Chunks with no choices or a choice with no
    ``delta`` (Azure's prompt and content filter annotations, openai-python#1677) add nothing.
    """

    def __init__(self, fallback_model: str = "") -> None:
        self.model = fallback_model
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage = Usage()

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices or ():
            if getattr(choice, "index", 0) != 0:
                continue
            finish = getattr(choice, "finish_reason", None)
            if finish is not None:
                self.finish = finish
            delta = getattr(choice, "delta", None)
            if delta is None:  # Azure: content-filter annotations only, nothing to add
                continue
            if delta.content:
                self.text.append(delta.content)
            if getattr(delta, "refusal", None):
                self.refusal.append(delta.refusal)
            for d in delta.tool_calls or ():
                slot = self.calls.setdefault(d.index, {"id": "", "name": "", "args": []})
                slot["id"] = slot["id"] or d.id or ""
                if d.function is not None:
                    slot["name"] = slot["name"] or d.function.name or ""
                    if d.function.arguments:
                        slot["args"].append(d.function.arguments)
            legacy = getattr(delta, "function_call", None)
            if legacy is not None and not delta.tool_calls:  # the pre-tools answer: one call, no id
                slot = self.calls.setdefault(0, {"id": LEGACY_CALL_ID, "name": "", "args": []})
                slot["name"] = slot["name"] or legacy.name or ""
                if legacy.arguments:
                    slot["args"].append(legacy.arguments)

    def result(self) -> ModelResponse:
        calls = []
        for _, slot in sorted(self.calls.items()):
            raw = "".join(slot["args"])
            calls.append(ToolCall(id=slot["id"], name=slot["name"], arguments=parse_arguments(raw), raw_arguments=raw))
        refusal = "".join(self.refusal)
        return ModelResponse(
            model=self.model,
            text="".join(self.text) or refusal,
            tool_calls=tuple(calls),
            stop_reason="refusal" if refusal else _stop_reason(self.finish, bool(calls)),
            usage=self.usage,
        )


# --- errors --------------------------------------------------------------------------------------


def map_openai_error(err: openai.OpenAIError) -> ModelError:
    """One SDK exception → one agentlab ModelError (timeouts before connection errors: a subclass)."""
    if isinstance(err, openai.APITimeoutError):
        return ModelTimeout(f"{PROVIDER}: request timed out")
    if isinstance(err, openai.APIConnectionError):
        cause = root_cause(err)
        return ModelConnectionError(f"{PROVIDER}: {err.message}" + (f" ({cause})" if cause else ""))
    if isinstance(err, openai.APIResponseValidationError):
        return MalformedResponse(f"{PROVIDER} {err.status_code}: {err.message}")
    if isinstance(err, openai.APIStatusError):
        kind, message = error_detail(err.body)
        # The SDK hands over the inner ``error`` object as body; its type may be missing (OpenRouter).
        kind = kind or err.type
        return status_error(PROVIDER, err.status_code, kind, message or err.message, err.response.headers)
    if isinstance(err, openai.APIError):  # an error event inside a 200 stream
        kind, message = error_detail({"error": err.body})
        return status_error(PROVIDER, None, kind or err.type, message or err.message, None)
    return ModelConnectionError(f"{PROVIDER}: {type(err).__name__}: {err}")


# --- the client ----------------------------------------------------------------------------------


class OpenAIChatModel:
    """ModelClient for OpenAI Chat Completions (and compatible endpoints) with native tool calling.

    ``stream=True`` reads the server-sent events and assembles the same ModelResponse.
    ``metadata_headers=True`` sends ``request.metadata`` (scenario, episode) as ``x-agentlab-*``
    headers, for agentlab's own transports (simulated endpoint, cassettes, HTTP faults); it is off
    by default and a real provider never receives them (see :mod:`agentlab.llm.wire.headers`).
    The HTTP attempts the SDK made for a call (its own retries included) are on the response's
    ``attempts`` or the raised error's; ``last_attempts`` repeats the last call's, or None if no
    request was sent.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        stream: bool = False,
        strict_tools: bool = False,
        max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
        metadata_headers: bool = False,
    ) -> None:
        self.client = client
        self.stream = stream
        self.strict_tools = strict_tools
        self.max_tokens_param = max_tokens_param
        self.metadata_headers = metadata_headers
        self.last_attempts: int | None = None

    async def complete(self, request: ModelRequest) -> ModelResponse:
        params = request_params(
            request, stream=self.stream, strict_tools=self.strict_tools, max_tokens_param=self.max_tokens_param
        )
        if self.metadata_headers and (headers := metadata_headers(request.metadata)):
            params["extra_headers"] = headers
        loop = asyncio.get_running_loop()
        started = loop.time()
        response, attempts = await sdk_call(
            self,
            PROVIDER,
            lambda: self.client.chat.completions.with_raw_response.create(**params),
            lambda raw: self._read(raw, request.model),
            openai.OpenAIError,
            map_openai_error,
        )
        response.latency_s = loop.time() - started
        response.attempts = attempts
        return response

    async def _read(self, raw: Any, model: str) -> ModelResponse:
        if self.stream:
            assembler = ChatStreamAssembler(model)
            async with raw.parse() as events:
                async for chunk in events:
                    assembler.add(chunk)
            return assembler.result()
        return from_openai_completion(raw.parse(), fallback_model=model)  # may raise ModelError: no choices
