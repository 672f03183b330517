"""Serve recorded provider responses to the real SDKs: an httpx2 transport backed by vcrpy cassettes.

Plug it in below an SDK client and the whole SDK runs for real — request building, retries and
back-off, SSE decoding, error classes — against recorded traffic::

    replayer = Replayer([path])
    client = openai.AsyncOpenAI(api_key="replay", http_client=replayer.client(), max_retries=2)

vcrpy does the cassette work: its ``Cassette`` holds the interactions and plays each at most once,
in recorded order among those that match, and its ``method``/``host``/``path`` matchers compare
requests. We write the transport ourselves rather than use ``vcr.use_cassette`` because that
patches every httpx2 transport class process-wide for the duration of a context; a transport
object is scoped to the one client it is given, several cassettes can back it, and a miss can say
exactly what was asked for.

Three modes, as vcrpy's record modes ``none``/``all``/``new_episodes``:

* ``replay`` (default): no network; an unmatched request raises :class:`ReplayMismatch` naming the
  cassette, method, path and body digest, and the closest recorded request;
* ``record``: every request goes to ``inner`` (the live network or the simulated endpoint) and is
  recorded into a fresh cassette;
* ``record-missing``: what matches the (existing) cassette is replayed, the rest is recorded.

:meth:`Replayer.save` writes the recording in the one format of :mod:`agentlab.llm.replay.writer`
(stock vcrpy YAML, credentials stripped, atomically).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx2
from vcr import matchers as vcr_matchers
from vcr.cassette import Cassette
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.request import Request as VcrRequest

from agentlab.errors import ReplayMismatch
from agentlab.llm.replay.cassette import read_cassette, read_metadata
from agentlab.llm.replay.writer import response_dict, strip_request, strip_response, write_cassette
from agentlab.llm.wire.common import raw_body

Matcher = Callable[[VcrRequest, VcrRequest], Any]
Mode = Literal["replay", "record", "record-missing"]
MODES: tuple[Mode, ...] = ("replay", "record", "record-missing")
_RECORD_MODES = {"replay": RecordMode.NONE, "record": RecordMode.ALL, "record-missing": RecordMode.NEW_EPISODES}

DEFAULT_MATCH_ON = ("method", "host", "path", "body")
# What makes two model calls the same call. ``system`` is Anthropic's prompt parameter; sampling
# settings, max_tokens and stream options are left out so a recording survives their tuning.
DEFAULT_BODY_KEYS = ("model", "messages", "tools", "system")
# The body is served whole from memory, and a parsed body was re-serialised: lengths and chunking
# recorded from the wire no longer describe it.
_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding"})


def recorded_latency_s(headers: Mapping[str, Any] | None) -> float | None:
    """The server time a recorded response reports: ``openai-processing-ms`` (OpenAI) or
    ``x-envoy-upstream-service-time`` (Anthropic), in seconds; None when neither is there."""
    for name, values in (headers or {}).items():
        if name.lower() in ("openai-processing-ms", "x-envoy-upstream-service-time"):
            value = values[0] if isinstance(values, list) and values else values
            try:
                return max(float(value) / 1000, 0.0)
            except (TypeError, ValueError):
                return None
    return None


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _text_blocks(value: Any) -> Any:
    """A text ``content`` (or Anthropic ``system``) string as the one text block it stands for."""
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


def _content(value: Any) -> Any:
    """A turn's content in block form, an Anthropic ``tool_result`` block's own content included."""
    blocks = _text_blocks(value)
    if not isinstance(blocks, list):
        return blocks
    return [
        {**b, "content": _text_blocks(b["content"])}
        if isinstance(b, dict) and b.get("type") == "tool_result" and "content" in b
        else b
        for b in blocks
    ]


def _same_text_form(body: dict[str, Any]) -> dict[str, Any]:
    """Both APIs take a turn's text as a string or as a list of text blocks (``{"type": "text",
    "text": ...}``), and clients differ in which they send: compare them in the block form."""
    out = dict(body)
    if "system" in out:
        out["system"] = _text_blocks(out["system"])
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = [
            {**m, "content": _content(m["content"])} if isinstance(m, dict) and "content" in m else m for m in messages
        ]
    return out


def normalized_body(body: bytes | str | None, keys: Sequence[str] = DEFAULT_BODY_KEYS) -> Any:
    """The parts of a JSON body that identify a call: key order, whitespace and ``null`` vs absent
    are ignored (parsing does the first two; the SDKs disagree on ``"content": null``), and a text
    given as a string equals the one text block holding it. A body that is not a JSON object is
    compared as text. Only matching uses this: recorded bytes are served and kept as they are."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return parsed
    return _same_text_form({k: _drop_nulls(parsed[k]) for k in keys if parsed.get(k) is not None})


