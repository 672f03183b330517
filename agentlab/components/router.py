"""Tool Router: turns a model's tool call into a validated call of a registered tool.

Invalid arguments from the model never reach the function: they become a typed
:class:`InvalidArguments` the agent can show the model and recover from. The router also knows
each tool's fallback (a flaky external search → an internal one) for graceful degradation.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agentlab.errors import InvalidArguments, UnknownTool
from agentlab.llm.types import ToolCall
from agentlab.tools.registry import ToolRegistry, ToolSpec


class ToolRouter:
    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def resolve(self, call: ToolCall) -> ToolSpec:
        spec = self.registry.get(call.name)
        if spec is None:
            raise UnknownTool(f"no tool named {call.name!r}")
        return spec

    def validate(self, spec: ToolSpec, call: ToolCall) -> dict[str, Any]:
        if call.arguments is None:
            raise InvalidArguments(f"arguments for {spec.name} are not valid JSON: {call.raw_arguments[:80]!r}")
        try:
            # model_validate() with its defaults, minus its Python wrapper (this runs on every tool call).
            return spec.args_model.__pydantic_validator__.validate_python(call.arguments).__dict__
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:3]
            )
            raise InvalidArguments(f"invalid arguments for {spec.name}: {problems}") from None

    def fallback_for(self, spec: ToolSpec) -> ToolSpec | None:
        return self.registry.get(spec.fallback) if spec.fallback else None
