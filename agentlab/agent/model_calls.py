"""Model calls: how the agent asks a model tier, and what it does when the tier cannot answer.

One planner call (:meth:`ModelCalls.call_model`) may become several tier calls: the episode's tier
first; a cheaper tier if that one does not fit the budget; the other tiers (the Recovery Handler's
fallback order) if it fails; and, when every tier's breaker is open, one wait for the nearest
cool-down. Each tier call (:meth:`ModelCalls._call_tier`) is priced up front by the Cost Controller,
made through the shared guarded attempt (breaker, rate limit, deadline, retries: :mod:`.guarded`),
and charged and traced as a ``model_call`` event per attempt.

These are methods of :class:`~agentlab.agent.episode.Episode` (a mixin, so a planner's call costs no
extra hop); they read the episode's tier, budget, conversation and retry budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from agentlab.agent.guarded import guarded
from agentlab.errors import BudgetExceeded, ModelCircuitOpen, ModelError, ModelTimeout, ModelUnavailable
from agentlab.llm.tiers import TierProfile
from agentlab.llm.types import ModelRequest, ModelResponse
from agentlab.trace.events import Degraded, ModelCalled, RoutingDecision

if TYPE_CHECKING:
    from agentlab.agent.episode import Episode


# The model call's side of the guarded attempt: module-level functions over ``_call_tier``'s state tuple, so a
# call makes no closures (made per call, they and the tool call's cost ~6 % of the support-5 bench's instructions).
_ModelCall = tuple["Episode", ModelRequest, TierProfile, str, float]


def _start_model(call: _ModelCall, n: int) -> Coroutine[Any, Any, ModelResponse]:
    return call[0].system.model.complete(call[1])


def _model_timed_out(call: _ModelCall) -> ModelTimeout:  # the agent's own deadline (clients report theirs)
    request, profile = call[1], call[2]
    return ModelTimeout(f"{request.model}: no response within the agent's {profile.timeout_s:g}s timeout")


def _model_failed(call: _ModelCall, exc: ModelError, n: int, latency_s: float, end: float) -> None:
    episode, request, profile, purpose, estimate = call
    episode.trace.emit(
        ModelCalled(
            purpose=purpose,
            tier=request.tier,
            model=profile.model,
            attempt=n,
            ok=False,
            estimate_usd=estimate,
            http_attempts=exc.attempts,
            latency_s=latency_s,
            error_type=exc.type_name,
            error=str(exc),
        )
    )


def _model_succeeded(call: _ModelCall, response: ModelResponse, n: int, latency_s: float, end: float) -> ModelResponse:
    episode, request, profile, purpose, estimate = call
    usage = response.usage
    cost = episode.system.cost
    price = response.cost_usd if response.cost_usd is not None else cost.price(profile, usage, response.model)
    cost.charge(episode.budget, price)
    episode.trace.emit(
        ModelCalled(
            purpose=purpose,
            tier=request.tier,
            model=response.model,
            attempt=n,
            ok=True,
            estimate_usd=estimate,
            http_attempts=response.attempts,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=price,
            latency_s=response.latency_s,  # the client's own measure (an SDK's includes its retries)
            stop_reason=response.stop_reason,
            tool_calls=len(response.tool_calls),
        )
    )
    return response


class ModelCalls:
    """The model-calling half of an :class:`~agentlab.agent.episode.Episode`."""

    async def call_model(
        self: Episode, purpose: str, *, response_format: str = "text", tools: bool = True
    ) -> ModelResponse:
        """One model call: budget-checked and priced by the Cost Controller; retried, broken-circuit-aware
        and, if its tier is down, answered by another tier (the Recovery Handler's policy). When every
        tier's breaker is open, it waits once for the nearest cool-down, within the handler's patience."""
        system = self.system
        first_error: ModelError | None = None
        try:  # the happy path: the episode's tier answers
            return await self._call_tier(self.tier, purpose, response_format, tools)
        except BudgetExceeded as exc:
            cheaper = self._affordable_cheaper_tier(tools)
            if cheaper is None:
                raise
            self.trace.emit(RoutingDecision(tier=cheaper, previous=self.tier, reason=f"downgraded: {exc}"))
            self.tier = cheaper  # and the cheaper tier gets the same fallbacks and breaker wait as any other
        except ModelError as exc:
            first_error = exc
        recovery = system.recovery
        tiers = [self.tier, *(system.fallbacks[self.tier] if recovery.model_fallbacks else ())]
        unaffordable: BudgetExceeded | None = None
        for round_ in range(2):  # a second round only after waiting for the nearest breaker's cool-down
            errors: list[tuple[str, ModelError]] = [(tiers[0], first_error)] if first_error is not None else []
            for tier in tiers[len(errors) :]:
                if errors:
                    failed, last = errors[-1]
                    self.trace.emit(
                        Degraded(
                            mode="fallback_model",
                            target=f"model:{failed}",
                            replacement=f"model:{tier}",
                            reason=f"{last.type_name}: {last}",
                        )
                    )
                try:
                    return await self._call_tier(tier, purpose, response_format, tools)
                except BudgetExceeded as exc:  # this tier costs more than is left: try the next one
                    unaffordable = exc
                except ModelError as exc:
                    errors.append((tier, exc))
            first_error = None
            waits = [e.retry_after for _, e in errors if isinstance(e, ModelCircuitOpen) and e.retry_after is not None]
            if round_ or not errors or len(waits) != len(errors) or min(waits) > recovery.max_breaker_wait_s:
                break
            wait = min(waits)
            self.trace.emit(
                Degraded(
                    mode="wait_for_breaker",
                    target="model",
                    reason=(
                        f"every model tier's circuit breaker is open; waiting {wait:g}s for the first to half-open"
                    ),
                )
            )
            await asyncio.sleep(wait)
        if unaffordable is not None and len(errors) <= 1:  # nothing the budget could pay for answered
            raise unaffordable
        if len(tiers) == 1:
            raise errors[0][1]
        last = errors[-1][1]
        raise ModelUnavailable(f"no model tier could answer; last error {last.type_name}: {last}")

    def _affordable_cheaper_tier(self: Episode, tools: bool) -> str | None:
        """The most capable tier below the episode's whose worst-case call still fits every budget."""
        order = self.system.tiers.order
        left = self.budget.remaining_usd
        for tier in reversed(order[: order.index(self.tier)]):
            if self.worst_case_usd(tier, tools) <= left:
                return tier
        return None

    async def _call_tier(self: Episode, tier: str, purpose: str, response_format: str, tools: bool) -> ModelResponse:
        system, trace = self.system, self.trace
        profile = system.tiers[tier]
        request = ModelRequest(
            tier=tier,
            model=profile.model,
            messages=tuple(self.messages),
            tools=self.tools if tools else (),
            response_format=response_format,  # type: ignore[arg-type]
            max_tokens=system.max_tokens,
            purpose=purpose,
            metadata=self.tags,
            prompt_tokens_hint=self.prompt_tokens(tools),
        )
        estimate = system.cost.check_model(self.budget, request, profile, trace)
        recovery = system.recovery

        call = (self, request, profile, purpose, estimate)
        # Positional, in the helper's order: matching 18 keywords on every call cost ~1 % of the support-5 bench.
        return await guarded(
            _start_model,  # begin
            _model_succeeded,
            _model_failed,
            call,  # state
            ModelError,  # errors
            f"model:{tier}",  # target
            trace,
            recovery.breakers.model(tier) if recovery.breakers is not None else None,  # breaker
            ModelCircuitOpen,  # rejected
            recovery,
            self.rng,
            self.retry_budget,  # budget
            recovery.retry_model_calls,  # retry; False: the client (a provider SDK) already retried it
            None,  # may_retry
            None,  # call_id
            False,  # tool
            profile.timeout_s if system.model_timeouts else None,  # timeout_s
            _model_timed_out,
        )
