"""Permissions Gate: who may make a request, which tools they may see, and which calls may run.

Every decision is an event (and, with the audit log, a row). The planner is only ever shown the
tools the user may use, so a refusal-worthy request is refused by the model, and a model that tries
a tool anyway is stopped here before the tool runs.
"""

from __future__ import annotations

from typing import Any

from agentlab.components.messages import Decision, User
from agentlab.llm.types import ToolDefinition
from agentlab.tools.registry import ToolRegistry, ToolSpec
from agentlab.trace.events import PermissionChecked

_ALLOW = Decision(True, "tool ACL satisfied")


class PermissionsGate:
    def __init__(self, registry: ToolRegistry, *, blocked_users: frozenset[str] = frozenset()) -> None:
        self.registry = registry
        self.blocked_users = blocked_users
        self._visible: dict[frozenset[str], tuple[ToolDefinition, ...]] = {}
        self._required = {spec.name: sorted(spec.permissions) for spec in registry}

    def admit(self, user: User) -> Decision:
        if user.id in self.blocked_users:
            return Decision(False, f"user {user.id} is blocked")
        if not user.permissions:
            return Decision(False, f"user {user.id} has no permissions")
        return Decision(True, "ok")

    def visible_tools(self, user: User) -> tuple[ToolDefinition, ...]:
        cached = self._visible.get(user.permissions)
        if cached is None:
            cached = tuple(s.definition for s in self.registry if s.permissions <= user.permissions)
            self._visible[user.permissions] = cached
        return cached

    def check(self, user: User, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any) -> Decision:
        if spec.permissions <= user.permissions:
            decision = _ALLOW
        else:
            missing = sorted(spec.permissions - user.permissions)
            decision = Decision(False, f"missing permission: {', '.join(missing)}")
        trace.emit(
            PermissionChecked(
                call_id=call_id,
                tool=spec.name,
                user_id=user.id,
                required=self._required.get(spec.name) or sorted(spec.permissions),
                decision="allow" if decision.allowed else "deny",
                reason=decision.reason,
            )
        )
        return decision
