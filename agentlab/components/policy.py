"""Permission policy: a rule matrix over (role, tool, resource), and action-level constraints.

Rules are ALLOW / DENY / ASK over glob patterns of role, tool name and resource (``order:ORD-1004``,
``customer:CUS-001``); the first rule that matches decides, and with no match the default (deny)
applies. Constraints, declared by the domain, look at a call's arguments against the world (in the
support shop: a refund above the order's remaining total is denied, one above the approval limit is
sent for approval, a customer may only touch their own orders). Which resource a call acts on comes
from its domain too (``Domain.resource_of``). Policies load from YAML (``fixtures/policies/*.yaml``).
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


# A constraint returns None (fine) or (effect, reason) with effect "deny" or "ask". It receives the user, the
# tool's name, the call's arguments, the world (to read, never to write) and the policy (for its limits). A
# domain declares its constraints per tool (``Domain.constraints``).
Constraint = Callable[[Any, str, dict[str, Any], Any, Policy], tuple[Effect, str] | None]


def check_policy(
    policy: Policy, file: str, tools: Iterable[str], roles: Iterable[str], constraint_roles: Iterable[str] = ()
) -> None:
    """A rule whose tool pattern matches no tool is an error; one whose role matches no known role, a warning.

    Tools come from the registry, the same for every suite, so a tool matching nothing is a typo that turns an
    allow into the default deny (or the reverse). Roles come from the suite (``roles``, plus
    ``constraint_roles``, those its domain's constraints give a meaning to): one policy may serve suites with
    different roles, so an unknown role is only a one-line warning: it is probably a typo, but it may be meant
    for another suite.
    """
    tools, known = list(tools), sorted({*roles, *constraint_roles})
    for i, rule in enumerate(policy.rules):
        if not any(fnmatchcase(tool, rule.tool) for tool in tools):
            raise InputError(file, f"rules[{i}].tool", f"{rule.tool!r} matches no tool (tools: {', '.join(tools)})")
        if not any(fnmatchcase(role, rule.role) for role in known):
            problem = f"{rule.role!r} matches no role of this suite: the rule never applies (roles: {', '.join(known)})"
            warnings.warn(InputWarning(file, f"rules[{i}].role", problem), stacklevel=2)


def load_policy(path: str | Path) -> Policy:
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a policy must be a mapping with 'rules'")
    return validate_as(Policy, raw, str(path))
