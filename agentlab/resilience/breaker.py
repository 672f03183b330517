"""Circuit breakers with resilience4j's semantics, on the loop's clock.

Written here because no maintained Python breaker (pybreaker, aiobreaker) runs on loop time; an
hour-long outage must open, cool down and probe in simulated seconds.

* **closed** — calls flow; outcomes go into a sliding window (the last N calls, or the last N
  seconds). The breaker opens when, with at least ``minimum_calls`` recorded, the failure rate or
  the slow-call rate reaches its threshold, or after ``consecutive_failures`` failures in a row.
* **open** — calls are rejected at once, until ``wait_open_s`` has passed.
* **half-open** — up to ``half_open_permitted_calls`` probes at a time; one failed probe re-opens,
  ``success_threshold`` successful probes close.

Every transition is a ``breaker_transition`` event with its reason.

With a shared :class:`~agentlab.resilience.store.StateStore` (Redis), each transition is published
and every ``allow`` first adopts a newer state another replica published, so one replica's trip
protects the whole fleet. (The read-modify-write of the version is not atomic: two replicas that
trip in the same instant both publish, and the later write wins, which is harmless here.)
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.trace.events import BreakerTransition

State = Literal["closed", "open", "half_open"]


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Defaults are resilience4j's (50 % over a window, then 60 s open, a few probes) scaled down to the
    # call volumes of a simulated suite: a window of 20 calls and at least 10 before judging, so a few
    # unlucky transient failures do not open a breaker, but a real outage does within seconds.
    window_type: Literal["count", "time"] = "count"
    window_size: float = Field(default=20, gt=0, description="calls (count) or seconds (time)")
    minimum_calls: int = Field(default=10, gt=0)
    failure_rate_threshold: float = Field(default=50.0, gt=0, le=100, description="percent")
    consecutive_failures: int | None = Field(default=8, gt=0)
    slow_call_duration_s: float = Field(default=30.0, gt=0)
    slow_call_rate_threshold: float = Field(default=100.0, gt=0, le=100, description="percent")
    wait_open_s: float = Field(default=30.0, ge=0, description="cool-down before probing")
    half_open_permitted_calls: int = Field(default=2, gt=0)
    success_threshold: int = Field(default=2, gt=0)


class CircuitBreaker:
    def __init__(self, name: str, config: BreakerConfig | None = None, store: Any = None) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self.store = store
        self._version = 0
        self.state: State = "closed"
        self.opened_at = 0.0
        self._window: deque[tuple[float, bool, bool]] = deque()  # (t, failed, slow)
        self._failures = 0  # running counts over the window (no rescans per call)
        self._slow = 0
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._count_window = self.config.window_type == "count"
        # Read on every recorded call; the config is frozen, and attribute reads on it are slow (pydantic).
        self._slow_call_s = self.config.slow_call_duration_s
        self._window_size = self.config.window_size

    # --- the two calls a caller makes ------------------------------------------------------------

    def allow(self, now: float, trace: Any) -> bool:
        """May a call go ahead now? (In half-open, a True reserves one probe slot.) Every call asks: with a shared
        store, a closed breaker may still have to adopt another replica's trip."""
        if self.store is not None:
            self._adopt_shared(trace)
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.config.wait_open_s:
                return False
            self._transition("half_open", f"cool-down of {self.config.wait_open_s:g}s elapsed", now, trace)
        if self._probes_in_flight >= self.config.half_open_permitted_calls:
            return False
        self._probes_in_flight += 1
        return True

    def retry_after(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 if it would now)."""
        if self.state != "open":
            return 0.0
        return max(self.opened_at + self.config.wait_open_s - now, 0.0)

    def record(self, ok: bool, duration_s: float, now: float, trace: Any) -> None:
        """Report how an allowed call ended."""
        if self.state != "closed":
            self._record_probe(ok, now, trace)
            return
        slow = duration_s >= self._slow_call_s
        window = self._window
        window.append((now, not ok, slow))
        if ok:
            self._consecutive = 0
        else:
            self._failures += 1
            self._consecutive += 1
        if slow:
            self._slow += 1
        if self._count_window:
            if len(window) > self._window_size:  # _drop, inline: a full count window drops one entry per call
                _, failed, was_slow = window.popleft()
                self._failures -= failed
                self._slow -= was_slow
        else:
            self._evict(now)
        if not (self._failures or self._slow):
            return  # the common case: nothing in the window to judge
        cfg = self.config
        if cfg.consecutive_failures is not None and self._consecutive >= cfg.consecutive_failures:
            self._transition("open", f"{self._consecutive} consecutive failures", now, trace)
            return
        calls = len(window)
        if calls < cfg.minimum_calls:
            return
        failure_rate = 100.0 * self._failures / calls
        if failure_rate >= cfg.failure_rate_threshold:
            self._transition("open", f"failure rate {failure_rate:.0f}% over {calls} calls", now, trace)
            return
        slow_rate = 100.0 * self._slow / calls
        if slow_rate >= cfg.slow_call_rate_threshold:
            self._transition("open", f"slow-call rate {slow_rate:.0f}% over {calls} calls", now, trace)

    def _record_probe(self, ok: bool, now: float, trace: Any) -> None:
        if self.state == "open":
            return  # a call allowed before the breaker opened; its outcome no longer matters
        self._probes_in_flight = max(self._probes_in_flight - 1, 0)
        if not ok:
            self._transition("open", "a half-open probe failed", now, trace)
            return
        self._probe_successes += 1
        if self._probe_successes >= self.config.success_threshold:
            self._transition("closed", f"{self._probe_successes} half-open probes succeeded", now, trace)

    # --- internals ---------------------------------------------------------------------------------

    def _evict(self, now: float) -> None:
        """Drop what a time window has left behind (a count window trims itself in ``record``)."""
        window = self._window
        horizon = now - self.config.window_size
        while window and window[0][0] <= horizon:
            self._drop(window.popleft())

    def _drop(self, entry: tuple[float, bool, bool]) -> None:
        self._failures -= entry[1]
        self._slow -= entry[2]

    def _adopt_shared(self, trace: Any) -> None:
        shared = self.store.get_breaker(self.name)
        if shared is None or shared["version"] <= self._version:
            return
        self._version = shared["version"]
        if shared["state"] != self.state:
            self._transition(shared["state"], f"shared: {shared['reason']}", shared["opened_at"], trace, publish=False)

    def _transition(self, to: State, reason: str, now: float, trace: Any, *, publish: bool = True) -> None:
        trace.emit(BreakerTransition(breaker=self.name, from_state=self.state, to_state=to, reason=reason))
        self.state = to
        if publish and self.store is not None:
            current = self.store.get_breaker(self.name)
            self._version = max(self._version, current["version"] if current else 0) + 1
            opened_at = now if to == "open" else self.opened_at
            self.store.set_breaker(
                self.name, {"state": to, "opened_at": opened_at, "reason": reason, "version": self._version}
            )
        if to == "open":
            self.opened_at = now
        if to in ("open", "closed"):
            self._window.clear()
            self._failures = self._slow = 0
            self._consecutive = 0
            self._probes_in_flight = 0
            self._probe_successes = 0
        if to == "half_open":
            self._probe_successes = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "opened_at": self.opened_at,
            "window": list(self._window),
            "consecutive": self._consecutive,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.state = data["state"]
        self.opened_at = data["opened_at"]
        self._window = deque(tuple(x) for x in data["window"])  # type: ignore[misc]
        self._failures = sum(1 for e in self._window if e[1])
        self._slow = sum(1 for e in self._window if e[2])
        self._consecutive = data["consecutive"]


class BreakerRegistry:
    """One breaker per tool (``tool:NAME``) and per model endpoint (``model:TIER``)."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        overrides: dict[str, BreakerConfig] | None = None,
        store: Any = None,
    ) -> None:
        self.config = config or BreakerConfig()
        self.overrides = overrides or {}
        self.store = store
        self._breakers: dict[str, CircuitBreaker] = {}
        self._tools: dict[str, CircuitBreaker] = {}
        self._models: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(name, self.overrides.get(name, self.config), self.store)
        return breaker

    def tool(self, name: str) -> CircuitBreaker:
        """``get("tool:" + name)``, cached by the bare name (this runs on every tool call)."""
        breaker = self._tools.get(name)
        if breaker is None:
            breaker = self._tools[name] = self.get(f"tool:{name}")
        return breaker

    def model(self, tier: str) -> CircuitBreaker:
        breaker = self._models.get(tier)
        if breaker is None:
            breaker = self._models[tier] = self.get(f"model:{tier}")
        return breaker

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._breakers.values())

    def snapshot(self) -> dict[str, Any]:
        return {name: b.snapshot() for name, b in sorted(self._breakers.items())}

    def restore(self, data: dict[str, Any]) -> None:
        for name, state in data.items():
            self.get(name).restore(state)
