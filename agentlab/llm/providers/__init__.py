"""Live provider adapters: OpenAI Chat Completions and Anthropic Messages behind agentlab's ModelClient.

Nothing in agentlab's simulated path imports this package, so a simulated run never loads the
SDKs (and their import time); import it only to talk to a live endpoint or replay a recording.
"""

from agentlab.llm.providers.anthropic import AnthropicMessagesModel
from agentlab.llm.providers.openai import OpenAIChatModel

__all__ = ["AnthropicMessagesModel", "OpenAIChatModel"]
