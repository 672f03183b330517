"""Tools whose body is plain code against the simulated world: paid for, journaled, and keyed like a real API.

Every domain's tools are written this way (see :func:`world_tool`), so that latency, intrinsic flakiness, the
ledger of side effects, the journal a resumed episode replays from, and idempotency keys work the same for a
user's tools as for the built-in ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry


def world_tool(registry: ToolRegistry, **meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register, in ``registry``, a tool ``def body(ctx, **args)`` that reads and writes ``ctx.world``.

    The wrapper pays the tool's simulated I/O (latency, flakiness), then has the world run the body
    *journaled*: the outcome is written to the world's journal in the same transaction as its side
    effects, and a call the journal already holds (a resumed episode replaying) is answered from it.
    A tool declared with ``idempotency_keys=True`` answers a key it has already applied with that
    first result, like a payment API, before its body runs — in the same transaction. ``meta`` is
    :meth:`ToolRegistry.tool`'s metadata (permissions, timeout_s, side_effects, ...); its ``rollback`` is a
    plain ``def undo(ctx, args, result)`` against the world, which the wrapper journals as ``undo:<tool>``
    so that a resumed episode never compensates twice.
    """
    keyed = bool(meta.get("idempotency_keys"))

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        name = meta.get("name") or body.__name__
        undo = meta.get("rollback")
        spec = meta if undo is None else {**meta, "rollback": functools.partial(_journaled_undo, f"undo:{name}", undo)}

        def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
            if keyed and (earlier := ctx.world.replay(name, ctx.idempotency_key)) is not None:
                return earlier
            return body(ctx, **args)

        @functools.wraps(body)
        async def tool(ctx: ToolContext, **args: Any) -> Any:
            await ctx.world.io(name)
            return ctx.world.journaled(name, ctx.call_id, ctx.attempt, lambda: run(ctx, args))

        registry.tool(**spec)(tool)
        return tool

    return decorate


async def _journaled_undo(
    journal_name: str, undo: Callable[..., None], ctx: ToolContext, args: dict[str, Any], result: Any
) -> None:
    ctx.world.journaled(journal_name, ctx.call_id, 0, lambda: undo(ctx, args, result))


def record_effect(ctx: ToolContext, tool: str, args: dict[str, Any], action: str = "apply", result: Any = None) -> None:
    """Append a side effect to the world's ledger (``action``: apply, or compensate for a rollback).

    ``args`` should be the arguments that identify the action (what a duplicate would repeat), not free text.
    """
    key = ctx.idempotency_key if action == "apply" else None
    ctx.world.record_effect(tool, args, action=action, call_id=ctx.call_id, key=key, result=result)
