"""The support shop's tools, acting on the simulated :class:`~agentlab.world.World`.

Each tool first pays its simulated infrastructure cost (``world.io``: latency and intrinsic
flakiness), then runs its reads and writes in one savepoint, records every side effect in the
world's ledger, and its outcome in the world's journal (see :func:`agentlab.tools.world_tool.world_tool`). Tools raise
:class:`ToolFailed` for business-rule refusals (retrying will not help) and
:class:`ToolTransientError` for upstream hiccups.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from agentlab.errors import ToolFailed
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.tools.world_tool import record_effect
from agentlab.tools.world_tool import world_tool as _world_tool

registry = ToolRegistry()


def world_tool(**meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a support tool (see :func:`agentlab.tools.world_tool.world_tool`)."""
    return _world_tool(registry, **meta)


def _order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    row = ctx.world.one("SELECT * FROM orders WHERE id = ?", order_id)
    if row is None:
        raise ToolFailed(f"order {order_id} not found")
    return row


def _customer(ctx: ToolContext, customer_id: str) -> dict[str, Any]:
    row = ctx.world.one("SELECT * FROM customers WHERE id = ?", customer_id)
    if row is None:
        raise ToolFailed(f"customer {customer_id} not found")
    return row


_effect = record_effect


# --- reads -----------------------------------------------------------------------------------------


@world_tool(permissions=["orders:read"], timeout_s=10)
def lookup_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order by id: status, total, amount refunded so far, address and notes."""
    return _order(ctx, order_id)


@world_tool(permissions=["customers:read"], timeout_s=10, redact=["phone"])
def get_customer(ctx: ToolContext, customer_id: str) -> dict[str, Any]:
    """Get a customer's profile and the ids of their orders."""
    row = _customer(ctx, customer_id)
    orders = ctx.world.all("SELECT id FROM orders WHERE customer_id = ? ORDER BY id", customer_id)
    return {**row, "order_ids": [o["id"] for o in orders]}


@world_tool(permissions=["customers:read"], timeout_s=10)
def search_customers(ctx: ToolContext, query: str) -> dict[str, Any]:
    """Find customers whose name or email contains the query (case-insensitive)."""
    like = f"%{query.lower()}%"
    rows = ctx.world.all(
        "SELECT * FROM customers WHERE lower(name) LIKE ? OR lower(email) LIKE ? ORDER BY id", like, like
    )
    return {"matches": rows}


@world_tool(permissions=["inventory:read"], timeout_s=10)
def check_inventory(ctx: ToolContext, product_id: str) -> dict[str, Any]:
    """Check a product's name, price and units in stock."""
    row = ctx.world.one("SELECT id AS product_id, name, price, stock FROM products WHERE id = ?", product_id)
    if row is None:
        raise ToolFailed(f"product {product_id} not found")
    return row


_WORD = re.compile(r"[a-z0-9]+")


def _rank(rows: list[dict[str, Any]], query: str, k: int = 3) -> list[dict[str, Any]]:
    words = set(_WORD.findall(query.lower()))
    scored = []
    for i, row in enumerate(rows):
        text = set(_WORD.findall(f"{row['title']} {row['body']}".lower()))
        overlap = len(words & text)
        if overlap:
            scored.append((-overlap, i, row))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [row for _, _, row in scored[:k]]


@world_tool(permissions=["kb:read"], timeout_s=10)
def kb_search(ctx: ToolContext, query: str) -> dict[str, Any]:
    """Search the internal knowledge base (policies, shipping, returns, warranty)."""
    return {"articles": _rank(ctx.world.all("SELECT * FROM kb_articles ORDER BY id"), query)}


@world_tool(permissions=["web:read"], timeout_s=15, external=True, fallback="kb_search", cost_usd=0.002)
def web_search(ctx: ToolContext, query: str) -> dict[str, Any]:
    """Search the public web (carriers, manufacturers). External and flaky; falls back to kb_search."""
    rows = _rank(ctx.world.all("SELECT * FROM web_pages ORDER BY id"), query)
    return {"results": [{"url": r["url"], "title": r["title"], "body": r["body"]} for r in rows]}


# --- writes ----------------------------------------------------------------------------------------


