"""Execution Sandbox: runs one tool call under its timeout, and contains whatever it throws.

Timeouts are the tool's own (``ToolSpec.timeout_s``) unless overridden per tool; they run on the
loop's clock, so in a simulation they cost no wall time. An unexpected exception inside a tool
becomes a typed :class:`ToolFailed`: a buggy tool fails its step, never the agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agentlab.errors import StepError, ToolFailed, ToolTimeout
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolSpec


class ExecutionSandbox:
    def __init__(self, timeouts: Mapping[str, float] | None = None) -> None:
        self.timeouts = dict(timeouts or {})

    def timeout_for(self, spec: ToolSpec) -> float:
        return self.timeouts.get(spec.name, spec.timeout_s)

    async def execute(self, spec: ToolSpec, args: dict[str, Any], ctx: ToolContext) -> Any:
        timeout = self.timeout_for(spec)
        try:
            async with asyncio.timeout(timeout):
                return await spec.fn(ctx, **args)
        except StepError:
            raise
        except TimeoutError:
            raise ToolTimeout(f"{spec.name} timed out after {timeout:g}s") from None
        except Exception as exc:
            raise ToolFailed(f"{spec.name} crashed: {type(exc).__name__}: {exc}") from None
