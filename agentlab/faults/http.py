"""Provider faults at the HTTP layer: what the SDK sees when the provider, or the network, misbehaves.

:class:`FaultyTransport` wraps another httpx2 transport — the replayer, the simulated endpoint, or
the live network — and, when the fault plan says so, answers a request itself the way a provider
fails: a 429 with ``retry-after``/``retry-after-ms``, a 500/502/503, Anthropic's 529
``overloaded_error``, a connection reset, a read timeout, a slow first byte, a truncated body, an
``x-should-retry`` header. The bodies are the providers' real error shapes, so the real SDK
classifies, retries and backs off exactly as it would in production; only the transport is fake.

The decisions come from the same :class:`~agentlab.faults.injector.FaultInjector` as tool and
model faults (targets ``providers: [...]``), one deterministic draw per HTTP request, so an SDK
retry is a new draw. The episode is read from the ``x-agentlab-episode`` header, and each injected
fault is a ``fault_injected`` event on that episode's trace (from ``trace_for``, as
:class:`~agentlab.faults.transports.FaultyModelClient` does). Waits are ``asyncio.sleep`` on the
running loop: on the virtual-time loop a 600 s read timeout costs no wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import orjson

from agentlab.faults.injector import FaultInjector
from agentlab.faults.plan import Fault
from agentlab.llm.backends import Provider
from agentlab.llm.wire import anthropic_format, openai_format
from agentlab.llm.wire.common import raw_body
from agentlab.llm.wire.headers import EPISODE_HEADER

_DROP_ON_REWRITE = frozenset({"content-length", "transfer-encoding", "content-encoding"})


def _read_timeout(request: httpx2.Request, fallback: float) -> float:
    """The client's read timeout for this request (httpx2 passes it in the request extensions)."""
    timeout = request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else fallback


def error_response(
    provider: Provider, status: int, request: httpx2.Request, fault: Fault | None = None
) -> httpx2.Response:
    """The provider's own error response for ``status`` (body, content type and the fault's headers)."""
    if provider == "anthropic":
        kind, message = anthropic_format.ERRORS.get(status, ("api_error", "Internal server error"))
        body = anthropic_format.error_body(kind, message, request_id="req_agentlab_fault")
    else:
        kind, code, message = openai_format.ERRORS.get(status, ("server_error", None, "Server error."))
        body = openai_format.error_body(status, kind, message, code=code)
    headers = [("content-type", "application/json")]
    if fault is not None:
        params = fault.params
        if params.retry_after_s is not None:
            headers.append(("retry-after", f"{params.retry_after_s:g}"))
        if params.retry_after_ms is not None:
            headers.append(("retry-after-ms", f"{params.retry_after_ms:g}"))
        if params.should_retry is not None:
            headers.append(("x-should-retry", "true" if params.should_retry else "false"))
    return httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(body), request=request)


class FaultyTransport(httpx2.AsyncBaseTransport):
    """Injects the plan's provider faults into the requests that pass through to ``inner``."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        injector: FaultInjector,
        provider: Provider,
        trace_for: Callable[[str], Any],
    ) -> None:
        self.inner = inner
        self.injector = injector
        self.provider: Provider = provider
        self.trace_for = trace_for  # episode_id -> the episode's trace

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        loop = asyncio.get_running_loop()
        episode_id = request.headers.get(EPISODE_HEADER, "")
        fault = self.injector.for_provider(
            self.provider, self._model(request), episode_id, loop.time(), self.trace_for(episode_id)
        )
        if fault is None:
            return await self.inner.handle_async_request(request)
        kind, params = fault.kind, fault.params
        if kind in ("http_429", "http_5xx", "http_529"):
            await request.aread()  # the server read the request before refusing it
            return error_response(self.provider, fault.http_status or 500, request, fault)
        if kind == "reset":
            raise httpx2.ReadError("[Errno 104] Connection reset by peer", request=request)
        if kind == "read_timeout":
            await asyncio.sleep(_read_timeout(request, params.latency_s))
            raise httpx2.ReadTimeout("The read operation timed out", request=request)
        if kind == "slow_first_byte":
            limit = _read_timeout(request, float("inf"))
            if params.latency_s >= limit:
                await asyncio.sleep(limit)
                raise httpx2.ReadTimeout("The read operation timed out", request=request)
            await asyncio.sleep(params.latency_s)
            return await self.inner.handle_async_request(request)
        if kind == "truncated_body":
            return await self._truncated(request)
        raise AssertionError(f"unhandled provider fault kind {kind!r}")

    async def _truncated(self, request: httpx2.Request) -> httpx2.Response:
        """The real response, cut off half-way: what a dropped connection mid-body leaves the client."""
        response = await self.inner.handle_async_request(request)
        raw = await raw_body(response)
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROP_ON_REWRITE]
        if response.headers.get("content-encoding", "").lower() == "gzip":
            import gzip

            raw = gzip.decompress(raw)
        return httpx2.Response(
            response.status_code, headers=headers, stream=httpx2.ByteStream(raw[: len(raw) // 2]), request=request
        )

    @staticmethod
    def _model(request: httpx2.Request) -> str:
        try:
            body = orjson.loads(request.content)
        except (orjson.JSONDecodeError, httpx2.RequestNotRead):
            return ""
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else ""
