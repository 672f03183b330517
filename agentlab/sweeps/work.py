"""The unit of work a sweep hands to a worker: one cell, run as an ordinary run.

A cell is a whole run, not a slice of one: episodes inside a run share state on purpose (breaker
state, the fault injector's counters, day and month budgets carry from one episode to the next, as
in a deployed agent), so splitting a run across workers would change its result. The grid is where
the parallelism is. Each cell is a pure function of its options, so which worker runs it, and when,
cannot change a byte of what it writes.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agentlab.runs.options import RunOptions
from agentlab.runs.rundir import RUN_MARKER
from agentlab.runs.runner import run_suite


@dataclass(frozen=True)
class CellTask:
    """``ship``: run in a scratch folder and send the run directory back as bytes — a cluster worker
    may not share the client's disk."""

    index: int
    options: RunOptions
    ship: bool = False


@dataclass(frozen=True)
class CellDone:
    index: int
    summary: dict[str, Any]
    files: bytes | None = None  # the run directory as a gzipped tar, when shipped


def run_cell(task: CellTask) -> CellDone:
    """Run one cell; in a worker process or in the caller's."""
    if not task.ship:
        return CellDone(task.index, run_suite(task.options).summary)
    scratch = Path(tempfile.mkdtemp(prefix="agentlab-cell-"))
    try:
        result = run_suite(task.options.model_copy(update={"out": str(scratch / "run")}))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted((scratch / "run").iterdir()):
                tar.add(path, arcname=path.name)
        return CellDone(task.index, result.summary, buffer.getvalue())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def install_shipped(done: CellDone, run_dir: Path) -> None:
    """Unpack a shipped cell into ``run_dir``, whole or not at all (unpacked beside it, then renamed)."""
    assert done.files is not None
    incoming = run_dir.with_name(f".incoming-{run_dir.name}")
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(done.files), mode="r:gz") as tar:
        tar.extractall(incoming, filter="data")
    # run.json says where the run lives: here, not the worker's scratch folder.
    marker = incoming / RUN_MARKER
    config = orjson.loads(marker.read_bytes())
    config["out"] = str(run_dir)
    marker.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    shutil.rmtree(run_dir, ignore_errors=True)
    os.replace(incoming, run_dir)
