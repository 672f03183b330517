"""``agentlab run``'s flags, generated from :class:`~agentlab.runs.options.RunOptions`' fields.

A field is a flag by existing: its type gives the argparse type or action, a ``Literal`` its choices, its
description the help, and its default the value when the flag is absent. The generic rule:

=========================  ===========================================================================
``bool``, default False    ``--field-name`` (a switch that turns it on)
``bool``, default True     ``--no-field-name`` (a switch that turns it off; help: "turn off" + description)
``Literal[...]``           ``--field-name`` with those choices
``int`` / ``float``        ``--field-name N``
``str`` (or a union        ``--field-name VALUE`` (``faults`` also takes a plan object in Python; a path here)
with ``str``)
``list[str]``              ``--field-name VALUE``, repeatable
``dict[str, str]``         ``--flag KEY=VALUE``, repeatable
=========================  ===========================================================================

Where the rule does not fit, a field says so in its ``json_schema_extra["cli"]`` (flag name, metavar, choices,
positional, the field it requires). Every flag's argparse default is None ("not given"), so a command line with no
flags is exactly ``RunOptions``' defaults, and ``--resume`` can tell which options were given. A command that takes a
flag differently (``serve`` offers fewer backends and needs its suite) passes argparse ``overrides`` for that field.

``schema`` is the options model whose fields are the flags: RunOptions, or a subclass that adds fields (the tests
build one to show a new field becomes a flag end to end).
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from agentlab.errors import InputError

if TYPE_CHECKING:
    from agentlab.runs.options import RunOptions

# RunOptions fields that have no ``agentlab run`` flag, and why (none today: every option is on the CLI).
EXCLUDED: dict[str, str] = {}

Kind = Literal["value", "append", "pairs", "on", "off"]


@dataclass(frozen=True)
class RunFlag:
    """One RunOptions field as a command-line flag."""

    field: str
    flag: str  # "--seed", "--no-gate", "--quiet"; a positional's metavar ("SUITE")
    kind: Kind
    positional: bool
    kwargs: dict[str, Any]  # for ArgumentParser.add_argument
    requires: str | None = None
    example: str | None = None

    def value(self, raw: Any) -> Any:
        """The field's value from the parsed ``raw`` (not None: the flag was given)."""
        if self.kind == "on":
            return True
        if self.kind == "off":
            return False
        if self.kind == "pairs":
            return self._pairs(raw)
        return raw

    def _pairs(self, pairs: Sequence[str]) -> dict[str, str]:
        key_name = str(self.kwargs.get("metavar", "KEY=VALUE")).partition("=")[0].lower()
        example = f", e.g. {self.example}" if self.example else ""
        out: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InputError(self.flag, pair, f"expected {self.kwargs.get('metavar', 'KEY=VALUE')}{example}")
            if key.strip() in out:
                raise InputError(self.flag, pair, f"{key_name} {key.strip()!r} is given twice")
            out[key.strip()] = value.strip()
        return out


def _schema(schema: type[RunOptions] | None) -> type[RunOptions]:
    from agentlab.runs.options import RunOptions  # imported late: pydantic and the option models are heavy

    return schema or RunOptions


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if str in args:  # a path here, an object from Python (faults)
            return str
        if len(args) == 1:
            return args[0]
    return annotation


def flag_for(name: str, field: FieldInfo) -> RunFlag:
    """The flag of RunOptions field ``name`` (see the module docstring for the rule)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    hints: dict[str, Any] = dict(extra.get("cli") or {})  # type: ignore[call-overload]
    dashed = name.replace("_", "-")
    base = _strip_optional(field.annotation)
    help_text = field.description or ""
    kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
    if hints.get("positional"):
        kwargs = {"nargs": "?", "help": help_text}
        return RunFlag(name, name.upper(), "value", True, kwargs)
    kind: Kind = "value"
    if base is bool:
        kind = "off" if field.default is True else "on"
        if kind == "off":  # the description says what the field is; the flag turns it off
            kwargs["help"] = f"turn off {help_text}"
        flag = hints.get("flag") or (f"--no-{dashed}" if kind == "off" else f"--{dashed}")
        kwargs.update(action="store_const", const=True)
    else:
        flag = hints.get("flag") or f"--{dashed}"
        origin = get_origin(base)
        if origin is Literal:
            kwargs["choices"] = get_args(base)
        elif origin is list:
            kind = "append"
            kwargs["action"] = "append"
        elif origin is dict:
            kind = "pairs"
            kwargs["action"] = "append"
        elif base in (int, float):
            kwargs["type"] = base
        elif base is not str:
            raise TypeError(f"RunOptions.{name}: no command-line rule for {field.annotation!r}; add a cli hint")
        if "choices" in hints:
            kwargs["choices"] = tuple(hints["choices"])
        if "metavar" in hints:
            kwargs["metavar"] = hints["metavar"]
    return RunFlag(name, flag, kind, False, kwargs, hints.get("requires"), hints.get("example"))


def run_flags(fields: Iterable[str] | None = None, *, schema: type[RunOptions] | None = None) -> list[RunFlag]:
    """The flags of ``schema``'s fields (RunOptions' by default; all but :data:`EXCLUDED`, or just ``fields``), in
    field order."""
    wanted = set(fields) if fields is not None else None
    return [
        flag_for(name, info)
        for name, info in _schema(schema).model_fields.items()
        if name not in EXCLUDED and (wanted is None or name in wanted)
    ]


def add_run_flags(
    parser: argparse.ArgumentParser,
    fields: Iterable[str] | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    schema: type[RunOptions] | None = None,
) -> list[RunFlag]:
    """Add the flags to ``parser``. ``overrides`` replaces argparse keyword arguments of a field's flag: ``serve``
    narrows ``llm``'s choices (and says so in its help) and makes its suite required (``{"nargs": None}``)."""
    flags = run_flags(fields, schema=schema)
    for flag in flags:
        kwargs = {**flag.kwargs, **(overrides or {}).get(flag.field, {})}
        if flag.positional:
            parser.add_argument(flag.field, **kwargs)
        else:
            parser.add_argument(flag.flag, **kwargs)
    return flags


def given(args: argparse.Namespace, flags: Sequence[RunFlag]) -> list[RunFlag]:
    """The flags given on the command line."""
    return [flag for flag in flags if getattr(args, flag.field, None) is not None]


def options_from(
    args: argparse.Namespace, flags: Sequence[RunFlag], *, schema: type[RunOptions] | None = None, **fixed: Any
) -> RunOptions:
    """The options of a parsed command line: the given flags, ``fixed`` values, defaults for the rest. An option
    RunOptions refuses (a negative or NaN budget, a seed beyond 64 bits) is one line naming its flag."""
    by_field = {flag.field: flag for flag in flags}
    present = given(args, flags)
    for flag in present:
        if flag.requires and getattr(args, flag.requires, None) is None:
            needed = by_field[flag.requires]
            raise InputError(
                flag.flag, "", f"only applies with {needed.flag} {needed.kwargs.get('metavar', '')}".strip()
            )
    values = {flag.field: flag.value(getattr(args, flag.field)) for flag in present}
    try:
        return _schema(schema)(**{**values, **fixed})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        name = by_field[field].flag if field in by_field else "--" + field.replace("_", "-")
        raise InputError(name, "", f"{err['msg']} (got {err.get('input')!r})") from None
