"""Tools: async functions with pydantic-validated arguments and production metadata.

A tool is declared once with :meth:`ToolRegistry.tool`; its argument model is built from the
function signature, its JSON schema is what models see for native tool calling, and its metadata
(permissions, timeout, idempotency, side effects, rollback, fallback, price) is what the gate,
sandbox, router and recovery handler act on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, create_model

from agentlab.llm.types import ToolDefinition

ToolFn = Callable[..., Awaitable[Any]]
RollbackFn = Callable[[Any, dict[str, Any], Any], Awaitable[None]]


class _ArgsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    fn: ToolFn
    args_model: type[BaseModel]
    permissions: frozenset[str] = frozenset()
    timeout_s: float = 30.0
    idempotent: bool = True
    side_effects: bool = False
    # The tool's API accepts an idempotency key (like Stripe's): a repeated key returns the first result.
    idempotency_keys: bool = False
    # The arguments that identify the action: two calls equal on them are one action (one refund of $25 on
    # an order, whatever reason text accompanies it), so they share an idempotency key. None: all arguments.
    key_fields: tuple[str, ...] | None = None
    rollback: RollbackFn | None = None
    fallback: str | None = None
    cost_usd: float = 0.0
    external: bool = False
    redact: frozenset[str] = frozenset()
    definition: ToolDefinition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        text = orjson.dumps({"name": self.name, "description": self.description, "parameters": schema})
        object.__setattr__(
            self,
            "definition",
            ToolDefinition(name=self.name, description=self.description, parameters=schema, tokens=len(text) // 4),
        )

    @property
    def required_args(self) -> list[str]:
        return [n for n, f in self.args_model.model_fields.items() if f.is_required()]

    @property
    def effectful(self) -> bool:
        """Whether running the call twice could act twice (it changes the world, or is not idempotent)."""
        return self.side_effects or not self.idempotent

    def identity(self, args: dict[str, Any]) -> str:
        """The action a call performs, as a canonical string: its ``key_fields`` (all arguments if None).

        A durable world's journal compares it to recognise a call it already ran (see ``World.journaled``).
        """
        fields = args if self.key_fields is None else {k: args.get(k) for k in self.key_fields}
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


class ToolRegistry:
    """An ordered set of tools, looked up by name."""

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self._tools: dict[str, ToolSpec] = {}
        for spec in tools:
            self.add(spec)

    def add(self, spec: ToolSpec) -> ToolSpec:
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name!r} is already registered")
        self._tools[spec.name] = spec
        return spec

    def tool(
        self,
        *,
        permissions: Iterable[str] = (),
        timeout_s: float = 30.0,
        idempotent: bool = True,
        side_effects: bool = False,
        idempotency_keys: bool = False,
        key_fields: tuple[str, ...] | None = None,
        rollback: RollbackFn | None = None,
        fallback: str | None = None,
        cost_usd: float = 0.0,
        external: bool = False,
        redact: Iterable[str] = (),
        name: str | None = None,
    ) -> Callable[[ToolFn], ToolFn]:
        """Register ``async def fn(ctx, **args)``; the arguments after ``ctx`` become the schema."""

        def decorate(fn: ToolFn) -> ToolFn:
            self.add(
                ToolSpec(
                    name=name or fn.__name__,
                    description=inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0],
                    fn=fn,
                    args_model=args_model_for(fn),
                    permissions=frozenset(permissions),
                    timeout_s=timeout_s,
                    idempotent=idempotent,
                    side_effects=side_effects,
                    idempotency_keys=idempotency_keys,
                    key_fields=key_fields,
                    rollback=rollback,
                    fallback=fallback,
                    cost_usd=cost_usd,
                    external=external,
                    redact=frozenset(redact),
                )
            )
            return fn

        return decorate

    def get(self, name: str) -> ToolSpec | None:
        return self._tools.get(name)

    def __getitem__(self, name: str) -> ToolSpec:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


def args_model_for(fn: ToolFn) -> type[BaseModel]:
    """A pydantic model of ``fn``'s parameters after the first (the tool context).

    Validation is pydantic's lax mode (a model's "59.99" is a fine amount), except that a boolean
    is never accepted as a number: ``amount: true`` is a model error, not a refund of $1.
    """
    params = list(inspect.signature(fn).parameters.values())[1:]
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for p in params:
        annotation = hints.get(p.name, Any)
        if annotation in (int, float):
            annotation = Annotated[annotation, BeforeValidator(_not_bool)]
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    return create_model(f"{fn.__name__}_args", __base__=_ArgsBase, **fields)
