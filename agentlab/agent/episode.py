"""The episode: one request in flight, and the surface a planner drives.

An :class:`Episode` holds what a request accumulates while it runs — its conversation (with a running
prompt size), its budget and retry budget, the model tier it is on, the tool results a planner may
refer to, what succeeded, and the side effects a rollback would undo — and offers a planner its two
powers: :meth:`~.model_calls.ModelCalls.call_model` and :meth:`~.steps.ToolSteps.run_step`, plus the
evaluator's verdict on an answer. Those powers live beside what they drive (:mod:`.model_calls`,
:mod:`.steps`) and are mixed in here, so a planner's call reaches them without an extra hop.

A planner sees the episode only through :class:`~agentlab.components.planner.PlannerView`, never the
:class:`~agentlab.agent.system.AgentSystem` behind it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from agentlab.agent.model_calls import ModelCalls
from agentlab.agent.steps import ToolSteps
from agentlab.components.cost import RequestBudget
from agentlab.components.evaluator import Evaluator, Score, known_facts
from agentlab.components.messages import AgentRequest, User
from agentlab.llm.types import Message, ToolDefinition, message_chars
from agentlab.tools.registry import ToolSpec
from agentlab.trace.events import Evaluated, RoutingDecision
from agentlab.trace.recorder import EpisodeTrace

if TYPE_CHECKING:
    from agentlab.agent.system import AgentSystem


class Episode(ModelCalls, ToolSteps):
    """One request in flight: its conversation, budget and results, and the two things a planner may do."""

    def __init__(
        self,
        system: AgentSystem,
        request: AgentRequest,
        trace: EpisodeTrace,
        budget: RequestBudget,
        tools: tuple[ToolDefinition, ...],
        messages: list[Message],
        env: Any,
    ) -> None:
        self.system = system
        self.request = request
        self.user: User = request.user
        # Read once here: a pydantic model's class defines __getattr__, so even a field read takes CPython's slower
        # hooked lookup (~64 ns against ~7 ns for a plain attribute, timeit less the lambda's call), and these are
        # read on every model call (tags) and tool call (user_id).
        self.user_id: str = self.user.id
        self.tags: dict[str, str] = request.tags
        self.trace = trace
        self.budget = budget
        self.tools = tools
        self.messages = messages
        self.env = env
        self.tier = system.tier
        if system.routing is not None:
            self.tier, reason = system.routing.start(system.tiers.order, budget.remaining_usd)
            trace.emit(RoutingDecision(tier=self.tier, previous=None, reason=reason))
        # Whether a cascade routing policy picks the tier: a planner retries an answer that gives up, then.
        self.routed = system.routing is not None
        self.max_turns = request.max_turns
        self.recovery = system.recovery
        self.turns = 0
        self.results: dict[str, Any] = {}
        self.succeeded: set[str] = set()
        self._calls = 0
        self._rng: random.Random | None = None
        self._known: set[str] | None = None
        self._known_upto = 0
        self.retry_budget = system.recovery.new_budget()
        self.attempted: dict[str, str] = {}  # at-most-once record: idempotency key -> what happened
        self.stand_ins: dict[tuple[str, str], None] = {}  # (tool, fallback) pairs where a fallback answered
        self.applied: list[tuple[ToolSpec, dict[str, Any], Any, str]] = []  # side effects, in order
        self.prompt_chars = sum(message_chars(m) for m in messages)
        self.tool_tokens = sum(t.tokens for t in tools)

    def add(self, message: Message) -> None:
        """Append to the conversation, keeping the running prompt size (no rescans per call)."""
        self.messages.append(message)
        self.prompt_chars += message_chars(message)

    def prompt_tokens(self, tools: bool = True) -> int:
        """The next call's prompt size: the conversation so far (≈4 characters a token) and the tool definitions."""
        return self.prompt_chars // 4 + (self.tool_tokens if tools else 0)

    def worst_case_usd(self, tier: str, tools: bool = True) -> float:
        """What the next call could cost at ``tier``: its whole prompt and the full ``max_tokens`` of output."""
        return self.system.tiers[tier].price(self.prompt_tokens(tools), self.system.max_tokens)

    def rng(self) -> random.Random:
        """The episode's own retry-jitter generator, made on first use (most episodes never retry)."""
        if self._rng is None:
            self._rng = self.system.rng.child("recovery", self.trace.episode_id).random()
        return self._rng

    def escalate(self, reason: str) -> None:
        """Ask the routing policy for a more capable tier after a weak step (sticky for the episode)."""
        routing = self.system.routing
        if routing is None:
            return
        step = routing.escalate(
            self.tier, self.system.tiers.order, reason, self.budget.remaining_usd, self.worst_case_usd
        )
        if step is not None:
            self.trace.emit(RoutingDecision(tier=step[0], previous=self.tier, reason=step[1]))
            self.tier = step[0]

    def known_facts(self) -> set[str]:
        """Ids and figures the request and the tool results so far contain (what an action may rely on).

        Kept incrementally: each call scans only the tool messages added since the last one.
        """
        if self._known is None:
            self._known = known_facts([self.request.text])
        known = self._known
        known_facts([m.content for m in self.messages[self._known_upto :] if m.role == "tool"], known)
        self._known_upto = len(self.messages)
        return known

    def evaluate_answer(self, text: str) -> Score:
        """The Evaluator's verdict on an answer; under cascade routing also whether its facts are grounded,
        and a weak answer escalates the tier for the planner's next try."""
        score = self.system.evaluator.score_response(text, self.succeeded)
        if score.passed and self.system.routing is not None:
            grounded, unknown = Evaluator.grounding(text, self.known_facts())
            if unknown:
                score = Score(grounded, False, f"the answer states {', '.join(unknown)}, which no tool result contains")
        if (not score.passed or score.incomplete) and self.system.routing is not None:
            self.escalate(score.reason)
        self.trace.emit(Evaluated(target="response", score=score.score, passed=score.passed, reason=score.reason))
        return score
