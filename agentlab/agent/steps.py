"""The tool step pipeline: what happens between a planner proposing a tool call and the model reading its result.

A step (:meth:`ToolSteps.run_step`) is, in order: routed and its arguments validated by the Tool
Router; under cascade routing, refused if an action rests on an id or amount nothing has shown
(ungrounded); authorized by the Permissions Gate; executed (:meth:`ToolSteps._execute`: budget
check, idempotency key or at-most-once record, then the shared guarded attempt of :mod:`.guarded`
around the Execution Sandbox, with the audit row and ``tool_call_*`` events); on a transient failure
answered by the tool's fallback if there is one (:meth:`ToolSteps._degrade`); scored by the
Evaluator; and appended to the conversation, screened by the guardrails on its way in.

These are methods of :class:`~agentlab.agent.episode.Episode` (a mixin, so a planner's step costs no
extra hop); they read the episode's user, world, budget and results, and record the side effects a
rollback would undo (:mod:`.saga`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from agentlab.agent.guarded import guarded
from agentlab.components.audit import redact
from agentlab.components.evaluator import Evaluator
from agentlab.components.messages import StepOutcome
from agentlab.errors import AgentError, AlreadyAttempted, CircuitOpen, StepError
from agentlab.llm.history import tool_error_content, tool_result_content
from agentlab.llm.types import Message, ToolCall
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolSpec
from agentlab.trace.events import Degraded, Evaluated, StepRejected, ToolCallEnded, ToolCallStarted

if TYPE_CHECKING:
    from agentlab.agent.episode import Episode


def idempotency_key(session_id: str, tool: str, args: dict[str, Any]) -> str:
    """The same action in the same session gets the same key, whoever repeats it (a retry or the model)."""
    canonical = orjson.dumps(args, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(b"%s|%s|%s" % (session_id.encode(), tool.encode(), canonical), digest_size=12).hexdigest()


# Step failures that say the model chose badly (not that the world misbehaved): a cascade escalates on these.
MODEL_MISTAKES = frozenset({"InvalidArguments", "UnknownTool", "ToolFailed", "UngroundedArguments", "PermissionDenied"})


def _not_ambiguous(error: AgentError) -> bool:
    return not error.ambiguous


# A tool's open breaker, as the error its call fails with (module-level: no closure per call).
def _open_degrade(message: str, retry_after: float | None) -> CircuitOpen:
    return CircuitOpen(message, retry_after=retry_after, transient=False)


def _open_wait(message: str, retry_after: float | None) -> CircuitOpen:
    return CircuitOpen(message, retry_after=retry_after, transient=True)


# The tool call's side of the guarded attempt: module-level functions over ``_execute``'s state tuple, so a call
# makes no closures (made per call, they and the model call's cost ~6 % of the support-5 bench's instructions).
_ToolCall = tuple[
    "Episode", ToolSpec, dict[str, Any], ToolContext, str, dict[str, Any], "str | None", bool, Any, str, "str | None"
]


def _start_tool(call: _ToolCall, n: int) -> Coroutine[Any, Any, Any]:
    episode, spec, args, ctx, call_id, logged_args, _, _, _, _, _ = call
    ctx.attempt = n
    episode.trace.emit(ToolCallStarted(call_id=call_id, tool=spec.name, attempt=n, args=logged_args))
    return episode.system.sandbox.execute(spec, args, ctx)


def _tool_failed(call: _ToolCall, exc: StepError, n: int, latency_s: float, end: float) -> None:
    episode, spec, _, _, call_id, logged_args, key, at_most_once, audit, user_id, degraded_from = call
    trace = episode.trace
    if at_most_once and exc.ambiguous:
        episode.attempted[key] = "already ran once with an unknown outcome"  # type: ignore[index]
    if audit is not None:
        audit.execution(end, trace.episode_id, user_id, spec.name, call_id, n, exc.type_name, logged_args)
    trace.emit(
        ToolCallEnded(
            call_id=call_id,
            tool=spec.name,
            attempt=n,
            ok=False,
            latency_s=latency_s,
            error_type=exc.type_name,
            error=str(exc),
            degraded_from=degraded_from,
        )
    )


def _tool_succeeded(call: _ToolCall, result: Any, n: int, latency_s: float, end: float) -> tuple[Any, int]:
    episode, spec, _, _, call_id, logged_args, key, at_most_once, audit, user_id, degraded_from = call
    trace = episode.trace
    if at_most_once:
        episode.attempted[key] = "already ran"  # type: ignore[index]
    if spec.cost_usd:  # most tools are free: nothing to count
        episode.system.cost.charge(episode.budget, spec.cost_usd)
    if audit is not None:
        audit.execution(end, trace.episode_id, user_id, spec.name, call_id, n, "ok", logged_args)
    trace.emit(
        ToolCallEnded(
            call_id=call_id,
            tool=spec.name,
            attempt=n,
            ok=True,
            latency_s=latency_s,
            cost_usd=spec.cost_usd,
            degraded_from=degraded_from,
        )
    )
    return result, n


class ToolSteps:
    """The tool-calling half of an :class:`~agentlab.agent.episode.Episode`."""

    async def run_step(self: Episode, call: ToolCall) -> StepOutcome:
        """One step: routed and validated, permission-checked, executed (retries, then fallback), scored.

        The outcome is also appended to the conversation as the tool's message.
        """
        system, trace = self.system, self.trace
        self._calls += 1
        call_id = f"c{self._calls}"
        outcome: StepOutcome
        try:
            spec = system.router.resolve(call)
            args = system.router.validate(spec, call)
        except StepError as exc:
            trace.emit(StepRejected(call_id=call_id, tool=call.name, error_type=exc.type_name, error=str(exc)))
            outcome = StepOutcome(call_id, call.name, False, error_type=exc.type_name, error=str(exc))
        else:
            ungrounded: list[str] = []
            if system.routing is not None and spec.side_effects:
                ungrounded = Evaluator.grounding(args, self.known_facts())[1]
            if ungrounded:  # rejected before the gate is asked: the action rests on a made-up id or amount
                error = f"{spec.name} was not run: {', '.join(ungrounded)} appear in no request or tool result"
                trace.emit(StepRejected(call_id=call_id, tool=spec.name, error_type="UngroundedArguments", error=error))
                outcome = StepOutcome(call_id, spec.name, False, error_type="UngroundedArguments", error=error)
            elif not (
                decision := system.gate.decide(self.user, spec, args, call_id, trace, self.env)
                or await system.gate.seek_approval(self.user, spec, args, call_id, trace, self.env)
            ).allowed:
                error = f"user {self.user_id} may not use {spec.name}: {decision.reason}"
                trace.emit(StepRejected(call_id=call_id, tool=spec.name, error_type="PermissionDenied", error=error))
                outcome = StepOutcome(call_id, spec.name, False, error_type="PermissionDenied", error=error)
            else:
                try:
                    result, attempts = await self._execute(spec, args, call_id)
                    outcome = StepOutcome(call_id, spec.name, True, result=result, attempts=attempts)
                    self.succeeded.add(spec.name)
                    if spec.side_effects:
                        self.applied.append((spec, args, result, call_id))
                except StepError as exc:
                    outcome = StepOutcome(call_id, spec.name, False, error_type=exc.type_name, error=str(exc))
                    fallback = system.router.fallback_for(spec) if system.recovery.tool_fallbacks else None
                    if fallback is not None and (exc.transient or isinstance(exc, CircuitOpen)):
                        outcome = await self._degrade(spec, fallback, args, call_id, outcome)
        score = system.evaluator.score_step(outcome)
        trace.emit(
            Evaluated(target="step", score=score.score, passed=score.passed, reason=score.reason, call_id=call_id)
        )
        if not outcome.ok and system.routing is not None and outcome.error_type in MODEL_MISTAKES:
            self.escalate(f"{outcome.error_type}: {outcome.error}")
        if outcome.ok:
            content = tool_result_content(outcome.result)
            if system.guardrails is not None:  # planted instructions are cut before the model reads them
                content = system.guardrails.screen_tool_output(
                    outcome.executed_as or call.name, content, trace, call_id
                )
        else:
            content = tool_error_content(outcome.error_type or "Error", outcome.error or "")
        self.add(Message(role="tool", content=content, tool_call_id=call.id, name=outcome.executed_as or call.name))
        return outcome

    async def _execute(
        self: Episode, spec: ToolSpec, args: dict[str, Any], call_id: str, degraded_from: str | None = None
    ) -> tuple[Any, int]:
        system, trace = self.system, self.trace
        recovery = system.recovery
        if spec.cost_usd:  # most tools are free: nothing to check
            system.cost.check_tool(self.budget, spec.name, spec.cost_usd, trace)
        key = None
        at_most_once = False
        if recovery.idempotency and not spec.idempotent:
            identity = args if spec.key_fields is None else {k: args.get(k) for k in spec.key_fields}
            key = idempotency_key(self.request.session_id, spec.name, identity)
            at_most_once = not spec.idempotency_keys
            if at_most_once and key in self.attempted:
                raise AlreadyAttempted(
                    f"{spec.name} with these arguments {self.attempted[key]}; it cannot be repeated safely"
                )
        user_id = self.user_id
        ctx = ToolContext(
            world=self.env,
            call_id=call_id,
            user_id=user_id,
            idempotency_key=key if spec.idempotency_keys else None,
            episode_id=trace.episode_id,
            trace=trace,
        )
        audit = system.gate.audit
        has_fallback = recovery.tool_fallbacks and degraded_from is None and spec.fallback is not None
        logged_args = redact(args, spec.redact) if spec.redact else args

        call = (self, spec, args, ctx, call_id, logged_args, key, at_most_once, audit, user_id, degraded_from)
        # Positional, in the helper's order: matching 16 keywords on every call cost ~1 % of the support-5 bench.
        return await guarded(
            _start_tool,  # begin
            _tool_succeeded,
            _tool_failed,
            call,  # state
            StepError,  # errors
            f"tool:{spec.name}",  # target
            trace,
            recovery.breakers.tool(spec.name) if recovery.breakers is not None else None,  # breaker
            # rejected: with a fallback, degrade at once; without one, wait for the probe (within the retry policy)
            _open_degrade if has_fallback else _open_wait,
            recovery,
            self.rng,
            self.retry_budget,  # budget
            True,  # retry
            # may_retry: a non-idempotent call without a key is never blindly repeated after it may have taken effect
            None if spec.idempotent or (key is not None and not at_most_once) else _not_ambiguous,
            call_id,
            True,  # tool
        )

    async def _degrade(
        self: Episode, spec: ToolSpec, fallback: ToolSpec, args: dict[str, Any], call_id: str, failed: StepOutcome
    ) -> StepOutcome:
        """Answer a failed call with the tool's fallback, if the user may use it and the arguments fit."""
        try:
            fb_args = fallback.args_model.model_validate(args).__dict__
        except ValidationError:
            return failed
        if not (await self.system.gate.authorize(self.user, fallback, fb_args, call_id, self.trace, self.env)).allowed:
            return failed
        self.trace.emit(
            Degraded(
                mode="fallback_tool",
                target=f"tool:{spec.name}",
                replacement=f"tool:{fallback.name}",
                reason=f"{failed.error_type}: {failed.error}",
            )
        )
        try:
            result, attempts = await self._execute(fallback, fb_args, call_id, degraded_from=spec.name)
        except StepError:
            return failed
        self.succeeded.add(spec.name)
        self.stand_ins[(spec.name, fallback.name)] = None
        return StepOutcome(call_id, spec.name, True, result=result, executed_as=fallback.name, attempts=attempts)
