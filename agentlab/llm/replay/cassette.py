"""Read recorded HTTP cassettes — stock vcrpy YAML, its older httpx format, pydantic-ai's variant — into one shape.

Three real formats exist (see shared/real-cassettes/SOURCES.md):

- stock vcrpy: ``request.body`` is the raw body string; ``response.body.string`` is the raw body,
  possibly ``!!binary`` gzip bytes with ``Content-Encoding: gzip`` kept; headers map to lists;
- vcrpy's older httpx format (before vcrpy 4.2, still read by vcrpy): the response has
  ``status_code``, ``http_version`` and ``content`` (the decoded text) instead of ``status`` and
  ``body``; a ``content-encoding`` header may remain, which the replayer drops for a body that is
  not compressed;
- pydantic-ai: JSON bodies stored parsed under ``parsed_body``, header names lower-cased,
  ``content-encoding`` dropped; non-JSON bodies (server-sent events) stay under ``body.string``.

Both become :class:`Interaction` records holding the bytes that went over the wire (a parsed body
is re-serialised as compact JSON), so the replayer never needs to know which format it read. The
YAML goes through vcrpy's safe cassette loader, which refuses executable ``!!python`` tags.
A malformed cassette raises :class:`~agentlab.errors.InputError`: one line, file and interaction.
That includes a successful response whose body cannot be what was served — JSON that does not
parse, an event stream cut off mid-event (:func:`body_problem`) — so a hand-edited or truncated
cassette is named as such, not met later as a provider error or a request mismatch.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from vcr.serializers import yamlserializer

from agentlab.errors import InputError

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes

    @property
    def host(self) -> str:
        return urlsplit(self.uri).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path or "/"

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    status: int
    reason: str
    headers: Headers
    # Exactly as served: still gzip-compressed when a ``content-encoding: gzip`` header says so.
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Interaction:
    index: int
    request: RecordedRequest
    response: RecordedResponse


def load_cassette(path: str | Path) -> list[Interaction]:
    """Every interaction of a cassette file, in recorded order."""
    return read_cassette(path)[0]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The cassette's top-level ``metadata`` mapping (how it was recorded), or ``{}``."""
    return read_cassette(path)[1]


def read_cassette(path: str | Path) -> tuple[list[Interaction], dict[str, Any]]:
    """(interactions in recorded order, top-level metadata) of a cassette file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(file, "", "file not found") from None
    except UnicodeDecodeError:
        raise InputError(file, "", "not UTF-8 text") from None
    try:
        data = yamlserializer.deserialize(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc).replace("\n", " ")
        raise InputError(file, f"line {mark.line + 1}" if mark else "", f"not valid YAML ({problem})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("interactions"), list):
        raise InputError(file, "interactions", "a cassette must be a mapping with an 'interactions' list")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError(file, "metadata", "must be a mapping")
    return [_interaction(file, i, raw) for i, raw in enumerate(data["interactions"])], dict(metadata or {})


def _interaction(file: str, i: int, raw: Any) -> Interaction:
    def bad(problem: str) -> InputError:
        return InputError(file, f"interactions[{i}]", problem)

    if not isinstance(raw, Mapping):
        raise bad("an interaction must be a mapping with 'request' and 'response'")
    for part in ("request", "response"):
        if not isinstance(raw.get(part), Mapping):
            raise bad(f"missing '{part}'")
    req, resp = raw["request"], _current_format(raw["response"])
    if not isinstance(req.get("method"), str) or not isinstance(req.get("uri"), str):
        raise bad("request needs 'method' and 'uri'")
    status = resp.get("status")
    code = status.get("code") if isinstance(status, Mapping) else None
    if not isinstance(code, int) or isinstance(code, bool):
        raise bad("response needs 'status.code'")
    try:
        request = RecordedRequest(
            method=req["method"].upper(),
            uri=req["uri"],
            headers=_headers(req.get("headers")),
            body=_request_body(req),
        )
        response = RecordedResponse(
            status=code,
            reason=str(status.get("message") or ""),
            headers=_headers(resp.get("headers")),
            body=_response_body(resp),
        )
    except (TypeError, ValueError) as exc:
        raise bad(str(exc).replace("\n", " ")) from None
    problem = body_problem(response) if 200 <= code < 300 else None
    if problem is not None:
        raise bad(f"truncated/undecodable body (response: {problem})")
    return Interaction(index=i, request=request, response=response)


def _current_format(resp: Mapping[str, Any]) -> Mapping[str, Any]:
    """A response in vcrpy's older httpx format (``status_code``, ``content``) in the current shape."""
    if "status_code" not in resp or "status" in resp:
        return resp
    return {
        "status": {"code": resp["status_code"], "message": ""},
        "headers": resp.get("headers"),
        "body": {"string": resp.get("content")},
    }


def body_problem(response: RecordedResponse) -> str | None:
    """Why a successful response's body cannot be what a provider sent (None: it can).

    Checked by content type: a JSON body must parse (after gunzipping, if it is compressed); an event
    stream must end with a complete event, and every event's ``data`` must be JSON (or ``[DONE]``).
    Error statuses are left alone: a gateway's broken error page is something a provider really sends.
    """
    body = response.body
    if body.startswith(b"\x1f\x8b"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            return f"gzip: {exc}"
    kind = (response.header("content-type") or "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            json.loads(body)
        except ValueError as exc:
            return f"JSON: {exc}"
        return None
    if kind == "text/event-stream":
        return _stream_problem(body.decode("utf-8", errors="replace"))
    return None


def _stream_problem(text: str) -> str | None:
    text = text.replace("\r\n", "\n")
    if text.strip() and not text.endswith("\n\n"):
        return "event stream ends mid-event"
    for n, event in enumerate(e for e in text.split("\n\n") if e.strip()):
        data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
        if not data or data == "[DONE]":
            continue
        try:
            json.loads(data)
        except ValueError as exc:
            return f"event {n}: data is not JSON: {exc}"
    return None


def _headers(raw: Any) -> Headers:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ValueError("headers must be a mapping")
    out: list[tuple[str, str]] = []
    for name, values in raw.items():
        for value in values if isinstance(values, list) else [values]:
            out.append((str(name), str(value)))
    return tuple(out)


def _to_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"a body must be text or bytes, not {type(value).__name__}")


def _parsed(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _request_body(req: Mapping[str, Any]) -> bytes:
    if "parsed_body" in req:
        return _parsed(req["parsed_body"])
    body = req.get("body")
    # Some recorders nest the request body like a response's: {"string": ...}.
    return _to_bytes(body.get("string") if isinstance(body, Mapping) else body)


def _response_body(resp: Mapping[str, Any]) -> bytes:
    if "parsed_body" in resp:
        return _parsed(resp["parsed_body"])
    body = resp.get("body")
    if body is None:
        return b""
    if not isinstance(body, Mapping):
        raise ValueError("response 'body' must be a mapping with 'string'")
    return _to_bytes(body.get("string"))
