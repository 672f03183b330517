"""The world's embedded store: SQLite, so side effects, transactions and rollbacks are real.

Each episode gets its own database, copied page-by-page from a template built once per suite
(``sqlite3.Connection.backup``), then patched with the scenario's changes: in memory, or in a file
when the run is checkpointed, so that side effects survive a killed process. An in-memory copy is
lent, not thrown away: the episode runs inside one outer savepoint, and closing its world rolls that
back and returns the copy to the template for the next episode, so the copy keeps its parsed schema
and prepared statements (a fresh connection spends more on those than on the episode's own queries).

Every side effect a tool applies is also appended to the ``effects`` ledger — the world's own record,
which later checks (duplicate side effects, unauthorized calls) read instead of trusting the agent.

In a file-backed world (``World.persisted``, a run with durable worlds) every tool call's outcome
also goes to the ``journal``, in the same transaction as its effects, keyed by (call id, tool,
attempt). A resumed episode re-runs from its start; the world answers the calls it made before the
kill from the journal instead of executing them again (how durable-execution engines replay a
workflow), and the first call the journal does not hold runs for real.

Answering by position alone is sound only if the re-run repeats its first run call for call. An
``agentlab run --resume`` does (virtual time, same inputs), but a request ``agentlab serve`` re-runs
after a kill does not have to: it runs on the real-time loop, beside other requests that change
what it shares with them (memory, breakers, budgets), with less of its deadline left, so its calls
can come in another order, and a call id can name another call. Making the served episode replay
exactly would need all of that state frozen per request, so the journal does not rely on it: each
journaled call is also logged with its *identity* (``ToolSpec.identity``: the tool's ``key_fields``,
the same arguments that make an idempotency key) in ``journal_calls``. A call the sandbox announced
(:meth:`World.note_call`) is answered from an earlier process's log only if that log holds the same
action — at its own position, or, for a call that acts on the world, anywhere — and each logged call
answers at most one call of the re-run. So a re-run that diverged still applies no effect its first
run applied, and a call id that now names another call runs for real instead of getting another
call's answer. A deterministic re-run finds every call at its position, exactly as before.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from agentlab.errors import ToolFailed, ToolTransientError
from agentlab.world.model import Environment
from agentlab.world.schema import WorldSchema, schema_of

# The tables every world has besides its domain's: the ledger of side effects, and the journal of calls.
LEDGER_DDL = """
CREATE TABLE effects (seq INTEGER PRIMARY KEY, t REAL, tool TEXT, action TEXT, call_id TEXT,
                      idempotency_key TEXT, args TEXT, result TEXT);
CREATE INDEX effects_key ON effects (tool, idempotency_key);
CREATE TABLE journal (call_id TEXT, tool TEXT, attempt INTEGER, ok INTEGER, payload TEXT,
                      PRIMARY KEY (call_id, tool, attempt));
"""

# The journal's identity log (see the module docstring): one row per journaled call and attempt, by rowid (a
# re-run that diverged may reuse a (call id, tool, attempt) of its first run for another action). Only
# durable worlds have it, created beside the ledger's journal when the world file is made or reopened.
JOURNAL_CALLS = """
CREATE TABLE IF NOT EXISTS journal_calls (call_id TEXT, tool TEXT, attempt INTEGER, identity TEXT, ok INTEGER,
                                          payload TEXT);
