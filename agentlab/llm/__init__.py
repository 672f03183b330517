"""The LLM layer: the client interface every provider speaks, tier profiles, and the simulated model.

The public names below are imported on first use, so ``agentlab.llm.backends`` (the backends table the CLI reads
for every command) does not pay for pydantic and the tier models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentlab.llm.tiers import TierProfile, TierTable, load_tiers
    from agentlab.llm.types import Message, ModelClient, ModelRequest, ModelResponse, ToolCall, Usage

_PUBLIC = {
    **dict.fromkeys(["TierProfile", "TierTable", "load_tiers"], "agentlab.llm.tiers"),
    **dict.fromkeys(
        ["Message", "ModelClient", "ModelRequest", "ModelResponse", "ToolCall", "Usage"], "agentlab.llm.types"
    ),
}
__all__ = [
    "Message",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "TierProfile",
    "TierTable",
    "ToolCall",
    "Usage",
    "load_tiers",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'agentlab.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
