"""The permission rule matrix, action-level constraints, and the approval flow on simulated time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentlab.components.approvals import ApprovalQueue, SimulatedApprover
from agentlab.components.audit import AuditLog
from agentlab.components.messages import User
from agentlab.components.permissions import PermissionsGate
from agentlab.components.policy import Policy, Rule, load_policy
from agentlab.domains.support import CONSTRAINTS as SUPPORT_CONSTRAINTS
from agentlab.domains.support import registry, resource_of
from agentlab.domains.support.world import Customer, Order, Product, WorldSpec
from agentlab.errors import InputError
from agentlab.sim.loop import run_virtual
from agentlab.testing.trace import ListTrace
from agentlab.world.store import World, build_template

ROOT = Path(__file__).resolve().parents[1]
ALL = frozenset(p for s in registry for p in s.permissions)


@pytest.fixture
def world() -> World:
    spec = WorldSpec(
        customers=[Customer(id="CUS-1", name="A", email="a@x.com"), Customer(id="CUS-2", name="B", email="b@x.com")],
        products=[Product(id="PRD-1", name="Tent", price=300.0, stock=1)],
        orders=[
            Order(id="ORD-1", customer_id="CUS-1", product_id="PRD-1", total=300.0, refunded=250.0, status="delivered"),
            Order(id="ORD-2", customer_id="CUS-2", product_id="PRD-1", total=300.0, status="delivered"),
        ],
    )
    return World.from_template(build_template(spec), simulate_io=False)


def test_first_matching_rule_wins_and_the_default_is_deny() -> None:
    policy = Policy(
        rules=(
            Rule(role="agent", tool="issue_*", effect="deny", reason="agents never refund"),
            Rule(role="*", tool="*", resource="order:*", effect="allow"),
        )
    )
    assert policy.decide("agent", "issue_refund", "order:ORD-1") == ("deny", "agents never refund")
    assert policy.decide("senior", "issue_refund", "order:ORD-1")[0] == "allow"
    effect, reason = policy.decide("senior", "send_email", "customer:CUS-1")
    assert effect == "deny" and "default deny" in reason


def test_resources_come_from_the_arguments() -> None:
    assert resource_of({"order_id": "ORD-7", "amount": 5}) == "order:ORD-7"
    assert resource_of({"customer_id": "CUS-1"}) == "customer:CUS-1"
    assert resource_of({"query": "tents"}) == "*"


def gate(policy_approver: str = "approve", delay: float = 30.0, audit: AuditLog | None = None) -> PermissionsGate:
    policy = load_policy(ROOT / "fixtures/policies/support.yaml")
    approvals = ApprovalQueue(SimulatedApprover(policy_approver, delay), deadline_s=120.0)  # type: ignore[arg-type]
    return PermissionsGate(
        registry,
        policy=policy,
        constraints=SUPPORT_CONSTRAINTS,
        resources=resource_of,
        approvals=approvals,
        audit=audit,
    )


def authorize(g: PermissionsGate, user: User, tool: str, args: dict[str, Any], world: World):
    trace = ListTrace()

    async def go():
        decision = await g.authorize(user, registry[tool], args, "c1", trace, env=world)
        return decision, asyncio.get_running_loop().time()

    decision, t = run_virtual(go())
    return decision, t, trace.events


def test_action_constraints(world: World) -> None:
    senior = User(id="U-1", role="senior", permissions=ALL)
    decision, _, events = authorize(gate(), senior, "issue_refund", {"order_id": "ORD-1", "amount": 60.0}, world)
    assert not decision.allowed and "exceeds what is left of ORD-1" in decision.reason
    assert events[0].decision == "deny"
    decision, t, _ = authorize(gate(), senior, "issue_refund", {"order_id": "ORD-1", "amount": 50.0}, world)
    assert decision.allowed and t == 0.0  # under the limit: no approval, no waiting


def test_customers_touch_only_their_own_orders(world: World) -> None:
    customer = User(id="CUS-1", role="customer", permissions=frozenset({"orders:read"}))
    assert authorize(gate(), customer, "lookup_order", {"order_id": "ORD-1"}, world)[0].allowed
    decision = authorize(gate(), customer, "lookup_order", {"order_id": "ORD-2"}, world)[0]
    assert not decision.allowed and "not CUS-1's order" in decision.reason


@pytest.mark.parametrize(
    ("approver", "delay", "outcome", "allowed", "at"),
    [
        ("approve", 30.0, "approved", True, 30.0),
        ("deny", 45.0, "rejected", False, 45.0),
        ("never", 0.0, "expired", False, 120.0),
        ("approve", 500.0, "expired", False, 120.0),
    ],
)
def test_refunds_above_the_limit_wait_for_approval(
    world: World, tmp_path: Path, approver: str, delay: float, outcome: str, allowed: bool, at: float
) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite")
    senior = User(id="U-1", role="senior", permissions=ALL)
    decision, t, events = authorize(
        gate(approver, delay, audit), senior, "issue_refund", {"order_id": "ORD-2", "amount": 150.0}, world
    )
    assert decision.allowed is allowed and t == at  # decided on the simulated clock
    assert [e.kind for e in events] == ["permission_check", "approval_requested", "approval_decided"]
    assert events[0].decision == "ask" and events[2].outcome == outcome
    assert [r["decision"] for r in audit.rows(kind="permission")] == ["ask", outcome]


@pytest.mark.parametrize(("approver", "outcome"), [("deny", "rejected"), ("never", "expired")])
def test_nobody_is_asked_twice_for_an_action_they_refused(
    world: World, tmp_path: Path, approver: str, outcome: str
) -> None:
    """A refusal (or silence until the deadline) stands for the rest of the request: the same action asked
    again is denied at once, without a second wait. Another action, or another request, is asked as usual."""
    audit = AuditLog(tmp_path / "audit.sqlite")
    g = gate(approver, 30.0, audit)
    senior = User(id="U-1", role="senior", permissions=ALL)
    refund = {"order_id": "ORD-2", "amount": 150.0}
    trace = ListTrace()

    async def go(args: dict[str, Any], call_id: str, t: Any = trace):
        decision = await g.authorize(senior, registry["issue_refund"], args, call_id, t, env=world)
        return decision, asyncio.get_running_loop().time()

    async def session():
        first = await go(refund, "c1")
        again = await go(dict(reversed(refund.items())), "c2")  # the same action, its arguments in another order
        other = await go({"order_id": "ORD-2", "amount": 120.0}, "c3")
        later = ListTrace("e2")
        next_request = await go(refund, "c1", later)
        return first, again, other, next_request, later.events

    (first, t1), (again, t2), (other, t3), (next_request, _), later = run_virtual(session())
    assert not first.allowed and not again.allowed and not other.allowed and not next_request.allowed
    assert t2 == t1  # denied at once: no second wait on the approver or the deadline
    assert t3 > t2  # a different amount is a different action: asked, and waited for
    checks = [e for e in trace.events if e.kind == "permission_check"]
    assert [e.decision for e in checks] == ["ask", "deny", "ask"]
    assert f"approval {outcome} earlier in this request" in checks[1].reason
    assert [e.kind for e in trace.events].count("approval_requested") == 2
    assert [e.kind for e in later] == ["permission_check", "approval_requested", "approval_decided"]
    assert [r["decision"] for r in audit.rows(kind="permission", episode_id="e1")] == [
        "ask", outcome, "deny", "ask", outcome,
    ]  # fmt: skip


def test_a_refusal_is_forgotten_when_its_request_ends(world: World) -> None:
    """The refusal memo lasts one request: after ``end_request`` the same action in the same episode id is asked
    again, and a long run does not keep every refused action it ever saw."""
    g = gate("deny", 30.0)
    senior = User(id="U-1", role="senior", permissions=ALL)
    refund = {"order_id": "ORD-2", "amount": 150.0}
    trace = ListTrace("e1")

    async def ask() -> None:
        await g.authorize(senior, registry["issue_refund"], refund, "c1", trace, env=world)

    run_virtual(ask())
    g.end_request("e1")
    run_virtual(ask())
    decisions = [e.decision for e in trace.events if e.kind == "permission_check"]
    assert decisions == ["ask", "ask"]  # without end_request the second would be an immediate deny
    g.end_request("e1")
    assert g._refused == {}


def test_bad_policy_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules:\n  - {tool: '*', effect: maybe}\n")
    with pytest.raises(InputError) as info:
        load_policy(bad)
    assert str(bad) in str(info.value) and "rules[0].effect" in str(info.value)
