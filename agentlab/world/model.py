"""How a world behaves as infrastructure: the latency and intrinsic flakiness of its tools."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agentlab.llm.tiers import LatencyProfile


class Environment(BaseModel):
    """Tool latency (a default and per-tool profiles) and per-tool intrinsic failure rates.

    A suite may set it (``environment:``); otherwise its domain's default applies.
    """

    model_config = ConfigDict(extra="forbid")

    default_latency: LatencyProfile = LatencyProfile(median_s=0.08, p95_s=0.3)
    latency: dict[str, LatencyProfile] = Field(default_factory=dict)
    flaky: dict[str, float] = Field(default_factory=dict)
