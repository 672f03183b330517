"""Deciding, call by call, whether a fault is injected — deterministically.

A draw for ``rate`` is a hash of (seed, fault, episode, target, the episode's call number), not a
shared RNG stream: the same call gets the same answer whatever ran before it, so a resumed run
or a single episode replayed with ``--only`` sees exactly the faults it saw the first time.
Every injected fault is a ``fault_injected`` event.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from agentlab.faults.plan import Fault, FaultPlan
from agentlab.trace.events import FaultInjected


def uniform(*key: object) -> float:
    """A deterministic draw in [0, 1) from ``key``."""
    digest = hashlib.blake2b("\x1f".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultInjector:
    def __init__(self, plan: FaultPlan | Fault, seed: int, *, now: Callable[[], float] | None = None) -> None:
        if isinstance(plan, Fault):
            plan = FaultPlan(faults=(plan,))
        self.plan = plan
        self.seed = seed
        self._now = now
        self._tool_faults = [(i, f) for i, f in enumerate(plan.faults) if f.target.tools]
        self._model_faults = [(i, f) for i, f in enumerate(plan.faults) if f.target.models]
        self._episode_start: dict[str, float] = {}
        self._episode_calls: dict[tuple[str, str], int] = defaultdict(int)  # (episode, target) -> calls so far
        self._run_matches: dict[int, int] = defaultdict(int)  # fault -> matching calls in the run
        self._episode_matches: dict[tuple[int, str], int] = defaultdict(int)
        self._burst_used: dict[tuple[int, str], int] = defaultdict(int)

    # --- episode bookkeeping ---------------------------------------------------------------------

    def start_episode(self, episode_id: str, t: float) -> None:
        self._episode_start[episode_id] = t

    def end_episode(self, episode_id: str) -> None:
        self._episode_start.pop(episode_id, None)
        for key in [k for k in self._episode_calls if k[0] == episode_id]:
            del self._episode_calls[key]
        for table in (self._episode_matches, self._burst_used):
            for key in [k for k in table if k[1] == episode_id]:
                del table[key]

    # --- decisions -------------------------------------------------------------------------------

    def for_tool(self, name: str, episode_id: str, now: float, trace: Any) -> Fault | None:
        if not self._tool_faults:
            return None
        return self._decide(self._tool_faults, "tool", name, "", episode_id, now, trace)

    def for_model(self, tier: str, model: str, episode_id: str, now: float, trace: Any) -> Fault | None:
        if not self._model_faults:
            return None
        return self._decide(self._model_faults, "model", tier, model, episode_id, now, trace)

    def _decide(
        self,
        faults: list[tuple[int, Fault]],
        target_type: str,
        name: str,
        model: str,
        episode_id: str,
        now: float,
        trace: Any,
    ) -> Fault | None:
        call_key = (episode_id, f"{target_type}:{name}")
        self._episode_calls[call_key] += 1
        call_no = self._episode_calls[call_key]
        chosen: Fault | None = None
        for index, fault in faults:
            matches = (
                fault.target.matches_tool(name) if target_type == "tool" else fault.target.matches_model(name, model)
            )
            if not matches:
                continue
            if fault.scope == "run":
                self._run_matches[index] += 1
                nth, clock, scope_key = self._run_matches[index], now, "run"
            else:
                self._episode_matches[(index, episode_id)] += 1
                nth = self._episode_matches[(index, episode_id)]
                clock, scope_key = now - self._episode_start.get(episode_id, 0.0), episode_id
            if chosen is not None or not self._holds(index, fault, nth, clock, scope_key):
                continue
            if fault.rate < 1.0 and uniform(self.seed, index, episode_id, target_type, name, call_no) >= fault.rate:
                continue
            chosen = fault
            trace.emit(
                FaultInjected(
                    fault_id=fault.label,
                    fault_kind=fault.kind,
                    target_type=target_type,
                    target=name,
                    status=fault.params.status if fault.kind in ("error", "server_error", "rate_limit") else None,
                    retry_after_s=fault.params.retry_after_s,
                )
            )
        return chosen

    def _holds(self, index: int, fault: Fault, nth: int, clock: float, scope_key: str) -> bool:
        if fault.window is not None and not (fault.window.start_s <= clock < fault.window.end_s):
            return False
        if fault.every_nth is not None and nth % fault.every_nth != 0:
            return False
        if fault.burst is not None:
            if clock < fault.burst.start_s or self._burst_used[(index, scope_key)] >= fault.burst.count:
                return False
            self._burst_used[(index, scope_key)] += 1
        return True
