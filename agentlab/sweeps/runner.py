"""Run a sweep: every cell of the grid as an ordinary run directory, results merged into Parquet.

The sweep directory::

    sweep.json          the spec and its cells (written first)
    cells/NNNN-label/   one run directory per cell (run.json, events.jsonl, summary.json, ...)
    results.parquet     one row per cell, in grid order (written last, atomically)

A killed sweep resumes by running the same command again: a cell whose directory holds a finished
run (``summary.json``) with the run id the cell asks for is kept, every other cell runs (again, from
scratch: a cell is a few seconds of work at most, so resuming inside one is not worth its state).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from agentlab.errors import InputError
from agentlab.runs.planning import plan_run
from agentlab.runs.rundir import RUN_MARKER
from agentlab.runs.runner import progress_bar
from agentlab.sweeps.executors import Executor, InProcess
from agentlab.sweeps.results import cell_row, results_frame, write_parquet
from agentlab.sweeps.spec import Cell, SweepSpec, cells, load_sweep_spec
from agentlab.sweeps.work import CellTask, install_shipped, run_cell
from agentlab.version import __version__

MANIFEST = "sweep.json"
RESULTS = "results.parquet"


@dataclass
class SweepResult:
    """What a sweep produced. ``frame`` is ``results.parquet`` as a DataFrame."""

    sweep_dir: Path
    frame: pd.DataFrame
    cells_run: int  # by this call
    cells_kept: int  # finished earlier (a resumed sweep)
    episodes_run: int  # by this call
    wall_seconds: float  # this call's, from the executor's start to the results written; never in the results
    startup_seconds: float  # of which the executor's start (a Dask cluster's; a pool's workers start as used)
    executor: str
    workers: int

    @property
    def episodes_per_second(self) -> float:
        return self.episodes_run / self.wall_seconds if self.wall_seconds else 0.0

    def __repr__(self) -> str:
        return (
            f"SweepResult({self.sweep_dir}, cells={len(self.frame)}, run={self.cells_run}, kept={self.cells_kept}, "
            f"episodes_run={self.episodes_run}, executor={self.executor}x{self.workers})"
        )


def run_sweep(
    spec: SweepSpec | str | Path,
    *,
    out: str | Path | None = None,
    executor: Executor | None = None,
    force: bool = False,
    progress: bool = True,
) -> SweepResult:
    """Run every cell of ``spec`` not already finished in ``out`` (default ``runs/sweeps/NAME``).

    ``executor``: :class:`~agentlab.sweeps.executors.InProcess` (default), ``ProcessPool(n)`` or ``Dask(...)``.
    ``force``: replace a sweep directory that holds a different spec (otherwise that is an error).
    Every input of every cell is checked before anything is written.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    executor = executor or InProcess()
    sweep_dir = Path(out or f"runs/sweeps/{spec.name}")
    grid = cells(spec, sweep_dir)
    planned = {cell.index: plan_run(cell.options) for cell in grid}  # every input checked: nothing written yet
    run_ids = {i: p.run_id for i, p in planned.items()}
    episodes = {i: len(p.suite.scenarios) * p.opts.epochs for i, p in planned.items()}
    k_max = max(spec.epochs)

    with _sweep_lock(sweep_dir, spec, grid, run_ids, force=force):
        summaries: dict[int, dict[str, Any]] = {}
        for cell in grid:
            summary = _finished(sweep_dir / "cells" / cell.dir_name, run_ids[cell.index])
            if summary is not None:
                summaries[cell.index] = summary
        todo = [cell for cell in grid if cell.index not in summaries]
        # Largest cells first, so the last ones to finish are small and workers finish together.
        todo.sort(key=lambda c: (-episodes[c.index], c.index))
        tasks = [CellTask(c.index, c.options, ship=executor.ships_files) for c in todo]
        by_index = {cell.index: cell for cell in grid}
        kept = len(summaries)
        kill_after = int(os.environ.get("AGENTLAB_SWEEP_KILL_AFTER_CELLS", "0"))  # crash testing only
        started = time.perf_counter()  # wall time for throughput only; never in the results
        with executor:
            startup = time.perf_counter() - started  # a Dask LocalCluster's start, mostly
            with progress_bar(sum(episodes.values()), spec.name, enabled=progress) as bar:
                bar.update(sum(episodes[i] for i in summaries))
                for done in executor.map(run_cell, tasks):
                    if done.files is not None:  # shipped from a cluster worker's scratch folder
                        install_shipped(done, sweep_dir / "cells" / by_index[done.index].dir_name)
                    summaries[done.index] = done.summary
                    bar.update(episodes[done.index])
                    if kill_after and len(summaries) - kept >= kill_after:
                        os.kill(os.getpid(), signal.SIGKILL)
        rows = (cell_row(by_index[i], s) for i, s in summaries.items())
        write_parquet(results_frame(rows, k_max), sweep_dir / RESULTS)
        wall = time.perf_counter() - started
        frame = load_sweep(sweep_dir)  # the file, read back: the same DataFrame (dtypes too) as a later load_sweep
    return SweepResult(
        sweep_dir=sweep_dir,
        frame=frame,
        cells_run=len(todo),
        cells_kept=kept,
        episodes_run=sum(episodes[c.index] for c in todo),
        wall_seconds=wall,
        startup_seconds=startup,
        executor=executor.name,
        workers=executor.workers,
    )


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """A finished sweep's results (``results.parquet``) as a DataFrame."""
    path = Path(sweep_dir) / RESULTS
    if not path.exists():
        raise InputError(str(sweep_dir), "", f"no {RESULTS}: not a finished sweep (run it again to finish it)")
    return pd.read_parquet(path)


def _finished(run_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The summary of a finished run in ``run_dir`` that is the run the cell asks for, else None."""
    try:
        marker = orjson.loads((run_dir / RUN_MARKER).read_bytes())
        summary: dict[str, Any] = orjson.loads((run_dir / "summary.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return summary if marker.get("run_id") == run_id == summary.get("run_id") else None


@contextmanager
def _sweep_lock(
    sweep_dir: Path, spec: SweepSpec, grid: list[Cell], run_ids: dict[int, str], *, force: bool
) -> Iterator[None]:
    """Claim ``sweep_dir`` for this sweep (one writer at a time) and write its manifest."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise InputError(str(sweep_dir), "", "exists and is not a directory")
    manifest = sweep_dir / MANIFEST
    if sweep_dir.exists() and any(sweep_dir.iterdir()) and not manifest.exists():
        raise InputError(str(sweep_dir), "", "is not empty and is not an agentlab sweep")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = open(sweep_dir / ".lock", "w")  # noqa: SIM115 - held for the whole sweep
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(str(sweep_dir), "", "another sweep is writing to this directory") from None
        if manifest.exists():
            old = orjson.loads(manifest.read_bytes())
            if old.get("digest") != spec.digest():
                if not force:
                    raise InputError(
                        str(sweep_dir), "", "holds a sweep of a different spec; pass --force to replace it"
                    )
                shutil.rmtree(sweep_dir / "cells", ignore_errors=True)
                (sweep_dir / RESULTS).unlink(missing_ok=True)
        (sweep_dir / "cells").mkdir(exist_ok=True)
        body = {
            "name": spec.name,
            "digest": spec.digest(),
            "agentlab_version": __version__,
            "spec": spec.model_dump(mode="json", exclude={"base"}),
            "cells": [{"cell": c.index, "dir": f"cells/{c.dir_name}", "run_id": run_ids[c.index]} for c in grid],
        }
        tmp = manifest.with_name(MANIFEST + ".tmp")
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, manifest)
        yield
    finally:
        lock.close()
