"""The Anthropic Messages adapter: agentlab's ModelClient over the ``anthropic`` SDK, native tools.

Anthropic's shape differs from agentlab's chat list: the system prompt is a parameter, a tool call
is an assistant ``tool_use`` block, a tool result is a ``tool_result`` block in a *user* turn, and
turns must alternate — so consecutive tool results (and anything else on the same side) are merged
into one turn. There is no JSON mode: ``response_format="json"`` becomes an instruction.

Usage is normalised to agentlab's convention (``input_tokens`` includes cached tokens, as OpenAI
reports it and as the tier price table assumes); Anthropic reports them separately.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import anthropic
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent

from agentlab.errors import BadRequest, MalformedResponse, ModelConnectionError, ModelError, ModelTimeout
from agentlab.llm.providers.common import (
    StreamRequired,
    error_detail,
    root_cause,
    sdk_call,
    status_error,
)
from agentlab.llm.types import Message, ModelRequest, ModelResponse, StopReason, ToolCall, ToolDefinition, Usage
from agentlab.llm.wire.anthropic_format import JSON_INSTRUCTION  # what the endpoint recognises
from agentlab.llm.wire.common import parse_arguments, tool_call_from_input  # shared by both ends
from agentlab.llm.wire.headers import metadata_headers

PROVIDER = "anthropic"

_STOP: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
}


# --- request -------------------------------------------------------------------------------------


def to_anthropic_messages(messages: Iterable[Message]) -> tuple[str, list[dict[str, Any]]]:
    """agentlab messages → (system prompt, alternating user/assistant turns of content blocks)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.append(m.content)
            continue
        if m.role == "tool":
            if not m.tool_call_id:
                raise BadRequest(f"{PROVIDER}: a tool message needs the tool_call_id it answers")
            role = "user"
            blocks: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            ]
        else:
            role = m.role
            blocks = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                # Anthropic needs an object; unparseable arguments (None) go back as an empty one.
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
                for c in m.tool_calls
            ]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), turns


def to_anthropic_tools(tools: Iterable[ToolDefinition]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def request_params(request: ModelRequest, *, stream: bool) -> dict[str, Any]:
    """Keyword arguments for ``messages.create``. ``request.metadata`` is never sent."""
    system, turns = to_anthropic_messages(request.messages)
    if request.response_format == "json":
        system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
    params: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens, "messages": turns}
    if system:
        params["system"] = system
    if request.tools:
        params["tools"] = to_anthropic_tools(request.tools)
    if stream:
        params["stream"] = True
    return params


# --- response ------------------------------------------------------------------------------------


def _usage(usage: Any, previous: Usage | None = None) -> Usage:
    """Anthropic usage → agentlab Usage; in a stream, fields a ``message_delta`` omits keep their value."""
    prev = previous or Usage()
    cache_read = getattr(usage, "cache_read_input_tokens", None)
    cache_write = getattr(usage, "cache_creation_input_tokens", None)
    fresh = getattr(usage, "input_tokens", None)
    if fresh is None and cache_read is None and cache_write is None:
        input_tokens = prev.input_tokens
    else:
        input_tokens = (fresh or 0) + (cache_read or 0) + (cache_write or 0)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=getattr(usage, "output_tokens", None) or prev.output_tokens,
        cached_tokens=cache_read if cache_read is not None else prev.cached_tokens,
    )


def _stop_reason(reason: str | None) -> StopReason:
    return _STOP.get(reason or "", "other")


def from_anthropic_message(message: AnthropicMessage, *, fallback_model: str = "") -> ModelResponse:
    """A Message → ModelResponse: text blocks joined, tool_use blocks in order (parallel calls)."""
    content = getattr(message, "content", None)
    if not isinstance(message, AnthropicMessage) or content is None:
        raise MalformedResponse(f"{PROVIDER}: response has no content")
    text = "".join(b.text for b in content if b.type == "text")
    calls = tuple(tool_call_from_input(b.id, b.name, b.input) for b in content if b.type == "tool_use")
    return ModelResponse(
        model=getattr(message, "model", None) or fallback_model,
        text=text,
        tool_calls=calls,
        stop_reason=_stop_reason(message.stop_reason),
        usage=_usage(message.usage),
    )


class MessageStreamAssembler:
    """Folds raw Messages stream events into the ModelResponse a non-streamed call would give.

    A ``tool_use`` block starts with its id, name and (usually empty) input; its arguments then
    arrive as ``input_json_delta`` fragments that are concatenated and parsed at the end.
    """

    def __init__(self, fallback_model: str = "") -> None:
        self.model = fallback_model
        self.blocks: dict[int, dict[str, Any]] = {}
        self.stop: str | None = None
        self.usage = Usage()

    def add(self, event: RawMessageStreamEvent) -> None:
        if event.type == "message_start":
            self.model = event.message.model or self.model
            self.usage = _usage(event.message.usage)
        elif event.type == "content_block_start":
            block = event.content_block
            slot: dict[str, Any] = {"type": block.type, "text": [], "json": []}
            if block.type == "text":
                slot["text"].append(block.text)
            elif block.type == "tool_use":
                slot.update(id=block.id, name=block.name, input=block.input)
            self.blocks[event.index] = slot
        elif event.type == "content_block_delta":
            slot = self.blocks.setdefault(event.index, {"type": "unknown", "text": [], "json": []})
            if event.delta.type == "text_delta":
                slot["text"].append(event.delta.text)
            elif event.delta.type == "input_json_delta":
                slot["json"].append(event.delta.partial_json)
        elif event.type == "message_delta":
            self.stop = event.delta.stop_reason or self.stop
            self.usage = _usage(event.usage, self.usage)

    def result(self) -> ModelResponse:
        if self.stop is None:  # no message_delta with a stop reason: the stream was cut off mid-way
            raise MalformedResponse(f"{PROVIDER}: the stream ended without a stop reason (truncated)")
        text: list[str] = []
        calls: list[ToolCall] = []
        for _, slot in sorted(self.blocks.items()):
            if slot["type"] == "text":
                text.extend(slot["text"])
            elif slot["type"] == "tool_use":
                raw = "".join(slot["json"])
                if raw.strip():
                    calls.append(
                        ToolCall(id=slot["id"], name=slot["name"], arguments=parse_arguments(raw), raw_arguments=raw)
                    )
                else:
                    calls.append(tool_call_from_input(slot["id"], slot["name"], slot.get("input")))
        return ModelResponse(
            model=self.model,
            text="".join(text),
            tool_calls=tuple(calls),
            stop_reason=_stop_reason(self.stop),
            usage=self.usage,
        )


