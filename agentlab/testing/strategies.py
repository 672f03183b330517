"""Hypothesis strategies for chaos: fault plans, schedules on simulated time, scenarios, budgets, policies.

Use them in your own tests::

    from hypothesis import given
    from agentlab.testing import chaos_cases, fault_plans

    @given(chaos_cases("fixtures/suites/support.yaml"))
    def test_my_agent_survives(chaos, case):        # ``chaos``: the pytest fixture of agentlab.testing.plugin
        chaos.assert_holds(case)

Strategies are built once per set of arguments and reused (``functools.cache``): hypothesis validates a
strategy object the first time it draws from it, and building fresh ones inside every draw made generating a
case cost more than half as much as running it.

Every strategy draws only values the YAML formats can hold, rounded to readable figures, and shrinks
towards the simplest schedule (always on, run-wide, no window), so a minimal failing case reads as
a fault plan a person would write by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from agentlab.components.policy import Policy, Rule
from agentlab.faults.plan import Burst, Fault, FaultPlan, Params, Schedule, Target, Window
from agentlab.runs.inputs import load_cached
from agentlab.scenarios.loader import load_suite
from agentlab.tools.registry import ToolRegistry

# Fault kinds the in-process simulated model and the tool sandbox can receive (provider HTTP faults need an
# SDK backend; see agentlab.faults.http).
TOOL_FAULT_KINDS = ("error", "timeout", "timeout_after_commit", "latency", "malformed", "partial", "wrong_result")
MODEL_FAULT_KINDS = (
    "server_error",
    "rate_limit",
    "timeout",
    "overloaded",
    "connection_reset",
    "malformed",
    "latency",
    "error",
)
# The timeout that hides a side effect that did happen is the fault safety mechanisms exist for: a third of
# tool faults are one (listing it three times weights the draw; hypothesis still shrinks towards "error").
TOOL_KIND_DRAW = (*TOOL_FAULT_KINDS, "timeout_after_commit", "timeout_after_commit")
ROUTING = (None, "cascade", "budget-aware-cascade", "always-cheapest")


# Strategies keyed by what a case drew (the tools its scenarios use) are many: kept to the most recent, so a
# long search does not hold one per combination (an evicted one is rebuilt equal: the cases drawn are the same).
_bounded = lru_cache(maxsize=256)


@cache
def _rounded(low: float, high: float, places: int = 2) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False).map(lambda x: round(x, places)).filter(lambda x: low <= x <= high)


@cache
def rates() -> st.SearchStrategy[float]:
    """Always (1.0, the simplest), common round rates, or any rate to two places."""
    return st.one_of(st.sampled_from([1.0, 0.5, 0.2, 0.1]), _rounded(0.01, 1.0))


@cache
def windows(max_start_s: float = 120.0, max_length_s: float = 600.0) -> st.SearchStrategy[Window]:
    """A stretch of simulated time, in whole seconds."""
    return st.builds(
        lambda start, length: Window(start_s=start, end_s=start + length),
        st.integers(0, int(max_start_s)),
        st.integers(1, int(max_length_s)),
    )


@cache
def schedules(max_start_s: float = 120.0) -> st.SearchStrategy[Schedule]:
    """When a fault applies: a rate, and — each a third of the time — a window, every Nth call and a burst
    (all must hold). Shrinks towards the bare rate."""
    return _schedules(max_start_s)


@st.composite
def _schedules(draw: st.DrawFn, max_start_s: float) -> Schedule:
    """When a fault applies: a rate, and — each a third of the time — a window, every Nth call and a burst
    (all must hold). Shrinks towards the bare rate."""

    def sometimes(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(strategy) if draw(st.integers(0, 2)) == 2 else None  # 0 (absent) is what it shrinks to

    return Schedule(
        rate=draw(rates()),
        window=sometimes(windows(max_start_s)),
        every_nth=sometimes(st.integers(2, 5)),
        burst=sometimes(st.builds(Burst, start_s=st.integers(0, int(max_start_s)), count=st.integers(1, 20))),
    )


@cache
def _params(kind: str) -> st.SearchStrategy[Params]:
    if kind in ("timeout", "timeout_after_commit"):
        return st.builds(Params, latency_s=st.sampled_from([3600.0, 120.0, 30.0]))
    if kind == "latency":
        return st.builds(Params, latency_s=_rounded(0.1, 120.0, 1))
    if kind in ("error", "server_error"):
        return st.builds(Params, status=st.sampled_from([503, 500, 502, 504]))
    if kind == "rate_limit":
        return st.builds(Params, status=st.just(429), retry_after_s=st.none() | st.integers(1, 60).map(float))
    return st.just(Params())


def faults(
    tools: Sequence[str] = ("*",), tiers: Sequence[str] = ("*",), max_start_s: float = 120.0
) -> st.SearchStrategy[Fault]:
    """One fault on a tool or a model tier (or all of them: ``*``), with its schedule and scope."""
    return _faults(tuple(tools), tuple(tiers), max_start_s)


@_bounded
def _faults(tools: tuple[str, ...], tiers: tuple[str, ...], max_start_s: float) -> st.SearchStrategy[Fault]:
    return _draw_fault(tools, tiers, max_start_s)


@st.composite
def _draw_fault(draw: st.DrawFn, tools: tuple[str, ...], tiers: tuple[str, ...], max_start_s: float) -> Fault:
    on_tool = draw(st.booleans())
    kind = draw(st.sampled_from(TOOL_KIND_DRAW if on_tool else MODEL_FAULT_KINDS))
    target = (
        Target(tools=(draw(st.sampled_from(tools)),)) if on_tool else Target(models=(draw(st.sampled_from(tiers)),))
    )
    schedule = draw(schedules(max_start_s))
    return Fault(
        kind=kind,
        target=target,
        params=draw(_params(kind)),
        scope=draw(st.sampled_from(["run", "episode"])),
        **schedule.model_dump(exclude_defaults=True),
    )


def fault_plans(
    tools: Sequence[str] = ("*",), tiers: Sequence[str] = ("*",), *, max_faults: int = 3, max_start_s: float = 120.0
) -> st.SearchStrategy[FaultPlan]:
    """Zero to ``max_faults`` faults; shrinks towards fewer faults."""
    return _fault_plans(tuple(tools), tuple(tiers), max_faults, max_start_s)


@_bounded
def _fault_plans(
    tools: tuple[str, ...], tiers: tuple[str, ...], max_faults: int, max_start_s: float
) -> st.SearchStrategy[FaultPlan]:
    return st.lists(faults(tools, tiers, max_start_s), max_size=max_faults).map(
        lambda fs: FaultPlan(name="chaos", faults=tuple(fs))
    )


@cache
def budget_limits() -> st.SearchStrategy[dict[str, float | None]]:
    """Session, user-day and user-month budgets (USD, log-spread from tight to loose; usually none)."""
    usd = st.one_of(st.none(), st.sampled_from([0.0005, 0.001, 0.002, 0.005, 0.01, 0.05]))
    return st.fixed_dictionaries({"budget_session_usd": usd, "budget_user_day_usd": usd, "budget_user_month_usd": usd})


def policies(tools: Sequence[str], roles: Sequence[str]) -> st.SearchStrategy[Policy | None]:
    """A permission set: none (tool ACLs only), or a rule matrix over roles and tools, first match wins."""
    return _policies(tuple(tools), tuple(roles))


@cache
def _policies(tools: tuple[str, ...], roles: tuple[str, ...]) -> st.SearchStrategy[Policy | None]:
    rule = st.builds(
        Rule,
        role=st.sampled_from(["*", *roles]),
        tool=st.sampled_from(["*", *tools]),
        resource=st.just("*"),
        effect=st.sampled_from(["allow", "deny", "ask"]),
    )
    policy = st.builds(
        Policy,
        rules=st.lists(rule, max_size=4).map(tuple),
        default=st.sampled_from(["allow", "deny"]),
        approval_limit_usd=st.sampled_from([100.0, 20.0, None]),
    )
    return st.none() | policy


def scenario_ids(suite: Any, *, max_scenarios: int = 2) -> st.SearchStrategy[tuple[str, ...]]:
    """One or more distinct scenarios of a loaded suite, in suite order."""
    return _scenario_ids(tuple(s.id for s in suite.scenarios), max_scenarios)


@cache
def _scenario_ids(ids: tuple[str, ...], max_scenarios: int) -> st.SearchStrategy[tuple[str, ...]]:
    order = {sid: i for i, sid in enumerate(ids)}
    return st.lists(st.sampled_from(ids), min_size=1, max_size=max_scenarios, unique=True).map(
        lambda chosen: tuple(sorted(chosen, key=order.__getitem__))
    )


@st.composite
def chaos_cases(
    draw: st.DrawFn,
    suite_path: str | Path,
    registry: ToolRegistry | None = None,
    *,
    max_faults: int = 3,
    max_scenarios: int = 2,
    max_epochs: int = 2,
) -> Any:
    """A whole chaos case: scenarios, seed, faults, budgets, permissions, routing and a kill point.

    Tool faults target the tools the chosen scenarios' gold plans use half the time (the rest: any tool,
    or ``*``), so most faults land on calls the agent really makes.
    """
    from agentlab.llm.tiers import load_tiers
    from agentlab.runs.planning import find_tiers
    from agentlab.testing.case import ChaosCase

    suite = load_cached(load_suite, suite_path, registry)
    registry = registry or suite.domain.tools
    tiers = load_cached(load_tiers, find_tiers(Path(suite_path))).order
    chosen = draw(scenario_ids(suite, max_scenarios=max_scenarios))
    used = sorted({step.tool for sid in chosen for step in suite.get(sid).gold.steps})
    every = ("*", *sorted(s.name for s in registry))
    tools = draw(_fault_targets(tuple(used), every))
    plan = draw(fault_plans(tools, ("*", *tiers), max_faults=max_faults))
    return ChaosCase(
        suite=str(suite_path),
        scenarios=chosen,
        epochs=draw(st.integers(1, max_epochs)),
        seed=draw(st.integers(0, 2**16)),
        faults=plan,
        policy=draw(policies(every[1:], tuple(sorted(suite.roles)))),
        approver=draw(st.sampled_from(["approve", "deny", "never"])),
        routing=draw(st.sampled_from(ROUTING)),
        kill_at=draw(_rounded(0.05, 1.0)),
        durable_worlds=draw(st.booleans()),
        **draw(budget_limits()),
    )


@_bounded
def _fault_targets(used: tuple[str, ...], every: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    names = st.sampled_from(used) | st.sampled_from(every) if used else st.sampled_from(every)
    return st.lists(names, min_size=1, max_size=3, unique=True)
