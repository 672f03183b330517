"""``agentlab bench --workload sweep``: one sweep spec run three ways, throughput compared, results compared.

The same spec runs in this process, on a local pool of ``--workers`` processes, and on a Dask
``LocalCluster`` of as many workers (``--no-dask`` skips it). Each figure is episodes per second of
wall time from the executor's start (a Dask cluster's start included, and also reported apart) to the
merged Parquet written. Every run directory's trace and the merged results of the three are compared byte
for byte: a scheduler that changed one byte would show here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from agentlab.sweeps import Dask, InProcess, ProcessPool, run_sweep
from agentlab.sweeps.executors import Executor


def _outputs(sweep_dir: Path) -> dict[str, bytes]:
    files = {"results.parquet": (sweep_dir / "results.parquet").read_bytes()}
    for events in sorted((sweep_dir / "cells").glob("*/events.jsonl")):
        files[str(events.relative_to(sweep_dir))] = events.read_bytes()
    return files


def _measure(spec: str, executor: Executor, out: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    started = time.perf_counter()
    result = run_sweep(spec, out=out, executor=executor, progress=False)
    total = time.perf_counter() - started
    figures = {
        "executor": f"{result.executor}x{result.workers}",
        "cells": result.cells_run,
        "episodes": result.episodes_run,
        "episodes_per_s": round(result.episodes_per_second, 1),
        "wall_seconds": round(result.wall_seconds, 2),
        "startup_seconds": round(result.startup_seconds, 2),
        # checking every cell's inputs before the start, and reading the results back
        "outside_seconds": round(total - result.wall_seconds, 2),
    }
    return figures, _outputs(out)


def main_sweep(spec: str, workers: int, dask: bool) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    outputs: list[dict[str, bytes]] = []
    executors: list[Executor] = [InProcess(), ProcessPool(workers)]
    if dask:
        executors.append(Dask.local(workers))
    with tempfile.TemporaryDirectory(prefix="agentlab-bench-sweep-") as tmp:
        for i, executor in enumerate(executors):
            figures, files = _measure(spec, executor, Path(tmp) / f"sweep-{i}")
            runs.append(figures)
            outputs.append(files)
    base = runs[0]["episodes_per_s"]
    report: dict[str, Any] = {
        "workload": "sweep",
        "spec": spec,
        "runs": runs,
        "speedup_processes": round(runs[1]["episodes_per_s"] / base, 3),
        "identical": all(o == outputs[0] for o in outputs[1:]),
        "files_compared": len(outputs[0]),
    }
    if dask:
        report["dask_vs_processes"] = round(runs[2]["episodes_per_s"] / runs[1]["episodes_per_s"], 3)
    return report
