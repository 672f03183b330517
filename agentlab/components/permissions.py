"""Permissions Gate: who may make a request, which tools they may see, and which calls may run.

Three layers, each able to stop a call: the tool's ACL (the user's permissions), the policy's rule
matrix over (role, tool, resource), and action-level constraints on the arguments (see
:mod:`agentlab.components.policy`). An ASK sends the call to the approval queue and waits, on the
loop's clock, for a human's answer or the deadline. Every decision is an event and an audit row.
The planner is only ever shown the tools the user may use, so a refusal-worthy request is refused
by the model, and a model that tries a tool anyway is stopped here before the tool runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from agentlab.components.approvals import ApprovalQueue, ApprovalRequest
from agentlab.components.audit import AuditLog, redact
from agentlab.components.messages import Decision, User
from agentlab.components.policy import Constraint, Policy
from agentlab.llm.types import ToolDefinition
from agentlab.tools.registry import ToolRegistry, ToolSpec
from agentlab.trace.events import PermissionChecked

_ALLOW = Decision(True, "tool ACL satisfied")


def _any_resource(args: dict[str, Any]) -> str:
    return "*"


class PermissionsGate:
    def __init__(
        self,
        registry: ToolRegistry,
        *,
        blocked_users: frozenset[str] = frozenset(),
        policy: Policy | None = None,
        constraints: Mapping[str, tuple[Constraint, ...]] | None = None,
        approvals: ApprovalQueue | None = None,
        audit: AuditLog | None = None,
        resources: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        """``constraints`` and ``resources`` come from the domain (``Domain.constraints``, ``Domain.resource_of``):
        its argument checks per tool, and the resource a call acts on, which policy rules match."""
        self.registry = registry
        self.resource_of = resources or _any_resource
        self.blocked_users = blocked_users
        self.policy = policy
        self.constraints = dict(constraints or {})
        self.approvals = approvals or ApprovalQueue()
        self.audit = audit
        self._visible: dict[frozenset[str], tuple[ToolDefinition, ...]] = {}
        self._required = {spec.name: sorted(spec.permissions) for spec in registry}
        # episode -> (tool, arguments) -> how an approval that did not end "approved" ended: a person's no, or
        # their silence until the deadline, stands for the rest of the request (nobody is asked the same thing
        # twice). Dropped by end_request, so a long run keeps only its requests in flight.
        self._refused: dict[str, dict[tuple[str, bytes], str]] = {}

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
        """The tool ACL alone: :meth:`authorize` without a policy (no rules, constraints or approvals)."""
        effect, reason = self._acl(user, spec)
        self._record(user.id, spec, args, call_id, trace, effect, reason)
        return _ALLOW if effect == "allow" else Decision(False, reason)

    @staticmethod
    def _acl(user: User, spec: ToolSpec) -> tuple[str, str]:
        if spec.permissions <= user.permissions:  # a subset test: no set is built in the common case
            return "allow", _ALLOW.reason
        return "deny", f"missing permission: {', '.join(sorted(spec.permissions - user.permissions))}"

    def _record(
        self, user_id: str, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any, decision: str, reason: str
    ) -> None:
        """One decision on record: a ``permission_check`` event and, with an audit log, its row."""
        trace.emit(
            PermissionChecked(
                call_id=call_id,
                tool=spec.name,
                user_id=user_id,
                required=self._required.get(spec.name) or sorted(spec.permissions),
                decision=decision,
                reason=reason,
            )
        )
        if self.audit is not None:
            logged = redact(args, spec.redact)
            self.audit.permission(trace.now(), trace.episode_id, user_id, spec.name, call_id, decision, reason, logged)

    # --- the full decision: ACL, rules, constraints, approval ------------------------------------

    def evaluate(
        self, user: User, spec: ToolSpec, args: dict[str, Any], env: Any = None, call_id: str | None = None
    ) -> tuple[str, str]:
        """(effect, reason) for a call, before any approval: effect is allow, deny or ask."""
        acl = self._acl(user, spec)
        if acl[0] == "deny" or self.policy is None:
            return acl
        effect, reason = self.policy.decide(user.role, spec.name, self.resource_of(args))
        if effect == "deny":
            return effect, reason
        constraints = self.constraints.get(spec.name, ())
        if (
            constraints
            and call_id
            and env is not None  # no world to ask (the common case in benchmarks): skip the lookup
            and hasattr(env, "holds_call")
            and env.holds_call(spec.name, call_id, spec.identity(args), spec.effectful)
        ):
            # A resumed episode replaying a call its world's journal holds: the call was decided before the kill,
            # and its constraints would now read the world it has since changed (a refund "exceeding" the balance
            # it itself reduced). The rule matrix above still applies; the world-reading constraints do not.
            constraints = ()
        for constraint in constraints:
            verdict = constraint(user, spec.name, args, env, self.policy)
            if verdict is not None:
                if verdict[0] == "deny":
                    return verdict
                effect, reason = "ask", verdict[1]
        return effect, reason

    def end_request(self, episode_id: str) -> None:
        """Forget the request's refused approvals: they stand for that request only."""
        self._refused.pop(episode_id, None)

    def decide(
        self, user: User, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any, env: Any = None
    ) -> Decision | None:
        """:meth:`authorize` for a call no person has to approve: decided and recorded at once, with no coroutine
        (the agent asks this on every step, and only awaits :meth:`authorize` when it returns None: the call
        needs an approval)."""
        if self.policy is None and self.audit is None:  # the common simulated case: the ACL alone
            return self.check(user, spec, args, call_id, trace)
        effect, reason = self.evaluate(user, spec, args, env, call_id)
        if effect == "ask":
            return None
        self._record(user.id, spec, args, call_id, trace, effect, reason)
        return _ALLOW if effect == "allow" else Decision(False, reason)

    async def authorize(
        self, user: User, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any, env: Any = None
    ) -> Decision:
        decision = self.decide(user, spec, args, call_id, trace, env)
        return decision if decision is not None else await self.seek_approval(user, spec, args, call_id, trace, env)

    async def seek_approval(
        self, user: User, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any, env: Any = None
    ) -> Decision:
        """The rest of :meth:`authorize` for a call :meth:`decide` left to a person (the policy says "ask")."""
        effect, reason = self.evaluate(user, spec, args, env, call_id)  # again: only calls that need approval
        action = None
        if effect == "ask":
            action = (spec.name, orjson.dumps(args, option=orjson.OPT_SORT_KEYS))
            earlier = self._refused.get(trace.episode_id, {}).get(action)
            if earlier is not None:
                effect, reason = "deny", f"approval {earlier} earlier in this request: {reason}"
        user_id = user.id  # read once: attribute reads on a pydantic model are slow
        self._record(user_id, spec, args, call_id, trace, effect, reason)
        if effect != "ask":
            return _ALLOW if effect == "allow" else Decision(False, reason)
        shown = redact(args, spec.redact) or {}
        request = ApprovalRequest(user_id, spec.name, shown, reason, call_id, trace.episode_id)
        outcome = await self.approvals.submit(request, trace)
        if outcome != "approved":
            self._refused.setdefault(trace.episode_id, {})[action] = outcome  # type: ignore[index]  # set above
        if self.audit is not None:  # the answer is on the trace as approval_decided; the log records it as a decision
            logged = redact(args, spec.redact)
            self.audit.permission(trace.now(), trace.episode_id, user_id, spec.name, call_id, outcome, reason, logged)
        return Decision(outcome == "approved", f"approval {outcome}: {reason}")


class OpenGate(PermissionsGate):
    """A gate that lets everything through and shows every tool: only to measure what the real one prevents."""

    def admit(self, user: User) -> Decision:
        return _ALLOW

    def visible_tools(self, user: User) -> tuple[ToolDefinition, ...]:
        return tuple(s.definition for s in self.registry)

    @staticmethod
    def _acl(user: User, spec: ToolSpec) -> tuple[str, str]:
        # Every call allowed, and still on record (event and audit row) as a rubber-stamp decision.
        return "allow", "gate disabled"

    def decide(
        self, user: User, spec: ToolSpec, args: dict[str, Any], call_id: str, trace: Any, env: Any = None
    ) -> Decision:
        return self.check(user, spec, args, call_id, trace)
