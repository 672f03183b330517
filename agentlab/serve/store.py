"""The served requests, durable in SQLite: the idempotency keys and the at-least-once queue.

Why SQLite: a request must outlive the process that accepted it. A POST is written here before it is
answered, under a UNIQUE idempotency key, so a retried POST finds its first request instead of
making a second one; and a server killed mid-request finds it ``queued`` or ``running`` on restart
and runs it again (its world file's journal then answers the calls that already took effect, so no
side effect happens twice: :meth:`agentlab.world.store.World.persisted`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    body_digest TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,            -- queued | running | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    created_wall REAL NOT NULL,
    deadline_wall REAL NOT NULL,
    finished_wall REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS requests_open ON requests(state, created_wall);
"""


@dataclass
class StoredRequest:
    id: str
    idempotency_key: str
    user_id: str
    body: dict[str, Any]
    state: str
    attempts: int
    created_wall: float
    deadline_wall: float
    finished_wall: float | None
    result: dict[str, Any] | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "user_id": self.user_id,
            "state": self.state,
            "attempts": self.attempts,
            "request": self.body,
            "result": self.result,
        }


class KeyReused(ValueError):
    """The idempotency key was used before for a different request body."""


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _key_id(key: str) -> str:
    """A keyed request's id, from its idempotency key. A request's simulated randomness (model, world, retry
    jitter) is drawn by its id, so a keyed request draws the same numbers on any server started with the same
    options and seed: sent first to a fresh server, it runs as it did (later it also meets the server's state:
    breakers, memory, rate limits). An unkeyed request gets a random id."""
    return hashlib.blake2b(key.encode(), digest_size=8, person=b"agentlab-req").hexdigest()


class RequestStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(_SCHEMA)

    def _row(self, row: tuple[Any, ...] | None) -> StoredRequest | None:
        if row is None:
            return None
        rid, key, user, body, state, attempts, created, deadline, finished, result = row
        return StoredRequest(
            rid,
            key,
            user,
            orjson.loads(body),
            state,
            attempts,
            created,
            deadline,
            finished,
            orjson.loads(result) if result else None,
        )

    _COLUMNS = "id, idempotency_key, user_id, body, state, attempts, created_wall, deadline_wall, finished_wall, result"

    def get(self, request_id: str) -> StoredRequest | None:
        row = self.conn.execute(f"SELECT {self._COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return self._row(row)

    def by_key(self, key: str) -> StoredRequest | None:
        row = self.conn.execute(f"SELECT {self._COLUMNS} FROM requests WHERE idempotency_key = ?", (key,)).fetchone()
        return self._row(row)

    def create(
        self, key: str | None, user_id: str, body: dict[str, Any], now: float, deadline: float
    ) -> tuple[StoredRequest, bool]:
        """Store a new request, or return the one this key already made (``created`` False). One statement:
        two concurrent POSTs with one key cannot both insert."""
        body_digest = digest(body)
        rid = "req-" + (_key_id(key) if key else uuid.uuid4().hex[:16])
        key = key or rid
        inserted = self.conn.execute(
            "INSERT INTO requests (id, idempotency_key, body_digest, user_id, body, state, created_wall, deadline_wall)"
            " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT(idempotency_key) DO NOTHING",
            (rid, key, body_digest, user_id, orjson.dumps(body).decode(), now, deadline),
        ).rowcount
        if not inserted:
            first = self.conn.execute("SELECT body_digest FROM requests WHERE idempotency_key = ?", (key,)).fetchone()
            if first[0] != body_digest:
                raise KeyReused(key)
        stored = self.by_key(key)
        assert stored is not None
        return stored, bool(inserted)

    def forget(self, request_id: str) -> None:
        """Drop a request admission refused after storing it (it never ran; its key may be used again)."""
        self.conn.execute("DELETE FROM requests WHERE id = ? AND state = 'queued' AND attempts = 0", (request_id,))

    def start(self, request_id: str) -> int:
        self.conn.execute("UPDATE requests SET state = 'running', attempts = attempts + 1 WHERE id = ?", (request_id,))
        return int(self.conn.execute("SELECT attempts FROM requests WHERE id = ?", (request_id,)).fetchone()[0])

    def finish(self, request_id: str, state: str, result: dict[str, Any], now: float) -> None:
        self.conn.execute(
            "UPDATE requests SET state = ?, result = ?, finished_wall = ? WHERE id = ?",
            (state, orjson.dumps(result).decode(), now, request_id),
        )

    def unfinished(self) -> list[StoredRequest]:
        """Requests a killed server accepted and did not finish, oldest first (they run again on start)."""
        rows = self.conn.execute(
            f"SELECT {self._COLUMNS} FROM requests WHERE state IN ('queued', 'running') ORDER BY created_wall"
        ).fetchall()
        return [r for row in rows if (r := self._row(row)) is not None]

    def all(self) -> list[StoredRequest]:
        rows = self.conn.execute(f"SELECT {self._COLUMNS} FROM requests ORDER BY created_wall").fetchall()
        return [r for row in rows if (r := self._row(row)) is not None]

    def close(self) -> None:
        self.conn.close()
