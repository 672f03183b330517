"""The audit log: one row for every permission decision and every tool execution, in SQLite.

It is written by the agent as it decides (the gate's checks, the sandbox's executions), not
reconstructed from the trace afterwards, so it is an independent record a reviewer can reconcile
against the trace: a tool execution without an audit row is a bug the tests look for. Arguments
are stored with the tool's redacted fields masked. Rows are buffered and committed in batches (a
row per tool call would otherwise cost a commit each: issue 5's throughput target).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    run_id TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,          -- 'permission' | 'execution'
    tool TEXT NOT NULL,
    call_id TEXT,
    decision TEXT,               -- permission: allow | deny | ask | approved | rejected | expired
    reason TEXT,
    args TEXT,                   -- JSON, redacted fields masked
    outcome TEXT,                -- execution: ok | error type
    attempt INTEGER
);
"""
# Built when the log is read or closed, not maintained row by row while the agent writes.
_INDEX = "CREATE INDEX IF NOT EXISTS audit_episode ON audit (episode_id, id)"

# One statement for both kinds of row, so a batch keeps its order in one executemany. ?4 is 1 for a
# permission row and 0 for an execution row; ?7 and ?8 are the kind's own two values, (decision, reason)
# of a permission and (outcome, attempt) of an execution, and the CASEs put them in their columns and leave
# the other kind's NULL. What a row costs in Python's sqlite3 is mostly binding: None goes through its
# adapter lookup and text is copied, so a row binds no None, its kind as an integer, and the run id, the
# same on every row, is written into the statement (AuditLog.__init__). Measured on support-5 rows, JSON and
# Python included: 3.1 -> 2.2 µs a row.
_INSERT = (
    "INSERT INTO audit (t, run_id, episode_id, user_id, kind, tool, call_id, decision, reason, args, outcome, attempt)"
    " VALUES (?1, {run_id}, ?2, ?3, CASE ?4 WHEN 1 THEN 'permission' ELSE 'execution' END, ?5, ?6,"
    " CASE ?4 WHEN 1 THEN ?7 END, CASE ?4 WHEN 1 THEN ?8 END,"
    " ?9,"
    " CASE ?4 WHEN 0 THEN ?7 END, CASE ?4 WHEN 0 THEN ?8 END)"
)


def redact(args: dict[str, Any] | None, fields: frozenset[str] | set[str]) -> dict[str, Any] | None:
    if args is None or not fields:
        return args
    return {k: ("***" if k in fields else v) for k, v in args.items()}


class AuditLog:
    def __init__(self, path: str | Path = ":memory:", *, run_id: str = "", batch: int = 256) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;" + SCHEMA)
        self.run_id = run_id
        self._insert = _INSERT.format(run_id=_sql_text(run_id))
        self.batch = batch
        self._pending: list[tuple[Any, ...]] = []

    def permission(
        self,
        t: float,
        episode_id: str,
        user_id: str,
        tool: str,
        call_id: str | None,
        decision: str,
        reason: str,
        args: dict[str, Any] | None,
    ) -> None:
        self._add((t, episode_id, user_id, 1, tool, call_id, decision, reason, _json(args)))

    def execution(
        self,
        t: float,
        episode_id: str,
        user_id: str,
        tool: str,
        call_id: str,
        attempt: int,
        outcome: str,
        args: dict[str, Any] | None,
    ) -> None:
        self._add((t, episode_id, user_id, 0, tool, call_id, outcome, attempt, _json(args)))

    def _add(self, row: tuple[Any, ...]) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany(self._insert, self._pending)
            self._pending.clear()

    def forget_episode(self, episode_id: str) -> None:
        """Drop an interrupted episode's rows before it runs again (a resumed run)."""
        self.flush()
        self.conn.execute("DELETE FROM audit WHERE episode_id = ?", (episode_id,))

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Audit rows (flushed first), optionally filtered by column equality, in order."""
        self.flush()
        self.conn.execute(_INDEX)
        clause = " AND ".join(f"{k} = ?" for k in where)
        cursor = self.conn.execute(
            f"SELECT * FROM audit {'WHERE ' + clause if clause else ''} ORDER BY id", tuple(where.values())
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def close(self) -> None:
        self.flush()
        self.conn.execute(_INDEX)
        self.conn.close()


def _sql_text(value: str) -> str:
    """``value`` as an SQL string expression (a literal; a NUL, which a literal cannot hold, as char(0))."""
    return "'" + value.replace("'", "''").replace("\x00", "' || char(0) || '") + "'"


def _json(args: dict[str, Any] | None) -> str | None:
    return None if args is None else orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()
