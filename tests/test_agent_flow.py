"""AgentSystem end to end, driven by a scripted model: admit → execute → respond."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from agentlab.agent import AgentSystem
from agentlab.components.evaluator import Evaluator
from agentlab.components.memory import MemoryManager
from agentlab.components.messages import AgentRequest, AgentResponse, User
from agentlab.components.permissions import PermissionsGate
from agentlab.components.planner import PLAN_INSTRUCTIONS
from agentlab.components.recovery import RecoveryHandler
from agentlab.domains.support import CLAIMS
from agentlab.errors import Overloaded
from agentlab.llm.tiers import LatencyProfile, TierProfile, TierTable
from agentlab.llm.types import ModelRequest, ModelResponse, ToolCall, Usage
from agentlab.sim.loop import run_virtual
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.events import Event
from agentlab.trace.recorder import Recorder

# --- a scripted model and a small tool set --------------------------------------------------------

Turn = ModelResponse | Exception | Callable[[ModelRequest], ModelResponse]


class ScriptedModel:
    """Plays back ``turns`` one per call; records every request it was sent."""

    def __init__(self, *turns: Turn) -> None:
        self.turns = list(turns)
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if not self.turns:
            raise AssertionError(f"the script ran out at model call {len(self.requests)} ({request.purpose})")
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        if callable(turn):
            return turn(self.requests[-1])
        return turn


def say(text: str, cost_usd: float | None = None) -> ModelResponse:
    return ModelResponse(
        model="scripted", text=text, usage=Usage(input_tokens=100, output_tokens=10), cost_usd=cost_usd
    )


def use(
    name: str, args: dict[str, Any] | None, *, raw: str | None = None, cost_usd: float | None = None
) -> ModelResponse:
    raw = orjson.dumps(args).decode() if raw is None else raw
    return ModelResponse(
        model="scripted",
        tool_calls=(ToolCall(id=f"call_{name}", name=name, arguments=args, raw_arguments=raw),),
        stop_reason="tool_use",
        usage=Usage(input_tokens=100, output_tokens=10),
        cost_usd=cost_usd,
    )


def plan(*steps: dict[str, Any], final_answer: str | None = None) -> ModelResponse:
    return say(orjson.dumps({"steps": list(steps), "final_answer": final_answer}).decode())


TIERS = TierTable(
    default="t",
    tiers={
        "t": TierProfile(
            model="scripted",
            input_per_1k=0.001,
            output_per_1k=0.005,
            latency=LatencyProfile(median_s=1, p95_s=2),
            p_correct=1.0,
        )
    },
)

ORDERS = {"ORD-1": {"id": "ORD-1", "status": "shipped", "total": 40.0, "product_id": "PRD-7"}}


def make_tools(log: list[tuple[str, dict[str, Any]]]) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool(permissions=["orders:read"])
    async def lookup_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
        """Look up an order."""
        log.append(("lookup_order", {"order_id": order_id}))
        return ORDERS[order_id]

    @reg.tool(permissions=["inventory:read"])
    async def check_inventory(ctx: ToolContext, product_id: str) -> dict[str, Any]:
        """Check stock."""
        log.append(("check_inventory", {"product_id": product_id}))
        return {"product_id": product_id, "stock": 3}

    @reg.tool(permissions=["refunds"], idempotent=False, side_effects=True)
    async def issue_refund(ctx: ToolContext, order_id: str, amount: float) -> dict[str, Any]:
        """Refund an order."""
        log.append(("issue_refund", {"order_id": order_id, "amount": amount}))
        return {"refund_id": "RF-0001", "order_id": order_id, "amount": amount}

    return reg


READER = User(id="U-reader", role="agent", permissions=frozenset({"orders:read", "inventory:read"}))
SENIOR = User(id="U-senior", role="senior", permissions=frozenset({"orders:read", "inventory:read", "refunds"}))


class Harness:
    def __init__(self, model: ScriptedModel, *, strategy: str = "react", **kwargs: Any) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.model = model
        self.recorder = Recorder("run-test")
        self.agent = AgentSystem(
            model=model,
            registry=make_tools(self.log),
            tiers=TIERS,
            recorder=self.recorder,
            strategy=strategy,
            memory=MemoryManager(":memory:"),
            **{"evaluator": Evaluator(claims=CLAIMS), **kwargs},
        )

    def handle(self, user: User, text: str = "Refund order ORD-1", **request: Any) -> AgentResponse:
        req = AgentRequest(user=user, text=text, session_id="s1", **request)
        return run_virtual(self.agent.handle(req, episode_id="e1"))

    @property
    def events(self) -> list[Event]:
        return self.recorder.events

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


def first(kinds: list[str], kind: str) -> int:
    return kinds.index(kind)


# --- the request flow ---------------------------------------------------------------------------


def test_one_episode_runs_admit_execute_respond_in_order() -> None:
    h = Harness(ScriptedModel(use("lookup_order", {"order_id": "ORD-1"}), say("Order ORD-1 has shipped.")))
    response = h.handle(READER, "Where is ORD-1?")

    assert response.status == "completed"
    assert response.text == "Order ORD-1 has shipped."
    assert response.turns == 2
    assert h.log == [("lookup_order", {"order_id": "ORD-1"})]

    kinds = h.kinds()
    # admit
    assert kinds[0] == "budget_check"
    assert h.events[0].allowed is True  # type: ignore[attr-defined]
    assert first(kinds, "request_admitted") < first(kinds, "memory_loaded") < first(kinds, "model_call")
    # execute: the step's events, in order, under one call id
    step = [e for e in h.events if getattr(e, "call_id", None) == "c1"]
    assert [e.kind for e in step] == ["permission_check", "tool_call_start", "tool_call_end", "evaluation"]
    assert first(kinds, "model_call") < kinds.index("permission_check")
    # respond
    assert kinds[-2:] == ["memory_saved", "final_response"]
    assert kinds.count("model_call") == 2
    assert kinds.count("final_response") == 1
    final = h.events[-1]
    assert (final.status, final.text, final.turns) == ("completed", response.text, 2)  # type: ignore[attr-defined]
    # every event is stamped for this episode, in sequence
    assert {e.episode_id for e in h.events} == {"e1"}
    assert {e.run_id for e in h.events} == {"run-test"}
    assert [e.seq for e in h.events] == list(range(1, len(h.events) + 1))


def test_model_sees_only_permitted_tools_and_the_tool_result() -> None:
    model = ScriptedModel(use("lookup_order", {"order_id": "ORD-1"}), say("It shipped."))
    h = Harness(model)
    h.handle(READER)
    assert [t.name for t in model.requests[0].tools] == ["lookup_order", "check_inventory"]
    tool_msg = model.requests[1].messages[-1]
    assert tool_msg.role == "tool"
    assert tool_msg.tool_call_id == "call_lookup_order"
    assert orjson.loads(tool_msg.content) == ORDERS["ORD-1"]


def test_response_cost_is_what_usage_cost() -> None:
    h = Harness(ScriptedModel(use("lookup_order", {"order_id": "ORD-1"}), say("It shipped.")))
    response = h.handle(READER)
    calls = h.of("model_call")
    assert all(c.ok for c in calls)
    # 100 input tokens * 0.001/1k + 10 output tokens * 0.005/1k, twice
    assert [c.cost_usd for c in calls] == pytest.approx([0.00015, 0.00015])
    assert response.cost_usd == pytest.approx(0.0003)


def test_memory_of_earlier_request_reaches_the_next_prompt() -> None:
    model = ScriptedModel(say("Hello there."), say("Still here."))
    h = Harness(model)
    h.handle(READER, "my name is Robin")
    h.handle(READER, "what is my name?")
    first_system, second_system = model.requests[0].messages[0].content, model.requests[1].messages[0].content
    assert "Robin" not in first_system
    assert "my name is Robin" in second_system
    assert "Hello there." in second_system
    assert [e.items for e in h.of("memory_loaded")] == [0, 2]


# --- admission ------------------------------------------------------------------------------------


def test_user_without_permissions_is_refused_before_any_model_call() -> None:
    model = ScriptedModel()
    h = Harness(model)
    response = h.handle(User(id="U-nobody"))
    assert response.status == "refused"
    assert model.requests == []
    assert h.kinds() == ["request_refused", "memory_saved", "final_response"]


def test_budget_below_one_call_is_refused_at_admission() -> None:
    model = ScriptedModel()
    h = Harness(model)
    response = h.handle(READER, budget_usd=0.0001)
    assert response.status == "budget_exhausted"
    assert model.requests == []
    assert h.kinds() == ["budget_check", "request_refused", "memory_saved", "final_response"]
    assert h.events[0].allowed is False  # type: ignore[attr-defined]


class EndRecordingGate(PermissionsGate):
    def __init__(self, registry: ToolRegistry) -> None:
        super().__init__(registry)
        self.ended: list[str] = []

    def end_request(self, episode_id: str) -> None:
        self.ended.append(episode_id)
        super().end_request(episode_id)


@pytest.mark.parametrize(
    ("user", "budget", "status"),
    [(User(id="U-nobody"), 1.0, "refused"), (READER, 0.0001, "budget_exhausted"), (READER, 1.0, "completed")],
)
def test_every_exit_ends_the_request_at_the_gate(user: User, budget: float, status: str) -> None:
    """Refused at admission or answered, a request ends at the gate (its refused approvals are forgotten)."""
    model = ScriptedModel(use("lookup_order", {"order_id": "ORD-1"}), say("Order ORD-1 has shipped."))
    gate = EndRecordingGate(make_tools([]))
    h = Harness(model, gate=gate)
    assert h.handle(user, budget_usd=budget).status == status
    assert gate.ended == ["e1"]


# --- steps that never reach a tool ------------------------------------------------------------------


def test_missing_permission_rejects_the_step_and_the_tool_never_runs() -> None:
    model = ScriptedModel(
        use("issue_refund", {"order_id": "ORD-1", "amount": 40.0}),
        say("Sorry, you don't have permission to issue refunds."),
    )
    h = Harness(model)
    response = h.handle(READER)

    assert response.status == "completed"
    assert h.log == []
    assert "issue_refund" not in [t.name for t in model.requests[0].tools]
    [check] = h.of("permission_check")
    assert (check.tool, check.decision) == ("issue_refund", "deny")
    assert "refunds" in check.reason
    [rejected] = h.of("step_rejected")
    assert (rejected.tool, rejected.error_type) == ("issue_refund", "PermissionDenied")
    assert h.of("tool_call_start") == []
    assert model.requests[1].messages[-1].content.startswith("ERROR PermissionDenied")


def test_permitted_user_runs_the_same_call() -> None:
    model = ScriptedModel(
        use("issue_refund", {"order_id": "ORD-1", "amount": 40.0}), say("I've issued a refund of $40.00.")
    )
    h = Harness(model)
    response = h.handle(SENIOR)
    assert response.status == "completed"
    assert h.log == [("issue_refund", {"order_id": "ORD-1", "amount": 40.0})]
    assert h.of("step_rejected") == []
    assert h.of("recovery") == []  # the claim is backed by a successful call


def test_invalid_arguments_are_rejected_and_the_episode_continues() -> None:
    model = ScriptedModel(
        use("lookup_order", {"order_id": 1}),
        use("lookup_order", None, raw='{"order_id": "ORD-1"'),
        use("lookup_order", {"order_id": "ORD-1"}),
        say("Order ORD-1 has shipped."),
    )
    h = Harness(model)
    response = h.handle(READER)

    assert response.status == "completed"
    assert response.turns == 4
    assert h.log == [("lookup_order", {"order_id": "ORD-1"})]  # only the valid call ran
    rejected = h.of("step_rejected")
    assert [(r.call_id, r.error_type) for r in rejected] == [("c1", "InvalidArguments"), ("c2", "InvalidArguments")]
    assert model.requests[1].messages[-1].content.startswith("ERROR InvalidArguments")
    assert "not valid JSON" in model.requests[2].messages[-1].content
    evaluations = [(e.call_id, e.passed) for e in h.of("evaluation") if e.target == "step"]
    assert evaluations == [("c1", False), ("c2", False), ("c3", True)]


def test_unknown_tool_is_rejected() -> None:
    h = Harness(ScriptedModel(use("teleport", {"to": "mars"}), say("I can't do that.")))
    response = h.handle(READER)
    assert response.status == "completed"
    assert [(r.tool, r.error_type) for r in h.of("step_rejected")] == [("teleport", "UnknownTool")]
    assert h.of("permission_check") == []


# --- the evaluator and recovery -----------------------------------------------------------------------


def test_unbacked_refund_claim_triggers_a_correction() -> None:
    model = ScriptedModel(say("I've issued a refund of $40.00."), say("I can't issue refunds; a colleague will help."))
    h = Harness(model)
    response = h.handle(READER)

    assert response.status == "completed"
    assert response.text == "I can't issue refunds; a colleague will help."
    [correct] = h.of("recovery")
    assert correct.action == "correct"
    assert "issue_refund" in correct.reason
    answers = [(e.passed, e.reason) for e in h.of("evaluation") if e.target == "response"]
    assert [p for p, _ in answers] == [False, True]
    feedback = model.requests[1].messages[-1]
    assert feedback.role == "user"
    assert "Verification failed" in feedback.content
    assert model.requests[1].messages[-2].content == "I've issued a refund of $40.00."


def test_repeated_false_claims_end_failed_after_max_corrections() -> None:
    claim = say("I've issued a refund.")
    h = Harness(ScriptedModel(claim, claim, claim), recovery=RecoveryHandler(max_corrections=2))
    response = h.handle(READER)
    assert response.status == "failed"
    assert [r.action for r in h.of("recovery")] == ["correct", "correct"]
    assert response.turns == 3


def test_transient_model_error_is_retried_on_virtual_time() -> None:
    model = ScriptedModel(Overloaded("529"), say("All good."))
    h = Harness(model, recovery=RecoveryHandler(base_delay_s=2.0, jitter=0.0))
    response = h.handle(READER)
    assert response.status == "completed"
    calls = h.of("model_call")
    assert [(c.attempt, c.ok, c.error_type) for c in calls] == [(1, False, "Overloaded"), (2, True, None)]
    [retry] = h.of("retry")
    assert (retry.target, retry.delay_s) == ("model:t", 2.0)
    assert calls[1].t - calls[0].t == 2.0


def test_max_turns_ends_the_episode() -> None:
    lookup = use("lookup_order", {"order_id": "ORD-1"})
    h = Harness(ScriptedModel(lookup, lookup))
    response = h.handle(READER, max_turns=2)
    assert response.status == "max_turns"
    assert len(h.log) == 2


# --- budget --------------------------------------------------------------------------------------------


def test_budget_exhausted_mid_episode() -> None:
    # The first call is allowed (worst case ~0.003 of a 0.01 budget) but reports costing 0.008;
    # the next call's worst case no longer fits.
    model = ScriptedModel(use("lookup_order", {"order_id": "ORD-1"}, cost_usd=0.008), say("never reached"))
    h = Harness(model)
    response = h.handle(READER, budget_usd=0.01)

    assert response.status == "budget_exhausted"
    assert len(model.requests) == 1
    assert h.log == [("lookup_order", {"order_id": "ORD-1"})]
    assert "lookup_order" in response.text  # says what was completed
    assert response.cost_usd == pytest.approx(0.008)
    refused = [e for e in h.of("budget_check") if not e.allowed]
    assert len(refused) == 1
    assert refused[0].spent_usd == pytest.approx(0.008)
    assert refused[0].spent_usd + refused[0].estimate_usd > refused[0].limit_usd
    assert h.kinds()[-3:] == ["budget_check", "memory_saved", "final_response"]


# --- plan and execute -----------------------------------------------------------------------------------


def test_plan_with_reference_executes_both_steps() -> None:
    model = ScriptedModel(
        plan(
            {"id": "s1", "tool": "lookup_order", "args": {"order_id": "ORD-1"}},
            {"id": "s2", "tool": "check_inventory", "args": {"product_id": "${s1.product_id}"}},
        ),
        say("ORD-1 has shipped; PRD-7 has 3 in stock."),
    )
    h = Harness(model, strategy="plan")
    response = h.handle(READER, "Check ORD-1 and its product's stock")

    assert response.status == "completed"
    assert response.text == "ORD-1 has shipped; PRD-7 has 3 in stock."
    assert h.log == [("lookup_order", {"order_id": "ORD-1"}), ("check_inventory", {"product_id": "PRD-7"})]
    assert [r.purpose for r in model.requests] == ["plan", "respond"]
    assert model.requests[0].response_format == "json"
    assert model.requests[1].tools == ()
    assert PLAN_INSTRUCTIONS in model.requests[0].messages[0].content
    [made] = h.of("plan")
    assert (made.strategy, made.revision, [s["id"] for s in made.steps]) == ("plan", 0, ["s1", "s2"])
    assert h.of("recovery") == []


def test_plan_with_only_a_final_answer_calls_no_tools() -> None:
    model = ScriptedModel(plan(final_answer="Our returns window is 30 days."))
    h = Harness(model, strategy="plan")
    response = h.handle(READER, "What is the returns window?")
    assert response.status == "completed"
    assert response.text == "Our returns window is 30 days."
    assert h.log == []
    assert len(model.requests) == 1


@pytest.mark.parametrize(
    "bad",
    ["this is not json", '{"steps": [{"id": "s1"}]}', '{"steps": [], "extra": 1}'],
    ids=["not-json", "missing-tool", "extra-field"],
)
def test_malformed_plan_replans_then_fails(bad: str) -> None:
    model = ScriptedModel(say(bad), say(bad), say(bad))
    h = Harness(model, strategy="plan", recovery=RecoveryHandler(max_replans=2))
    response = h.handle(READER)

    assert response.status == "failed"
    assert len(model.requests) == 3
    assert [r.action for r in h.of("recovery")] == ["replan", "replan"]
    plan_evals = [e for e in h.of("evaluation") if e.target == "plan"]
    assert len(plan_evals) == 3
    assert not any(e.passed for e in plan_evals)
    assert h.of("plan") == []
    assert h.log == []
    # The model is told why its plan was rejected.
    assert "plan is not valid" in model.requests[1].messages[-1].content


def test_malformed_plan_then_valid_plan_completes() -> None:
    model = ScriptedModel(
        say("{oops"),
        plan({"id": "s1", "tool": "lookup_order", "args": {"order_id": "ORD-1"}}),
        say("ORD-1 has shipped."),
    )
    h = Harness(model, strategy="plan")
    response = h.handle(READER)
    assert response.status == "completed"
    assert [r.action for r in h.of("recovery")] == ["replan"]
    assert [p.revision for p in h.of("plan")] == [1]


def test_plan_naming_unknown_tool_is_rejected_and_replanned() -> None:
    model = ScriptedModel(
        plan({"id": "s1", "tool": "teleport", "args": {"to": "ORD-1"}}),
        plan({"id": "s1", "tool": "lookup_order", "args": {"order_id": "ORD-1"}}),
        say("ORD-1 has shipped."),
    )
    h = Harness(model, strategy="plan")
    response = h.handle(READER)

    assert response.status == "completed"
    assert [(r.tool, r.error_type) for r in h.of("step_rejected")] == [("teleport", "UnknownTool")]
    [replan] = h.of("recovery")
    assert replan.action == "replan"
    assert "teleport" in replan.reason
    assert "UnknownTool" in replan.reason
    assert [p.revision for p in h.of("plan")] == [0, 1]
    assert h.log == [("lookup_order", {"order_id": "ORD-1"})]
    assert [r.purpose for r in model.requests] == ["plan", "plan", "respond"]


def test_plan_reference_to_missing_step_replans() -> None:
    model = ScriptedModel(
        plan({"id": "s2", "tool": "check_inventory", "args": {"product_id": "${s1.product_id}"}}),
        plan(final_answer="I need the order id first."),
    )
    h = Harness(model, strategy="plan")
    response = h.handle(READER)
    assert response.status == "completed"
    [replan] = h.of("recovery")
    assert "s1.product_id" in replan.reason
    assert h.log == []