def body_digest(body: bytes | str | None, keys: Sequence[str] = DEFAULT_BODY_KEYS) -> str:
    """Short sha256 of the normalised body, to name a request in a one-line error."""
    canonical = json.dumps(normalized_body(body, keys), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def json_body_matcher(keys: Sequence[str] = DEFAULT_BODY_KEYS, *, cache_size: int = 1024) -> Matcher:
    """A vcrpy matcher comparing :func:`normalized_body`; it names the differing keys on failure.

    Byte-identical bodies match without parsing (a replay through the same SDK sends exactly the
    recorded bytes), and normalised bodies are cached by their bytes: vcrpy tries every stored
    request against each one sent, twice (can it play? then play), so each is parsed only once.
    """
    keys = tuple(keys)
    cache: dict[Any, Any] = {}

    def normalized(raw: Any) -> Any:
        try:
            return cache[raw]
        except KeyError:
            if len(cache) >= cache_size:
                cache.clear()
            value = cache[raw] = normalized_body(raw, keys)
            return value
        except TypeError:  # an unhashable body (never from an SDK)
            return normalized_body(raw, keys)

    def body(r1: VcrRequest, r2: VcrRequest) -> None:
        if r1.body == r2.body:
            return
        n1, n2 = normalized(r1.body), normalized(r2.body)
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


class _Persister:
    """vcrpy persister that reads through :func:`read_cassette`, so both cassette formats load and a
    malformed file is an InputError (vcrpy's own persister would treat it as empty and re-record).
    Responses become vcrpy's standard response dicts. vcrpy never saves through it: saving is
    :meth:`Replayer.save`, in agentlab's one written format."""

    missing_ok = False  # replay: a missing cassette is an error; recording: it is a new cassette

    @classmethod
    def load_cassette(cls, cassette_path: str, serializer: Any) -> tuple[Any, ...]:
        if cls.missing_ok and not Path(cassette_path).is_file():
            raise CassetteNotFoundError()
        interactions, metadata = read_cassette(cassette_path)
        requests, responses = [], []
        for it in interactions:
            headers: dict[str, list[str]] = {}
            for name, value in it.request.headers:
                headers.setdefault(name, []).append(value)
            requests.append(VcrRequest(it.request.method, it.request.uri, it.request.body, headers))
            r = it.response
            responses.append(response_dict(r.status, r.reason, r.headers, r.body))
        return (requests, responses, metadata) if metadata else (requests, responses)

    @staticmethod
    def save_cassette(cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        raise RuntimeError(f"{cassette_path}: cassettes are written by Replayer.save, not by vcrpy")


class _RecordingPersister(_Persister):
    missing_ok = True


class Replayer(httpx2.AsyncBaseTransport):
    """An httpx2 transport answering from one or more cassettes, and (``mode``) recording into one.

    ``match_on`` names vcrpy matchers (``method``, ``host``, ``path``, ``query``, ``uri``) or
    ``body`` (:func:`json_body_matcher` over ``body_keys``), or is any vcrpy matcher callable.
    ``mode`` is ``replay`` (unmatched requests raise ReplayMismatch), ``record`` (everything goes to
    ``inner`` and is recorded) or ``record-missing`` (replay what matches, record the rest); the
    recording modes take exactly one cassette path (it need not exist) and an ``inner`` transport,
    and :meth:`save` writes it with ``metadata`` (e.g. ``{"recorded_from": "agentlab-sim-endpoint"}``).
    ``latency=True`` serves each replayed response after the server time it recorded
    (:func:`recorded_latency_s`), on the loop's clock, so a replayed run keeps the recorded timeline.
    ``requests`` counts every HTTP attempt made, retries included; ``served`` lists what answered
    (file, interaction index); ``recorded`` counts interactions recorded.
    """

    def __init__(
        self,
        cassette_paths: Iterable[str | Path],
        match_on: Iterable[str | Matcher] = DEFAULT_MATCH_ON,
        *,
        body_keys: Sequence[str] = DEFAULT_BODY_KEYS,
        mode: Mode = "replay",
        inner: httpx2.AsyncBaseTransport | None = None,
        metadata: Mapping[str, Any] | None = None,
        latency: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        paths = [Path(p) for p in cassette_paths]
        if mode != "replay" and (len(paths) != 1 or inner is None):
            raise ValueError(f"mode {mode!r} records into exactly one cassette path, from an inner transport")
        self.mode: Mode = mode
        self.inner = inner
        self.latency = latency
        self.body_keys = tuple(body_keys)
        self.match_on = _matchers(match_on, self.body_keys)
        options: dict[str, Any] = {
            "record_mode": _RECORD_MODES[mode],
            "match_on": self.match_on,
            "before_record_request": strip_request if mode != "replay" else None,
            "before_record_response": strip_response if mode != "replay" else None,
        }
        if mode == "record":  # a fresh recording: whatever the file held is replaced
            self.cassettes = [Cassette(path=str(paths[0]), persister=_RecordingPersister, **options)]
        else:
            persister = _Persister if mode == "replay" else _RecordingPersister
            self.cassettes = [Cassette.load(path=str(p), persister=persister, **options) for p in paths]
        self.metadata: dict[str, Any] = {}
        if mode == "record-missing" and paths[0].is_file():
            self.metadata.update(read_metadata(paths[0]))
        self.metadata.update(metadata or {})
        self.requests: list[httpx2.Request] = []
        self.served: list[tuple[str, int]] = []
        self.recorded = 0

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

    def rewind(self) -> None:
        """Every interaction playable again (vcrpy's ``rewind``), and the counters reset."""
        for cassette in self.cassettes:
            cassette.rewind()
        self.requests.clear()
        self.served.clear()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        self.requests.append(request)
        wanted = VcrRequest(request.method, str(request.url), body, dict(request.headers))
        for cassette in self.cassettes:
            if cassette.can_play_response_for(wanted):
                played = cassette.play_response(wanted)
                index = next(i for i, (_, response) in enumerate(cassette.data) if response is played)
                self.served.append((Path(cassette.path).name, index))
                if self.latency and (wait := recorded_latency_s(played.get("headers"))):
                    await asyncio.sleep(wait)
                return self._response(played, request)
        if self.mode == "replay":
            raise ReplayMismatch(self._miss(wanted, body))
        return await self._record(request, wanted)

    async def _record(self, request: httpx2.Request, wanted: VcrRequest) -> httpx2.Response:
        assert self.inner is not None
        response = await self.inner.handle_async_request(request)
        raw = await raw_body(response)
        recorded = response_dict(response.status_code, response.reason_phrase, response.headers.multi_items(), raw)
        cassette = self.cassettes[0]
        cassette.append(wanted, recorded)
        index = len(cassette.data) - 1
        cassette.play_counts[index] += 1  # served now, so a repeat of this request is recorded again
        self.recorded += 1
        self.served.append((Path(cassette.path).name, index))
        return self._response(recorded, request)

    def save(self) -> Path | None:
        """Write the recording (recording modes, if anything was recorded); return its path."""
        if self.mode == "replay" or not self.recorded:
            return None
        cassette = self.cassettes[0]
        path = write_cassette(cassette.path, cassette.requests, cassette.responses, self.metadata)
        cassette.dirty = False
        return path

    @staticmethod
    def _response(recorded: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
        headers = [
            (name, value)
            for name, values in (recorded.get("headers") or {}).items()
            for value in (values if isinstance(values, list) else [values])
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        body = (recorded.get("body") or {}).get("string") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        encoding = next((v for k, v in headers if k.lower() == "content-encoding"), "").lower()
        if encoding == "gzip" and not body.startswith(b"\x1f\x8b"):
            # Recorded already decoded (vcrpy's decode_compressed_response) with the header kept.
            headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        status = recorded["status"]
        reason = str(status.get("message") or "")
        extensions = {"reason_phrase": reason.encode("ascii", "replace")} if reason else {}
        return httpx2.Response(
            status["code"],
            headers=headers,
            stream=httpx2.ByteStream(body),
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
