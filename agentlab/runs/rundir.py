"""Who may write a run directory, and when.

Two rules keep a run directory honest:

* **One writer.** A run holds an OS lock (``fcntl.flock``) on ``DIR/run.lock`` from before it writes anything
  until it has finished, so a second ``agentlab run`` (or ``--resume``) into the same directory refuses at once
  instead of interleaving its files with the first one's. The lock belongs to the open file, so a killed run's
  lock goes with its process and ``--resume`` can take it.
* **A finished run is kept.** A directory holding ``summary.json`` is replaced only with ``force``
  (``agentlab run --force``); the check happens before anything is written, so a refused run leaves the
  directory byte-for-byte as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from agentlab.errors import InputError

RUN_MARKER = "run.json"
LOCK_FILE = "run.lock"


def check_out_dir(path: Path, *, force: bool) -> None:
    """Refuse an output path a new run must not write into; reads only (nothing is created or changed)."""
    if not path.exists():
        return
    if not path.is_dir():
        raise InputError(str(path), "", "output path exists and is not a directory")
    contents = [p.name for p in path.iterdir() if p.name != LOCK_FILE]
    if contents and RUN_MARKER not in contents:
        raise InputError(str(path), "", "output directory is not empty and is not an agentlab run")
    if "summary.json" in contents and not force:
        raise InputError(str(path), "", "holds a finished run; pass --force (Python: force=True) to replace it")


class RunDirLock:
    """An exclusive, non-blocking lock on ``DIR/run.lock``, held while a run writes ``DIR``.

    The lock file is removed on release (while still locked). A run that opened the file just before it was
    removed would lock a file no longer in the directory, so after locking it checks that the path still names
    the file it locked, and otherwise tries again with the new one.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InputError(
                    str(self.path.parent), "", "another agentlab run is writing this directory (it holds run.lock)"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)  # the previous holder removed it as we opened it: lock the new file instead
        raise InputError(str(self.path.parent), "", "could not lock run.lock (other runs keep replacing it)")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a read-only or vanished directory: the lock ends with the descriptor
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
