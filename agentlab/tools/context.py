"""What a tool function receives besides its arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class ToolContext:
    world: Any
    call_id: str = ""
    user_id: str = ""
    idempotency_key: str | None = None
    episode_id: str = ""
    attempt: int = 1
    trace: Any = None
