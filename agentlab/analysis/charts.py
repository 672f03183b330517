"""Charts drawn from a run's DataFrames (never from side counters). Each returns a matplotlib Figure."""

from __future__ import annotations

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
