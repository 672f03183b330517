"""Serve recorded provider responses to the real SDKs: an httpx2 transport backed by vcrpy cassettes.

Plug it in below an SDK client and the whole SDK runs for real — request building, retries and
back-off, SSE decoding, error classes — against recorded traffic::

    replayer = Replayer([path])
    client = openai.AsyncOpenAI(api_key="replay", http_client=replayer.client(), max_retries=2)

vcrpy does the cassette work: its ``Cassette`` (record mode ``none``) holds the interactions and
plays each at most once, in recorded order among those that match, and its ``method``/``host``/
``path`` matchers compare requests. We write the transport ourselves rather than use
``vcr.use_cassette`` because that patches every httpx2 transport class process-wide for the
duration of a context; a transport object is scoped to the one client it is given, several
cassettes can back it, and a miss can say exactly what was asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx2
from vcr import matchers as vcr_matchers
from vcr.cassette import Cassette
from vcr.record_mode import RecordMode
from vcr.request import Request as VcrRequest

from agentlab.llm.replay.cassette import load_cassette

Matcher = Callable[[VcrRequest, VcrRequest], Any]

DEFAULT_MATCH_ON = ("method", "host", "path", "body")
# What makes two model calls the same call. ``system`` is Anthropic's prompt parameter; sampling
# settings, max_tokens and stream options are left out so a recording survives their tuning.
DEFAULT_BODY_KEYS = ("model", "messages", "tools", "system")
# The body is served whole from memory, and a parsed body was re-serialised: lengths and chunking
# recorded from the wire no longer describe it.
_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding"})


class ReplayMismatch(LookupError):
    """A request that no unplayed recorded interaction matches."""


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def normalized_body(body: bytes | str | None, keys: Sequence[str] = DEFAULT_BODY_KEYS) -> Any:
    """The parts of a JSON body that identify a call: key order, whitespace and ``null`` vs absent
    are ignored (parsing does the first two; the SDKs disagree on ``"content": null``). A body that
    is not a JSON object is compared as text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return parsed
    return {k: _drop_nulls(parsed[k]) for k in keys if parsed.get(k) is not None}


