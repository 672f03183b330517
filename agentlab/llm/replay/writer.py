"""Writing cassettes: one format, credentials removed, written atomically.

agentlab reads two cassette formats (see :mod:`agentlab.llm.replay.cassette`) but writes exactly one:
**stock vcrpy YAML** (format version 1), so any vcrpy user can read what agentlab records::

    interactions:
    - request:  {method, uri, body: <raw body text>, headers: {name: [value, ...]}}
      response: {status: {code, message}, headers: {name: [value, ...]}, body: {string: <raw body>}}
    metadata: {recorded_from: agentlab-sim-endpoint | live, provider, suite, episode_id, ...}
    version: 1

Bodies are the bytes that crossed the wire, as text when they are UTF-8 (JSON, server-sent events)
and ``!!binary`` otherwise (e.g. gzip, with its ``content-encoding`` header kept). ``metadata`` is
vcrpy's own top-level cassette metadata (read back by vcrpy 9.4+ and ignored by older versions):
it says where the recording came from, so a cassette recorded from agentlab's simulated endpoint
is never mistaken for real provider traffic.

Credentials and account identifiers never reach the file: the headers in :data:`SENSITIVE_HEADERS`
are removed from every request and response before it is stored. The file is written to a
temporary name beside the target and renamed over it, so a crash mid-write never leaves half a
cassette where a good one was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vcr.request import Request as VcrRequest
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

# Removed from requests and responses before anything is written (compared case-insensitively).
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)


def strip_request(request: VcrRequest) -> VcrRequest:
    """A copy of ``request`` without sensitive headers (a vcrpy ``before_record_request`` hook)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return VcrRequest(request.method, request.uri, request.body, headers)


def strip_response(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` (a vcrpy response dict) without sensitive headers (``before_record_response``)."""
    headers = response.get("headers") or {}
    return {**response, "headers": {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}}


def response_dict(status: int, reason: str, headers: Sequence[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """A vcrpy response dict: ``{status: {code, message}, headers: {name: [values]}, body: {string}}``."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return {"status": {"code": status, "message": reason}, "headers": grouped, "body": {"string": body}}


def write_cassette(
    path: str | Path,
    requests: Sequence[VcrRequest],
    responses: Sequence[dict[str, Any]],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a stock vcrpy YAML cassette atomically (tmp + rename), sensitive headers removed."""
    path = Path(path)
    cassette = {
        "requests": [strip_request(r) for r in requests],
        "responses": [strip_response(r) for r in responses],
    }
    if metadata:
        cassette["metadata"] = dict(metadata)
    text = serialize(cassette, yamlserializer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:  # a failed write (a full disk) leaves no temporary file behind
        tmp.unlink(missing_ok=True)
    return path
