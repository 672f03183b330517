"""Ready-made fault plans, built with the same Python API users compose their own with."""

from __future__ import annotations

from agentlab.faults.plan import (
    FaultPlan,
    error,
    models,
    overloaded,
    rate,
    rate_limit,
    server_error,
    timeout,
    timeout_after_commit,
    tools,
)


def transient(p: float, *, retry_after_s: float = 2.0) -> FaultPlan:
    """Transient faults on every tool and every model call, ``p`` of calls each.

    A tool call fails with a 5xx (40 % of its faults), hangs until its timeout (30 %), or times out
    after its side effect happened (30 %). A model call gets a 5xx (40 %), a 429 with retry-after
    (30 %) or a 529 overloaded (30 %).
    """
    if p <= 0:
        return FaultPlan(name="transient-0")
    plan = (
        error(503).on(tools("*")).when(rate(0.4 * p)).named("tool-5xx")
        | timeout(600).on(tools("*")).when(rate(0.3 * p)).named("tool-timeout")
        | timeout_after_commit(600).on(tools("*")).when(rate(0.3 * p)).named("tool-lost-response")
        | server_error(502).on(models("*")).when(rate(0.4 * p)).named("model-5xx")
        | rate_limit(retry_after_s).on(models("*")).when(rate(0.3 * p)).named("model-429")
        | overloaded().on(models("*")).when(rate(0.3 * p)).named("model-overloaded")
    )
    return plan.model_copy(update={"name": f"transient-{round(p * 100)}", "description": f"{p:.0%} transient faults"})
