"""Token buckets on virtual time, in memory and in a real Redis shared by two agent replicas."""

from __future__ import annotations

import asyncio

import pytest

from agentlab.agent import AgentSystem
from agentlab.components.memory import MemoryManager
from agentlab.components.messages import AgentRequest
from agentlab.components.recovery import RecoveryHandler
from agentlab.errors import RateLimited, ToolRateLimited
from agentlab.resilience import BreakerConfig, Limit, MemoryStore, RateLimiter
from agentlab.resilience.breaker import CircuitBreaker
from agentlab.sim.loop import run_virtual
from agentlab.testing.trace import ListTrace
from agentlab.trace.recorder import Recorder


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest):
    return MemoryStore() if request.param == "memory" else request.getfixturevalue("redis_store")


def test_bucket_semantics(store) -> None:
    # capacity 2, one token a second
    assert store.take("k", 2, 1.0, now=0.0) == 0.0
    assert store.take("k", 2, 1.0, now=0.0) == 0.0
    assert store.take("k", 2, 1.0, now=0.0) == pytest.approx(1.0)
    assert store.take("k", 2, 1.0, now=0.5) == pytest.approx(0.5)
    assert store.take("k", 2, 1.0, now=1.0) == 0.0  # refilled by one
    assert store.take("k", 2, 1.0, now=10.0) == 0.0  # refill is capped at capacity
    assert store.take("k", 2, 1.0, now=10.0) == 0.0
    assert store.take("k", 2, 1.0, now=10.0) == pytest.approx(1.0)


def test_acquire_waits_on_virtual_time_then_refuses_past_max_wait(store) -> None:
    limiter = RateLimiter({"tool:*": Limit(capacity=2, per_second=0.5)}, store, max_wait_s=3.0)
    trace = ListTrace()
    times: list[float] = []

    async def drive() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(4):
            await limiter.acquire("tool:lookup_order", trace, tool=True)
            times.append(loop.time())
        impatient = RateLimiter({"tool:*": Limit(capacity=2, per_second=0.5)}, store, max_wait_s=1.5)
        with pytest.raises(ToolRateLimited) as info:
            # Same bucket (same store and key): empty, and the next token is 2 s away > 1.5 s.
            await impatient.acquire("tool:lookup_order", trace, tool=True)
        assert info.value.retry_after == pytest.approx(2.0)
        assert loop.time() == 4.0  # refused at once, without waiting
        with pytest.raises(RateLimited):
            tight = RateLimiter({"model:*": Limit(capacity=1, per_second=0.01)}, store, max_wait_s=1.0)
            await tight.acquire("model:fast", trace)
            await tight.acquire("model:fast", trace)

    run_virtual(drive())
    assert times == pytest.approx([0.0, 0.0, 2.0, 4.0])
    assert [e.kind for e in trace.events[:2]] == ["rate_limit_wait", "rate_limit_wait"]


def test_unlimited_keys_pass_through(store) -> None:
    limiter = RateLimiter({"tool:web_search": Limit(capacity=1, per_second=1)}, store)

    async def drive() -> float:
        for _ in range(100):
            await limiter.acquire("tool:lookup_order", ListTrace())
        return asyncio.get_running_loop().time()

    assert run_virtual(drive()) == 0.0


def _replica(store, recorder: Recorder) -> AgentSystem:
    from agentlab.bench import BENCH_TIERS, ScriptedModel, bench_tools

    limiter = RateLimiter({"tool:*": Limit(capacity=5, per_second=1.0)}, store, max_wait_s=600)
    return AgentSystem(
        model=ScriptedModel(),
        registry=bench_tools,
        tiers=BENCH_TIERS,
        recorder=recorder,
        memory=MemoryManager(":memory:"),
        recovery=RecoveryHandler.resilient(store=store, limiter=limiter),
    )


