"""The audit log: one row for every permission decision, every tool execution and every refused request, in SQLite.

It is written by the agent as it decides (the gate's checks, the sandbox's executions), not
reconstructed from the trace afterwards, so it is an independent record a reviewer can reconcile
against the trace: a tool execution without an audit row is a bug the tests look for. Arguments
are stored with the tool's redacted fields masked. Decisions are buffered and committed in batches,
a run of one episode's decisions to a stored row (see ``SCHEMA``): issue 5's throughput target.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from agentlab.errors import InputError

# The log is stored as *segments*: one row holds a run of consecutive decisions of one episode, as a JSON array
# with one array per decision, and the view ``audit`` expands them into one row per decision. Readers (``rows()``,
# ``agentlab audit``, plain SQL) only ever see the view. Why: in Python's sqlite3 a row costs ~1.5 µs to bind and
# insert however few bytes it holds, and a guarded support-5 episode makes ten decisions. Switching the audit log
# off in that benchmark saved 31 µs an episode with a row per decision and saves 15 µs with segments. Reading
# pays instead: every column of the view is parsed out of the JSON, which is fine for a log that is written by
# the thousand per second and read by a person or a test.
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_segment (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    records TEXT NOT NULL  -- JSON: [[t, user_id, kind, tool, call_id, decision, reason, args, outcome, attempt], ...]
);
CREATE VIEW IF NOT EXISTS audit AS
SELECT
    row_number() OVER (ORDER BY s.id, r.key) AS id,
    json_extract(r.value, '$[0]') AS t,
    s.run_id AS run_id,
    s.episode_id AS episode_id,
    json_extract(r.value, '$[1]') AS user_id,
    json_extract(r.value, '$[2]') AS kind,          -- 'permission' | 'execution' | 'request'
    json_extract(r.value, '$[3]') AS tool,          -- NULL on a 'request' row
    json_extract(r.value, '$[4]') AS call_id,
    json_extract(r.value, '$[5]') AS decision,      -- permission: allow | deny | ask | approved | rejected | expired;
                                                    -- request: refused
    json_extract(r.value, '$[6]') AS reason,        -- request: '<admission|budget|guardrail|empty>: why'
    json_extract(r.value, '$[7]') AS args,          -- JSON, redacted fields masked
    json_extract(r.value, '$[8]') AS outcome,       -- execution: ok | error type
    json_extract(r.value, '$[9]') AS attempt
FROM audit_segment AS s, json_each(s.records) AS r;
"""

_DUMPS = orjson.dumps
_SORTED = orjson.OPT_SORT_KEYS  # arguments are logged with their keys sorted: the same call, the same text


def redact(args: dict[str, Any] | None, fields: frozenset[str] | set[str]) -> dict[str, Any] | None:
    if args is None or not fields:
        return args
    return {k: ("***" if k in fields else v) for k, v in args.items()}


class AuditLog:
    """Append-only: :meth:`permission`, :meth:`execution` and :meth:`request` record a decision; rows are
    committed every ``batch`` decisions, on :meth:`flush` (a checkpoint) and on :meth:`close`."""

    def __init__(self, path: str | Path = ":memory:", *, run_id: str = "", batch: int = 256) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        legacy = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()
        if legacy is not None:
            self.conn.close()
            raise InputError(
                self.path, "table audit", "an audit log in an older layout (one row per decision): run again"
            )
        self.conn.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;" + SCHEMA)
        self.run_id = run_id
        # The run id, the same on every segment, is written into the statement rather than bound each time.
        self._insert = f"INSERT INTO audit_segment (run_id, episode_id, records) VALUES ({_sql_text(run_id)}, ?, ?)"
        self.batch = batch
        self._episode: str | None = None  # the episode of the open segment
        self._open: list[bytes] = []  # its decisions, each already JSON
        self._closed: list[tuple[str, str]] = []  # (episode_id, JSON array) segments waiting for the next commit
        self._count = 0  # decisions not yet committed

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
        self._add(episode_id, (t, user_id, "permission", tool, call_id, decision, reason, args, None, None))

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
        self._add(episode_id, (t, user_id, "execution", tool, call_id, None, None, args, outcome, attempt))

    def request(self, t: float, episode_id: str, user_id: str, stage: str, reason: str) -> None:
        """A request refused before it ran (``stage``: admission, budget, guardrail or empty): a reviewer sees
        every refusal in the log, not only the refused tool calls."""
        self._add(episode_id, (t, user_id, "request", None, None, "refused", f"{stage}: {reason}", None, None, None))

    def _add(self, episode_id: str, record: tuple[Any, ...]) -> None:
        # Serialised now, not at commit: the log holds the arguments as they were when the decision was made.
        if episode_id != self._episode:
            self._close_segment()
            self._episode = episode_id
        self._open.append(_DUMPS(record, option=_SORTED))
        self._count += 1
        if self._count >= self.batch:
            self.flush()

    def _close_segment(self) -> None:
        if self._open:
            self._closed.append((self._episode, (b"[" + b",".join(self._open) + b"]").decode()))  # type: ignore[arg-type]
            self._open.clear()

    def flush(self) -> None:
        self._close_segment()
        if self._closed:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany(self._insert, self._closed)
            self._closed.clear()
        self._count = 0

    def forget_episode(self, episode_id: str) -> None:
        """Drop an interrupted episode's rows before it runs again (a resumed run)."""
        self.flush()
        self.conn.execute("DELETE FROM audit_segment WHERE episode_id = ?", (episode_id,))

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Audit rows, one per decision (flushed first), optionally filtered by column equality, in order."""
        self.flush()
        unknown = set(where) - set(COLUMNS)
        if unknown:
            raise ValueError(f"no audit column {', '.join(sorted(unknown))}; columns: {', '.join(COLUMNS)}")
        clause = " AND ".join(f"{k} = ?" for k in where)
        cursor = self.conn.execute(
            f"SELECT * FROM audit {'WHERE ' + clause if clause else ''} ORDER BY id", tuple(where.values())
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def close(self) -> None:
        self.flush()
        self.conn.close()


COLUMNS = (
    "id",
    "t",
    "run_id",
    "episode_id",
    "user_id",
    "kind",
    "tool",
    "call_id",
    "decision",
    "reason",
    "args",
    "outcome",
    "attempt",
)


def _sql_text(value: str) -> str:
    """``value`` as an SQL string expression (a literal; a NUL, which a literal cannot hold, as char(0))."""
    return "'" + value.replace("'", "''").replace("\x00", "' || char(0) || '") + "'"
