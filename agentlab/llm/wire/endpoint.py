"""A simulated provider endpoint at the HTTP layer, so the real SDKs run end to end offline.

:class:`SimulatedEndpoint` is an ``httpx2`` transport. Give it to an SDK client as its
``http_client`` transport and every request the SDK builds — headers, retries, SSE decoding, error
classes — goes through the real SDK code, is parsed here like a server would (OpenAI Chat
Completions at ``…/chat/completions``, Anthropic Messages at ``…/messages``), answered by the
:class:`~agentlab.llm.sim.SimulatedModel`, and rendered back in the provider's wire format,
streaming included. The simulated latency is the model's own ``asyncio.sleep`` inside the
transport, so it runs on the loop's (virtual) clock.

Why a transport rather than a local HTTP server: no sockets, no ports, no threads — the virtual-time
loop stays deterministic and a call costs microseconds of wall time. The shapes are the real
ones, so a cassette recorded here looks like (and replays like) one recorded from the live API.

Each response reports the model's latency as the provider's server-time header
(``openai-processing-ms``; ``x-envoy-upstream-service-time`` for Anthropic), which the replayer
sleeps again on replay. The model name picks the tier (each tier's ``model`` in the tier table,
e.g. ``sim-balanced``); the scenario and episode come in the ``x-agentlab-*`` headers
(:mod:`agentlab.llm.wire.headers`).
Ids, ``created`` and ``date`` are derived from the request and the loop's clock, never the wall
clock, so the same run gives the same bytes.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
from typing import Any

import httpx2
import orjson

from agentlab.llm.tiers import TierTable
from agentlab.llm.types import ModelClient
from agentlab.llm.wire import anthropic_format, openai_format
from agentlab.llm.wire.common import WireError
from agentlab.llm.wire.headers import EPISODE_HEADER, metadata_from_headers
from agentlab.sim.clock import DEFAULT_EPOCH

# Request paths end so (after the base URL's own path, e.g. /v1): Chat Completions, Messages, token counts.
OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/messages"
ANTHROPIC_COUNT_PATH = "/messages/count_tokens"
EPOCH_S = int(DEFAULT_EPOCH.timestamp())  # the simulated calendar starts here (as the Clock's does)


def _digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def _ms(seconds: float) -> str:
    """Server time in milliseconds, as the providers' timing headers give it — with the simulated
    latency's microseconds kept, so a replay (which sleeps this long) keeps the recorded timeline."""
    return f"{seconds * 1000:.3f}".rstrip("0").rstrip(".")


def http_date(now: float) -> str:
    """The ``date`` header for simulated time ``now`` (seconds since the simulated epoch)."""
    return email.utils.formatdate(EPOCH_S + now, usegmt=True)


class SimulatedEndpoint(httpx2.AsyncBaseTransport):
    """An httpx2 transport that answers OpenAI and Anthropic requests from a simulated model.

    ``model`` is usually a :class:`~agentlab.llm.sim.SimulatedModel` (any ModelClient works).
    ``requests`` counts the requests served, errors included.
    """

    def __init__(self, model: ModelClient, tiers: TierTable) -> None:
        self.model = model
        self.tier_of = {profile.model: name for name, profile in tiers.tiers.items()}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        path = request.url.path  # matched by suffix: any base URL (with or without /v1) works
        if path.endswith(OPENAI_PATH):
            return await self._openai(request, body)
        if path.endswith((ANTHROPIC_PATH, ANTHROPIC_COUNT_PATH)):
            return await self._anthropic(request, body, count=path.endswith(ANTHROPIC_COUNT_PATH))
        return self._json(request, 404, openai_format.error_body(404, "invalid_request_error", f"Unknown path {path}"))

    # --- the two formats ---------------------------------------------------------------------------

    async def _openai(self, request: httpx2.Request, body: bytes) -> httpx2.Response:
        request_id = "req_" + _digest(body, request.headers.get("x-stainless-retry-count", ""))
        try:
            payload = self._payload(body)
            model_request = openai_format.parse_request(payload, self.tier_of, metadata_from_headers(request.headers))
        except WireError as err:
            error = openai_format.error_body(err.status, err.kind, err.message, code=err.code, param=err.param)
            return self._json(request, err.status, error, {"x-request-id": request_id})
        response = await self.model.complete(model_request)
        loop = asyncio.get_running_loop()
        completion_id = "chatcmpl-" + _digest(request.headers.get(EPISODE_HEADER, ""), body)
        created = EPOCH_S + int(loop.time())
        headers = {
            "openai-processing-ms": _ms(response.latency_s),
            "openai-version": "2020-10-01",
            "x-request-id": request_id,
        }
        if payload.get("stream"):
            options = payload.get("stream_options") or {}
            chunks = openai_format.render_stream(
                response,
                completion_id=completion_id,
                created=created,
                include_usage=bool(options.get("include_usage")),
                obfuscation=options.get("include_obfuscation") is not False,
            )
            return self._stream(request, openai_format.sse(chunks), headers)
        rendered = openai_format.render_completion(response, completion_id=completion_id, created=created)
        return self._json(request, 200, orjson.dumps(rendered), headers)

    async def _anthropic(self, request: httpx2.Request, body: bytes, *, count: bool) -> httpx2.Response:
        request_id = "req_" + _digest(body, request.headers.get("x-stainless-retry-count", ""))
        headers = {"request-id": request_id}
        try:
            payload = self._payload(body)
            if count:
                payload = {**payload, "max_tokens": payload.get("max_tokens", 1)}
            model_request = anthropic_format.parse_request(
                payload, self.tier_of, metadata_from_headers(request.headers)
            )
        except WireError as err:
            error = anthropic_format.error_body(err.kind, err.message, request_id=request_id)
            return self._json(request, err.status, error, headers)
        if count:
            return self._json(request, 200, orjson.dumps(anthropic_format.count_tokens_body(model_request)), headers)
        response = await self.model.complete(model_request)
        headers["x-envoy-upstream-service-time"] = _ms(response.latency_s)
        message_id = "msg_" + _digest(request.headers.get(EPISODE_HEADER, ""), body)
        if payload.get("stream"):
            events = anthropic_format.render_stream(response, message_id=message_id)
            return self._stream(request, anthropic_format.sse(events), headers)
        rendered = anthropic_format.render_message(response, message_id=message_id)
        return self._json(request, 200, orjson.dumps(rendered), headers)

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _payload(body: bytes) -> dict[str, Any]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WireError(400, "invalid_request_error", "the request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise WireError(400, "invalid_request_error", "the request body must be a JSON object")
        return payload

    @staticmethod
    def _headers(content_type: str, extra: dict[str, str] | None) -> list[tuple[str, str]]:
        now = asyncio.get_running_loop().time()
        return [("content-type", content_type), ("date", http_date(now)), *(extra or {}).items()]

    def _json(
        self, request: httpx2.Request, status: int, body: bytes, extra: dict[str, str] | None = None
    ) -> httpx2.Response:
        return httpx2.Response(
            status,
            headers=self._headers("application/json", extra),
            stream=httpx2.ByteStream(body),
            request=request,
        )

    def _stream(self, request: httpx2.Request, body: bytes, extra: dict[str, str]) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers=self._headers("text/event-stream; charset=utf-8", extra),
            stream=httpx2.ByteStream(body),
            request=request,
        )