def test_two_replicas_share_one_bucket_in_redis(redis_store) -> None:
    """Two agents run concurrently; together they may not exceed the shared tool limit."""
    from agentlab.bench import BENCH_USER

    recorder = Recorder("run-replicas")
    replicas = [_replica(redis_store, recorder), _replica(redis_store, recorder)]

    async def serve(agent: AgentSystem, name: str) -> None:
        for i in range(4):
            order = f"ORD-{name}{i}"
            request = AgentRequest(user=BENCH_USER, text=f"Check order {order}", session_id=f"{name}{i}",
                                   tags={"order_id": order})  # fmt: skip
            response = await agent.handle(request, episode_id=f"{name}-{i}")
            assert response.status == "completed"

    async def both() -> float:
        await asyncio.gather(serve(replicas[0], "a"), serve(replicas[1], "b"))
        return asyncio.get_running_loop().time()

    elapsed = run_virtual(both())
    starts = [e for e in recorder.events if e.kind == "tool_call_start"]
    assert len(starts) == 2 * 4 * 5  # 40 tool calls in all, 8 per tool, from both replicas
    assert {e.episode_id[0] for e in starts} == {"a", "b"}
    # Each tool's bucket (5 tokens, 1 a second) is shared: 8 calls need at least 3 s between them...
    assert elapsed >= 3.0 - 1e-6
    assert any(e.kind == "rate_limit_wait" for e in recorder.events)
    # ...and by any time k no tool has started more than capacity + rate·k calls, replicas combined.
    for tool in {e.tool for e in starts}:
        times = sorted(e.t for e in starts if e.tool == tool)
        for k in range(int(elapsed) + 2):
            assert sum(1 for t in times if t <= k + 1e-9) <= 5 + k


def test_one_replicas_breaker_trip_protects_the_other(redis_store) -> None:
    config = BreakerConfig(consecutive_failures=2, wait_open_s=30)
    a = CircuitBreaker("tool:web_search", config, redis_store)
    b = CircuitBreaker("tool:web_search", config, redis_store)
    trace_a, trace_b = ListTrace(), ListTrace()
    assert b.allow(0.0, trace_b)
    a.record(False, 0.1, 1.0, trace_a)
    a.record(False, 0.1, 2.0, trace_a)
    assert a.state == "open"
    assert not b.allow(3.0, trace_b)  # b never saw a failure itself
    assert b.state == "open" and trace_b.events[-1].reason == "shared: 2 consecutive failures"
    assert b.allow(32.0, trace_b)  # the shared cool-down runs from a's opening


def test_a_shared_trip_stops_the_other_replicas_agent_from_calling_the_tool(redis_store) -> None:
    """Through the agent, not just the breaker: a closed breaker must still ask the store before each call."""
    from agentlab.agent import AgentSystem
    from agentlab.bench import BENCH_TIERS, BENCH_USER, ScriptedModel, bench_tools
    from agentlab.components.memory import MemoryManager
    from agentlab.components.messages import AgentRequest
    from agentlab.components.recovery import RecoveryHandler
    from agentlab.sim.loop import run_virtual
    from agentlab.trace.recorder import Recorder

    config = BreakerConfig(consecutive_failures=2, wait_open_s=3600)
    replica_a = CircuitBreaker("tool:lookup_order", config, redis_store)
    replica_a.record(False, 0.1, 0.0, ListTrace())
    replica_a.record(False, 0.1, 0.0, ListTrace())
    recorder = Recorder("replica-b")
    recovery = RecoveryHandler.resilient(config, store=redis_store)
    replica_b = AgentSystem(model=ScriptedModel(), registry=bench_tools, tiers=BENCH_TIERS, recorder=recorder,
                            memory=MemoryManager(":memory:"), recovery=recovery)  # fmt: skip
    request = AgentRequest(user=BENCH_USER, text="Check order ORD-1", session_id="s", tags={"order_id": "ORD-1"})
    run_virtual(replica_b.handle(request, episode_id="b-0"))
    started = [e for e in recorder.events if e.kind == "tool_call_start" and e.tool == "lookup_order"]
    rejected = [e for e in recorder.events if e.kind == "call_rejected" and e.target == "tool:lookup_order"]
    assert started == [] and len(rejected) >= 1
