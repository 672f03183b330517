"""Deciding, call by call, whether a fault is injected — deterministically.

Each call gets one draw ``u`` in [0, 1): a hash of (seed, episode, target, the episode's call
number), not a shared RNG stream, so the same call gets the same answer whatever ran before it and
a resumed run, or one episode replayed with ``--only``, sees exactly the faults it saw first time.

The faults that target a call own consecutive bands of [0, 1) in plan order, each as wide as its
rate; the fault whose band holds ``u`` (and whose schedule holds) is injected. So every fault
fires at exactly its stated rate, and rates of faults on the same call add up (saturating at 1).
Every injected fault is a ``fault_injected`` event.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from agentlab.faults.plan import Fault, FaultPlan
from agentlab.trace.events import FaultInjected

_MASK = (1 << 64) - 1


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _splitmix64(x: int) -> int:
    """SplitMix64's finaliser: a fast, well-mixed 64-bit permutation (Steele et al., 2014)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _retry_after(fault: Fault) -> float | None:
    params = fault.params
    if params.retry_after_ms is not None:  # what the SDKs read first
        return params.retry_after_ms / 1000
    return params.retry_after_s


class FaultInjector:
    def __init__(self, plan: FaultPlan | Fault, seed: int, *, now: Callable[[], float] | None = None) -> None:
        if isinstance(plan, Fault):
            plan = FaultPlan(faults=(plan,))
        self.plan = plan
        self.seed = seed
        self._now = now
        self._tool_faults = [(i, f) for i, f in enumerate(plan.faults) if f.target.tools]
        self._model_faults = [(i, f) for i, f in enumerate(plan.faults) if f.target.models]
        self._provider_faults = [(i, f) for i, f in enumerate(plan.faults) if f.target.providers]
        self._matching: dict[tuple[str, str, str], list[tuple[int, Fault, float, float]]] = {}
        self._episode_hash: dict[str, int] = {}
        self._name_hash: dict[tuple[str, str], int] = {}
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
        self._episode_hash.pop(episode_id, None)
        for key in [k for k in self._episode_calls if k[0] == episode_id]:
            del self._episode_calls[key]
        for table in (self._episode_matches, self._burst_used):
            for key in [k for k in table if k[1] == episode_id]:
                del table[key]

    def snapshot(self) -> dict[str, Any]:
        """Run-scoped counters (episode-scoped ones end with their episode): for checkpoints."""
        return {
            "run_matches": {str(k): v for k, v in sorted(self._run_matches.items())},
            "burst_run": {str(k[0]): v for k, v in sorted(self._burst_used.items()) if k[1] == "run"},
        }

    def restore(self, data: dict[str, Any]) -> None:
        for k, v in data["run_matches"].items():
            self._run_matches[int(k)] = v
        for k, v in data["burst_run"].items():
            self._burst_used[(int(k), "run")] = v

    # --- decisions -------------------------------------------------------------------------------

    def for_tool(self, name: str, episode_id: str, now: float, trace: Any) -> Fault | None:
        if not self._tool_faults:
            return None
        return self._decide(self._tool_faults, "tool", name, "", episode_id, now, trace)

    def for_model(self, tier: str, model: str, episode_id: str, now: float, trace: Any) -> Fault | None:
        if not self._model_faults:
            return None
        return self._decide(self._model_faults, "model", tier, model, episode_id, now, trace)

    @property
    def has_provider_faults(self) -> bool:
        """Whether any fault targets providers (and so needs an HTTP layer to enter through)."""
        return bool(self._provider_faults)

    def for_provider(self, provider: str, model: str, episode_id: str, now: float, trace: Any) -> Fault | None:
        """One HTTP request to ``provider`` (each SDK retry is a request of its own, with its own draw)."""
        if not self._provider_faults:
            return None
        return self._decide(self._provider_faults, "provider", provider, model, episode_id, now, trace)

    def _candidates(
        self, faults: list[tuple[int, Fault]], target_type: str, name: str, model: str
    ) -> list[tuple[int, Fault, float, float]]:
        """The faults that target this name, each with its band [lo, hi) of the unit interval."""
        key = (target_type, name, model)
        found = self._matching.get(key)
        if found is None:
            found, lo = [], 0.0
            for index, fault in faults:
                target = fault.target
                if target_type == "tool":
                    matches = target.matches_tool(name)
                elif target_type == "model":
                    matches = target.matches_model(name, model)
                else:
                    matches = target.matches_provider(name, model)
                if matches:
                    found.append((index, fault, lo, lo + fault.rate))
                    lo += fault.rate
            self._matching[key] = found
        return found

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
        candidates = self._candidates(faults, target_type, name, model)
        if not candidates:
            return None
        call_key = (episode_id, name)
        call_no = self._episode_calls[call_key] = self._episode_calls[call_key] + 1
        u: float | None = None
        chosen: Fault | None = None
        for index, fault, lo, hi in candidates:
            if fault.scope == "run":
                self._run_matches[index] += 1
                nth, clock, scope_key = self._run_matches[index], now, "run"
            else:
                self._episode_matches[(index, episode_id)] += 1
                nth = self._episode_matches[(index, episode_id)]
                clock, scope_key = now - self._episode_start.get(episode_id, 0.0), episode_id
            if chosen is not None:
                continue  # counters still advance: every_nth counts every matching call
            if hi - lo < 1.0:
                if u is None:
                    u = self._draw(episode_id, target_type, name, call_no)
                if not lo <= u < hi:
                    continue
            if not self._holds(index, fault, nth, clock, scope_key):
                continue
            chosen = fault
            trace.emit(
                FaultInjected(
                    fault_id=fault.label,
                    fault_kind=fault.kind,
                    target_type=target_type,
                    target=name,
                    status=fault.http_status,
                    retry_after_s=_retry_after(fault),
                )
            )
        return chosen

    def _draw(self, episode_id: str, target_type: str, name: str, call_no: int) -> float:
        """A deterministic draw in [0, 1) for one call: SplitMix64 of hash(seed|episode) ^ hash(type|name) ^ the
        call number, with the two string hashes cached (one per episode, one per target)."""
        episode_hash = self._episode_hash.get(episode_id)
        if episode_hash is None:
            episode_hash = self._episode_hash[episode_id] = _hash64(f"{self.seed}|{episode_id}")
        name_hash = self._name_hash.get((target_type, name))
        if name_hash is None:
            name_hash = self._name_hash[(target_type, name)] = _hash64(f"{target_type}|{name}")
        return _splitmix64(episode_hash ^ name_hash ^ (call_no * 0xD1B54A32D192ED03 & _MASK)) / 2**64

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
