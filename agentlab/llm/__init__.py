"""The LLM layer: the client interface every provider speaks, tier profiles, and the simulated model."""

from agentlab.llm.tiers import TierProfile, TierTable, load_tiers
from agentlab.llm.types import Message, ModelClient, ModelRequest, ModelResponse, ToolCall, Usage

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
