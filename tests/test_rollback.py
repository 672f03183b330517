"""Saga rollback: an unfinished request undoes its side effects in reverse order; the rest is reported."""

from __future__ import annotations

from typing import Any

import orjson

from agentlab.agent import AgentSystem
from agentlab.components.messages import AgentRequest, User
from agentlab.components.recovery import RecoveryHandler
from agentlab.components.sandbox import ExecutionSandbox
from agentlab.domains.support import registry
from agentlab.domains.support.world import Customer, Order, Product, WorldSpec
from agentlab.faults import FaultInjector, FaultyToolInvoker, error, tools
from agentlab.llm.types import ModelRequest, ModelResponse, ToolCall, Usage
from agentlab.sim.loop import run_virtual
from agentlab.trace.recorder import EpisodeTrace, Recorder
from agentlab.world.store import World, build_template

SPEC = WorldSpec(
    customers=[Customer(id="CUS-1", name="Ana", email="ana@example.com", address="1 Old Road")],
    products=[Product(id="PRD-1", name="Stove", price=50.0, stock=3)],
    orders=[Order(id="ORD-1", customer_id="CUS-1", product_id="PRD-1", quantity=2, total=100.0, status="processing")],
)


class Script:
    """Calls the given tools in turn, then gives ``answer``."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], answer: str) -> None:
        self.calls, self.answer = calls, answer

    async def complete(self, request: ModelRequest) -> ModelResponse:
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if turn < len(self.calls):
            name, args = self.calls[turn]
            call = ToolCall(id=f"t{turn}", name=name, arguments=args, raw_arguments=orjson.dumps(args).decode())
            return ModelResponse(model="m", tool_calls=(call,), stop_reason="tool_use", usage=Usage(input_tokens=10))
        return ModelResponse(model="m", text=self.answer, usage=Usage(input_tokens=10, output_tokens=5))


def run(answer: str, recovery: RecoveryHandler, failing: str = "send_email") -> tuple[World, list[Any], str, str]:
    from agentlab.bench import BENCH_TIERS

    recorder = Recorder("run-rollback")
    injector = FaultInjector(error(503).on(tools(failing)), seed=1)
    calls = [
        ("update_address", {"customer_id": "CUS-1", "address": "9 New Street"}),
        ("cancel_order", {"order_id": "ORD-1"}),
        ("send_email", {"customer_id": "CUS-1", "subject": "Cancelled", "body": "Your order is cancelled."}),
    ]
    agent = AgentSystem(
        model=Script(calls, answer),
        registry=registry,
        tiers=BENCH_TIERS,
        recorder=recorder,
        sandbox=ExecutionSandbox(invoker=FaultyToolInvoker(injector)),
        recovery=recovery,
    )
    template = build_template(SPEC)
    world = World.from_template(template, simulate_io=False)
    user = User(id="U-1", role="senior", permissions=frozenset(p for s in registry for p in s.permissions))

    async def go():
        injector.start_episode("e1", 0.0)
        EpisodeTrace(recorder, "e1", agent.clock)  # the injector's events go to the same trace
        return await agent.handle(
            AgentRequest(user=user, text="move and cancel", session_id="s"), episode_id="e1", env=world
        )

    response = run_virtual(go())
    return world, recorder.events, response.status, response.text


def test_an_unfinished_request_is_rolled_back_in_reverse_order() -> None:
    world, events, status, text = run(
        "I wasn't able to complete this request: send_email failed.", RecoveryHandler.resilient()
    )
    assert status == "incomplete"
    rollbacks = [(e.tool, e.compensated) for e in events if e.kind == "rollback"]
    assert rollbacks == [("cancel_order", True), ("update_address", True)]  # reverse order of application
    assert world.one("SELECT status FROM orders WHERE id = 'ORD-1'")["status"] == "processing"
    assert world.one("SELECT stock FROM products WHERE id = 'PRD-1'")["stock"] == 3
    assert world.one("SELECT address FROM customers WHERE id = 'CUS-1'")["address"] == "1 Old Road"
    assert [e["action"] for e in world.effects()] == ["apply", "apply", "compensate", "compensate"]
    assert "rolled back" in text


def test_what_cannot_be_undone_is_reported() -> None:
    # Everything succeeds, but the model reports the request unfinished: the email cannot be unsent.
    world, events, _, text = run(
        "I couldn't complete the request.", RecoveryHandler.resilient(), failing="nothing_fails_here"
    )
    rollbacks = [(e.tool, e.compensated, e.reason) for e in events if e.kind == "rollback"]
    assert rollbacks[0][:2] == ("send_email", False) and "cannot be undone" in rollbacks[0][2]
    assert [r[:2] for r in rollbacks[1:]] == [("cancel_order", True), ("update_address", True)]
    assert "could not be undone: send_email" in text
    assert world.one("SELECT COUNT(*) AS n FROM emails")["n"] == 1


def test_a_completed_request_is_not_rolled_back() -> None:
    answer = "Done: address updated and order cancelled; email sent."
    world, events, status, _ = run(answer, RecoveryHandler.resilient(), failing="nothing_fails_here")
    assert status == "completed"
    assert not [e for e in events if e.kind == "rollback"]
    assert world.one("SELECT status FROM orders WHERE id = 'ORD-1'")["status"] == "cancelled"


def test_without_resilience_nothing_is_rolled_back() -> None:
    world, events, status, _ = run("I wasn't able to complete this request.", RecoveryHandler.disabled())
    assert status == "incomplete"
    assert not [e for e in events if e.kind == "rollback"]
    assert world.one("SELECT status FROM orders WHERE id = 'ORD-1'")["status"] == "cancelled"
