"""``sweep(suite, fault_plans=..., ...)``: a quick grid of fault plans × resilience × seeds for one suite.

The short form of :func:`agentlab.sweeps.run_sweep` for a notebook cell: plans are given as Python
objects keyed by whatever names the caller likes (a fault rate, say), and the table keeps those keys.
It runs on the same engine — a sweep directory at ``out_root`` with one ordinary run per cell, resumed
if run again, any executor — and each row comes from that run's summary, computed from its trace.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.faults.plan import Fault, FaultPlan
from agentlab.sweeps import Executor, FaultAxis, SweepSpec, run_sweep
from agentlab.sweeps.spec import slug

COLUMNS = [
    "config",
    "fault_plan",
    "resilience",
    "seed",
    "episodes",
    "success_rate",
    "pass_hat_k_max",
    "total_cost_usd",
    "retries",
    "breaker_opens",
    "degraded_episodes",
    "duplicate_side_effects",
    "run_dir",
]
# Axes a caller may fix through ``options`` (one value each); every other option goes to every run as it is.
_AXIS_OPTIONS = {"epochs": "epochs", "routing": "routing", "tier": "tiers", "strategy": "strategies"}


def sweep(
    suite: str,
    *,
    out_root: str | Path,
    fault_plans: Mapping[Hashable, FaultPlan | Fault | str | None] | None = None,
    resilience: Iterable[bool] = (True,),
    seeds: Iterable[int] = (0,),
    executor: Executor | None = None,
    force: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Run ``suite`` for every (fault plan, resilience, seed); ``options`` go to every run (``epochs=3``, ...).

    ``force``: replace a sweep at ``out_root`` made with other arguments (as :func:`~agentlab.sweeps.run_sweep`)."""
    plans = dict(fault_plans or {"none": None})
    keys = {str(key): key for key in plans}
    axes = {_AXIS_OPTIONS[k]: (options.pop(k),) for k in list(options) if k in _AXIS_OPTIONS}
    spec = SweepSpec(
        name=slug(Path(out_root).name).lstrip("._@=-") or "sweep",
        suites=(str(suite),),
        faults=tuple(FaultAxis(name=str(key), plan=_as_plan(plan)) for key, plan in plans.items()),
        resilience=tuple(resilience),
        seeds=tuple(seeds),
        options=options,
        **axes,
    )
    frame = run_sweep(spec, out=out_root, executor=executor, force=force, progress=False).frame
    k_max = frame["epochs"].map(lambda k: f"pass_hat_{k}")
    return pd.DataFrame(
        {
            "config": frame["label"],
            "fault_plan": frame["fault_plan"].map(keys),
            "resilience": frame["resilience"],
            "seed": frame["seed"],
            "episodes": frame["episodes"],
            "success_rate": frame["success_rate"],
            "pass_hat_k_max": [frame.at[i, column] for i, column in k_max.items()],
            "total_cost_usd": frame["total_cost_usd"],
            "retries": frame["retries"],
            "breaker_opens": frame["breaker_opens"],
            "degraded_episodes": frame["degraded_episodes"],
            "duplicate_side_effects": frame["duplicate_side_effects"],
            "run_dir": [str(Path(out_root) / d) for d in frame["run_dir"]],
        },
        columns=COLUMNS,
    )


def _as_plan(plan: FaultPlan | Fault | str | None) -> FaultPlan | str | None:
    return FaultPlan(faults=(plan,)) if isinstance(plan, Fault) else plan
