"""What the wire formats and transports share: the 4xx error, argument decoding, tool sizes, chunking, raw bodies."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import orjson

from agentlab.llm.types import ToolCall, ToolDefinition

_WORDS = re.compile(r"\S+\s*|\s+")
ARGUMENT_CHUNK = 16  # characters of tool-call arguments per streamed delta


class WireError(ValueError):
    """A request the endpoint rejects; each format renders it as its provider's error body."""

    def __init__(self, status: int, kind: str, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.code, self.param = status, kind, message, code, param


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """Tool-call argument text → dict, or None when it is not a JSON object.

    Models do emit broken JSON; None (with the raw text kept on the ToolCall) lets the Tool Router report
    InvalidArguments instead of an adapter or the endpoint crashing. Empty text means "no arguments".
    """
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def raw_arguments(call: ToolCall) -> str:
    """A tool call's arguments as they go on the wire: as the model wrote them, else as compact JSON."""
    return call.raw_arguments or orjson.dumps(call.arguments or {}).decode()


def tool_call_from_input(call_id: str, name: str, arguments: Any) -> ToolCall:
    """A tool call whose arguments arrived already parsed (Anthropic's ``input`` object), with their compact JSON."""
    parsed = dict(arguments or {})
    return ToolCall(id=call_id, name=name, arguments=parsed, raw_arguments=orjson.dumps(parsed).decode())


def tool_definition(name: str, description: str, parameters: dict[str, Any]) -> ToolDefinition:
    """A ToolDefinition whose ``tokens`` is computed exactly as the tool registry computes it, so a
    prompt's size — and so usage and cost — is the same over the wire as in process."""
    text = orjson.dumps({"name": name, "description": description, "parameters": parameters})
    return ToolDefinition(name=name, description=description, parameters=parameters, tokens=len(text) // 4)


def pieces(text: str, size: int | None = None) -> list[str]:
    """How a streamed text is cut: word by word (``size=None``), or every ``size`` characters."""
    if size is None:
        return _WORDS.findall(text)
    return [text[i : i + size] for i in range(0, len(text), size)]


async def raw_body(response: httpx2.Response) -> bytes:
    """The bytes a transport's response carries, as they came (still compressed, if they were)."""
    if response.is_stream_consumed:  # built with ``content=``: already in memory
        return response.content
    try:
        return b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
