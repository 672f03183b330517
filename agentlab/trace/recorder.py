"""Collects events and writes them as JSONL.

A :class:`Recorder` belongs to a run and owns the file; events reach it only through an
:class:`EpisodeTrace`, which stamps each with the run id, a run-wide sequence number, the episode id
and simulated time. Run-level events use an episode id of "". Tracing costs one list append per event,
and per batch of 256 events one serialisation (``encode_lines``, in C) and one write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgspec

from agentlab.trace.events import Event

_BATCH_EVENTS = 256  # events per write (~64 KiB): few syscalls, and few enough events to die young


class Recorder:
    """Holds a run's trace file, run id and sequence counter; :class:`EpisodeTrace` writes through it.

    With a path, emitted events wait in a list, and every 256 events are serialised in one call
    (``msgspec``'s ``encode_lines``) and written: one call for a batch costs ~30 % less than one per
    event (measured: 9.6 µs against 14.1 µs for an episode's 33 events). A batch is a few hundred objects
    that die young; buffering thousands cost several microseconds each in allocator churn on this 2-core
    VM (measured: 6.5 µs against 1.5 µs). Emitted events are not changed afterwards, so serialising them
    later writes the same bytes. Without a path, events are kept in memory (``events``) for tests and
    notebooks.
    """

    def __init__(
        self,
        run_id: str,
        path: Path | None = None,
        *,
        resume_at: tuple[int, int] | None = None,
    ) -> None:
        """``resume_at=(offset, seq)`` reopens a trace at a checkpoint: later bytes are cut off."""
        self.run_id = run_id
        self.path = path
        if resume_at is not None and path is not None:
            with open(path, "r+b") as fh:
                fh.truncate(resume_at[0])
        # The batch is serialised into one bytes object: with the file's own (default, 8 KiB) buffer smaller
        # than that, each write goes straight to the OS instead of being copied into a second buffer first.
        self._fh: IO[bytes] | None = open(path, "ab") if path is not None else None  # noqa: SIM115
        self._encode_lines = msgspec.json.Encoder().encode_lines
        self._events: list[Event] = []
        # Where EpisodeTrace.emit appends: the batch waiting to be written, or, in memory, the events themselves.
        self._sink: list[Event] = [] if self._fh is not None else self._events
        self._seq = resume_at[1] if resume_at is not None else 0
        self.listeners: list[Callable[[Event], None]] = []

    def _write_pending(self) -> None:
        assert self._fh is not None
        if self._sink:
            self._fh.write(self._encode_lines(self._sink))
            self._sink.clear()

    def position(self) -> tuple[int, int]:
        """(byte offset, last seq) with everything so far handed to the OS: what a checkpoint records."""
        self.flush()
        return (self._fh.tell() if self._fh is not None else 0), self._seq

    def flush(self) -> None:
        if self._fh is not None:
            self._write_pending()
            self._fh.flush()

    @property
    def events(self) -> list[Event]:
        """The recorded events, when recording in memory."""
        return self._events

    def close(self) -> None:
        if self._fh is not None:
            self._write_pending()
            self._fh.close()
            self._fh = None
            self._sink = self._events

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EpisodeTrace:
    """The per-episode handle components emit through (stamps time and episode id)."""

    __slots__ = ("_recorder", "episode_id", "now")

    def __init__(self, recorder: Recorder, episode_id: str, clock: Any) -> None:
        self._recorder = recorder
        self.now = clock.timer()
        self.episode_id = episode_id

    def emit(self, event: Event) -> None:
        # Stamping and writing happen here, in one place, inline: this runs ~33 times per episode.
        rec = self._recorder
        rec._seq += 1
        event.seq = rec._seq
        event.t = self.now()
        event.run_id = rec.run_id
        event.episode_id = self.episode_id
        if rec.listeners:
            for listener in rec.listeners:
                listener(event)
        sink = rec._sink
        sink.append(event)
        if len(sink) >= _BATCH_EVENTS and rec._fh is not None:
            rec._write_pending()
