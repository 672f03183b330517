"""The model client interface: typed requests and responses every provider speaks.

The simulated model, the scripted benchmark model, the replayer and the live OpenAI/Anthropic
adapters all implement :class:`ModelClient`, so the agent cannot tell them apart.

These records are ``msgspec.Struct`` classes, not pydantic models or dataclasses: nothing untrusted
enters through them (a model's tool arguments are validated by the Tool Router, plans by the Planner,
provider JSON by the provider SDKs), and the agent builds ~30 per request. A struct is built in C; a
slotted dataclass runs a Python ``__init__`` (~3x the time, measured), pydantic more still. Treat them as
immutable (``msgspec.structs.replace`` makes a changed copy).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
from pydantic import BaseModel, ConfigDict

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(msgspec.Struct, kw_only=True):
    """A tool call proposed by a model. ``arguments`` is None when ``raw_arguments`` was not JSON."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""


class Message(msgspec.Struct, kw_only=True):
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class ToolDefinition(BaseModel):
    """A tool as a model sees it: name, description and JSON schema of its arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]
    tokens: int = 0


class ModelRequest(msgspec.Struct, kw_only=True):
    tier: str
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolDefinition, ...] = ()
    response_format: Literal["text", "json"] = "text"
    max_tokens: int = 1024
    purpose: str = "act"
    # Not sent to providers: lets the simulated model find its scenario's gold plan.
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    # Prompt size in tokens, when the caller already knows (the agent counts as it appends).
    prompt_tokens_hint: int | None = None

    def prompt_tokens(self) -> int:
        """Input size estimate from the actual text (≈4 characters a token), tool definitions included."""
        if self.prompt_tokens_hint is not None:
            return self.prompt_tokens_hint
        return sum(message_chars(m) for m in self.messages) // 4 + sum(t.tokens for t in self.tools)


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "other"]


class ModelResponse(msgspec.Struct, kw_only=True):
    model: str
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = "end_turn"
    usage: Usage = msgspec.field(default_factory=Usage)
    latency_s: float = 0.0
    # USD as reported/priced by the client; None lets the cost controller price the usage.
    cost_usd: float | None = None
    # HTTP requests the client (e.g. a provider SDK retrying by itself) made for this one call.
    attempts: int = 1


@runtime_checkable
class ModelClient(Protocol):
    async def complete(self, request: ModelRequest) -> ModelResponse: ...


def message_chars(m: Message) -> int:
    """Characters a message contributes to a prompt (content, tool calls, and a little framing)."""
    chars = len(m.content) + 8
    for c in m.tool_calls:
        chars += len(c.name) + len(c.raw_arguments)
    return chars


def approx_tokens(text: str) -> int:
    """Token estimate from text length: ~4 characters a token (no tokenizer download needed)."""
    return (len(text) + 3) // 4
