"""Sweeps: run a grid of configurations and get one row per run, from each run's summary.

The notebooks' fault-rate and policy comparisons are sweeps; so are users' own. Each run is an
ordinary run directory under ``out_root`` (so any one can be opened with ``load_run``), and the
table is built from their ``summary.json`` files — which are computed from their traces.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.faults.plan import Fault, FaultPlan
from agentlab.sim.runner import RunOptions, run_suite

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


def sweep(
    suite: str,
    *,
    out_root: str | Path,
    fault_plans: Mapping[str, FaultPlan | Fault | str | None] | None = None,
    resilience: Iterable[bool] = (True,),
    seeds: Iterable[int] = (0,),
    **options: Any,
) -> pd.DataFrame:
    """Run ``suite`` for every (fault plan, resilience, seed); ``options`` go to every :class:`RunOptions`."""
    plans = dict(fault_plans or {"none": None})
    rows = []
    for (name, plan), res, seed in itertools.product(plans.items(), resilience, seeds):
        label = f"{name}-{'on' if res else 'off'}-s{seed}"
        result = run_suite(
            RunOptions(
                suite=suite,
                faults=plan,
                resilience=res,
                seed=seed,
                out=str(Path(out_root) / label),
                progress=False,
                **options,
            )
        )
        s = result.summary
        rows.append(
            {
                "config": label,
                "fault_plan": name,
                "resilience": res,
                "seed": seed,
                "episodes": s["episodes"],
                "success_rate": s["success_rate"],
                "pass_hat_k_max": s["pass_hat_k"][max(s["pass_hat_k"], key=int)],
                "total_cost_usd": s["total_cost_usd"],
                "retries": s["retries"],
                "breaker_opens": s["breaker_opens"],
                "degraded_episodes": s["degraded_episodes"],
                "duplicate_side_effects": s["duplicate_side_effects"],
                "run_dir": str(result.run_dir),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
