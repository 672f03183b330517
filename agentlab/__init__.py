"""agentlab: prove that an LLM agent survives production, before 3 AM does.

The package is laid out by architecture:

* :mod:`agentlab.agent` — the production agent, wiring the eight components of
  :mod:`agentlab.components` in one request flow (admit → execute → respond);
* :mod:`agentlab.tools` and :mod:`agentlab.world` — tools and the simulated world they act on;
* :mod:`agentlab.llm` — the model interface, tier profiles and the simulated model;
* :mod:`agentlab.scenarios` — scenario suites;
* :mod:`agentlab.sim` — the simulation kernel: virtual time and seeded randomness;
* :mod:`agentlab.runs` — run orchestration: options, assembling the agent, running a suite's episodes;
* :mod:`agentlab.sweeps` — grids of runs on a process pool or a Dask cluster, merged into Parquet;
* :mod:`agentlab.trace` and :mod:`agentlab.analysis` — events, and the DataFrames and summaries computed from them.

Data flows one way: scenario → agent → events → DataFrame → charts/report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentlab.sweeps import SweepResult

from agentlab.version import __version__

__all__ = ["__version__", "sweep"]


def sweep(spec: Any, **options: Any) -> SweepResult:
    """Run a sweep (a spec YAML path or a :class:`~agentlab.sweeps.SweepSpec`): see :func:`agentlab.sweeps.run_sweep`.

    Imported on first call, so ``import agentlab`` stays light.
    """
    from agentlab.sweeps import run_sweep

    return run_sweep(spec, **options)
