"""Sweeps: a grid of run configurations, run in-process, on a process pool or on Dask, merged into Parquet.

``agentlab sweep SPEC.yaml [--workers N | --in-process | --dask ADDR|local:N]`` from the shell, or::

    from agentlab.sweeps import ProcessPool, run_sweep

    result = run_sweep("fixtures/sweeps/reliability.yaml", executor=ProcessPool(2))
    result.frame  # one row per cell: axes, success, pass^k, cost, breakers, ...

The merged results are byte-identical for any executor and worker count: determinism belongs to the
cell (a run, :mod:`agentlab.sweeps.work`), never to the scheduler.
"""

from agentlab.sweeps.executors import Dask, Executor, InProcess, ProcessPool, executor_for
from agentlab.sweeps.runner import SweepResult, load_sweep, run_sweep
from agentlab.sweeps.spec import Cell, FaultAxis, SweepSpec, cells, load_sweep_spec

__all__ = [
    "Cell",
    "Dask",
    "Executor",
    "FaultAxis",
    "InProcess",
    "ProcessPool",
    "SweepResult",
    "SweepSpec",
    "cells",
    "executor_for",
    "load_sweep",
    "load_sweep_spec",
    "run_sweep",
]
