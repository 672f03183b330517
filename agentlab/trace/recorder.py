"""Collects events and writes them as JSONL.

A :class:`Recorder` belongs to a run; an :class:`EpisodeTrace` stamps events with the run id,
episode id, simulated time and a run-wide sequence number. Events are buffered and written in
batches, so tracing costs a serialisation, not a syscall, per event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from agentlab.trace.events import Event

_DUMPS = orjson.dumps
_OPTS = orjson.OPT_APPEND_NEWLINE


class Recorder:
    """Buffers events for a run and appends them to a JSONL file (or keeps them in memory)."""

    def __init__(self, run_id: str, path: Path | None = None, *, flush_every: int = 4096) -> None:
        self.run_id = run_id
        self.path = path
        self._fh: IO[bytes] | None = open(path, "ab") if path is not None else None  # noqa: SIM115
        self._buffer: list[Event] = []
        self._flush_every = flush_every
        self._seq = 0
        self.listeners: list[Callable[[Event], None]] = []

    def record(self, event: Event) -> None:
        self._seq += 1
        event.seq = self._seq
        event.run_id = self.run_id
        self._buffer.append(event)
        for listener in self.listeners:
            listener(event)
        if self._fh is not None and len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if self._fh is not None and self._buffer:
            self._fh.write(b"".join([_DUMPS(e, option=_OPTS) for e in self._buffer]))
            self._buffer.clear()

    @property
    def events(self) -> list[Event]:
        """Unflushed events (all of them when recording in memory)."""
        return self._buffer

    def close(self) -> None:
        self.flush()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EpisodeTrace:
    """The per-episode handle components emit through."""

    __slots__ = ("_clock", "_recorder", "episode_id")

    def __init__(self, recorder: Recorder, episode_id: str, clock: Any) -> None:
        self._recorder = recorder
        self.episode_id = episode_id
        self._clock = clock

    def emit(self, event: Event) -> None:
        event.t = self._clock.now()
        event.episode_id = self.episode_id
        self._recorder.record(event)


def event_to_dict(event: Event) -> dict[str, Any]:
    return orjson.loads(_DUMPS(event))
