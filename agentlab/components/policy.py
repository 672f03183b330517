"""Permission policy: a rule matrix over (role, tool, resource), and action-level constraints.

Rules are ALLOW / DENY / ASK over glob patterns of role, tool name and resource (``order:ORD-1004``,
``customer:CUS-001``); the first rule that matches decides, and with no match the default (deny)
applies. Constraints look at a call's arguments against the world: a refund above the order's
remaining total is denied, one above the approval limit is sent for approval, and a customer may
only touch their own orders. Policies load from YAML (``fixtures/policies/*.yaml``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.errors import InputError, InputWarning

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
    # A negative limit would send every refund, however small, to a human: a typo, refused at load.
    approval_limit_usd: float | None = Field(default=100.0, ge=0)

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


# Roles the constraints above give a meaning of their own, whether or not a suite declares them.
CONSTRAINT_ROLES = frozenset({"customer"})


def check_policy(policy: Policy, file: str, tools: Iterable[str], roles: Iterable[str]) -> None:
    """A rule whose tool pattern matches no tool is an error; one whose role matches no known role, a warning.

    Tools come from the registry, the same for every suite, so a tool matching nothing is a typo that turns an
    allow into the default deny (or the reverse). Roles come from the suite (``roles``, plus
    :data:`CONSTRAINT_ROLES`): one policy may serve suites with different roles, so an unknown role is only
    a one-line warning: it is probably a typo, but it may be meant for another suite.
    """
    tools, known = list(tools), sorted({*roles, *CONSTRAINT_ROLES})
    for i, rule in enumerate(policy.rules):
        if not any(fnmatchcase(tool, rule.tool) for tool in tools):
            raise InputError(file, f"rules[{i}].tool", f"{rule.tool!r} matches no tool (tools: {', '.join(tools)})")
        if not any(fnmatchcase(role, rule.role) for role in known):
            problem = f"{rule.role!r} matches no role of this suite: the rule never applies (roles: {', '.join(known)})"
            warnings.warn(InputWarning(file, f"rules[{i}].role", problem), stacklevel=2)


def load_policy(path: str | Path) -> Policy:
    from agentlab.scenarios.loader import read_yaml, validate_as

    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a policy must be a mapping with 'rules'")
    return validate_as(Policy, raw, str(path))
