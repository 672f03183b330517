"""Export a trace's GenAI spans through the official OpenTelemetry SDK and its OTLP/HTTP exporter.

:mod:`agentlab.observe.spans` decides what the spans are; this module only hands them to the SDK
(``opentelemetry-sdk``) with their simulated start and end times and deterministic ids, and ships
them with ``opentelemetry-exporter-otlp-proto-http`` (lighter than the gRPC exporter: no grpcio).

Two uses, one builder:

* after the fact, ``agentlab export otel RUN_DIR [--endpoint URL]`` (:func:`export_run`): every span is
  built first, then exported in batches whose results are checked, so an unreachable receiver is one
  error line, not a silent loss;
* live, ``agentlab run ... --otel [URL]`` and ``agentlab serve --otel URL`` (:class:`LiveExporter`): a
  recorder listener feeds the builder as events are emitted, and each finished episode's spans go
  to the SDK's ``BatchSpanProcessor`` (a background thread: telemetry never blocks the agent, and a
  receiver that is down costs warnings, never the run).

Ids are a hash of (run id, episode id, span index), so exporting the same run twice sends the
same trace and span ids: a receiver sees one trace per episode, not duplicates with new ids.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from agentlab.errors import InputError
from agentlab.llm.backends import BACKENDS, provider_of
from agentlab.observe.spans import SIM_PROVIDER, EpisodeSpans, SpanBuilder, base_ns, episode_spans
from agentlab.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
_CHUNK = 512  # spans per OTLP request (the SDK's BatchSpanProcessor default)


def traces_url(endpoint: str) -> str:
    """``http://host:4318`` → ``http://host:4318/v1/traces``; a URL with a path is used as it is."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(endpoint, "--endpoint", "not an http(s) URL (e.g. http://127.0.0.1:4318)")
    return endpoint if parts.path not in ("", "/") else endpoint.rstrip("/") + "/v1/traces"


def parse_base_time(value: str | None, *, live: bool) -> int:
    """``--base-time``: an ISO 8601 instant, or ``now``; default: the simulated epoch (export) or now (live)."""
    import time

    if value is None:
        value = "now" if live else None
    if value is None:
        return base_ns()
    if value == "now":
        return time.time_ns()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            value, "--base-time", "not an ISO 8601 time (e.g. 2026-01-01T00:00:00+00:00) or 'now'"
        ) from None
    if when.tzinfo is None:
        raise InputError(value, "--base-time", "give a time zone (e.g. +00:00), or the instant is ambiguous")
    return base_ns(when)


class _Ids:
    """An SDK ``IdGenerator`` that hands out the ids the builder chose (set just before each span starts)."""

    def __init__(self) -> None:
        self.trace_id = 1
        self.span_id = 1

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id

    def is_trace_id_random(self) -> bool:
        return False  # hashes of run and episode: W3C's "random" trace-id flag would be a lie


def _provider(ids: _Ids, service_name: str, run_id: str) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": __version__,
            "service.instance.id": run_id or "agentlab",  # else the SDK draws a random one
            "agentlab.run_id": run_id,
        }
    )
    return TracerProvider(resource=resource, id_generator=ids)  # type: ignore[arg-type]


def emit(episode: EpisodeSpans, provider: TracerProvider, ids: _Ids) -> None:
    """Create the episode's spans in ``provider`` with their own times and ids (the root ends last)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    tracer = provider.get_tracer("agentlab", __version__)
    kinds = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}
    started: list[Any] = []
    with _ID_LOCK:
        for index, spec in enumerate(episode.spans):
            ids.trace_id, ids.span_id = episode.trace_id, episode.span_ids[index]
            context = set_span_in_context(started[spec.parent]) if spec.parent is not None else None
            span = tracer.start_span(
                spec.name, context=context, kind=kinds[spec.kind], attributes=spec.attributes, start_time=spec.start_ns
            )
            for event in spec.events:
                span.add_event(event.name, event.attributes, timestamp=event.time_ns)
            if spec.error is not None:
                span.set_status(Status(StatusCode.ERROR, spec.error))
            started.append(span)
    for index in range(len(started) - 1, -1, -1):
        started[index].end(end_time=episode.spans[index].end_ns)


_ID_LOCK = threading.Lock()  # the id generator is shared state: one episode's spans start at a time


def default_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=10)


def run_provider_name(config: dict[str, Any]) -> str:
    """``gen_ai.provider.name`` for a run: the SDK's provider for SDK backends, else the simulated model."""
    llm = str(config.get("llm", "sim"))
    if llm not in BACKENDS:
        return llm  # a run.json from a backend this version no longer has: name it as it was
    return provider_of(llm, config.get("provider")) or SIM_PROVIDER


