"""Execution Sandbox: runs one tool call under its timeout, and contains whatever it throws.

Timeouts are the tool's own (``ToolSpec.timeout_s``) unless overridden per tool; they run on the
loop's clock, so in a simulation they cost no wall time. An unexpected exception inside a tool
becomes a typed :class:`ToolFailed`: a buggy tool fails its step, never the agent.

A tool runs *eagerly*: its coroutine is stepped directly, and a timer is armed only if it actually
suspends (the idea of Python 3.12's eager tasks). Most tools in a simulation answer from memory
without suspending, and arming and cancelling a timer per call cost ~6 µs (measured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any

from agentlab.errors import StepError, ToolFailed, ToolTimeout
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolSpec


class _Resume:
    """Awaitable that finishes driving a coroutine already run up to its first suspension."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # cancellation (our timeout) is thrown into the tool
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(value)
                except StopIteration as done:
                    return done.value


async def resume_within(coro: Coroutine[Any, Any, Any], pending: Any, timeout_s: float) -> Any:
    """Finish ``coro``, already stepped up to its first suspension (which yielded ``pending``), within
    ``timeout_s`` of loop time.

    The callers step a coroutine once themselves (``coro.send(None)``) and come here only if it suspends:
    no loop time passes before a coroutine first suspends, so the deadline is the same as if the timer had
    been armed first, and a call that answers at once (most simulated tools and models) costs no timer and
    no coroutine of its own."""
    async with asyncio.timeout(timeout_s):
        return await _Resume(coro, pending)


Invoker = Callable[[ToolSpec, dict[str, Any], ToolContext], Coroutine[Any, Any, Any]]


class ExecutionSandbox:
    """``invoker`` is how a tool is actually called (default: directly). The simulator puts its fault
    injector there, below the sandbox, the way an httpx transport sits below a client."""

    def __init__(self, timeouts: Mapping[str, float] | None = None, *, invoker: Invoker | None = None) -> None:
        self.timeouts = dict(timeouts or {})
        self.invoker = invoker

    def timeout_for(self, spec: ToolSpec) -> float:
        return self.timeouts.get(spec.name, spec.timeout_s)

    async def execute(self, spec: ToolSpec, args: dict[str, Any], ctx: ToolContext) -> Any:
        timeout = self.timeout_for(spec)
        note = getattr(ctx.world, "note_call", None)
        if note is not None:  # a durable world: it tells a call it already ran by what the call does
            note(ctx.call_id, spec, args)
        try:
            coro = spec.fn(ctx, **args) if self.invoker is None else self.invoker(spec, args, ctx)
            try:  # stepped once here: most tools answer without suspending (see resume_within)
                pending = coro.send(None)
            except StopIteration as done:
                return done.value
            return await resume_within(coro, pending, timeout)
        except StepError:
            raise
        except TimeoutError:
            raise ToolTimeout(f"{spec.name} timed out after {timeout:g}s") from None
        except Exception as exc:
            raise ToolFailed(f"{spec.name} crashed: {type(exc).__name__}: {exc}") from None
