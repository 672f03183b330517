"""Permission policy: a rule matrix over (role, tool, resource), and action-level constraints.

Rules are ALLOW / DENY / ASK over glob patterns of role, tool name and resource (``order:ORD-1004``,
``customer:CUS-001``); the first rule that matches decides, and with no match the default (deny)
applies. Constraints look at a call's arguments against the world: a refund above the order's
remaining total is denied, one above the approval limit is sent for approval, and a customer may
only touch their own orders. Policies load from YAML (``fixtures/policies/*.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agentlab.errors import InputError

Effect = Literal["allow", "deny", "ask"]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = "*"
    tool: str = "*"
    resource: str = "*"
    effect: Effect
    reason: str = ""

    def matches(self, role: str, tool: str, resource: str) -> bool:
        return fnmatchcase(role, self.role) and fnmatchcase(tool, self.tool) and fnmatchcase(resource, self.resource)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = ()
    default: Literal["allow", "deny"] = "deny"
    approval_limit_usd: float | None = 100.0

    def model_post_init(self, context: Any) -> None:
        object.__setattr__(self, "_decisions", {})
        object.__setattr__(self, "_resource_free", all(rule.resource == "*" for rule in self.rules))

    def decide(self, role: str, tool: str, resource: str) -> tuple[Effect, str]:
        """The first matching rule's (effect, reason), memoised: when no rule names a resource, the answer
        depends on (role, tool) alone."""
        key = (role, tool) if self._resource_free else (role, tool, resource)
        cache = self._decisions
        found = cache.get(key)
        if found is None:
            found = cache[key] = self._decide(role, tool, resource)
        return found

    def _decide(self, role: str, tool: str, resource: str) -> tuple[Effect, str]:
        for i, rule in enumerate(self.rules):
            if rule.matches(role, tool, resource):
                return rule.effect, rule.reason or f"rule {i} ({rule.role}, {rule.tool}, {rule.resource})"
        return self.default, f"no rule matches ({role}, {tool}, {resource}): default {self.default}"


def resource_of(args: dict[str, Any]) -> str:
    """The resource a call acts on, from its arguments (the first id it names)."""
    for key, kind in (("order_id", "order"), ("customer_id", "customer"), ("product_id", "product")):
        if key in args:
            return f"{kind}:{args[key]}"
    return "*"


# A constraint returns None (fine) or (effect, reason) with effect "deny" or "ask".
Constraint = Callable[[Any, str, dict[str, Any], Any, Policy], tuple[Effect, str] | None]


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


SUPPORT_CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "issue_refund": (refund_within_remaining, refund_approval_limit, own_orders_only),
    "cancel_order": (own_orders_only,),
    "lookup_order": (own_orders_only,),
    "update_address": (own_orders_only,),
}


def load_policy(path: str | Path) -> Policy:
    from agentlab.scenarios.loader import read_yaml, validate_as

    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a policy must be a mapping with 'rules'")
    return validate_as(Policy, raw, str(path))
