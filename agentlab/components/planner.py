"""Planner: two strategies behind one interface, so users can compare them on the same suite.

* :class:`ReactPlanner` — native tool calling: the model proposes tool calls turn by turn and sees
  each result before the next (ReAct style), until it answers or runs out of turns.
* :class:`PlanAndExecutePlanner` — the model writes a whole JSON plan (validated with pydantic) up
  front; the steps run; a failed step or an answer the evaluator rejects triggers a re-plan.

Both drive an episode through :class:`PlannerView`, which gives them exactly two powers: call the
model, and run a step (plus the conversation, the evaluator's verdict on an answer, and their turn and
re-plan limits). Everything else (budget, permissions, retries, tiers, tracing) happens behind it, in
:class:`~agentlab.agent.Episode`; a planner never sees the agent system that runs it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from agentlab.components.evaluator import Score
from agentlab.components.messages import StepOutcome
from agentlab.llm.types import Message, ModelResponse, ToolCall
from agentlab.scenarios.refs import UnresolvedRef, resolve
from agentlab.trace.events import Evaluated, Event, PlanMade, RecoveryAction


class RecoveryLimits(Protocol):
    """How often a planner may correct an answer or re-plan (the Recovery Handler's policy)."""

    max_corrections: int
    max_replans: int


class TraceSink(Protocol):
    """Where a planner records its own decisions (a plan, a correction, a re-plan)."""

    def emit(self, event: Event) -> None: ...


@runtime_checkable
class PlannerView(Protocol):
    """All a planner may touch of the request it drives: exactly what the planners below use.

    The episode behind it (:class:`~agentlab.agent.Episode`) does the budget, permissions, retries,
    tier choice and tracing; a planner decides only what to ask the model and which steps to run.
    """

    turns: int
    max_turns: int
    results: dict[str, Any]  # a step's result by step id, for ``${step_id.field}`` references
    routed: bool  # a cascade routing policy picks the tier: an answer that gives up is retried, not accepted

    @property
    def recovery(self) -> RecoveryLimits: ...  # read-only, so the Recovery Handler itself satisfies it

    @property
    def trace(self) -> TraceSink: ...

    def add(self, message: Message) -> None: ...

    async def call_model(self, purpose: str, *, response_format: str = "text", tools: bool = True) -> ModelResponse: ...

    async def run_step(self, call: ToolCall) -> StepOutcome: ...

    def evaluate_answer(self, text: str) -> Score: ...


class Planner(Protocol):
    name: str

    async def run(self, episode: PlannerView) -> tuple[str, str]:
        """Drive the episode; return ``(answer, status)``."""
        ...


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    tool: str
    args: dict[str, Any] = {}


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[PlanStep] = []
    final_answer: str | None = None


PLAN_INSTRUCTIONS = (
    'Reply with only a JSON object {"steps": [{"id": str, "tool": str, "args": {...}}], '
    '"final_answer": str | null}. Use "${step_id.field}" in args to refer to an earlier step\'s result. '
    "If no tool is needed, give no steps and put the answer in final_answer."
)


def _status(score: Any) -> str:
    if not score.passed:
        return "failed"
    return "incomplete" if score.incomplete else "completed"


class ReactPlanner:
    name = "react"

    async def run(self, episode: PlannerView) -> tuple[str, str]:
        corrections = 0
        while episode.turns < episode.max_turns:
            episode.turns += 1
            response = await episode.call_model("act")
            if response.tool_calls:
                episode.add(Message(role="assistant", content=response.text, tool_calls=response.tool_calls))
                for call in response.tool_calls:
                    await episode.run_step(call)
                continue
            score = episode.evaluate_answer(response.text)
            # Under cascade routing an answer that gives up is retried at the escalated tier, not accepted.
            gave_up = score.incomplete and episode.routed
            if (not score.passed or gave_up) and corrections < episode.recovery.max_corrections:
                corrections += 1
                episode.trace.emit(RecoveryAction(action="correct", reason=score.reason))
                episode.add(Message(role="assistant", content=response.text))
                episode.add(
                    Message(
                        role="user",
                        content=f"Verification failed: {score.reason}. "
                        "Continue the task; only claim what your tool calls confirmed.",
                    )
                )
                continue
            return response.text, _status(score)
        return (f"I couldn't finish this request within {episode.max_turns} turns.", "max_turns")


class PlanAndExecutePlanner:
    name = "plan"

    async def run(self, episode: PlannerView) -> tuple[str, str]:
        revision = 0
        max_replans = episode.recovery.max_replans
        while episode.turns < episode.max_turns:
            episode.turns += 1
            response = await episode.call_model("plan", response_format="json")
            try:
                plan = Plan.model_validate_json(response.text)
            except ValidationError as exc:
                reason = f"plan is not valid: {exc.errors()[0]['msg']}"
                episode.trace.emit(Evaluated(target="plan", score=0.0, passed=False, reason=reason))
                if revision >= max_replans:
                    return "I couldn't produce a valid plan for this request.", "failed"
                revision += 1
                episode.trace.emit(RecoveryAction(action="replan", reason=reason))
                episode.add(Message(role="assistant", content=response.text))
                episode.add(Message(role="user", content=f"{reason}. {PLAN_INSTRUCTIONS}"))
                continue
            episode.trace.emit(
                PlanMade(
                    strategy=self.name,
                    revision=revision,
                    steps=[s.model_dump() for s in plan.steps],
                    has_answer=plan.final_answer is not None,
                )
            )
            episode.add(Message(role="assistant", content=response.text))

            if not plan.steps:
                answer = plan.final_answer or ""
            else:
                failure = await self._execute(episode, plan)
                if failure is not None:
                    if revision < max_replans:
                        revision += 1
                        episode.trace.emit(RecoveryAction(action="replan", reason=failure))
                        episode.add(
                            Message(role="user", content=f"Step failed: {failure}. Re-plan the remaining work.")
                        )
                        continue
                    return f"I wasn't able to complete this request: {failure}.", "failed"
                episode.turns += 1
                answer = (await episode.call_model("respond", tools=False)).text
            score = episode.evaluate_answer(answer)
            gave_up = score.incomplete and episode.routed
            if (score.passed and not gave_up) or revision >= max_replans:
                return answer, _status(score)
            revision += 1
            episode.trace.emit(RecoveryAction(action="replan", reason=score.reason))
            episode.add(Message(role="user", content=f"Verification failed: {score.reason}. Re-plan."))
        return (f"I couldn't finish this request within {episode.max_turns} turns.", "max_turns")

    @staticmethod
    async def _execute(episode: PlannerView, plan: Plan) -> str | None:
        """Run the plan's steps in order; return a description of the first failure, if any."""
        for step in plan.steps:
            try:
                args = resolve(step.args, episode.results)
            except UnresolvedRef as exc:
                return f"step {step.id} refers to {exc.args[0]!r}, which no earlier step produced"
            call = ToolCall(id=step.id, name=step.tool, arguments=args, raw_arguments=orjson.dumps(args).decode())
            episode.add(Message(role="assistant", tool_calls=(call,)))
            outcome = await episode.run_step(call)
            if not outcome.ok:
                return f"step {step.id} ({step.tool}) failed: {outcome.error_type}: {outcome.error}"
            episode.results[step.id] = outcome.result
        return None


PLANNERS: dict[str, type[ReactPlanner] | type[PlanAndExecutePlanner]] = {
    "react": ReactPlanner,
    "plan": PlanAndExecutePlanner,
}
