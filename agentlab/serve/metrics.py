"""Prometheus metrics of the served agent.

Two sources, kept apart on purpose. What the agent did — model calls, tokens, cost, tool calls,
breaker states, injected faults — is counted from the trace's events as they are emitted (a recorder
listener: one trace, many views; nothing in the agent counts twice). What the server did — HTTP
requests, admission, queue depth, latency — exists only at the HTTP layer and is counted there.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}
# Requests run for seconds (several simulated model calls); buckets reach past a minute.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http = Counter("agentlab_http_requests", "HTTP requests answered", ["route", "code"], registry=r)
        self.admitted = Counter("agentlab_requests_admitted", "agent requests accepted into the queue", registry=r)
        self.rejected = Counter(
            "agentlab_requests_rejected", "agent requests refused at admission (429)", ["reason"], registry=r
        )
        self.replayed = Counter(
            "agentlab_requests_idempotent_replays", "POSTs answered from an earlier request with their key", registry=r
        )
        self.finished = Counter("agentlab_requests_finished", "agent requests finished", ["state"], registry=r)
        self.latency = Histogram(
            "agentlab_request_latency_seconds",
            "wall seconds from acceptance to the agent's answer",
            ["state"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("agentlab_queue_depth", "requests waiting for a worker", registry=r)
        self.busy = Gauge("agentlab_workers_busy", "workers running a request", registry=r)
        # From the trace:
        self.model_calls = Counter("agentlab_model_calls", "model call attempts", ["tier", "ok"], registry=r)
        self.tokens = Counter("agentlab_model_tokens", "model tokens", ["tier", "direction"], registry=r)
        self.cost = Counter("agentlab_cost_usd", "spend in USD", ["kind"], registry=r)
        self.tool_calls = Counter("agentlab_tool_calls", "tool call attempts", ["tool", "ok"], registry=r)
        self.breaker = Gauge(
            "agentlab_breaker_state", "circuit breaker state (0 closed, 1 half-open, 2 open)", ["breaker"], registry=r
        )
        self.faults = Counter("agentlab_faults_injected", "faults injected by the fault plan", ["kind"], registry=r)

    def on_event(self, event: Any) -> None:
        """The recorder listener: count what the trace says."""
        kind = event.kind
        if kind == "model_call":
            self.model_calls.labels(event.tier, str(event.ok).lower()).inc()
            if event.ok:
                self.tokens.labels(event.tier, "input").inc(event.input_tokens)
                self.tokens.labels(event.tier, "output").inc(event.output_tokens)
                self.cost.labels("model").inc(event.cost_usd)
        elif kind == "tool_call_end":
            self.tool_calls.labels(event.tool, str(event.ok).lower()).inc()
            if event.cost_usd:
                self.cost.labels("tool").inc(event.cost_usd)
        elif kind == "breaker_transition":
            self.breaker.labels(event.breaker).set(_BREAKER_VALUE.get(event.to_state, -1))
        elif kind == "fault_injected":
            self.faults.labels(event.fault_kind).inc()
