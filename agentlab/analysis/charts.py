"""Charts drawn from a run's DataFrames (never from side counters). Each returns a matplotlib Figure."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter


def category_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per scenario category: episodes, success rate (%), mean cost (USD), mean tool calls."""
    grouped = episodes.groupby("category")
    table = pd.DataFrame(
        {
            "episodes": grouped.size(),
            "success_%": grouped["success"].mean() * 100,
            "mean_cost_usd": grouped["cost_usd"].mean(),
            "mean_tool_calls": grouped["tool_calls"].mean(),
        }
    )
    return table.sort_index()


def success_and_cost_by_category(runs: dict[str, pd.DataFrame]) -> Figure:
    """Two panels: success rate (%) and mean cost per episode (USD) per category, one bar per run."""
    tables = {name: category_table(eps) for name, eps in runs.items()}
    categories = sorted(set().union(*(t.index for t in tables.values())))
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(11, 0.45 * len(categories) + 1.8), sharey=True)
    height = 0.8 / max(len(tables), 1)
    for i, (name, table) in enumerate(tables.items()):
        table = table.reindex(categories)
        ys = [j + i * height for j in range(len(categories))]
        ax_s.barh(ys, table["success_%"], height=height, label=name)
        ax_c.barh(ys, table["mean_cost_usd"], height=height, label=name)
    ax_s.set_yticks([j + height * (len(tables) - 1) / 2 for j in range(len(categories))], categories)
    ax_s.invert_yaxis()
    ax_s.set_xlim(0, 100)
    ax_s.set_xlabel("success rate (%)")
    ax_s.set_title("Success rate by scenario category")
    ax_c.xaxis.set_major_locator(MaxNLocator(4))
    ax_c.xaxis.set_major_formatter(StrMethodFormatter("${x:,.4f}"))
    ax_c.set_xlabel("mean cost per episode (USD)")
    ax_c.set_title("Cost by scenario category")
    if len(tables) > 1:
        ax_c.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


STATE_COLOURS = {"closed": "#59a14f", "half_open": "#f28e2b", "open": "#e15759"}


def breaker_intervals(events: pd.DataFrame) -> pd.DataFrame:
    """Each breaker's states as intervals of simulated time (breaker, state, start, end), from its transitions.

    A breaker is closed from the run's start until its first transition; the last state lasts to the run's end.
    """
    end = float(events["t"].max()) if len(events) else 0.0
    start0 = float(events["t"].min()) if len(events) else 0.0
    rows = []
    transitions = events[events["kind"] == "breaker_transition"].sort_values("seq")
    for name, group in transitions.groupby("breaker", sort=True):
        state, since = "closed", start0
        spans: list[dict[str, Any]] = []
        for _, row in group.iterrows():
            if row["t"] > since:
                spans.append({"breaker": name, "state": state, "start": since, "end": float(row["t"])})
            state, since = row["to_state"], float(row["t"])
        spans.append({"breaker": name, "state": state, "start": since, "end": end})
        for span in spans:  # an instant probe that fails leaves open -> open: one interval
            if rows and rows[-1]["breaker"] == name and rows[-1]["state"] == span["state"]:
                rows[-1]["end"] = span["end"]
            else:
                rows.append(span)
    return pd.DataFrame(rows, columns=["breaker", "state", "start", "end"])


def breaker_timeline(events: pd.DataFrame, fault_windows: list[tuple[float, float]] | None = None) -> Figure:
    """Breaker states over simulated time, with the fault windows and the calls that were rejected,
    retried or degraded on the same axis."""
    intervals = breaker_intervals(events)
    names = sorted(intervals["breaker"].unique()) if len(intervals) else []
    fig, ax = plt.subplots(figsize=(11, 1.0 + 0.9 * max(len(names), 1)))
    for start, end in fault_windows or []:
        ax.axvspan(start, end, color="#bbbbbb", alpha=0.35, lw=0)
    for i, name in enumerate(names):
        for _, row in intervals[intervals["breaker"] == name].iterrows():
            ax.broken_barh(
                [(row["start"], row["end"] - row["start"])], (i - 0.3, 0.6), color=STATE_COLOURS[row["state"]]
            )
        target = name
        marks = (
            ("call_rejected", "target", "x", "rejected (breaker open)", "black"),
            ("retry", "target", "|", "retried", "#4e79a7"),
            ("degraded", "target", "v", "degraded (fallback)", "#b07aa1"),
        )
        for kind, column, marker, label, colour in marks:
            sel = events[(events["kind"] == kind) & (events[column] == target)] if column in events else events[:0]
            if len(sel):
                ax.scatter(
                    sel["t"],
                    [i + 0.38] * len(sel),
                    marker=marker,
                    color=colour,
                    s=28,
                    label=label if i == 0 or label not in ax.get_legend_handles_labels()[1] else None,
                )
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.2 + 0.4)
    ax.set_xlabel("simulated time (s)")
    ax.set_title("Circuit breakers over simulated time (green closed · amber half-open · red open; grey: faults)")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small", ncols=3)
    fig.tight_layout()
    return fig
