"""The provider wire formats, server side, and a simulated endpoint that speaks them.

``SimulatedEndpoint`` is an httpx2 transport answering OpenAI Chat Completions and Anthropic
Messages requests from the simulated model, so the real SDKs run end to end without a network;
``openai_format`` and ``anthropic_format`` parse requests and render responses (JSON and SSE);
``headers`` defines how agentlab's request metadata (scenario, episode) travels.
"""

from agentlab.llm.wire.common import WireError
from agentlab.llm.wire.endpoint import SimulatedEndpoint
from agentlab.llm.wire.headers import EPISODE_HEADER, SCENARIO_HEADER, metadata_from_headers, metadata_headers

__all__ = [
    "EPISODE_HEADER",
    "SCENARIO_HEADER",
    "SimulatedEndpoint",
    "WireError",
    "metadata_from_headers",
    "metadata_headers",
]
