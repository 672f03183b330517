"""The typed events of a trace.

Everything the agent decides is one of these. They are ``msgspec.Struct`` classes rather than
pydantic models or dataclasses because a sweep emits millions of them, and msgspec builds and
serialises one in about half the time a dataclass written by orjson took: moving to them took
``agentlab bench --episodes 10000 --safety`` from ~4,560 to ~5,150 episodes/s (33 events an
episode). Nothing untrusted is decoded into them, so they carry no validation; the trace file is
read back as plain JSON by :mod:`agentlab.analysis.frames`.

Each event's ``kind`` (its tag) names it in the file, and is readable on the object as ``event.kind``.

Field conventions: ``t`` is simulated seconds; money is USD; ``call_id`` ties a tool call's start,
permission check, retries and end together.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Event(msgspec.Struct, kw_only=True, tag_field="kind", tag="event"):
    # The stamp fields are set once, when the event is emitted. Being keyword-only here, msgspec
    # places them after each subclass's own fields, so a line reads: kind, the event's own fields,
    # then seq, t, run_id, episode_id.
    seq: int = 0
    t: float = 0.0
    run_id: str = ""
    episode_id: str = ""

    @property
    def kind(self) -> str:
        """The event's name in the trace file (its msgspec tag)."""
        return self.__struct_config__.tag  # type: ignore[return-value]


class EpisodeStarted(Event, tag="episode_started"):
    scenario_id: str
    category: str
    epoch: int
    strategy: str
    tier: str
    user_id: str
    request: str


class RequestAdmitted(Event, tag="request_admitted"):
    user_id: str
    role: str
    budget_usd: float


class RequestRefused(Event, tag="request_refused"):
    user_id: str
    reason: str


class MemoryLoaded(Event, tag="memory_loaded"):
    user_id: str
    session_id: str
    items: int


class MemorySaved(Event, tag="memory_saved"):
    user_id: str
    session_id: str
    items: int


class PlanMade(Event, tag="plan"):
    strategy: str
    revision: int
    steps: list[dict[str, Any]]
    has_answer: bool


class BudgetChecked(Event, tag="budget_check"):
    scope: str
    estimate_usd: float
    spent_usd: float
    limit_usd: float
    allowed: bool


class ModelCalled(Event, tag="model_call"):
    purpose: str
    tier: str
    model: str
    attempt: int
    ok: bool
    estimate_usd: float = 0.0  # the pre-call worst case the cost controller allowed
    http_attempts: int = 1  # requests the client made for this call (provider SDKs retry by themselves)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    stop_reason: str | None = None
    tool_calls: int = 0
    error_type: str | None = None
    error: str | None = None


class PermissionChecked(Event, tag="permission_check"):
    call_id: str
    tool: str
    user_id: str
    required: list[str]
    decision: str
    reason: str


class ToolCallStarted(Event, tag="tool_call_start"):
    call_id: str
    tool: str
    attempt: int
    args: dict[str, Any] | None


class ToolCallEnded(Event, tag="tool_call_end"):
    call_id: str
    tool: str
    attempt: int
    ok: bool
    latency_s: float
    cost_usd: float = 0.0
    error_type: str | None = None
    error: str | None = None
    degraded_from: str | None = None


class StepRejected(Event, tag="step_rejected"):
    """A model-proposed step that never reached a tool (unknown tool, bad arguments, denied)."""

    call_id: str
    tool: str
    error_type: str
    error: str


class RetryScheduled(Event, tag="retry"):
    target: str
    attempt: int
    delay_s: float
    error_type: str


class Evaluated(Event, tag="evaluation"):
    target: str
    score: float
    passed: bool
    reason: str
    call_id: str | None = None


class RecoveryAction(Event, tag="recovery"):
    action: str
    reason: str


class FinalResponse(Event, tag="final_response"):
    status: str
    text: str
    turns: int


class EpisodeGraded(Event, tag="episode_graded"):
    """Written by the simulator (not the agent) after comparing the outcome with the scenario."""

    scenario_id: str
    category: str
    epoch: int
    success: bool
    world_ok: bool
    answer_ok: bool
    status: str
    reasons: list[str] = msgspec.field(default_factory=list)
    # From the world's own ledger: non-idempotent effects applied more than once, and the ledger itself.
    duplicate_side_effects: int = 0
    unauthorized_tool_calls: int = 0
    effects: list[dict[str, Any]] = msgspec.field(default_factory=list)


class FaultInjected(Event, tag="fault_injected"):
    """The simulator (not the agent) broke a call on purpose."""

    fault_id: str
    fault_kind: str
    target_type: str
    target: str
    status: int | None = None
    retry_after_s: float | None = None


class BreakerTransition(Event, tag="breaker_transition"):
    breaker: str
    from_state: str
    to_state: str
    reason: str


class CallRejected(Event, tag="call_rejected"):
    """A call the resilience layer refused to make (open breaker, exhausted retry budget, rate limit)."""

    target: str
    reason: str
    call_id: str | None = None


class Degraded(Event, tag="degraded"):
    """The agent carried on with less: a fallback tool, a fallback model, or a partial answer."""

    mode: str
    target: str
    replacement: str | None = None
    reason: str = ""


class RateLimitWait(Event, tag="rate_limit_wait"):
    target: str
    wait_s: float


class RolledBack(Event, tag="rollback"):
    """One completed side effect undone (saga compensation), or reported as impossible to undo."""

    call_id: str
    tool: str
    compensated: bool
    reason: str


class RunResumed(Event, tag="run_resumed"):
    """A killed run was resumed: episodes from ``next_episode`` on are (re-)run.

    ``in_flight``: the episode the kill interrupted (its ``episode_started`` had reached the trace file after the
    last checkpoint), run again from its start; None when the kill fell between episodes (or after the last)."""

    next_episode: int
    in_flight: str | None = None


class GuardrailTriggered(Event, tag="guardrail"):
    stage: str  # input | tool_output | output | memory_store | memory_load
    category: str
    action: str  # refuse | neutralise | redact | drop
    reason: str
    call_id: str | None = None


class ApprovalRequested(Event, tag="approval_requested"):
    """What a person is asked to approve: who asked, which tool with which (redacted) arguments, and why — the
    trace alone shows what is pending (agentlab.components.decisions.pending_approvals)."""

    tool: str
    call_id: str
    reason: str
    deadline_s: float
    user_id: str = ""
    args: dict[str, Any] | None = None


class ApprovalDecided(Event, tag="approval_decided"):
    tool: str
    call_id: str
    outcome: str  # approved | rejected | expired


class RoutingDecision(Event, tag="routing"):
    """Which model tier serves the episode from here on, and why (cascade routing)."""

    tier: str
    previous: str | None
    reason: str
