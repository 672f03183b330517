"""The shop's rules beyond permissions: checks of a call's arguments against the world."""

from __future__ import annotations

from typing import Any

from agentlab.components.policy import Constraint, Policy


def _order(env: Any, order_id: str) -> dict[str, Any] | None:
    return env.one("SELECT * FROM orders WHERE id = ?", order_id) if env is not None else None


def refund_within_remaining(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    order = _order(env, args.get("order_id", ""))
    if order is not None and args.get("amount", 0) > round(order["total"] - order["refunded"], 2):
        return "deny", f"refund {args['amount']} exceeds what is left of {order['id']}"
    return None


def refund_approval_limit(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    limit = policy.approval_limit_usd
    if limit is not None and args.get("amount", 0) > limit:
        return "ask", f"refund {args['amount']} is above the {limit:g} approval limit"
    return None


def own_orders_only(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    if user.role != "customer":
        return None
    if "order_id" in args:
        order = _order(env, args["order_id"])
        if order is not None and order["customer_id"] != user.id:
            return "deny", f"{args['order_id']} is not {user.id}'s order"
    if "customer_id" in args and args["customer_id"] != user.id:
        return "deny", f"{user.id} may only act on their own account"
    return None


CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "issue_refund": (refund_within_remaining, refund_approval_limit, own_orders_only),
    "cancel_order": (own_orders_only,),
    "lookup_order": (own_orders_only,),
    "update_address": (own_orders_only,),
}

# Roles the constraints above give a meaning of their own, whether or not a suite declares them.
CONSTRAINT_ROLES = frozenset({"customer"})

# The resource a call acts on: the first id it names.
RESOURCE_KEYS = (("order_id", "order"), ("customer_id", "customer"), ("product_id", "product"))
