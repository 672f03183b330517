"""Tools: the registry, and the customer-support tools that act on the simulated world."""

from agentlab.tools.registry import ToolRegistry, ToolSpec

__all__ = ["ToolRegistry", "ToolSpec"]
