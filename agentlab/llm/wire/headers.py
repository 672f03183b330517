"""How agentlab's own request metadata travels over HTTP: two headers, never sent to a real provider.

The simulated endpoint is wire-level — it learns everything from the HTTP request, as a real server
would — but it must know which scenario's gold plan to follow and which episode's random stream to
draw from. Those travel as ``x-agentlab-scenario`` and ``x-agentlab-episode``. The fault transport
and the cassette library read the episode header too, to reach the episode's trace and cassette.
The provider adapters add the headers only when asked (``metadata_headers=True``), and the runner
asks only when agentlab owns every transport below the SDK (simulated endpoint, replay, record).
"""

from __future__ import annotations

from collections.abc import Mapping

SCENARIO_HEADER = "x-agentlab-scenario"
EPISODE_HEADER = "x-agentlab-episode"
# ModelRequest.metadata key -> header name
METADATA_HEADERS: dict[str, str] = {"scenario_id": SCENARIO_HEADER, "episode_id": EPISODE_HEADER}


def metadata_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    """The headers that carry ``metadata`` (only the keys agentlab defines, only those present)."""
    return {header: str(metadata[key]) for key, header in METADATA_HEADERS.items() if metadata.get(key)}


def metadata_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The inverse of :func:`metadata_headers`: ModelRequest.metadata from request headers."""
    return {key: value for key, header in METADATA_HEADERS.items() if (value := headers.get(header))}
