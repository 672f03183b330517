"""Reading a conversation back: which tool calls ran, with what arguments, and what came back.

The simulated model uses this to see how far along the gold plan the agent really is, exactly as
a real model reads its context window: from the messages, not from hidden agent state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agentlab.llm.types import Message

ERROR_PREFIX = "ERROR "


@dataclass(slots=True)
class CallRecord:
    call_id: str
    name: str
    args: dict[str, Any] | None
    ok: bool | None = None  # None: no result yet
    result: Any = None
    error: str = ""
    executed_as: str | None = None  # the fallback tool that actually answered, if any


def tool_result_content(result: Any) -> str:
    return orjson.dumps(result, option=orjson.OPT_SORT_KEYS).decode()


def tool_error_content(error_type: str, message: str) -> str:
    return f"{ERROR_PREFIX}{error_type}: {message}"


def read_calls(messages: tuple[Message, ...] | list[Message]) -> list[CallRecord]:
    calls: dict[str, CallRecord] = {}
    order: list[CallRecord] = []
    for m in messages:
        if m.role == "assistant":
            for c in m.tool_calls:
                rec = CallRecord(c.id, c.name, c.arguments)
                calls[c.id] = rec
                order.append(rec)
        elif m.role == "tool" and m.tool_call_id in calls:
            rec = calls[m.tool_call_id]
            if m.content.startswith(ERROR_PREFIX):
                rec.ok, rec.error = False, m.content[len(ERROR_PREFIX) :]
            else:
                rec.ok = True
                try:
                    rec.result = orjson.loads(m.content)
                except orjson.JSONDecodeError:
                    rec.result = m.content
                if m.name and m.name != rec.name:
                    rec.executed_as = m.name
    return order
