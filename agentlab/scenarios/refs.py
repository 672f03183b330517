"""``${step.path}`` references from one step's arguments (or an answer) to earlier results."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

REF = re.compile(r"\$\{([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\}")


class UnresolvedRef(KeyError):
    pass


def lookup(path: str, results: Mapping[str, Any]) -> Any:
    head, *rest = path.split(".")
    if head not in results:
        raise UnresolvedRef(path)
    value = results[head]
    for part in rest:
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise UnresolvedRef(path) from None
    return value


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def resolve(value: Any, results: Mapping[str, Any]) -> Any:
    """Resolve references in ``value`` (recursively through dicts and lists).

    A string that is exactly one reference keeps the referenced value's type.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        whole = REF.fullmatch(value)
        if whole:
            return lookup(whole.group(1), results)
        return REF.sub(lambda m: _text(lookup(m.group(1), results)), value)
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def refs_in(value: Any) -> list[str]:
    """Step ids referenced anywhere in ``value``."""
    if isinstance(value, str):
        return [m.group(1).split(".")[0] for m in REF.finditer(value)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


def render(template: str, results: Mapping[str, Any], missing: str | Callable[[str], str] = "(unverified)") -> str:
    """Fill a text template; a reference that cannot be resolved becomes ``missing`` (or ``missing(path)``)."""

    def sub(m: re.Match[str]) -> str:
        try:
            return _text(lookup(m.group(1), results))
        except UnresolvedRef:
            return missing(m.group(1)) if callable(missing) else missing

    return REF.sub(sub, template)
