"""Stateful property tests: the circuit breaker and the rate limiter's token bucket against reference models.

hypothesis drives each real component through random sequences of operations (calls that succeed or fail,
slow or fast, and the passing of time) next to a deliberately simple model written from the specification,
and checks after every step that the two agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import agentlab.testing.plugin  # noqa: F401  (registers the agentlab-ci profile when run without the plugin)
from agentlab.resilience.breaker import BreakerConfig, CircuitBreaker
from agentlab.resilience.store import MemoryStore
from agentlab.testing.invariants import BREAKER_TRANSITIONS
from agentlab.testing.trace import ListTrace

CI = settings(settings.get_profile("agentlab-ci"), max_examples=150, stateful_step_count=40)


class ReferenceBreaker:
    """The breaker as the specification reads, recomputing everything from the outcomes since the last
    transition (no running counters)."""

    def __init__(self, cfg: BreakerConfig) -> None:
        self.cfg = cfg
        self.state = "closed"
        self.opened_at = 0.0
        self.history: list[tuple[float, bool, bool]] = []  # (t, failed, slow) since the last transition
        self.probes = 0
        self.probe_successes = 0

    def _go(self, state: str, now: float) -> None:
        if state == "open":
            self.opened_at = now
        self.state, self.history, self.probes, self.probe_successes = state, [], 0, 0

    def allow(self, now: float) -> bool:
        if self.state == "open":
            if now - self.opened_at < self.cfg.wait_open_s:
                return False
            self._go("half_open", now)
        if self.state == "half_open":
            if self.probes >= self.cfg.half_open_permitted_calls:
                return False
            self.probes += 1
        return True

    def record(self, ok: bool, duration: float, now: float) -> None:
        cfg = self.cfg
        if self.state == "open":
            return
        if self.state == "half_open":
            self.probes = max(self.probes - 1, 0)
            if not ok:
                self._go("open", now)
                return
            self.probe_successes += 1
            if self.probe_successes >= cfg.success_threshold:
                self._go("closed", now)
            return
        self.history.append((now, not ok, duration >= cfg.slow_call_duration_s))
        trailing = len(list(itertools.takewhile(lambda h: h[1], reversed(self.history))))
        if cfg.window_type == "count":
            window = self.history[-int(cfg.window_size) :]
        else:
            window = [h for h in self.history if h[0] > now - cfg.window_size]
        in_a_row = cfg.consecutive_failures is not None and trailing >= cfg.consecutive_failures
        judged = len(window) >= cfg.minimum_calls
        failing = judged and 100.0 * sum(h[1] for h in window) / len(window) >= cfg.failure_rate_threshold
        slow = judged and 100.0 * sum(h[2] for h in window) / len(window) >= cfg.slow_call_rate_threshold
        if in_a_row or failing or slow:
            self._go("open", now)


configs = st.builds(
    BreakerConfig,
    window_type=st.sampled_from(["count", "time"]),
    window_size=st.integers(2, 8),
    minimum_calls=st.integers(1, 6),
    failure_rate_threshold=st.sampled_from([25.0, 50.0, 75.0, 100.0]),
    consecutive_failures=st.none() | st.integers(1, 5),
    slow_call_duration_s=st.just(5.0),
    slow_call_rate_threshold=st.sampled_from([50.0, 100.0]),
    wait_open_s=st.sampled_from([0.0, 10.0, 30.0]),
    half_open_permitted_calls=st.integers(1, 3),
    success_threshold=st.integers(1, 3),
)


class BreakerMachine(RuleBasedStateMachine):
    """One caller at a time (as one agent replica calls a tool): each call is allowed, then recorded."""

    @initialize(cfg=configs)
    def setup(self, cfg: BreakerConfig) -> None:
        self.now = 0.0
        self.trace = ListTrace()
        self.real = CircuitBreaker("tool:x", cfg)
        self.model = ReferenceBreaker(cfg)

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 10.0, 30.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(ok=st.booleans(), duration=st.sampled_from([0.1, 1.0, 6.0]))
    def call(self, ok: bool, duration: float) -> None:
        allowed = self.real.allow(self.now, self.trace)
        assert allowed == self.model.allow(self.now), f"allow() at t={self.now} in {self.model.state}"
        if allowed:
            self.now += duration
            self.real.record(ok, duration, self.now, self.trace)
            self.model.record(ok, duration, self.now)

    @rule()
    def rejected_call_is_rejected_until_cool_down(self) -> None:
        if self.real.state == "open":
            assert self.real.retry_after(self.now) == max(
                self.model.opened_at + self.model.cfg.wait_open_s - self.now, 0
            )

    @invariant()
    def same_state(self) -> None:
        if hasattr(self, "real"):
            assert self.real.state == self.model.state

    @invariant()
    def transitions_follow_the_state_machine(self) -> None:
        if hasattr(self, "real"):
            for event in self.trace.events:
                assert (event.from_state, event.to_state) in BREAKER_TRANSITIONS


TestBreakerAgainstReference = BreakerMachine.TestCase
TestBreakerAgainstReference.settings = CI


class ReferenceBucket:
    """The token bucket as GCRA (the ATM cell-rate algorithm): one number, the time the bucket is full again.
    A different formulation of the same limit, so agreement is not a copy agreeing with itself."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.full_at = float("-inf")

    def take(self, now: float) -> float:
        full_at = max(self.full_at, now)
        tolerance = (self.capacity - 1) / self.rate  # how far ahead of now "full again" may be and a token left
        if full_at - now <= tolerance:
            self.full_at = full_at + 1 / self.rate
            return 0.0
        return (full_at - now) - tolerance


_keys = itertools.count()


@pytest.fixture(params=["memory", "redis"])
def bucket_store(request: pytest.FixtureRequest) -> Any:
    return MemoryStore() if request.param == "memory" else request.getfixturevalue("redis_store")


def test_token_bucket_agrees_with_gcra(bucket_store: Any) -> None:
    """Times on a 1/8 s grid and power-of-two rates keep every figure exact in binary floating point."""

    class BucketMachine(RuleBasedStateMachine):
        @initialize(capacity=st.integers(1, 5), rate=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
        def setup(self, capacity: int, rate: float) -> None:
            self.key = f"k{next(_keys)}"  # a fresh bucket per example (Redis keeps them between examples)
            self.capacity, self.rate = float(capacity), rate
            self.model = ReferenceBucket(self.capacity, rate)
            self.now = 0.0
            self.admitted: list[float] = []

        @rule(eighths=st.integers(0, 24))
        def time_passes(self, eighths: int) -> None:
            self.now += eighths / 8

        @rule()
        def take(self) -> None:
            wait = bucket_store.take(self.key, self.capacity, self.rate, self.now)
            assert wait == pytest.approx(self.model.take(self.now), abs=1e-9)
            if wait == 0.0:
                self.admitted.append(self.now)

        @invariant()
        def never_more_than_the_limit(self) -> None:
            # Over any stretch of time, at most capacity + rate × its length calls get through.
            if not hasattr(self, "admitted"):
                return
            for i, start in enumerate(self.admitted):
                for j in range(i, len(self.admitted)):
                    assert j - i + 1 <= self.capacity + self.rate * (self.admitted[j] - start) + 1e-9

    BucketMachine.TestCase.settings = settings(CI, max_examples=100)
    BucketMachine.TestCase().runTest()
