"""Load and validate a suite. Every problem becomes one line: file, place, problem."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentlab.domains.base import load_domain, source_digest
from agentlab.errors import InputError
from agentlab.scenarios.model import Scenario, Suite, SuiteFile
from agentlab.scenarios.refs import refs_in
from agentlab.tools.registry import ToolRegistry
from agentlab.world.model import Environment
from agentlab.world.schema import WorldFile, WorldSchema
from agentlab.yamlfile import read_yaml, validate_as


def load_suite(path: str | Path, registry: ToolRegistry | None = None) -> Suite:
    """The suite at ``path``, checked against its domain (``domain:``; its tools, unless ``registry`` is given)."""
    path = Path(path)
    file = str(path)
    raw, sources = _read_suite(path, seen=())
    spec: SuiteFile = validate_as(SuiteFile, raw, file)
    domain = load_domain(spec.domain, base=path.parent, file=file)
    if registry is None:
        registry = domain.tools

    if "\x00" in spec.world:  # the OS refuses such a name with a ValueError, not an OSError
        raise InputError(file, "world", "not a valid path: it holds a NUL character")
    world_path = (path.parent / spec.world).resolve()
    world_raw = read_yaml(world_path)
    world: WorldFile = validate_as(domain.world.spec_model, world_raw or {}, str(Path(spec.world)))

    seen: set[str] = set()
    scenarios: list[Scenario] = []
    for i, sc in enumerate(spec.scenarios):
        where = f"scenarios[{i}] ({sc.id})"
        if sc.id in seen:
            raise InputError(file, f"{where}.id", f"duplicate scenario id {sc.id!r}")
        seen.add(sc.id)
        role = sc.user.role or spec.defaults.role
        if role not in spec.roles:
            raise InputError(file, f"{where}.user.role", f"unknown role {role!r} (roles: {', '.join(spec.roles)})")
        _check_patch(file, where, sc.world, world, domain.world)
        _check_gold(file, where, sc, registry)
        _check_planted(file, where, sc, registry, world)
        perms = sorted(set(spec.roles[role]) | set(sc.user.permissions))
        scenarios.append(
            sc.model_copy(
                update={
                    "user": sc.user.model_copy(update={"role": role, "permissions": perms}),
                    "budget_usd": spec.defaults.budget_usd if sc.budget_usd is None else sc.budget_usd,
                    "max_turns": sc.max_turns or spec.defaults.max_turns,
                }
            )
        )
    # The suite's files, and a user domain's code (agentlab's own domains add nothing: the version covers them).
    code = source_digest(domain).encode()
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [*sources, world_path]) + code).hexdigest()[:16]
    return Suite(
        name=spec.suite,
        path=file,
        version=spec.version,
        domain=domain,
        world=world,
        environment=_environment(spec.environment, domain.environment),
        roles=spec.roles,
        scenarios=scenarios,
        digest=digest,
    )


def _environment(given: Environment | None, default: Environment) -> Environment:
    """The suite's environment: what it sets, and its domain's default for what it leaves out."""
    if given is None:
        return default
    return default.model_copy(update={name: getattr(given, name) for name in given.model_fields_set})


def _read_suite(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], list[Path]]:
    """A suite's mapping, with ``extends: BASE`` resolved: the base's keys, overridden by this file's.

    The base's ``world`` path is made relative to the extending file, so both can live anywhere.
    """
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a suite must be a mapping with 'suite', 'world' and 'scenarios'")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, [path]
    if "\x00" in str(base_name):
        raise InputError(str(path), "extends", "not a valid path: it holds a NUL character")
    base_path = (path.parent / str(base_name)).resolve()
    if base_path in seen or base_path == path.resolve():
        raise InputError(str(path), "extends", f"{base_name} extends itself")
    if not base_path.exists():
        raise InputError(str(path), "extends", f"base suite {base_name} not found")
    base, sources = _read_suite(base_path, (*seen, path.resolve()))
    if "world" in base and "world" not in raw:
        base["world"] = os.path.relpath(base_path.parent / base["world"], path.parent)
    return {**base, **raw}, [*sources, path]


def _check_patch(
    file: str, where: str, patch: dict[str, list[dict[str, Any]]], world: WorldFile, schema: WorldSchema
) -> None:
    """A scenario's world patch, checked as the world will apply it (World.apply_patch): a row with a known id is
    merged into the base row, any other row must be complete; either way the result must be a valid row."""
    for table, rows in patch.items():
        model = schema.tables.get(table)
        if model is None:
            raise InputError(file, f"{where}.world.{table}", f"unknown table (tables: {', '.join(schema.tables)})")
        base = {r.id: r.model_dump() for r in getattr(world, table)}
        for j, row in enumerate(rows):
            place = f"{where}.world.{table}[{j}]"
            if not isinstance(row, dict) or "id" not in row:
                raise InputError(file, place, "a patched row needs an 'id'")
            for col in row:
                if col not in model.model_fields:
                    raise InputError(file, f"{place}.{col}", f"unknown column of {table}")
            merged = {**base.get(row["id"], {}), **row} if isinstance(row["id"], str) else row
            try:
                model.model_validate(merged)
            except ValidationError as exc:
                err = exc.errors()[0]
                column = ".".join(str(part) for part in err["loc"])
                problem = (
                    err["msg"]
                    if row["id"] in base or err["type"] != "missing"
                    else (
                        f"{err['msg']} (no {table} row has id {row['id']!r}, so the patch adds a new row: give every "
                        "column)"
                    )
                )
                raise InputError(file, f"{place}.{column}" if column else place, problem) from None


def _check_gold(file: str, where: str, sc: Scenario, registry: ToolRegistry) -> None:
    earlier: set[str] = set()
    for j, step in enumerate(sc.gold.steps):
        place = f"{where}.gold.steps[{j}]"
        _check_call(file, place, step.tool, step.args, registry)
        for ref in refs_in(step.args):
            if ref not in earlier:
                raise InputError(file, f"{place}.args", f"reference to {ref!r}, which is not an earlier step")
        if step.id in earlier:
            raise InputError(file, f"{place}.id", f"duplicate step id {step.id!r}")
        earlier.add(step.id)
    for ref in refs_in(sc.gold.answer):
        if ref not in earlier:
            raise InputError(file, f"{where}.gold.answer", f"reference to {ref!r}, which is not a gold step")


def _check_call(file: str, place: str, tool: str, args: dict[str, Any], registry: ToolRegistry) -> None:
    """A call a scenario names (a gold step, a planted order) is one its tool accepts: a known tool, its arguments
    and no others, of their types."""
    spec = registry.get(tool)
    if spec is None:
        raise InputError(file, f"{place}.tool", f"unknown tool {tool!r}")
    fields = spec.args_model.model_fields
    for name in args:
        if name not in fields:
            raise InputError(file, f"{place}.args.{name}", f"{tool} has no argument {name!r}")
    for name in spec.required_args:
        if name not in args:
            raise InputError(file, f"{place}.args", f"missing required argument {name!r} of {tool}")
    _check_arg_types(file, place, args, spec.args_model)


def _check_planted(file: str, where: str, sc: Scenario, registry: ToolRegistry, world: WorldFile) -> None:
    """A planted order names a real call, and its phrase is in the world the agent will read (else the scenario
    would measure nothing: no model could ever see it)."""
    if not sc.planted:
        return
    texts = [t.lower() for t in _strings([sc.world, world.model_dump()])]
    for j, order in enumerate(sc.planted):
        place = f"{where}.planted[{j}]"
        _check_call(file, place, order.tool, order.args, registry)
        if refs_in(order.args):
            raise InputError(file, f"{place}.args", "a planted order's arguments are literal (no ${...} references)")
        if not any(order.says.lower() in text for text in texts):
            raise InputError(file, f"{place}.says", "appears in no text of the scenario's world")


def _strings(value: Any) -> Iterator[str]:
    """Every string in a nest of mappings and lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _check_arg_types(file: str, place: str, args: dict[str, Any], model: type[BaseModel]) -> None:
    """Validate the gold arguments the tool will get, as the grader will (``args_model``), so a wrong type fails
    at load time rather than mid-run. An argument holding a ``${step.field}`` reference is known only at run time:
    it is left out, and the 'missing' error its absence causes is not one."""
    literal = {name: value for name, value in args.items() if not refs_in(value)}
    try:
        model.model_validate(literal)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            if err["type"] == "missing" and loc and loc[0] in args:
                continue  # a referenced argument, left out on purpose
            column = ".".join(str(part) for part in loc)
            raise InputError(file, f"{place}.args.{column}" if column else f"{place}.args", err["msg"]) from None