def export_run(
    run_dir: str | Path,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    base: int | None = None,
    exporter: SpanExporter | None = None,
    service_name: str = "agentlab",
) -> dict[str, Any]:
    """Export a finished (or killed) run's spans; returns counts. An unreachable receiver is an InputError."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    run_dir = Path(run_dir)
    trace = run_dir / "events.jsonl"
    if not trace.exists():
        trace = run_dir / "events.jsonl.partial"
    if not (run_dir / "run.json").exists() or not trace.exists():
        raise InputError(str(run_dir), "", "not an agentlab run directory (no run.json and events.jsonl)")
    config = orjson.loads((run_dir / "run.json").read_bytes())
    url = traces_url(endpoint)
    # The trace's lines as dicts (what read_events() turns into a DataFrame): a DataFrame would fill every
    # field an event lacks with NaN, where the builder needs "absent".
    with open(trace, "rb") as fh:
        records = [orjson.loads(line) for line in fh if line.strip()]
    episodes = episode_spans(records, base=base, provider=run_provider_name(config))
    # Spans are made first (kept by the SDK's in-memory exporter), then sent in batches whose results are checked.
    ids, kept = _Ids(), InMemorySpanExporter()
    provider = _provider(ids, service_name, config.get("run_id", ""))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    for episode in episodes:
        emit(episode, provider, ids)
    spans = kept.get_finished_spans()
    exporter = exporter or default_exporter(endpoint)
    try:
        for i in range(0, len(spans), _CHUNK):
            if exporter.export(spans[i : i + _CHUNK]) is not SpanExportResult.SUCCESS:
                raise InputError(url, "export", "the OTLP receiver refused the spans or could not be reached")
    finally:
        exporter.shutdown()
        provider.shutdown()
    return {"run_id": config.get("run_id"), "endpoint": url, "traces": len(episodes), "spans": len(spans)}


class LiveExporter:
    """Spans while a run or the server goes: a recorder listener that exports each episode as it ends."""

    def __init__(
        self,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        base: int | None = None,
        provider_name: str = SIM_PROVIDER,
        run_id: str = "",
        exporter: SpanExporter | None = None,
        service_name: str = "agentlab",
    ) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.builder = SpanBuilder(
            base=parse_base_time(None, live=True) if base is None else base, provider=provider_name
        )
        self.ids = _Ids()
        self.provider = _provider(self.ids, service_name, run_id)
        self.provider.add_span_processor(BatchSpanProcessor(exporter or default_exporter(endpoint)))
        self.episodes = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        """The recorder listener: ``event`` is a trace event struct (or already a dict)."""
        record = event if isinstance(event, dict) else msgspec.to_builtins(event)
        with self._lock:
            episode = self.builder.add(record)
        if episode is not None:
            self._emit(episode)

    def end_episode(self, episode_id: str) -> None:
        """Close an episode no grader will grade (a served request) and export it."""
        with self._lock:
            episode = self.builder.end(episode_id)
        if episode is not None:
            self._emit(episode)

    def _emit(self, episode: EpisodeSpans) -> None:
        emit(episode, self.provider, self.ids)
        self.episodes += 1

    def close(self) -> None:
        """Export what is still open (a run's unfinished episodes), flush, and stop the exporter thread."""
        with self._lock:
            rest: Sequence[EpisodeSpans] = self.builder.finish()
        for episode in rest:
            self._emit(episode)
        self.provider.force_flush()
        self.provider.shutdown()
