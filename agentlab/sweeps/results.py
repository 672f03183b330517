"""A sweep's merged results: one row per cell, from that cell's ``summary.json`` (itself computed from its trace).

Only what the simulation determines goes in: no wall time, no absolute paths. So the Parquet file is
byte-identical whichever executor ran the cells, with however many workers, into whichever folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.sweeps.spec import Cell

AXES = [
    "suite",
    "fault_plan",
    "fault_rate",
    "fault_scale",
    "resilience",
    "routing",
    "tier",
    "strategy",
    "seed",
    "epochs",
]
FIGURES = [
    "episodes",
    "success_rate",
    "total_cost_usd",
    "cost_per_success",
    "cascade_hit_rate",
    "escalations",
    "llm_calls",
    "tool_calls",
    "tool_failures",
    "input_tokens",
    "output_tokens",
    "faults_injected",
    "retries",
    "breaker_opens",
    "degraded_episodes",
    "duplicate_side_effects",
    "unauthorized_tool_calls",
    "sim_seconds",
]


def cell_row(cell: Cell, summary: dict[str, Any]) -> dict[str, Any]:
    """One results row: the cell's axes, its figures, and pass^k for every k its epochs allow."""
    row: dict[str, Any] = {"cell": cell.index, "label": cell.label, **cell.axes}
    if row["tier"] is None:  # the tier file's default, as the run resolved it (None under a routing policy)
        row["tier"] = summary.get("tier")
    if row["routing"] is None:  # every call on one tier: a value of its own, so groupby and pivot keep it
        row["routing"] = "fixed"
    for key in FIGURES:
        value = summary.get(key)
        row[key] = sum(value.values()) if isinstance(value, dict) else value
    for k, value in summary.get("pass_hat_k", {}).items():
        row[f"pass_hat_{k}"] = value
    row["run_id"] = summary.get("run_id")
    row["run_dir"] = f"cells/{cell.dir_name}"
    return row


def results_frame(rows: Iterable[dict[str, Any]], k_max: int) -> pd.DataFrame:
    """Rows in grid order, with fixed columns and dtypes (pass^k past a cell's epochs is NaN)."""
    columns = ["cell", "label", *AXES, *FIGURES, *(f"pass_hat_{k}" for k in range(1, k_max + 1)), "run_id", "run_dir"]
    frame = pd.DataFrame(sorted(rows, key=lambda r: r["cell"]), columns=columns)
    for column in ("fault_rate", "fault_scale", "cost_per_success", "cascade_hit_rate"):
        frame[column] = frame[column].astype("float64")
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
