"""A world's shape: typed tables declared as pydantic rows, turned into SQLite tables and a world-file model.

A domain declares its tables once, as :class:`Row` subclasses; the same declaration validates world files and
scenario patches (pydantic), creates the SQLite tables its tools read and write, and says which tables make up
the end state that grading compares.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, create_model


class Row(BaseModel):
    """One row of a world table: an ``id`` and typed columns (str, int, float, bool or a Literal of them)."""

    model_config = ConfigDict(extra="forbid")

    id: str


class WorldFile(BaseModel):
    """The base of every domain's world-file model: one list of rows per table (see :attr:`WorldSchema.spec_model`)."""

    model_config = ConfigDict(extra="forbid")

    world_schema: ClassVar[WorldSchema]


# Columns that differ between equally correct runs (free text, timestamps); end-state comparison drops them.
DEFAULT_VOLATILE = frozenset({"t"})


def _sql_type(annotation: Any, where: str) -> str:
    """The SQLite column type for a row field: REAL, INTEGER or TEXT (affinity, so values read back typed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = {_sql_type(a, where) for a in typing.get_args(annotation) if a is not type(None)}
        if len(kinds) == 1:
            return kinds.pop()
        raise TypeError(f"{where}: a column must have one type, not {annotation!r}")
    if typing.get_origin(annotation) is typing.Literal:
        kinds = {type(v) for v in typing.get_args(annotation)}
        annotation = kinds.pop() if len(kinds) == 1 else str
    if annotation is float:
        return "REAL"
    if annotation in (int, bool):
        return "INTEGER"
    if annotation is str:
        return "TEXT"
    raise TypeError(f"{where}: unsupported column type {annotation!r} (use str, int, float, bool or a Literal)")


class WorldSchema:
    """The tables of a domain's world, in order, and which of them grading compares.

    ``tables`` maps each table name to its :class:`Row` model; every table may be seeded by the world file and
    patched by a scenario. ``state_tables`` (default: all) are the ones whose end state must match the gold
    run's; ``volatile`` columns (free text, timestamps) are left out of that comparison.
    """

    def __init__(
        self,
        tables: Mapping[str, type[Row]],
        *,
        state_tables: Iterable[str] | None = None,
        volatile: Iterable[str] = DEFAULT_VOLATILE,
        name: str = "World",
    ) -> None:
        self.tables: dict[str, type[Row]] = dict(tables)
        self.state_tables: tuple[str, ...] = tuple(self.tables if state_tables is None else state_tables)
        unknown = [t for t in self.state_tables if t not in self.tables]
        if unknown:
            raise ValueError(f"state tables {unknown} are not tables of this world ({', '.join(self.tables)})")
        self.volatile = frozenset(volatile)
        self.ddl = "\n".join(self._create(table, model) for table, model in self.tables.items())
        fields: dict[str, Any] = {table: (list[model], []) for table, model in self.tables.items()}
        self.spec_model: type[WorldFile] = create_model(name, __base__=WorldFile, **fields)
        self.spec_model.world_schema = self
        self._state_queries: dict[frozenset[str], tuple[tuple[str, tuple[str, ...], str], ...]] = {}

    def state_queries(self, ignore: Iterable[str] | None = None) -> tuple[tuple[str, tuple[str, ...], str], ...]:
        """(table, columns, SELECT) for each state table: its columns but ``ignore``'s (default: the volatile ones),
        rows by id; made once per set of ignored columns."""
        key = self.volatile if ignore is None else frozenset(ignore)
        queries = self._state_queries.get(key)
        if queries is None:
            queries = self._state_queries[key] = tuple(
                (table, cols, f"SELECT {', '.join(cols)} FROM {table} ORDER BY id")
                for table in self.state_tables
                for cols in [tuple(c for c in self.tables[table].model_fields if c not in key)]
            )
        return queries

    @staticmethod
    def _create(table: str, model: type[Row]) -> str:
        if not table.isidentifier():
            raise ValueError(f"table name {table!r} is not an identifier")
        cols = [
            f"{name} {'TEXT PRIMARY KEY' if name == 'id' else _sql_type(f.annotation, f'{table}.{name}')}"
            for name, f in model.model_fields.items()
        ]
        return f"CREATE TABLE {table} ({', '.join(cols)});"

    def empty(self) -> WorldFile:
        return self.spec_model()

    def __repr__(self) -> str:
        return f"WorldSchema({', '.join(self.tables)})"


def schema_of(spec: BaseModel) -> WorldSchema:
    """The schema a world-file model was built from."""
    schema = getattr(type(spec), "world_schema", None)
    if not isinstance(schema, WorldSchema):
        raise TypeError(f"{type(spec).__name__} is not a world-file model (build one with WorldSchema(...))")
    return schema