def body_digest(body: bytes | str | None, keys: Sequence[str] = DEFAULT_BODY_KEYS) -> str:
    """Short sha256 of the normalised body, to name a request in a one-line error."""
    canonical = json.dumps(normalized_body(body, keys), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def json_body_matcher(keys: Sequence[str] = DEFAULT_BODY_KEYS) -> Matcher:
    """A vcrpy matcher comparing :func:`normalized_body`; it names the differing keys on failure."""

    def body(r1: VcrRequest, r2: VcrRequest) -> None:
        n1, n2 = normalized_body(r1.body, keys), normalized_body(r2.body, keys)
        if n1 != n2:
            if isinstance(n1, dict) and isinstance(n2, dict):
                differing = sorted(k for k in set(n1) | set(n2) if n1.get(k) != n2.get(k))
                raise AssertionError(f"body differs in {', '.join(differing)}")
            raise AssertionError("body differs")

    return body


def _matchers(match_on: Iterable[str | Matcher], body_keys: Sequence[str]) -> tuple[Matcher, ...]:
    named: dict[str, Matcher] = {
        "method": vcr_matchers.method,
        "host": vcr_matchers.host,
        "path": vcr_matchers.path,
        "query": vcr_matchers.query,
        "uri": vcr_matchers.uri,
        "body": json_body_matcher(body_keys),
    }
    result = []
    for m in match_on:
        if callable(m):
            result.append(m)
        elif m in named:
            result.append(named[m])
        else:
            raise ValueError(f"unknown matcher {m!r}; known: {', '.join(named)}")
    return tuple(result)


class _ReadOnlyPersister:
    """vcrpy persister that reads through :func:`load_cassette`, so both cassette formats load and a
    malformed file is an InputError (vcrpy's own persister would treat it as empty and re-record)."""

    @staticmethod
    def load_cassette(cassette_path: str, serializer: Any) -> tuple[list[VcrRequest], list[dict[str, Any]]]:
        requests, responses = [], []
        for it in load_cassette(cassette_path):
            headers: dict[str, list[str]] = {}
            for name, value in it.request.headers:
                headers.setdefault(name, []).append(value)
            requests.append(VcrRequest(it.request.method, it.request.uri, it.request.body, headers))
            responses.append({"index": it.index, "recorded": it.response})
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        raise RuntimeError(f"{cassette_path}: replay cassettes are never written")


class Replayer(httpx2.AsyncBaseTransport):
    """An httpx2 transport answering from one or more cassettes; unmatched requests raise ReplayMismatch.

    ``match_on`` names vcrpy matchers (``method``, ``host``, ``path``, ``query``, ``uri``) or
    ``body`` (:func:`json_body_matcher` over ``body_keys``), or is any vcrpy matcher callable.
    ``requests`` counts every HTTP attempt made, retries included; ``served`` lists what answered.
    """

    def __init__(
        self,
        cassette_paths: Iterable[str | Path],
        match_on: Iterable[str | Matcher] = DEFAULT_MATCH_ON,
        *,
        body_keys: Sequence[str] = DEFAULT_BODY_KEYS,
    ) -> None:
        self.body_keys = tuple(body_keys)
        self.match_on = _matchers(match_on, self.body_keys)
        self.cassettes: list[Cassette] = [
            Cassette.load(
                path=str(p), persister=_ReadOnlyPersister, record_mode=RecordMode.NONE, match_on=self.match_on
            )
            for p in cassette_paths
        ]
        self.requests: list[httpx2.Request] = []
        self.served: list[tuple[str, int]] = []

    def client(self, **kwargs: Any) -> httpx2.AsyncClient:
        """An ``httpx2.AsyncClient`` on this transport, for an SDK's ``http_client=``."""
        return httpx2.AsyncClient(transport=self, **kwargs)

    @property
    def all_played(self) -> bool:
        return all(c.all_played for c in self.cassettes)

    def unplayed(self) -> list[str]:
        """``file interactions[i]`` for every recorded interaction not served yet."""
        return [
            f"{Path(c.path).name} interactions[{i}]"
            for c in self.cassettes
            for i in range(len(c))
            if c.play_counts[i] == 0
        ]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        self.requests.append(request)
        wanted = VcrRequest(request.method, str(request.url), body, dict(request.headers))
        for cassette in self.cassettes:
            if cassette.can_play_response_for(wanted):
                played = cassette.play_response(wanted)
                self.served.append((Path(cassette.path).name, played["index"]))
                return self._response(played["recorded"], request)
        raise ReplayMismatch(self._miss(wanted, body))

    @staticmethod
    def _response(recorded: Any, request: httpx2.Request) -> httpx2.Response:
        headers = [(k, v) for k, v in recorded.headers if k.lower() not in _DROPPED_RESPONSE_HEADERS]
        encoding = (recorded.header("content-encoding") or "").lower()
        if encoding == "gzip" and not recorded.body.startswith(b"\x1f\x8b"):
            # Recorded already decoded (vcrpy's decode_compressed_response) with the header kept.
            headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        extensions = {"reason_phrase": recorded.reason.encode("ascii", "replace")} if recorded.reason else {}
        return httpx2.Response(
            recorded.status,
            headers=headers,
            stream=httpx2.ByteStream(recorded.body),
            extensions=extensions,
            request=request,
        )

    def _miss(self, wanted: VcrRequest, body: bytes) -> str:
        names = ", ".join(Path(c.path).name for c in self.cassettes) or "no cassettes"
        message = (
            f"no unplayed interaction in {names} matches {wanted.method} {wanted.path} "
            f"(body sha256 {body_digest(body, self.body_keys)})"
        )
        best: tuple[int, str] | None = None
        for cassette in self.cassettes:
            for i, (stored, _) in enumerate(cassette.data):
                ok, failed = vcr_matchers.get_matchers_results(wanted, stored, self.match_on)
                why = "; ".join(str(reason or name) for name, reason in failed) or "already played"
                if best is None or len(ok) > best[0]:
                    best = (len(ok), f"{Path(cassette.path).name} interactions[{i}]: {why}")
        return f"{message}; closest: {best[1]}" if best else message
