"""Circuit breakers on virtual time, driven through the real fault path (injector + tool invoker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentlab.errors import StepError
from agentlab.faults import FaultInjector, FaultyToolInvoker, error, tools, window
from agentlab.resilience.breaker import BreakerConfig, CircuitBreaker
from agentlab.sim.loop import run_virtual
from agentlab.testing.trace import ListTrace
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry

registry = ToolRegistry()


@registry.tool()
async def ping(ctx: ToolContext) -> dict[str, Any]:
    """Answer at once."""
    return {"ok": True}


def test_outage_opens_cools_down_probes_fail_then_succeed_and_closes() -> None:
    """Calls every 5 s; the tool is down from t=30 to t=90."""
    config = BreakerConfig(consecutive_failures=3, minimum_calls=100, wait_open_s=20, half_open_permitted_calls=1,
                           success_threshold=2)  # fmt: skip
    breaker = CircuitBreaker("tool:ping", config)
    injector = FaultInjector(error().on(tools("ping")).when(window(30, 90)), seed=1)
    invoker = FaultyToolInvoker(injector)
    trace = ListTrace()
    outcomes: list[tuple[float, str]] = []

    async def drive() -> None:
        injector.start_episode("e", 0.0)
        loop = asyncio.get_running_loop()
        for _ in range(25):
            now = loop.time()
            if not breaker.allow(now, trace):
                outcomes.append((now, "rejected"))
            else:
                try:
                    await invoker(registry["ping"], {}, ToolContext(world=None, episode_id="e", trace=trace))
                    breaker.record(True, 0.0, loop.time(), trace)
                    outcomes.append((now, "ok"))
                except StepError:
                    breaker.record(False, 0.0, loop.time(), trace)
                    outcomes.append((now, "failed"))
            await asyncio.sleep(5)

    run_virtual(drive())
    transitions = [(e.t, e.from_state, e.to_state, e.reason) for e in trace.events if e.kind == "breaker_transition"]
    assert transitions == [
        (40.0, "closed", "open", "3 consecutive failures"),
        (60.0, "open", "half_open", "cool-down of 20s elapsed"),
        (60.0, "half_open", "open", "a half-open probe failed"),
        (80.0, "open", "half_open", "cool-down of 20s elapsed"),
        (80.0, "half_open", "open", "a half-open probe failed"),
        (100.0, "open", "half_open", "cool-down of 20s elapsed"),
        (105.0, "half_open", "closed", "2 half-open probes succeeded"),
    ]
    by_time = dict(outcomes)
    assert [by_time[t] for t in (25.0, 30.0, 35.0, 40.0, 45.0, 55.0, 60.0, 65.0, 100.0, 105.0, 110.0)] == [
        "ok", "failed", "failed", "failed", "rejected", "rejected", "failed", "rejected", "ok", "ok", "ok",
    ]  # fmt: skip


def test_failure_rate_over_a_count_window() -> None:
    trace = ListTrace()
    breaker = CircuitBreaker("b", BreakerConfig(window_size=10, minimum_calls=10, failure_rate_threshold=50,
                                                consecutive_failures=None))  # fmt: skip
    for i in range(10):
        breaker.record(i % 2 == 0, 0.1, float(i), trace)  # every other call fails: 50 %
    assert breaker.state == "open"
    assert trace.events[-1].reason == "failure rate 50% over 10 calls"


def test_slow_calls_open_the_breaker() -> None:
    trace = ListTrace()
    breaker = CircuitBreaker("b", BreakerConfig(minimum_calls=4, slow_call_duration_s=10, slow_call_rate_threshold=75,
                                                consecutive_failures=None))  # fmt: skip
    for i, duration in enumerate([12, 1, 15, 11]):
        breaker.record(True, duration, float(i), trace)
    assert breaker.state == "open" and "slow-call rate 75%" in trace.events[-1].reason


def test_time_window_forgets_old_failures() -> None:
    trace = ListTrace()
    breaker = CircuitBreaker("b", BreakerConfig(window_type="time", window_size=60, minimum_calls=3,
                                                failure_rate_threshold=60, consecutive_failures=None))  # fmt: skip
    breaker.record(False, 0, 0.0, trace)
    breaker.record(False, 0, 10.0, trace)
    breaker.record(True, 0, 100.0, trace)  # the two failures are older than 60 s now
    breaker.record(True, 0, 101.0, trace)
    breaker.record(False, 0, 102.0, trace)
    assert breaker.state == "closed"


@pytest.mark.parametrize("permitted", [1, 3])
def test_half_open_admits_only_the_permitted_probes(permitted: int) -> None:
    trace = ListTrace()
    breaker = CircuitBreaker("b", BreakerConfig(consecutive_failures=1, wait_open_s=5,
                                                half_open_permitted_calls=permitted))  # fmt: skip
    breaker.record(False, 0, 0.0, trace)
    assert not breaker.allow(4.0, trace)
    assert [breaker.allow(5.0, trace) for _ in range(permitted + 2)] == [True] * permitted + [False, False]
