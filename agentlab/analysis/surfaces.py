"""Reliability surfaces: charts of a sweep's results (``results.parquet``, one row per cell).

Success and pass^k as functions of fault intensity, per routing policy, with the resilience layer on
and off, as the ReliabilityBench paper draws them; and what each success costs across the grid.
Seeds are averaged (a cell's figures are over its episodes; the mean over seeds is over cells).
Each function returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def surface(
    frame: pd.DataFrame, value: str, *, x: str = "fault_rate", by: Sequence[str] = ("routing", "resilience")
) -> pd.DataFrame:
    """``value`` averaged over the other axes (seeds, mostly): index ``x``, one column per ``by`` combination."""
    return frame.groupby([x, *by])[value].mean().unstack(list(by)).sort_index()


def reliability_heatmap(frame: pd.DataFrame, value: str = "success_rate", *, x: str = "fault_rate") -> Figure:
    """One heatmap per resilience setting: ``value`` (a share, drawn in %) by routing policy and fault rate."""
    settings = sorted(frame["resilience"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 0.5 * frame["routing"].nunique() + 2.2))
    axes = np.atleast_1d(axes)
    for n, (ax, resilient) in enumerate(zip(axes, settings, strict=True)):
        table = frame[frame["resilience"] == resilient].groupby(["routing", x])[value].mean().unstack(x) * 100
        image = ax.imshow(table.to_numpy(), vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(table.shape[1]), [f"{v * 100:g}" for v in table.columns])
        ax.set_yticks(range(table.shape[0]), table.index if n == 0 else [])
        for (i, j), shown in np.ndenumerate(table.to_numpy()):
            colour = "white" if shown >= 85 or shown < 15 else "black"  # readable on the darkest greens and reds
            ax.text(j, i, f"{shown:.0f}", ha="center", va="center", fontsize="small", color=colour)
        ax.set_xlabel("faults injected (% of calls)")
        ax.set_title(f"{_label(value)} (%), resilience {'on' if resilient else 'off'}")
    axes[0].set_ylabel("routing policy")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"{_label(value)} (%)")
    return fig


def reliability_curves(frame: pd.DataFrame, *, k: int | None = None, x: str = "fault_rate") -> Figure:
    """Success rate and pass^k against fault rate: a line per routing policy, solid with resilience, dashed without."""
    k = k or int(frame["epochs"].max())
    fig, (ax_s, ax_p) = plt.subplots(1, 2, figsize=(11.5, 4.2), sharex=True, sharey=True)
    for ax, value in ((ax_s, "success_rate"), (ax_p, f"pass_hat_{k}")):
        _policy_lines(ax, surface(frame, value, x=x) * 100, _colours(frame))
        ax.set(xlabel="faults injected (% of calls)", ylabel=f"{_label(value)} (%)", ylim=(0, 102))
        ax.set_title(f"{_label(value)} vs fault rate")
        ax.grid(alpha=0.3)
    ax_p.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def cost_per_success_chart(frame: pd.DataFrame, *, x: str = "fault_rate") -> Figure:
    """Cost per successful episode (USD) against fault rate, per routing policy and resilience setting."""
    table = surface(frame.assign(cost=frame["total_cost_usd"]), "cost", x=x)
    successes = surface(frame.assign(ok=frame["success_rate"] * frame["episodes"]), "ok", x=x)
    per_success = table / successes.replace(0, np.nan)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    _policy_lines(ax, per_success, _colours(frame))
    ax.set_yscale("log")
    ax.set(xlabel="faults injected (% of calls)", ylabel="cost per successful episode (USD, log scale)")
    ax.set_title("What a success costs, across the grid")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def _colours(frame: pd.DataFrame) -> dict[str, str]:
    """One colour per routing policy, the same in every chart of a sweep."""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {routing: palette[i % len(palette)] for i, routing in enumerate(sorted(frame["routing"].unique()))}


def _policy_lines(ax: plt.Axes, table: pd.DataFrame, colours: dict[str, str]) -> None:
    """A line per (routing, resilience) column against fault rate in %: solid with resilience, dashed without."""
    for routing, resilient in table.columns:
        ax.plot(
            table.index * 100,
            table[(routing, resilient)],
            "o-" if resilient else "s--",
            color=colours[routing],
            label=f"{routing}, resilience {'on' if resilient else 'off'}",
        )


def _label(value: str) -> str:
    if value.startswith("pass_hat_"):
        return f"pass^{value.removeprefix('pass_hat_')}"
    return value.replace("_", " ")
