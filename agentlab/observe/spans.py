"""OpenTelemetry GenAI spans as plain data, built from trace events alone.

Why plain data first: the mapping from events to spans is the part worth testing and must be a pure
function of the trace (same events, same spans, same ids), while the SDK and the wire are someone
else's code. :mod:`agentlab.observe.otel` turns these specs into real SDK spans and exports them.

Per episode (one trace each, its id a hash of run id and episode id):

* ``invoke_agent agentlab`` — the root, from ``episode_started`` to the episode's last event;
  outcome, cost and tokens as ``agentlab.*`` attributes; faults, retries, breaker transitions,
  routing decisions and degradations as span events at their simulated times.
* ``chat {model}`` — one per model attempt (``model_call`` event; it is written when the call
  ends, so it starts at ``t - latency_s``), with ``gen_ai.usage.*`` and ``error.type`` on failure:
  the HTTP status for rate limits and server errors (``429``, ``5xx``), else the error class.
* ``execute_tool {tool}`` — one per tool attempt (``tool_call_start`` to ``tool_call_end``).

The attribute names follow the OpenTelemetry GenAI semantic conventions as of their move to the
semantic-conventions-genai repository (2026-05): ``gen_ai.provider.name`` (which replaced
``gen_ai.system``), ``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.usage.input_tokens`` / ``output_tokens`` / ``cache_read.input_tokens``,
``gen_ai.tool.name`` / ``gen_ai.tool.call.id`` / ``gen_ai.tool.type``, ``gen_ai.conversation.id``.

Timestamps: simulated seconds ``t`` are laid onto a base time, ``base_ns + t * 1e9``. After the fact the
base defaults to the simulated calendar's epoch (:data:`agentlab.sim.clock.DEFAULT_EPOCH`, where the
budgets' days and months already live), so an export is byte-for-byte repeatable; live, it defaults to
the wall clock when the run starts, so spans show up in a tracing UI's "last 15 minutes".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agentlab.sim.clock import DEFAULT_EPOCH

AGENT_NAME = "agentlab"
SIM_PROVIDER = "agentlab.sim"  # not a well-known gen_ai.provider.name value: the spec allows custom ones
_OK_STATUSES = frozenset({"completed"})
# Model errors whose provider status is known from the error class alone (a fault event may say more).
_ERROR_STATUS = {"RateLimited": "429", "Overloaded": "529", "ProviderServerError": "500"}
_HTTP_STATUS = re.compile(r"\bHTTP ([1-5]\d\d)\b")
# Events shown on the root span, with the fields they carry over as event attributes.
_SPAN_EVENTS: dict[str, tuple[str, ...]] = {
    "fault_injected": ("fault_id", "fault_kind", "target_type", "target", "status"),
    "retry": ("target", "attempt", "delay_s", "error_type"),
    "breaker_transition": ("breaker", "from_state", "to_state", "reason"),
    "routing": ("tier", "previous", "reason"),
    "degraded": ("mode", "target", "replacement", "reason"),
    "call_rejected": ("target", "reason"),
    "rate_limit_wait": ("target", "wait_s"),
    "guardrail": ("stage", "category", "action"),
    "step_rejected": ("tool", "error_type"),
    "recovery": ("action", "reason"),
}


def base_ns(when: datetime | None = None) -> int:
    """Nanoseconds since the Unix epoch of ``when`` (default: the simulated calendar's epoch)."""
    when = when or DEFAULT_EPOCH
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


@dataclass
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class SpanSpec:
    """One span, ready for any tracing SDK: ``parent`` indexes the episode's span list (None: the root)."""

    name: str
    kind: Literal["internal", "client"]
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    parent: int | None = None
    error: str | None = None  # set: the span's status is ERROR with this description
    events: list[SpanEvent] = field(default_factory=list)


@dataclass
class EpisodeSpans:
    run_id: str
    episode_id: str
    trace_id: int
    span_ids: list[int]
    spans: list[SpanSpec]


def trace_id_for(run_id: str, episode_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{run_id}|{episode_id}".encode()).digest()[:16], "big") or 1


def span_id_for(run_id: str, episode_id: str, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{run_id}|{episode_id}|{index}".encode()).digest()[:8], "big") or 1


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """OTel attributes take str, bool, int, float (and lists of them); drop None and NaN."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None or (isinstance(value, float) and value != value):
            continue
        out[key] = value
    return out


class _Episode:
    __slots__ = ("events", "started")

    def __init__(self, started: Mapping[str, Any]) -> None:
        self.started = started
        self.events: list[Mapping[str, Any]] = []


class SpanBuilder:
    """Consumes a run's events in trace order and yields each episode's spans when it ends.

    Breaker states outlive episodes, so the builder keeps them across the whole run: a call's
    ``agentlab.breaker.state`` is its breaker's state when the call started.
    """

    def __init__(self, *, base: int | None = None, provider: str = SIM_PROVIDER) -> None:
        self.base = base_ns() if base is None else base
        self.provider = provider
        self._episodes: dict[str, _Episode] = {}
        self._breakers: dict[str, list[tuple[float, int, str]]] = {}  # name -> [(t, seq, state)]

    def add(self, event: Mapping[str, Any]) -> EpisodeSpans | None:
        """Feed one event (as a dict with ``kind``); returns the episode's spans when it is graded."""
        kind = event.get("kind")
        episode_id = event.get("episode_id") or ""
        if kind == "breaker_transition":
            self._breakers.setdefault(event["breaker"], []).append((event["t"], event["seq"], event["to_state"]))
        if kind == "episode_started":
            self._episodes[episode_id] = _Episode(event)
            return None
        episode = self._episodes.get(episode_id)
        if episode is None:
            return None
        episode.events.append(event)
        if kind == "episode_graded":
            return self.end(episode_id)
        return None

    def end(self, episode_id: str) -> EpisodeSpans | None:
        """Close an episode now (one a grader will not grade, e.g. a served request); None if unknown."""
        episode = self._episodes.pop(episode_id, None)
        return self._build(episode) if episode is not None else None

    def finish(self) -> list[EpisodeSpans]:
        """Close every episode still open (a killed run's last one), in the order they started."""
        return [spans for eid in list(self._episodes) if (spans := self.end(eid)) is not None]

    # --- building -------------------------------------------------------------------------------

    def _ns(self, t: float) -> int:
        return self.base + round(t * 1e9)

    def _breaker_state(self, name: str, start: float, seq: int) -> str:
        state = "closed"
        for t, s, to in self._breakers.get(name, ()):
            if s >= seq or t > start:
                break
            state = to
        return state

    def _build(self, episode: _Episode) -> EpisodeSpans:
        started = episode.started
        run_id, episode_id = started["run_id"], started["episode_id"]
        events = episode.events
        end_t = max([started["t"], *(e["t"] for e in events)])
        final = next((e for e in reversed(events) if e.get("kind") == "final_response"), None)
        graded = next((e for e in reversed(events) if e.get("kind") == "episode_graded"), None)
        status = (graded or final or {}).get("status")
        models = [e for e in events if e.get("kind") == "model_call"]
        tool_ends = [e for e in events if e.get("kind") == "tool_call_end"]
        first_model = models[0]["model"] if models else None
        root = SpanSpec(
            name=f"invoke_agent {AGENT_NAME}",
            kind="internal",
            start_ns=self._ns(started["t"]),
            end_ns=self._ns(end_t),
            attributes=_clean(
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.provider.name": self.provider,
                    "gen_ai.agent.name": AGENT_NAME,
                    "gen_ai.conversation.id": episode_id,
                    "gen_ai.request.model": first_model,
                    "gen_ai.usage.input_tokens": sum(int(e.get("input_tokens") or 0) for e in models),
                    "gen_ai.usage.output_tokens": sum(int(e.get("output_tokens") or 0) for e in models),
                    "agentlab.run_id": run_id,
                    "agentlab.episode_id": episode_id,
                    "agentlab.scenario_id": started.get("scenario_id"),
                    "agentlab.category": started.get("category"),
                    "agentlab.epoch": started.get("epoch"),
                    "agentlab.strategy": started.get("strategy"),
                    "agentlab.tier": started.get("tier"),
                    "agentlab.user_id": started.get("user_id"),
                    "agentlab.status": status,
                    "agentlab.success": graded.get("success") if graded else None,
                    "agentlab.turns": final.get("turns") if final else None,
                    "agentlab.cost_usd": round(
                        sum(float(e.get("cost_usd") or 0) for e in models)
                        + sum(float(e.get("cost_usd") or 0) for e in tool_ends),
                        9,
                    ),
                    "agentlab.model_calls": len(models),
                    "agentlab.tool_calls": len(tool_ends),
                    "agentlab.duplicate_side_effects": graded.get("duplicate_side_effects") if graded else None,
                }
            ),
            error=None if status is None or status in _OK_STATUSES else str(status),
        )
        spans = [root]
        pending_faults: list[Mapping[str, Any]] = []  # model/provider faults since the last model call
        tool_faults: list[Mapping[str, Any]] = []
        tool_starts: dict[tuple[str, int], Mapping[str, Any]] = {}
        for e in events:
            kind = e.get("kind")
            if kind in _SPAN_EVENTS:
                root.events.append(
                    SpanEvent(
                        name=f"agentlab.{kind}",
                        time_ns=self._ns(e["t"]),
                        attributes=_clean({f"agentlab.{k}": e.get(k) for k in _SPAN_EVENTS[kind]}),
                    )
                )
            if kind == "fault_injected":
                (tool_faults if e.get("target_type") == "tool" else pending_faults).append(e)
            elif kind == "model_call":
                spans.append(self._chat(e, pending_faults))
                pending_faults = []
            elif kind == "tool_call_start":
                tool_starts[(e["call_id"], e["attempt"])] = e
            elif kind == "tool_call_end":
                start = tool_starts.pop((e["call_id"], e["attempt"]), None)
                fault = next((f for f in tool_faults if f.get("target") == e["tool"]), None)
                if fault is not None:
                    tool_faults.remove(fault)
                spans.append(self._tool(e, start, fault))
        for start in tool_starts.values():  # started, never ended (the run was killed): a zero-length span
            spans.append(self._tool(None, start, None))
        ids = [span_id_for(run_id, episode_id, i) for i in range(len(spans))]
        for span in spans[1:]:
            span.parent = 0
        return EpisodeSpans(run_id, episode_id, trace_id_for(run_id, episode_id), ids, spans)

    def _chat(self, e: Mapping[str, Any], faults: Iterable[Mapping[str, Any]]) -> SpanSpec:
        faults = list(faults)
        start_t = e["t"] - float(e.get("latency_s") or 0.0)
        ok = bool(e.get("ok"))
        status = next((f.get("status") for f in faults if f.get("status")), None)
        error_type = None
        if not ok:
            name = e.get("error_type") or "_OTHER"
            said = _HTTP_STATUS.search(e.get("error") or "")
            if status:
                error_type = str(int(status))
            elif said:  # the client's own message names the status ("HTTP 502 from sim-balanced")
                error_type = said.group(1)
            else:
                error_type = _ERROR_STATUS.get(name, name)
        fault = faults[-1] if faults else None
        model = e.get("model")
        return SpanSpec(
            name=f"chat {model}",
            kind="client",
            start_ns=self._ns(start_t),
            end_ns=self._ns(e["t"]),
            attributes=_clean(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": self.provider,
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model if ok else None,
                    "gen_ai.usage.input_tokens": int(e.get("input_tokens") or 0) if ok else None,
                    "gen_ai.usage.output_tokens": int(e.get("output_tokens") or 0) if ok else None,
                    "gen_ai.usage.cache_read.input_tokens": int(e.get("cached_tokens") or 0) if ok else None,
                    "gen_ai.response.finish_reasons": [e["stop_reason"]] if e.get("stop_reason") else None,
                    "error.type": error_type,
                    "agentlab.tier": e.get("tier"),
                    "agentlab.purpose": e.get("purpose"),
                    "agentlab.attempt": e.get("attempt"),
                    "agentlab.http_attempts": e.get("http_attempts"),
                    "agentlab.cost_usd": float(e.get("cost_usd") or 0.0),
                    "agentlab.estimate_usd": float(e.get("estimate_usd") or 0.0),
                    "agentlab.breaker.state": self._breaker_state(f"model:{e.get('tier')}", start_t, e["seq"]),
                    "agentlab.fault.kind": fault.get("fault_kind") if fault else None,
                    "agentlab.fault.id": fault.get("fault_id") if fault else None,
                }
            ),
            error=e.get("error") or error_type if not ok else None,
        )

    def _tool(
        self, end: Mapping[str, Any] | None, start: Mapping[str, Any] | None, fault: Mapping[str, Any] | None
    ) -> SpanSpec:
        e = end or start
        assert e is not None
        end_t = e["t"]
        start_t = start["t"] if start is not None else end_t - float(e.get("latency_s") or 0.0)
        ok = bool(end.get("ok")) if end is not None else False
        error_type = None if ok else ((end or {}).get("error_type") or "_OTHER")
        return SpanSpec(
            name=f"execute_tool {e['tool']}",
            kind="internal",
            start_ns=self._ns(start_t),
            end_ns=self._ns(end_t),
            attributes=_clean(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": e["tool"],
                    "gen_ai.tool.call.id": e["call_id"],
                    "gen_ai.tool.type": "function",
                    "error.type": error_type,
                    "agentlab.attempt": e.get("attempt"),
                    "agentlab.cost_usd": float((end or {}).get("cost_usd") or 0.0),
                    "agentlab.degraded_from": (end or {}).get("degraded_from"),
                    "agentlab.breaker.state": self._breaker_state(f"tool:{e['tool']}", start_t, e["seq"]),
                    "agentlab.fault.kind": fault.get("fault_kind") if fault else None,
                    "agentlab.fault.id": fault.get("fault_id") if fault else None,
                }
            ),
            error=None if ok else ((end or {}).get("error") or error_type),
        )


def episode_spans(
    events: Iterable[Mapping[str, Any]], *, base: int | None = None, provider: str = SIM_PROVIDER
) -> list[EpisodeSpans]:
    """Every episode's spans from a whole trace, in trace order (unfinished episodes last)."""
    builder = SpanBuilder(base=base, provider=provider)
    out = [spans for event in events if (spans := builder.add(event)) is not None]
    return out + builder.finish()
