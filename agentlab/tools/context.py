"""What a tool function receives besides its arguments."""

from __future__ import annotations

from typing import Any

import msgspec


class ToolContext(msgspec.Struct):  # a struct, not a dataclass: built in C, on every tool call
    world: Any
    call_id: str = ""
    user_id: str = ""
    idempotency_key: str | None = None
    episode_id: str = ""
    attempt: int = 1
    trace: Any = None
