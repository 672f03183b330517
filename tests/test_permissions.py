"""Permissions Gate: admission, visible tools, per-call checks and their trace events."""

from __future__ import annotations

from typing import Any

import pytest

from agentlab.components.messages import User
from agentlab.components.permissions import PermissionsGate
from agentlab.domains.support import registry as support_registry
from agentlab.testing.trace import ListTrace
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.events import PermissionChecked


def make_registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool()
    async def ping(ctx: ToolContext) -> str:
        """No permission needed."""
        return "pong"

    @reg.tool(permissions=["orders:read"])
    async def read_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
        """Read an order."""
        return {"id": order_id}

    @reg.tool(permissions=["orders:read", "refunds"])
    async def refund(ctx: ToolContext, order_id: str) -> dict[str, Any]:
        """Refund an order."""
        return {"id": order_id}

    @reg.tool(permissions=["admin", "refunds", "orders:write"])
    async def nuke(ctx: ToolContext) -> None:
        """Needs three permissions."""

    return reg


@pytest.fixture
def registry() -> ToolRegistry:
    return make_registry()


@pytest.fixture
def gate(registry: ToolRegistry) -> PermissionsGate:
    return PermissionsGate(registry, blocked_users=frozenset({"U-bad"}))


def user(uid: str, *perms: str) -> User:
    return User(id=uid, permissions=frozenset(perms))


# --- admit -------------------------------------------------------------------------------------


def test_admit_allows_user_with_permissions(gate: PermissionsGate) -> None:
    decision = gate.admit(user("U-1", "orders:read"))
    assert decision.allowed


def test_admit_refuses_blocked_user_even_with_permissions(gate: PermissionsGate) -> None:
    decision = gate.admit(user("U-bad", "orders:read", "refunds", "admin"))
    assert not decision.allowed
    assert "U-bad" in decision.reason
    assert "blocked" in decision.reason


def test_admit_refuses_user_without_permissions(gate: PermissionsGate) -> None:
    decision = gate.admit(user("U-2"))
    assert not decision.allowed
    assert "no permissions" in decision.reason


# --- visible_tools -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        ((), ["ping"]),
        (("orders:read",), ["ping", "read_order"]),
        (("refunds",), ["ping"]),
        (("orders:read", "refunds"), ["ping", "read_order", "refund"]),
        (("orders:read", "refunds", "admin", "orders:write", "extra"), ["ping", "read_order", "refund", "nuke"]),
    ],
)
def test_visible_tools_are_those_whose_permissions_are_a_subset(
    gate: PermissionsGate, perms: tuple[str, ...], expected: list[str]
) -> None:
    tools = gate.visible_tools(user("U-1", *perms))
    assert [t.name for t in tools] == expected


def test_visible_tools_cache_is_keyed_by_permission_set(gate: PermissionsGate) -> None:
    narrow = gate.visible_tools(user("U-1", "orders:read"))
    wide = gate.visible_tools(user("U-2", "orders:read", "refunds"))
    again = gate.visible_tools(user("U-3", "orders:read"))
    assert [t.name for t in narrow] == ["ping", "read_order"]
    assert [t.name for t in wide] == ["ping", "read_order", "refund"]
    assert again == narrow


def test_visible_support_tools_for_a_read_only_user() -> None:
    gate = PermissionsGate(support_registry)
    names = {t.name for t in gate.visible_tools(user("U-1", "orders:read", "kb:read"))}
    assert names == {"lookup_order", "kb_search"}
    for spec in support_registry:
        assert (spec.name in names) == (spec.permissions <= {"orders:read", "kb:read"})


# --- check -------------------------------------------------------------------------------------


def test_check_allows_and_emits_one_allow_event(gate: PermissionsGate, registry: ToolRegistry) -> None:
    trace = ListTrace()
    u = user("U-1", "orders:read", "refunds")
    decision = gate.check(u, registry["refund"], {"order_id": "ORD-1"}, "c1", trace)
    assert decision.allowed
    assert len(trace.events) == 1
    event = trace.events[0]
    assert isinstance(event, PermissionChecked)
    assert event.kind == "permission_check"
    assert event.decision == "allow"
    assert event.call_id == "c1"
    assert event.tool == "refund"
    assert event.user_id == "U-1"
    assert event.required == ["orders:read", "refunds"]


def test_check_denies_and_names_the_missing_permission(gate: PermissionsGate, registry: ToolRegistry) -> None:
    trace = ListTrace()
    decision = gate.check(user("U-1", "orders:read"), registry["refund"], {"order_id": "ORD-1"}, "c7", trace)
    assert not decision.allowed
    assert "refunds" in decision.reason
    assert "orders:read" not in decision.reason  # the user has that one
    assert len(trace.events) == 1
    event = trace.events[0]
    assert isinstance(event, PermissionChecked)
    assert event.decision == "deny"
    assert event.call_id == "c7"
    assert "refunds" in event.reason
    assert event.required == ["orders:read", "refunds"]


def test_check_denial_lists_every_missing_permission(gate: PermissionsGate, registry: ToolRegistry) -> None:
    trace = ListTrace()
    decision = gate.check(user("U-1", "refunds"), registry["nuke"], {}, "c2", trace)
    assert not decision.allowed
    assert "admin" in decision.reason
    assert "orders:write" in decision.reason
    assert "refunds" not in decision.reason
    assert [e.decision for e in trace.events] == ["deny"]  # type: ignore[attr-defined]


def test_check_allows_tool_without_permissions(gate: PermissionsGate, registry: ToolRegistry) -> None:
    trace = ListTrace()
    decision = gate.check(user("U-1", "x"), registry["ping"], {}, "c3", trace)
    assert decision.allowed
    assert len(trace.events) == 1
    assert trace.events[0].decision == "allow"  # type: ignore[attr-defined]
    assert trace.events[0].required == []  # type: ignore[attr-defined]


def test_each_check_emits_exactly_one_event(gate: PermissionsGate, registry: ToolRegistry) -> None:
    trace = ListTrace()
    u = user("U-1", "orders:read")
    gate.check(u, registry["read_order"], {"order_id": "A"}, "c1", trace)
    gate.check(u, registry["refund"], {"order_id": "A"}, "c2", trace)
    gate.check(u, registry["read_order"], {"order_id": "B"}, "c3", trace)
    assert [(e.call_id, e.decision) for e in trace.events] == [  # type: ignore[attr-defined]
        ("c1", "allow"),
        ("c2", "deny"),
        ("c3", "allow"),
    ]
