"""Typed messages crossing component boundaries: who is asking, and what a step produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    role: str = "agent"
    permissions: frozenset[str] = frozenset()


class AgentRequest(BaseModel):
    """One user request: the unit the agent admits, executes and responds to."""

    model_config = ConfigDict(frozen=True)

    user: User
    text: str
    session_id: str
    budget_usd: float = Field(default=0.25, ge=0)
    max_turns: int = Field(default=12, gt=0)
    # Opaque tags carried into model requests (the simulator uses scenario_id/episode_id).
    tags: dict[str, str] = Field(default_factory=dict)


class AgentResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str  # completed | refused | budget_exhausted | max_turns | failed
    text: str
    turns: int
    cost_usd: float


@dataclass(slots=True, frozen=True)
class Decision:
    allowed: bool
    reason: str


class StepOutcome(msgspec.Struct):  # a struct, not a dataclass: built in C, five times a request
    """What one tool call produced, as the planner and evaluator see it."""

    call_id: str
    tool: str
    ok: bool
    result: Any = None
    error_type: str | None = None
    error: str | None = None
    executed_as: str | None = None  # set when a fallback tool answered instead
    attempts: int = 1
