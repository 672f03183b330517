"""Views of a trace in other people's tools: OpenTelemetry GenAI spans (:mod:`agentlab.observe.otel`).

Spans are another view of ``events.jsonl``, built from its events only (one trace, many views): the
same builder serves ``agentlab export otel RUN_DIR`` after the fact and ``agentlab run --otel`` live.
"""