CREATE INDEX IF NOT EXISTS journal_calls_identity ON journal_calls (tool, identity);
"""


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


# What a closed world's ``conn`` becomes: any use fails as on a closed connection, never reaching the copy it had.
_CLOSED = sqlite3.connect(":memory:")
_CLOSED.close()

# The outer savepoint an in-memory world runs in: rolling back to it restores the template's content exactly.
_LENT = "lent_world"


class WorldTemplate:
    """A world's initial content in an in-memory database, and its schema; every episode's world is a copy.

    In-memory copies are lent (:meth:`lend`) and taken back (:meth:`take_back`) rather than made per episode:
    measured on the support world, a fresh copy's first queries cost ~400 µs more than a reused one's (schema
    parsing, statement preparation), a fifth of an episode. Concurrent episodes each get their own copy.
    """

    def __init__(self, conn: sqlite3.Connection, schema: WorldSchema) -> None:
        self.conn = conn
        self.schema = schema
        self._spare: list[sqlite3.Connection] = []

    def backup(self, target: sqlite3.Connection) -> None:
        self.conn.backup(target)

    def lend(self) -> sqlite3.Connection:
        """An in-memory copy of the template inside an open savepoint (:data:`_LENT`): changes until
        :meth:`take_back` are undone there."""
        if self._spare:
            conn = self._spare.pop()
        else:
            conn = sqlite3.connect(":memory:", isolation_level=None)
            self.backup(conn)
        conn.execute(f"SAVEPOINT {_LENT}")
        return conn

    def take_back(self, conn: sqlite3.Connection) -> None:
        """Undo everything done to a lent copy (open inner savepoints included) and keep it for the next world.

        A copy whose outer savepoint is gone (a tool called ``conn.commit()``, which ends every savepoint) holds
        changes nothing can undo: it is closed instead, and the next world gets a fresh copy."""
        try:
            conn.execute(f"ROLLBACK TO {_LENT}")
            conn.execute(f"RELEASE {_LENT}")
        except sqlite3.OperationalError:  # no such savepoint
            conn.close()
        else:
            self._spare.append(conn)

    def close(self) -> None:
        for conn in self._spare:
            conn.close()
        self._spare.clear()
        self.conn.close()


def build_template(spec: BaseModel) -> WorldTemplate:
    """An in-memory database holding ``spec`` (a domain's world-file model, which knows its schema)."""
    schema = schema_of(spec)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(schema.ddl + LEDGER_DDL)
    conn.execute("BEGIN")
    for table, rows in spec.model_dump().items():
        for row in rows:
            cols = ", ".join(row)
            conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    conn.execute("COMMIT")
    return WorldTemplate(conn, schema)


class World:
    """One episode's world: a SQLite connection plus its latency/flakiness environment."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        schema: WorldSchema,
        clock: Any = None,
        rng: random.Random | None = None,
        environment: Environment | None = None,
        simulate_io: bool = True,
        journal: bool = False,
        lender: WorldTemplate | None = None,
    ) -> None:
        """``lender``: the template ``conn`` was lent by (:meth:`WorldTemplate.lend`); closing gives it back."""
        self.conn = conn
        self._lender = lender
        self.schema = schema
        self.simulate_io = simulate_io
        # Only a world that outlives its process can be resumed mid-episode, so only it keeps the journal: it
        # costs a lookup and an insert per tool call (measured: a lookup tool 9.7 µs a call plain, 15.7 µs journaled).
        self.journal = journal
        self.conn.row_factory = _dict_row
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.env = environment or Environment()
        self._depth = 0
        # The identity log: calls the sandbox announced, by (call id, tool) -> (identity, effectful); the last
        # rowid an earlier process wrote (rows up to it may answer this one's calls); the rows that already did.
        self._noted: dict[tuple[str, str], tuple[str, bool]] = {}
        self._earlier_upto = 0
        self._answered: set[int] = set()

    @classmethod
    def from_template(
        cls,
        template: WorldTemplate,
        patch: dict[str, list[dict[str, Any]]] | None = None,
        **kwargs: Any,
    ) -> World:
        world = cls(template.lend(), schema=template.schema, lender=template, **kwargs)
        if patch:
            world.apply_patch(patch)
        return world

    # --- time and infrastructure behaviour ----------------------------------------------------

    @classmethod
    def persisted(
        cls,
        template: WorldTemplate,
        path: Path,
        episode_id: str,
        patch: dict[str, list[dict[str, Any]]] | None = None,
        **kwargs: Any,
    ) -> World:
        """A file-backed world for ``episode_id``: reopened if the file already holds that episode."""
        if path.exists():
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                owner = conn.execute("SELECT value FROM meta WHERE key = 'episode'").fetchone()
            except sqlite3.OperationalError:
                owner = None
            if owner is not None and owner[0] == episode_id:
                world = cls(conn, schema=template.schema, journal=True, **kwargs)
                world._open_log()
                return world
            conn.close()
        remove_world_file(path)
        conn = sqlite3.connect(path, isolation_level=None)
        template.backup(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")  # a killed process loses nothing the OS already holds
        world = cls(conn, schema=template.schema, journal=True, **kwargs)
        if patch:
            world.apply_patch(patch)
        world._open_log()
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('episode', ?)", (episode_id,))  # last: marks the file complete
        return world

    # --- the journal -----------------------------------------------------------------------------

    def _open_log(self) -> None:
        """Create the identity log if the file has none (a new world, or one an older version wrote)."""
        self.conn.executescript(JOURNAL_CALLS)
        row = self.one("SELECT MAX(rowid) AS n FROM journal_calls")
        self._earlier_upto = (row["n"] if row else None) or 0

    def note_call(self, call_id: str, spec: Any, args: dict[str, Any]) -> None:
        """The sandbox announces the call it is about to run (``spec``: its ToolSpec), so that
        :meth:`journaled` can tell whether an earlier process already ran this very action."""
        if self.journal and call_id:
            self._noted[(call_id, spec.name)] = (spec.identity(args), spec.effectful)

    def _earlier(self, tool: str, call_id: str, attempt: int | None, identity: str, effectful: bool) -> Any:
        """The earlier process's log row that answers this call, if any: the same action at the same
        position (any attempt when ``attempt`` is None), else, for a call that acts, the same action
        that succeeded anywhere. Rows that already answered a call of this process are not offered again."""
        if not self._earlier_upto:
            return None
        rows = [
            r
            for r in self.all(
                "SELECT rowid AS n, call_id, attempt, ok, payload FROM journal_calls"
                " WHERE rowid <= ? AND tool = ? AND identity = ? ORDER BY rowid",
                self._earlier_upto,
                tool,
                identity,
            )
            if r["n"] not in self._answered
        ]
        for r in rows:
            if r["call_id"] == call_id and (attempt is None or r["attempt"] == attempt):
                return r
        if effectful:
            return next((r for r in rows if r["ok"]), None)
        return None

    def holds_call(self, tool: str, call_id: str, identity: str | None = None, effectful: bool = False) -> bool:
        """Whether the journal already holds this call (a resumed episode is replaying it).

        With the call's ``identity`` (what the permission gate passes), only an earlier run of the same
        action counts, as :meth:`journaled` will answer it; without it, any attempt of ``call_id``.
        """
        if not self.journal:
            return False
        if identity is not None and self._earlier_upto:
            return self._earlier(tool, call_id, None, identity, effectful) is not None
        return self.one("SELECT 1 FROM journal WHERE call_id = ? AND tool = ? LIMIT 1", call_id, tool) is not None

    def journaled(self, tool: str, call_id: str, attempt: int, body: Callable[[], Any]) -> Any:
        """Run ``body`` in one transaction with its journal row, or answer from the journal.

        A call without an id (a tool called directly, outside an agent) cannot be recognised on
        replay, and a world without a journal is never replayed: both simply run ``body``. A call the
        sandbox did not announce (a compensation), or one in a file whose identity log is empty, is
        answered by position only, as it always was.
        """
        if not call_id or not self.journal:
            with self.transaction():
                return body()
        noted = self._noted.pop((call_id, tool), None)
        if noted is not None and self._earlier_upto:
            if (row := self._earlier(tool, call_id, attempt, *noted)) is not None:
                self._answered.add(row["n"])
        else:  # nothing announced, or an identity log this file has no rows in (written before it existed)
            row = self.one(
                "SELECT ok, payload FROM journal WHERE call_id = ? AND tool = ? AND attempt = ?", call_id, tool, attempt
            )
        if row is not None:
            if row["ok"]:
                return orjson.loads(row["payload"])
            raise ToolFailed(row["payload"])
        identity = None if noted is None else noted[0]
        try:
            with self.transaction():
                result = body()
                self._log(call_id, tool, attempt, identity, True, orjson.dumps(result).decode())
        except ToolFailed as exc:
            self._log(call_id, tool, attempt, identity, False, str(exc))
            raise
        return result

    def _log(self, call_id: str, tool: str, attempt: int, identity: str | None, ok: bool, payload: str) -> None:
        # OR IGNORE: a re-run that diverged may run another action under a (call id, tool, attempt) its first run
        # used; the journal keeps the first, the identity log both.
        self.execute("INSERT OR IGNORE INTO journal VALUES (?, ?, ?, ?, ?)", call_id, tool, attempt, int(ok), payload)
        if identity is not None:
            row = (call_id, tool, attempt, identity, int(ok), payload)
            self.execute("INSERT INTO journal_calls VALUES (?, ?, ?, ?, ?, ?)", *row)

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else 0.0

    async def io(self, tool: str) -> None:
        """Simulate the network/database latency of ``tool`` and its intrinsic flakiness."""
        if not self.simulate_io:
            return
        profile = self.env.latency.get(tool, self.env.default_latency)
        await asyncio.sleep(profile.sample(self.rng))
        rate = self.env.flaky.get(tool, 0.0)
        if rate and self.rng.random() < rate:
            raise ToolTransientError(f"{tool}: upstream returned 503 Service Unavailable")

    # --- data access ----------------------------------------------------------------------------

    def one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.conn.execute(sql, params).fetchall()

    def execute(self, sql: str, *params: Any) -> None:
        self.conn.execute(sql, params)

    def next_id(self, table: str, prefix: str) -> str:
        row = self.one(f"SELECT COUNT(*) AS n FROM {table}")
        return f"{prefix}-{(row['n'] if row else 0) + 1:04d}"

    @contextmanager
    def transaction(self) -> Iterator[World]:
        """A savepoint: everything inside commits together or not at all."""
        name = f"sp{self._depth}"
        self._depth += 1
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def record_effect(
        self,
        tool: str,
        args: dict[str, Any],
        *,
        action: str = "apply",
        call_id: str = "",
        key: str | None = None,
        result: Any = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO effects (t, tool, action, call_id, idempotency_key, args, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.now(),
                tool,
                action,
                call_id,
                key,
                orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode(),
                None if result is None else orjson.dumps(result).decode(),
            ),
        )

    def replay(self, tool: str, key: str | None) -> Any:
        """The result of an earlier ``tool`` effect with idempotency ``key``, or None."""
        if key is None:
            return None
        row = self.one(
            "SELECT result FROM effects WHERE tool = ? AND idempotency_key = ? AND action = 'apply' LIMIT 1", tool, key
        )
        return orjson.loads(row["result"]) if row and row["result"] is not None else None

    def effects(self) -> list[dict[str, Any]]:
        return self.all("SELECT * FROM effects ORDER BY seq")

    # --- patches and snapshots ------------------------------------------------------------------

    def apply_patch(self, patch: dict[str, list[dict[str, Any]]]) -> None:
        """Merge rows by id: update the given fields of existing rows, insert new complete rows."""
        with self.transaction():
            for table, rows in patch.items():
                for row in rows:
                    existing = self.one(f"SELECT * FROM {table} WHERE id = ?", row["id"])
                    if existing is None:
                        full = self.schema.tables[table].model_validate(row).model_dump()
                        cols = ", ".join(full)
                        self.execute(
                            f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(full))})", *full.values()
                        )
                    else:
                        merged = self.schema.tables[table].model_validate({**existing, **row}).model_dump()
                        sets = ", ".join(f"{c} = ?" for c in merged if c != "id")
                        self.execute(
                            f"UPDATE {table} SET {sets} WHERE id = ?",
                            *[v for c, v in merged.items() if c != "id"],
                            row["id"],
                        )

    def rows(self, ignore: Iterable[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """The state tables' rows as they are stored: tuples of the compared columns (all but ``ignore``'s, by
        default the volatile ones), by id, unrounded.

        Equal rows make equal snapshots, and reading them costs a third of a snapshot (measured on the support
        world: ~88 against 276–320 µs), so grading compares these first and makes a snapshot (:func:`snapshot_of`
        the same rows) only of a world that differs, where float noise may still compare equal once rounded."""
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: no dict per row
        return {table: cursor.execute(sql).fetchall() for table, _, sql in self.schema.state_queries(ignore)}

    def snapshot(self, ignore: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """The comparable end state: every state table, rows sorted by id, volatile columns dropped."""
        return snapshot_of(self.rows(ignore), self.schema, ignore)

    def close(self) -> None:
        conn, self.conn = self.conn, _CLOSED
        if conn is _CLOSED:
            return
        if self._lender is not None:
            self._lender.take_back(conn)
        else:
            conn.close()


def snapshot_of(
    rows: dict[str, list[tuple[Any, ...]]], schema: WorldSchema, ignore: Iterable[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """:meth:`World.rows` (read with the same ``ignore``) as a snapshot: each row a dict of its columns, floats
    rounded to cents."""
    return {
        table: [
            {c: (round(v, 2) if isinstance(v, float) else v) for c, v in zip(cols, r, strict=True)} for r in rows[table]
        ]
        for table, cols, _ in schema.state_queries(ignore)
    }


def remove_world_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