@world_tool(
    permissions=["refunds"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    idempotency_keys=True,
    key_fields=("order_id", "amount"),
)
def issue_refund(ctx: ToolContext, order_id: str, amount: float, reason: str = "") -> dict[str, Any]:
    """Refund part or all of an order's total to the customer's original payment method."""
    with ctx.world.transaction() as w:
        order = _order(ctx, order_id)
        if order["status"] == "cancelled":
            raise ToolFailed(f"order {order_id} is cancelled and cannot be refunded")
        remaining = round(order["total"] - order["refunded"], 2)
        amount = round(amount, 2)
        if amount <= 0 or amount > remaining:
            raise ToolFailed(f"refund amount {amount:.2f} must be > 0 and <= {remaining:.2f} for {order_id}")
        refund_id = w.next_id("refunds", "RF")
        w.execute(
            "INSERT INTO refunds (id, order_id, amount, reason, t) VALUES (?, ?, ?, ?, ?)",
            refund_id,
            order_id,
            round(amount, 2),
            reason,
            w.now(),
        )
        refunded = round(order["refunded"] + amount, 2)
        w.execute("UPDATE orders SET refunded = ? WHERE id = ?", refunded, order_id)
        result = {"refund_id": refund_id, "order_id": order_id, "amount": amount, "refunded_total": refunded}
        _effect(ctx, "issue_refund", {"order_id": order_id, "amount": amount}, result=result)
    return result


def _restore_order(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> None:
    with ctx.world.transaction() as w:
        order = _order(ctx, args["order_id"])
        w.execute("UPDATE orders SET status = ? WHERE id = ?", result["previous_status"], order["id"])
        w.execute("UPDATE products SET stock = stock - ? WHERE id = ?", order["quantity"], order["product_id"])
        _effect(ctx, "cancel_order", {"order_id": order["id"]}, action="compensate")


@world_tool(permissions=["orders:write"], timeout_s=20, side_effects=True, rollback=_restore_order)
def cancel_order(ctx: ToolContext, order_id: str, reason: str = "") -> dict[str, Any]:
    """Cancel an order that has not shipped yet and put its items back in stock."""
    with ctx.world.transaction() as w:
        order = _order(ctx, order_id)
        if order["status"] != "processing":
            raise ToolFailed(f"order {order_id} is {order['status']}; only processing orders can be cancelled")
        w.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", order_id)
        w.execute("UPDATE products SET stock = stock + ? WHERE id = ?", order["quantity"], order["product_id"])
        result = {"order_id": order_id, "status": "cancelled", "previous_status": order["status"]}
        _effect(ctx, "cancel_order", {"order_id": order_id}, result=result)
    return result


def _restore_address(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> None:
    with ctx.world.transaction() as w:
        w.execute("UPDATE customers SET address = ? WHERE id = ?", result["previous_address"], args["customer_id"])
        _effect(ctx, "update_address", {"customer_id": args["customer_id"]}, action="compensate")


@world_tool(permissions=["customers:write"], timeout_s=20, side_effects=True, rollback=_restore_address)
def update_address(ctx: ToolContext, customer_id: str, address: str) -> dict[str, Any]:
    """Change a customer's shipping address (orders already shipped keep the old one)."""
    with ctx.world.transaction() as w:
        customer = _customer(ctx, customer_id)
        w.execute("UPDATE customers SET address = ? WHERE id = ?", address, customer_id)
        w.execute("UPDATE orders SET address = ? WHERE customer_id = ? AND status = 'processing'", address, customer_id)
        result = {"customer_id": customer_id, "address": address, "previous_address": customer["address"]}
        _effect(ctx, "update_address", {"customer_id": customer_id, "address": address}, result=result)
    return result


@world_tool(
    permissions=["email:send"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    cost_usd=0.0001,
    redact=["body"],
    key_fields=("customer_id", "subject"),
)
def send_email(ctx: ToolContext, customer_id: str, subject: str, body: str) -> dict[str, Any]:
    """Send an email to a customer. Cannot be unsent."""
    with ctx.world.transaction() as w:
        _customer(ctx, customer_id)
        email_id = w.next_id("emails", "EM")
        w.execute(
            "INSERT INTO emails (id, customer_id, subject, body, t) VALUES (?, ?, ?, ?, ?)",
            email_id,
            customer_id,
            subject,
            body,
            w.now(),
        )
        result = {"email_id": email_id, "customer_id": customer_id}
        _effect(ctx, "send_email", {"customer_id": customer_id, "subject": subject}, result=result)
    return result


@world_tool(
    permissions=["tickets:write"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    idempotency_keys=True,
    key_fields=("customer_id", "priority"),
)
def create_ticket(
    ctx: ToolContext,
    customer_id: str,
    subject: str,
    body: str,
    priority: Literal["low", "normal", "high", "urgent"] = "normal",
) -> dict[str, Any]:
    """Open a follow-up ticket for the support team."""
    with ctx.world.transaction() as w:
        _customer(ctx, customer_id)
        ticket_id = w.next_id("tickets", "TK")
        w.execute(
            "INSERT INTO tickets (id, customer_id, subject, body, priority, status, t) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ticket_id,
            customer_id,
            subject,
            body,
            priority,
            "open",
            w.now(),
        )
        result = {"ticket_id": ticket_id, "customer_id": customer_id, "priority": priority}
        _effect(ctx, "create_ticket", {"customer_id": customer_id, "priority": priority}, result=result)
    return result


@world_tool(
    permissions=["escalate"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    idempotency_keys=True,
    key_fields=("customer_id",),
)
def escalate_to_human(ctx: ToolContext, customer_id: str, reason: str) -> dict[str, Any]:
    """Hand the conversation to a human agent."""
    with ctx.world.transaction() as w:
        _customer(ctx, customer_id)
        esc_id = w.next_id("escalations", "ESC")
        w.execute(
            "INSERT INTO escalations (id, customer_id, reason, t) VALUES (?, ?, ?, ?)",
            esc_id,
            customer_id,
            reason,
            w.now(),
        )
        result = {"escalation_id": esc_id, "customer_id": customer_id}
        _effect(ctx, "escalate_to_human", {"customer_id": customer_id}, result=result)
    return result
