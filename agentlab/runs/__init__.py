"""Run orchestration: what a run is asked to do, checking its inputs, assembling the agent, and running a suite's
episodes into a run directory.

It sits above the agent and below the front ends (sweeps, serve, chaos testing, the CLI); the simulation kernel it
runs on (virtual clock, loop, seeded RNG) is :mod:`agentlab.sim`, which imports nothing from here.

================  =================================================================================
``options``       :class:`RunOptions` (the CLI's ``agentlab run`` flags are generated from its fields)
``backends``      the table of model backends (``--llm``) and their checks
``planning``      load and check every input, compute the run id (nothing written yet)
``assembly``      build the :class:`~agentlab.agent.AgentSystem` for a suite and its options
``episodes``      one scenario as one graded episode (also what ``agentlab serve`` runs per request)
``runner``        :func:`run_suite`: the episode loop, checkpoints, the run directory, the summary
``grading``       the gold plan's end state; repeated and unauthorized side effects
``checkpoint``    resume points, committed with the memory store
``inputs``        input files loaded once per content
``rundir``        the run directory's marker and lock
================  =================================================================================

The public names below are imported on first use, so ``import agentlab.runs.options`` (the CLI, a sweep worker)
does not pay for the agent, pandas and the SDK stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentlab.runs.options import RunOptions, resume_options
    from agentlab.runs.planning import plan_run
    from agentlab.runs.runner import RunResult, run_on_virtual_loop, run_suite

_PUBLIC = {
    "RunOptions": "agentlab.runs.options",
    "resume_options": "agentlab.runs.options",
    "plan_run": "agentlab.runs.planning",
    "RunResult": "agentlab.runs.runner",
    "run_on_virtual_loop": "agentlab.runs.runner",
    "run_suite": "agentlab.runs.runner",
}
__all__ = ["RunOptions", "RunResult", "plan_run", "resume_options", "run_on_virtual_loop", "run_suite"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'agentlab.runs' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
