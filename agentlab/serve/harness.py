"""A served agent in a child process on loopback, for the tests and ``agentlab bench --workload serve``.

A real ``agentlab serve`` process (not an in-process app) so that a kill is a real SIGKILL and a
restart really starts from what the first process left on disk.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``agentlab serve SUITE --data DIR ARGS...`` on 127.0.0.1; :meth:`kill` then :meth:`start` to crash-restart."""

    def __init__(self, suite: str, data: Path, *args: str, port: int | None = None) -> None:
        self.suite, self.data, self.args = suite, Path(data), list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.data.parent / f"{self.data.name}.log"

    def start(self, ready_within_s: float = 120.0) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "agentlab",
            "serve",
            self.suite,
            "--port",
            str(self.port),
            "--data",
            str(self.data),
        ]
        self.data.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*cmd, *self.args], stdout=log, stderr=subprocess.STDOUT)
        give_up = time.monotonic() + ready_within_s  # waiting for a real process to listen: setup, not a measure
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agentlab serve exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"agentlab serve did not become ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed that was not already on disk."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
