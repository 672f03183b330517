"""Recovery Handler: back-off retries on the virtual clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from agentlab.components.recovery import RecoveryHandler
from agentlab.errors import (
    AgentError,
    BadRequest,
    ModelTimeout,
    Overloaded,
    RateLimited,
    ToolFailed,
    ToolTimeout,
    ToolTransientError,
)
from agentlab.sim.clock import Clock
from agentlab.sim.loop import run_virtual
from agentlab.sim.rng import RngTree
from agentlab.trace.events import RetryScheduled
from agentlab.trace.recorder import EpisodeTrace, Recorder


class Flaky:
    """An operation whose attempt n raises ``errors[n]`` (if any) and otherwise returns ``f"ok@{n}"``."""

    def __init__(self, errors: dict[int, AgentError]) -> None:
        self.errors = errors
        self.attempts: list[tuple[int, float]] = []

    async def __call__(self, n: int) -> str:
        self.attempts.append((n, asyncio.get_running_loop().time()))
        if n in self.errors:
            raise self.errors[n]
        return f"ok@{n}"


def rng_factory(seed: int = 0) -> Callable[[], random.Random]:
    return lambda: RngTree(seed).child("recovery", "e1").random()


def run_retry(
    handler: RecoveryHandler, op: Flaky, first_error: AgentError, seed: int = 0
) -> tuple[Any, list[RetryScheduled], float]:
    """Run ``handler.retry`` after a failed attempt 1; returns (result or exception, retry events, end time)."""
    recorder = Recorder("run-test")

    async def main() -> tuple[Any, float]:
        trace = EpisodeTrace(recorder, "e1", Clock())
        try:
            result: Any = await handler.retry(op, first_error, target="tool:x", trace=trace, rng=rng_factory(seed))
        except AgentError as exc:
            result = exc
        return result, asyncio.get_running_loop().time()

    result, end = run_virtual(main())
    events = [e for e in recorder.events if isinstance(e, RetryScheduled)]
    assert len(events) == len(recorder.events)  # retry emits nothing else
    return result, events, end


def test_transient_error_is_retried_with_exponential_backoff() -> None:
    handler = RecoveryHandler(max_attempts=4, base_delay_s=0.5, jitter=0.25)
    op = Flaky({2: ToolTransientError("503"), 3: ToolTimeout("slow")})
    result, events, end = run_retry(handler, op, ToolTransientError("503"))

    assert result == "ok@4"
    assert [e.attempt for e in events] == [2, 3, 4]
    assert [e.target for e in events] == ["tool:x"] * 3
    # The error type recorded is the one that caused each retry.
    assert [e.error_type for e in events] == ["ToolTransientError", "ToolTransientError", "ToolTimeout"]
    delays = [e.delay_s for e in events]
    for delay, raw in zip(delays, [0.5, 1.0, 2.0], strict=True):
        assert raw <= delay <= raw * 1.25
    # Each attempt starts exactly when its back-off ends, on the virtual clock.
    d2, d3, d4 = delays
    assert [n for n, _ in op.attempts] == [2, 3, 4]
    assert [t for _, t in op.attempts] == pytest.approx([d2, d2 + d3, d2 + d3 + d4], abs=1e-9)
    # Each retry is scheduled when the previous attempt failed.
    assert [e.t for e in events] == pytest.approx([0.0, d2, d2 + d3], abs=1e-9)
    assert end == pytest.approx(d2 + d3 + d4, abs=1e-9)


def test_without_jitter_delays_double_and_are_capped() -> None:
    handler = RecoveryHandler(max_attempts=6, base_delay_s=0.5, max_delay_s=3.0, jitter=0.0)
    op = Flaky({n: Overloaded("busy") for n in range(2, 6)})
    result, events, end = run_retry(handler, op, Overloaded("busy"))
    assert result == "ok@6"
    assert [e.delay_s for e in events] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [t for _, t in op.attempts] == [0.5, 1.5, 3.5, 6.5, 9.5]
    assert end == 9.5


def test_rate_limited_with_retry_after_waits_exactly_that_long() -> None:
    handler = RecoveryHandler(max_attempts=3)
    op = Flaky({})
    result, events, end = run_retry(handler, op, RateLimited(retry_after=20))
    assert result == "ok@2"
    assert [(e.attempt, e.delay_s, e.error_type) for e in events] == [(2, 20, "RateLimited")]
    assert op.attempts == [(2, 20.0)]
    assert end == 20.0


def test_rate_limited_uses_the_latest_retry_after() -> None:
    handler = RecoveryHandler(max_attempts=3)
    op = Flaky({2: RateLimited(retry_after=7)})
    result, events, _ = run_retry(handler, op, RateLimited(retry_after=20))
    assert result == "ok@3"
    assert [e.delay_s for e in events] == [20, 7]
    assert [t for _, t in op.attempts] == [20.0, 27.0]


def test_rate_limited_without_retry_after_backs_off_normally() -> None:
    handler = RecoveryHandler(max_attempts=2, base_delay_s=0.5, jitter=0.0)
    result, events, _ = run_retry(handler, Flaky({}), RateLimited())
    assert result == "ok@2"
    assert [e.delay_s for e in events] == [0.5]


@pytest.mark.parametrize("error", [BadRequest("bad"), ToolFailed("order not found")], ids=["model", "tool"])
def test_permanent_error_is_not_retried(error: AgentError) -> None:
    op = Flaky({})
    result, events, end = run_retry(RecoveryHandler(), op, error)
    assert result is error
    assert events == []
    assert op.attempts == []
    assert end == 0.0


def test_permanent_error_during_retries_stops_them() -> None:
    permanent = BadRequest("context too long")
    op = Flaky({2: permanent})
    result, events, _ = run_retry(RecoveryHandler(max_attempts=5), op, ModelTimeout("slow"))
    assert result is permanent
    assert [n for n, _ in op.attempts] == [2]
    assert len(events) == 1


def test_gives_up_after_max_attempts_and_reraises_last_error() -> None:
    last = Overloaded("still busy at attempt 3")
    op = Flaky({2: Overloaded("busy at attempt 2"), 3: last})
    result, events, _ = run_retry(RecoveryHandler(max_attempts=3), op, Overloaded("busy at attempt 1"))
    assert result is last
    assert [n for n, _ in op.attempts] == [2, 3]
    assert [e.attempt for e in events] == [2, 3]


def test_max_attempts_one_never_retries() -> None:
    first = ToolTimeout("slow")
    op = Flaky({})
    result, events, _ = run_retry(RecoveryHandler(max_attempts=1), op, first)
    assert result is first
    assert op.attempts == []
    assert events == []


def test_same_seed_gives_same_delays_and_different_seed_differs() -> None:
    def delays(seed: int) -> list[float]:
        op = Flaky({2: Overloaded("x"), 3: Overloaded("x")})
        _, events, _ = run_retry(RecoveryHandler(max_attempts=4), op, Overloaded("x"), seed=seed)
        return [e.delay_s for e in events]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


def test_delay_formula_bounds() -> None:
    handler = RecoveryHandler(base_delay_s=0.5, max_delay_s=8.0, jitter=0.25)
    rng = random.Random(0)
    err = Overloaded("x")
    for attempt, raw in [(2, 0.5), (3, 1.0), (4, 2.0), (5, 4.0), (6, 8.0), (9, 8.0)]:
        for _ in range(20):
            assert raw <= handler.delay(attempt, err, rng) <= raw * 1.25


def test_delay_never_exceeds_max_delay() -> None:
    handler = RecoveryHandler(base_delay_s=0.5, max_delay_s=8.0, jitter=0.25)
    rng = random.Random(0)
    assert all(handler.delay(10, Overloaded("x"), rng) <= 8.0 for _ in range(20))


def test_a_tier_the_budget_cannot_pay_for_is_skipped_and_the_next_fallback_answers() -> None:
    """Fallbacks go to the more capable tier first; when that one is too expensive for what is left, the cheaper
    tier still gets its turn (it used to end the request as budget_exhausted)."""
    from agentlab.agent import AgentSystem
    from agentlab.bench import BENCH_USER, ScriptedModel, bench_tools
    from agentlab.components.memory import MemoryManager
    from agentlab.components.messages import AgentRequest
    from agentlab.components.recovery import RecoveryHandler
    from agentlab.errors import ProviderServerError
    from agentlab.llm.tiers import LatencyProfile, TierProfile, TierTable
    from agentlab.sim.loop import run_virtual
    from agentlab.trace.recorder import Recorder

    fast = LatencyProfile(median_s=0.001, p95_s=0.001)
    tiers = TierTable(default="mid", tiers={
        "cheap": TierProfile(model="c", input_per_1k=0.0001, output_per_1k=0.0001, latency=fast, p_correct=1),
        "mid": TierProfile(model="m", input_per_1k=0.001, output_per_1k=0.001, latency=fast, p_correct=1),
        "big": TierProfile(model="b", input_per_1k=1.0, output_per_1k=1.0, latency=fast, p_correct=1),
    })  # fmt: skip

    class MidIsDown(ScriptedModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            if request.tier == "mid":
                raise ProviderServerError("mid is down")
            return await super().complete(request)

    recorder = Recorder("r")
    agent = AgentSystem(model=MidIsDown(), registry=bench_tools, tiers=tiers, recorder=recorder,
                        memory=MemoryManager(), recovery=RecoveryHandler.resilient())  # fmt: skip
    request = AgentRequest(user=BENCH_USER, text="Check order ORD-1", session_id="s", tags={"order_id": "ORD-1"},
                           budget_usd=0.05)  # fmt: skip
    response = run_virtual(agent.handle(request, episode_id="e"))
    kinds = [(e.kind, getattr(e, "tier", None)) for e in recorder.events]
    refused = kinds.index(("budget_check", None), 1)  # the first check after admission: big is too dear
    assert ("model_call", "cheap") in kinds[refused:]
    assert response.status == "completed"
