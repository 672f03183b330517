"""Memory Manager: per-user and per-session context, persisted in SQLite.

On admission it loads the user's most recent exchanges (across sessions) for the planner's
prompt; on response it saves the new exchange. The default database is in memory; a run
directory gets its own file so a run's memory can be inspected afterwards.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True, frozen=True)
class MemoryItem:
    session_id: str
    role: str
    content: str


class MemoryManager:
    def __init__(self, path: str | Path = ":memory:", *, max_items: int = 6) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = OFF;
            CREATE TABLE IF NOT EXISTS memory (
                id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, session_id TEXT NOT NULL,
                t REAL NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS memory_user ON memory (user_id, id);
            """
        )
        self.max_items = max_items

    def load(self, user_id: str, session_id: str) -> list[MemoryItem]:
        rows = self.conn.execute(
            "SELECT session_id, role, content FROM memory WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, self.max_items),
        ).fetchall()
        return [MemoryItem(*r) for r in reversed(rows)]

    def save(self, user_id: str, session_id: str, t: float, items: list[tuple[str, str]]) -> int:
        self.conn.executemany(
            "INSERT INTO memory (user_id, session_id, t, role, content) VALUES (?, ?, ?, ?, ?)",
            [(user_id, session_id, t, role, content) for role, content in items],
        )
        return len(items)

    def close(self) -> None:
        self.conn.close()
