"""Read a YAML input file and validate it, every problem as one :class:`~agentlab.errors.InputError` line.

Every input agentlab takes (suites, worlds, tiers, prices, policies, fault plans, decision tables, sweep specs)
is read here. It sits at the bottom of the package, beside :mod:`agentlab.errors`, so a low layer (the tier
table, the price table, a fault plan) can read its file without importing the scenario loader above it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agentlab.errors import InputError

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


INT64 = range(-(2**63), 2**63)  # what SQLite, orjson and the trace can hold


def read_yaml(path: Path) -> Any:
    """The YAML document at ``path``; every problem reading it (missing, unreadable, not UTF-8, not YAML, an
    integer beyond 64 bits, which would only fail later, deep in SQLite or the trace) is one :class:`InputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"byte {exc.start}", "not UTF-8 text") from None
    except OSError as exc:
        raise InputError(str(path), "", exc.strerror or str(exc)) from None
    try:
        # libyaml's C parser when the wheel has it (every manylinux wheel does): ten times faster than
        # the pure-Python one, which matters when a chaos sweep loads a suite per process.
        data = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        # A reader error (a control character) has no problem, and its str() runs over several lines.
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.reader.ReaderError):
            where = f"character {exc.position + 1}"
        raise InputError(str(path), where, f"not valid YAML: {problem}") from None
    _check_ints(str(path), data)
    return data


def _check_ints(file: str, data: Any) -> None:
    """Refuse an integer beyond 64 bits anywhere in ``data``; iterative, as a document may nest thousands deep."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, place = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            if node not in INT64:
                raise InputError(file, place or "(document)", f"integer {node} does not fit in 64 bits")
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                stack.append((value, f"{place}.{key}" if place else str(key)))
                stack.append((key, place))
        elif isinstance(node, list):
            stack.extend((value, f"{place}[{i}]") for i, value in reversed(list(enumerate(node))))


def _place(raw: Any, loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location, naming the scenario by id where there is one."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and "id" in node and parts and parts[-1] == "scenarios":
                    label += f" ({node['id']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def validate_as(model: type[BaseModel], raw: Any, file: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(file, _place(raw, tuple(err["loc"])), err["msg"]) from None
