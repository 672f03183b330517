"""Episode-boundary checkpoints of a run, so a killed run resumes where it stopped.

The checkpoint lives in the run's SQLite file beside the Memory Manager's table, so the memory
rows of an episode and the checkpoint that says "this episode is done" commit in one transaction:
a kill at any instant leaves either both or neither. It records what the next episode's behaviour
depends on: the virtual time, the trace's byte offset and sequence number, the circuit breakers and
the fault injector's run counters. Everything else an episode uses is derived from the seed and the
episode's id, so an episode re-run from its start behaves exactly as it did the first time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from agentlab.components.memory import MemoryManager


@dataclass(frozen=True)
class Checkpoint:
    next_episode: int  # index (in epoch-major order) of the first episode not yet finished
    t: float
    trace_offset: int
    seq: int
    state: dict[str, Any]
    resumes: int


class RunCheckpoints:
    def __init__(self, memory: MemoryManager) -> None:
        self.memory = memory
        self.conn: sqlite3.Connection = memory.conn
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS run_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), next_episode INTEGER,"
            " t REAL, trace_offset INTEGER, seq INTEGER, state TEXT, resumes INTEGER)"
        )

    def save(self, next_episode: int, t: float, trace_offset: int, seq: int, state: dict[str, Any],
             resumes: int) -> None:  # fmt: skip
        with self.conn:
            self.conn.execute("BEGIN")
            self.memory.write_pending()
            self.conn.execute(
                "INSERT OR REPLACE INTO run_checkpoint VALUES (1, ?, ?, ?, ?, ?, ?)",
                (next_episode, t, trace_offset, seq, orjson.dumps(state).decode(), resumes),
            )

    def load(self) -> Checkpoint | None:
        row = self.conn.execute(
            "SELECT next_episode, t, trace_offset, seq, state, resumes FROM run_checkpoint WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5])
