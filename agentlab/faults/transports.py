"""Where faults enter: under the agent, never inside it.

Like an httpx transport, :class:`FaultyToolInvoker` sits below the Execution Sandbox (it is what
the sandbox calls to run a tool) and :class:`FaultyModelClient` wraps the model client. The agent's
code path is exactly the production one; only the world it talks to misbehaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agentlab.components.sandbox import ExecutionSandbox
from agentlab.errors import MalformedResponse as ModelMalformed
from agentlab.errors import (
    ModelConnectionError,
    ModelTimeout,
    Overloaded,
    ProviderServerError,
    RateLimited,
    ToolMalformedResult,
    ToolTransientError,
)
from agentlab.faults.injector import FaultInjector
from agentlab.llm.types import ModelClient, ModelRequest, ModelResponse
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolSpec


def _corrupt(result: Any, corruptions: Mapping[str, tuple[str, str]]) -> Any:
    """A wrong-but-plausible result: the first number doubled, or else the first text field the domain knows how
    to falsify (``Domain.corruptions``: field -> (value to put, value to put when it already holds that one))."""
    if not isinstance(result, dict):
        return result
    out = dict(result)
    for key in sorted(out):
        value = out[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(value * 2 + 1, 2)
            return out
    for key in sorted(out):
        swap = corruptions.get(key)
        if swap is not None and isinstance(out[key], str):
            out[key] = swap[0] if out[key] != swap[0] else swap[1]
            return out
    return out


def _partial(result: Any) -> Any:
    """Half the fields, as a truncated-but-parseable response would have."""
    if isinstance(result, dict) and len(result) > 1:
        keys = sorted(result)[: len(result) // 2]
        return {k: result[k] for k in keys}
    return result


class FaultyToolInvoker:
    """Runs a tool the way the sandbox would, unless the fault plan says otherwise."""

    def __init__(self, injector: FaultInjector, corruptions: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.injector = injector
        self.corruptions = dict(corruptions or {})

    async def __call__(self, spec: ToolSpec, args: dict[str, Any], ctx: ToolContext) -> Any:
        loop = asyncio.get_running_loop()
        fault = self.injector.for_tool(spec.name, ctx.episode_id, loop.time(), ctx.trace)
        if fault is None:
            return await spec.fn(ctx, **args)
        kind, params = fault.kind, fault.params
        if kind == "error":
            raise ToolTransientError(params.message or f"{spec.name}: upstream returned {params.status}")
        if kind == "timeout":
            await asyncio.sleep(params.latency_s)  # the sandbox's timeout fires first
            raise ToolTransientError(f"{spec.name}: no response after {params.latency_s:g}s")
        if kind == "latency":
            await asyncio.sleep(params.latency_s)
            return await spec.fn(ctx, **args)
        result = await spec.fn(ctx, **args)  # the remaining kinds break the response, not the action
        if kind == "timeout_after_commit":
            await asyncio.sleep(params.latency_s)
            raise ToolTransientError(f"{spec.name}: response lost after {params.latency_s:g}s")
        if kind == "malformed":
            raise ToolMalformedResult(f"{spec.name}: response body could not be parsed")
        if kind == "partial":
            return _partial(result)
        if kind == "wrong_result":
            return _corrupt(result, self.corruptions)
        raise AssertionError(f"unhandled tool fault kind {kind!r}")


class FaultyModelClient:
    """A :class:`ModelClient` that fails the way providers do, when the fault plan says so."""

    def __init__(self, inner: ModelClient, injector: FaultInjector, trace_for: Any) -> None:
        self.inner = inner
        self.injector = injector
        self.trace_for = trace_for  # episode_id -> the episode's trace

    async def complete(self, request: ModelRequest) -> ModelResponse:
        loop = asyncio.get_running_loop()
        episode_id = request.metadata.get("episode_id", "")
        fault = self.injector.for_model(
            request.tier, request.model, episode_id, loop.time(), self.trace_for(episode_id)
        )
        if fault is None:
            return await self.inner.complete(request)
        kind, params = fault.kind, fault.params
        if kind in ("error", "server_error"):
            await asyncio.sleep(0.2)
            raise ProviderServerError(params.message or f"HTTP {params.status} from {request.model}")
        if kind == "rate_limit":
            raise RateLimited(f"HTTP 429 from {request.model}", retry_after=params.retry_after_s)
        if kind == "overloaded":
            await asyncio.sleep(0.2)
            raise Overloaded(f"HTTP 529 overloaded from {request.model}")
        if kind == "connection_reset":
            raise ModelConnectionError(f"connection to {request.model} reset")
        if kind == "timeout":
            await asyncio.sleep(params.latency_s)
            raise ModelTimeout(f"{request.model}: no response after {params.latency_s:g}s")
        if kind == "latency":
            await asyncio.sleep(params.latency_s)
            return await self.inner.complete(request)
        if kind == "malformed":
            await self.inner.complete(request)
            raise ModelMalformed(f"{request.model}: response body could not be parsed")
        raise AssertionError(f"unhandled model fault kind {kind!r}")


def instrument(
    model: ModelClient,
    injector: FaultInjector | None,
    recorder: Any,
    clock: Any,
    *,
    corruptions: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[ModelClient, ExecutionSandbox]:
    """The model client and sandbox a simulated agent should use: faulty ones if there is a plan.
    ``corruptions``: how the domain's text fields are falsified by ``wrong_result`` faults."""
    if injector is None:
        return model, ExecutionSandbox()
    from agentlab.trace.recorder import EpisodeTrace

    traced = FaultyModelClient(model, injector, lambda episode_id: EpisodeTrace(recorder, episode_id, clock))
    return traced, ExecutionSandbox(invoker=FaultyToolInvoker(injector, corruptions))