# --- errors --------------------------------------------------------------------------------------


def map_anthropic_error(err: anthropic.AnthropicError) -> ModelError:
    """One SDK exception → one agentlab ModelError. An ``error`` event inside a 200 stream (e.g.
    ``overloaded_error`` after the headers) arrives as an APIStatusError with status 200: the error
    type decides then."""
    if isinstance(err, anthropic.APITimeoutError):
        return ModelTimeout(f"{PROVIDER}: request timed out")
    if isinstance(err, anthropic.APIConnectionError):
        cause = root_cause(err)
        return ModelConnectionError(f"{PROVIDER}: {err.message}" + (f" ({cause})" if cause else ""))
    if isinstance(err, anthropic.APIResponseValidationError):
        return MalformedResponse(f"{PROVIDER} {err.status_code}: {err.message}")
    if isinstance(err, anthropic.APIStatusError):
        kind, message = error_detail(err.body)
        status = err.status_code if err.status_code >= 400 else None
        return status_error(PROVIDER, status, kind, message or err.message, err.response.headers)
    return ModelConnectionError(f"{PROVIDER}: {type(err).__name__}: {err}")


# --- the client ----------------------------------------------------------------------------------


class AnthropicMessagesModel:
    """ModelClient for the Anthropic Messages API with native tool calling.

    ``stream=True`` reads the server-sent events and assembles the same ModelResponse. An unstreamed
    call the SDK refuses to send (a ``max_tokens`` that could take over ten minutes: its ValueError,
    before any request) is sent as a stream instead, as pydantic-ai does, so a large ``max_tokens``
    never needs the caller to know the SDK's rule.
    ``metadata_headers=True`` sends ``request.metadata`` (scenario, episode) as ``x-agentlab-*``
    headers, for agentlab's own transports; off by default, never received by a real provider.
    The HTTP attempts the SDK made for a call (retries included) are on the response's ``attempts``
    or the raised error's; ``last_attempts`` repeats the last call's, or None if nothing was sent.
    """

    def __init__(
        self, client: anthropic.AsyncAnthropic, *, stream: bool = False, metadata_headers: bool = False
    ) -> None:
        self.client = client
        self.stream = stream
        self.metadata_headers = metadata_headers
        self.last_attempts: int | None = None

    def _params(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        params = request_params(request, stream=stream)
        if self.metadata_headers and (headers := metadata_headers(request.metadata)):
            params["extra_headers"] = headers
        return params

    async def complete(self, request: ModelRequest) -> ModelResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            response, attempts = await self._call(request, stream=self.stream)
        except StreamRequired:
            # The SDK refuses an unstreamed call whose max_tokens could outlast its 10-minute timeout.
            # The caller wants an answer, not a transport: stream it and assemble the same response.
            response, attempts = await self._call(request, stream=True)
        response.latency_s = loop.time() - started
        response.attempts = attempts
        return response

    async def _call(self, request: ModelRequest, *, stream: bool) -> tuple[ModelResponse, int | None]:
        params = self._params(request, stream=stream)

        async def send() -> Any:
            try:
                return await self.client.messages.with_raw_response.create(**params)
            except ValueError as err:
                # Raised before any request is sent: the SDK's own check of an unstreamed call.
                if stream:
                    raise
                raise StreamRequired(str(err)) from err

        return await sdk_call(
            self,
            PROVIDER,
            send,
            lambda raw: self._read(raw, request.model, stream=stream),
            anthropic.AnthropicError,
            map_anthropic_error,
        )

    async def _read(self, raw: Any, model: str, *, stream: bool) -> ModelResponse:
        if stream:
            assembler = MessageStreamAssembler(model)
            async with await raw.parse() as events:
                async for event in events:
                    assembler.add(event)
            return assembler.result()
        return from_anthropic_message(await raw.parse(), fallback_model=model)  # may raise ModelError: no content

    async def count_tokens(self, request: ModelRequest) -> int:
        """Input tokens the request would cost, from the provider's own tokenizer (no generation)."""
        params = self._params(request, stream=False)
        params.pop("max_tokens")

        async def read(raw: Any) -> Any:
            return await raw.parse()

        counted, _ = await sdk_call(
            self,
            PROVIDER,
            lambda: self.client.messages.with_raw_response.count_tokens(**params),
            read,
            anthropic.AnthropicError,
            map_anthropic_error,
        )
        return counted.input_tokens
