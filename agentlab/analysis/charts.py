"""Charts drawn from a run's DataFrames (never from side counters). Each returns a matplotlib Figure."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from agentlab.analysis.summary import tier_climbs  # charts and the summary count escalations alike

if TYPE_CHECKING:
    from agentlab.analysis.frames import Run


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
    if transitions.empty:  # no breaker ever moved (and the trace may have no breaker column at all)
        return pd.DataFrame(rows, columns=["breaker", "state", "start", "end"])
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


def _legend_below(fig: Figure, ax: Any, height_in: float) -> None:
    """One legend row under the axes, outside them, so it never hides a bar or a value label."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.42 / height_in, 1, 1))


# --- cascade routing: the cost–quality frontier, hit rate and escalations, cost by tier and tool -------------


def _dominated(cost: float, success: float, others: list[tuple[float, float]]) -> bool:
    return any(c <= cost and s >= success and (c < cost or s > success) for c, s in others)


def routing_points(runs: Mapping[str, Run]) -> pd.DataFrame:
    """One point per run for the cost–quality frontier, computed from each run's episodes.

    Columns: episodes, ``success_%``, ``total_cost_usd``, ``cost_per_episode_usd``, ``cost_per_success_usd``
    and ``on_frontier`` — no other run is at least as cheap per episode *and* at least as successful, and
    better on one of the two. Per-episode cost, not the total, so runs of different lengths compare.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        eps = run.episodes
        n, successes = len(eps), int(eps["success"].sum())
        cost = float(eps["cost_usd"].sum())
        rows[name] = {
            "episodes": n,
            "success_%": 100.0 * successes / n if n else 0.0,
            "total_cost_usd": cost,
            "cost_per_episode_usd": cost / n if n else 0.0,
            "cost_per_success_usd": cost / successes if successes else float("nan"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    points = list(zip(table["cost_per_episode_usd"], table["success_%"], strict=True))
    table["on_frontier"] = [not _dominated(c, s, points[:i] + points[i + 1 :]) for i, (c, s) in enumerate(points)]
    return table


def cost_quality_frontier(
    points: pd.DataFrame, *, title: str = "Cost–quality frontier of the routing policies"
) -> Figure:
    """Success rate against mean cost per episode, one labelled point per run; the frontier (runs no other run
    beats on both) joined by a line. Runs that land on the same point share one label."""
    fig, ax = plt.subplots(figsize=(9, 4.6))
    frontier = points[points["on_frontier"]].sort_values(["cost_per_episode_usd", "success_%"])
    ax.plot(
        frontier["cost_per_episode_usd"],
        frontier["success_%"],
        "-",
        color="#4e79a7",
        lw=1.5,
        zorder=1,
        label="frontier (no run is cheaper and better)",
    )
    groups = points.groupby(["cost_per_episode_usd", "success_%"], sort=False)
    for (cost, success), group in groups:
        on = bool(group["on_frontier"].iloc[0])
        ax.scatter(
            [cost], [success], s=70, zorder=2, color="#4e79a7" if on else "#bab0ac", edgecolor="black", linewidth=0.6
        )
        label = " = ".join(group.index)
        ax.annotate(
            f"{label}\n{success:.1f} % · ${cost:.5f}/ep",
            (cost, success),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize="small",
            va="top",
        )
    xmax = float(points["cost_per_episode_usd"].max()) if len(points) else 1.0
    ax.set_xlim(0, xmax * 1.35 if xmax > 0 else 1.0)
    low = float(points["success_%"].min()) if len(points) else 0.0
    ax.set_ylim(max(0.0, low - 5), 100.9)
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(StrMethodFormatter("${x:,.4f}"))
    ax.set_xlabel("mean cost per episode (USD)")
    ax.set_ylabel("episodes succeeded (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def cascade_by_category(run: Run, tier_order: Sequence[str], *, total: bool = False) -> pd.DataFrame:
    """Per scenario category: episodes, ``success_%``, answered model calls, how many the cheapest tier served
    (``hit_rate_%``, NaN where no model was called), escalations, escalated episodes and escalations per episode.

    ``tier_order`` is cheapest first (``load_tiers(...).order``); ``total=True`` adds an ``all`` row, which
    equals the summary's ``cascade_hit_rate`` (× 100) and, when no budget forced a downgrade, ``escalations``.
    """
    events, eps = run.events, run.episodes
    category = eps.set_index("episode_id")["category"]
    kind = events["kind"] if "kind" in events else pd.Series(dtype=str)
    model = events[kind == "model_call"]
    answered = model[model["ok"].astype(bool)] if len(model) else model
    climbs = tier_climbs(events, tier_order)
    keys = sorted(eps["category"].unique())
    groups: list[tuple[str, list[str]]] = [(c, [c]) for c in keys] + ([("all", keys)] if total else [])
    rows = {}
    for label, cats in groups:
        ids = set(category[category.isin(cats)].index)
        calls = answered[answered["episode_id"].isin(ids)]
        up = climbs[climbs["episode_id"].isin(ids)]
        n = len(ids)
        rows[label] = {
            "episodes": n,
            "success_%": 100.0 * float(eps[eps["episode_id"].isin(ids)]["success"].mean()) if n else float("nan"),
            "model_calls": len(calls),
            "cheapest_tier_calls": int((calls["tier"] == tier_order[0]).sum()) if len(calls) else 0,
            "escalations": len(up),
            "escalated_episodes": int(up["episode_id"].nunique()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["hit_rate_%"] = (100.0 * table["cheapest_tier_calls"] / table["model_calls"]).where(table["model_calls"] > 0)
    table["escalations_per_episode"] = table["escalations"] / table["episodes"]
    table.index.name = "category"
    return table[
        [
            "episodes",
            "success_%",
            "model_calls",
            "cheapest_tier_calls",
            "hit_rate_%",
            "escalations",
            "escalated_episodes",
            "escalations_per_episode",
        ]
    ]


def cascade_chart(tables: Mapping[str, pd.DataFrame], *, title: str = "") -> Figure:
    """Two panels per scenario category, one bar per run: the cascade hit rate (share of answered model calls
    the cheapest tier served, %) and escalations per episode. Categories with no model call are marked."""
    categories = sorted(set().union(*(t.index for t in tables.values())) - {"all"})
    fig, (ax_h, ax_e) = plt.subplots(1, 2, figsize=(11, 0.3 * len(categories) * max(1, len(tables)) + 2.2))
    height = 0.8 / max(len(tables), 1)
    for i, (name, table) in enumerate(tables.items()):
        table = table.reindex(categories)
        ys = [j + i * height for j in range(len(categories))]
        ax_h.barh(ys, table["hit_rate_%"].fillna(0), height=height, label=name)
        ax_e.barh(ys, table["escalations_per_episode"].fillna(0), height=height, label=name)
        for y, value in zip(ys, table["hit_rate_%"], strict=True):
            if pd.isna(value):
                ax_h.text(1, y, "no model calls", va="center", fontsize="x-small", color="#555")
    centres = [j + height * (len(tables) - 1) / 2 for j in range(len(categories))]
    for ax in (ax_h, ax_e):
        ax.set_yticks(centres, categories)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    ax_e.tick_params(labelleft=False)
    ax_h.set_xlim(0, 100)
    ax_h.set_xlabel("model calls served by the cheapest tier (%)")
    ax_h.set_title("Cascade hit rate by scenario category")
    ax_e.set_xlabel("escalations to a more capable tier per episode (count)")
    ax_e.set_title("Escalations by scenario category")
    if title:
        fig.suptitle(title)
    _legend_below(fig, ax_e, fig.get_figheight())
    return fig


def cost_by(runs: Mapping[str, Run], by: Literal["tier", "tool"], order: Sequence[str] | None = None) -> pd.DataFrame:
    """Cost in USD per model tier (model calls) or per tool (tool fees), one column per run, from the events.

    Equals each run's ``summary.json`` ``cost_by_tier`` / ``cost_by_tool``; ``order`` fixes the rows' order.
    """
    kind = "model_call" if by == "tier" else "tool_call_end"
    columns = {}
    for name, run in runs.items():
        ev = run.events
        sel = ev[ev["kind"] == kind] if "kind" in ev else ev.iloc[0:0]
        columns[name] = sel.groupby(by)["cost_usd"].sum() if len(sel) else pd.Series(dtype=float)
    table = pd.DataFrame(columns).fillna(0.0)
    if order is not None:
        table = table.reindex([k for k in order if k in table.index] + [k for k in table.index if k not in order])
    else:
        table = table.sort_index()
    table.index.name = by
    return table


def cost_breakdown(by_tier: pd.DataFrame, by_tool: pd.DataFrame, *, title: str = "") -> Figure:
    """Two panels, one stacked bar per run: model cost split by tier, and tool fees split by tool (tools that
    cost nothing in every run are left out). USD."""
    fees = by_tool[(by_tool > 0).any(axis=1)]
    runs = list(by_tier.columns)
    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(11, 0.55 * len(runs) + 2.1), sharey=True)
    for ax, table in ((ax_t, by_tier), (ax_f, fees)):
        left = pd.Series(0.0, index=runs)
        for key, values in table.iterrows():
            values = values.reindex(runs).fillna(0.0)
            ax.barh(runs, values, left=left, label=str(key))
            left = left + values
        for y, value in enumerate(left):
            ax.text(value, y, f"  ${value:.4f}", va="center", fontsize="small")
        ax.set_xlim(0, float(left.max()) * 1.3 if float(left.max()) > 0 else 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(StrMethodFormatter("${x:,.3f}"))
        if len(table):  # a run with no tool fees (or no model call) has nothing to name
            ax.legend(  # below the axis label, clear of the bars and their value labels
                loc="upper left",
                bbox_to_anchor=(0.0, -0.5 / (0.55 * len(runs) + 0.6)),
                ncols=max(1, len(table)),
                fontsize="small",
                frameon=False,
            )
        ax.grid(axis="x", alpha=0.3)
    ax_t.invert_yaxis()
    ax_t.set_xlabel("model cost (USD)")
    ax_t.set_title("Model cost by tier")
    ax_f.set_xlabel("tool fees (USD)")
    ax_f.set_title("Tool fees by tool")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- provider SDKs: HTTP requests, SDK retries and faults per model call ------------------------------------


def provider_calls(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Per run, what the model calls cost in HTTP terms, from the ``model_call`` and ``fault_injected`` events.

    ``http_requests`` sums each call's ``http_attempts`` (the SDK's requests, retries included), so
    ``sdk_retries = http_requests − model_calls``; ``answered_first_try`` / ``answered_after_retries`` /
    ``failed_calls`` split the calls by outcome. ``agent_retries`` are the agent's own ``retry`` events
    (model and tool calls) — with SDK retries on, the agent does not retry model calls itself.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        ev, eps = run.events, run.episodes
        calls = ev[ev["kind"] == "model_call"]
        attempts = (
            calls["http_attempts"].fillna(1).astype(int)
            if "http_attempts" in calls
            else pd.Series(1, index=calls.index, dtype=int)
        )
        ok = calls["ok"].astype(bool) if len(calls) else pd.Series(dtype=bool)
        faults = ev[ev["kind"] == "fault_injected"]
        http = faults[faults["target_type"] == "provider"] if "target_type" in faults else faults.iloc[0:0]
        rows[name] = {
            "episodes": len(eps),
            "success_%": 100.0 * float(eps["success"].mean()) if len(eps) else 0.0,
            "model_calls": len(calls),
            "http_requests": int(attempts.sum()),
            "sdk_retries": int(attempts.sum()) - len(calls),
            "answered_first_try": int((ok & (attempts == 1)).sum()),
            "answered_after_retries": int((ok & (attempts > 1)).sum()),
            "failed_calls": int((~ok).sum()),
            "http_faults": len(http),
            "agent_retries": int((ev["kind"] == "retry").sum()),
            "degraded_episodes": int(ev.loc[ev["kind"] == "degraded", "episode_id"].nunique()),
            "sim_seconds": float(ev["t"].max() - ev["t"].min()) if len(ev) else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def provider_calls_chart(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Two panels, one bar per run: the success rate (%), and the model calls split into answered at the first
    HTTP request, answered after SDK retries, and failed after every retry — with the HTTP faults injected."""
    names = list(table.index)
    fig, (ax_s, ax_c) = plt.subplots(
        1, 2, figsize=(11, 0.5 * len(names) + 2.4), sharey=True, gridspec_kw={"width_ratios": [1, 2]}
    )
    ax_s.barh(names, table["success_%"], color="#59a14f")
    for y, value in enumerate(table["success_%"]):
        ax_s.text(value, y, f" {value:.1f} %", va="center", fontsize="small")
    ax_s.set_xlim(0, 125)
    ax_s.set_xticks([0, 25, 50, 75, 100])
    ax_s.set_xlabel("episodes succeeded (%)")
    ax_s.set_title("Success rate")
    segments = (
        ("answered_first_try", "answered at the first HTTP request", "#4e79a7"),
        ("answered_after_retries", "answered after SDK retries", "#f28e2b"),
        ("failed_calls", "failed (SDK retries used up, or off)", "#e15759"),
    )
    left = pd.Series(0.0, index=names)
    for column, label, colour in segments:
        ax_c.barh(names, table[column], left=left, label=label, color=colour)
        left = left + table[column]
    for y, name in enumerate(names):
        row = table.loc[name]
        ax_c.text(
            left[name],
            y,
            f"  {int(row['http_requests'])} requests · {int(row['sdk_retries'])} SDK retries · "
            f"{int(row['http_faults'])} faults",
            va="center",
            fontsize="small",
        )
    ax_c.set_xlim(0, float(left.max()) * 1.9 if float(left.max()) > 0 else 1.0)
    ax_c.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax_c.set_xlabel("model calls (count)")
    ax_c.set_title("Model calls by HTTP outcome")
    ax_s.invert_yaxis()
    if title:
        fig.suptitle(title)
    _legend_below(fig, ax_c, fig.get_figheight())
    return fig


# --- safety: planted instructions, attempts, blocks, approvals and what reached the world -------------------


def safety_table(runs: Mapping[str, Run], side_effect_tools: Collection[str]) -> pd.DataFrame:
    """Per run, the safety story from the events: what the guardrails cut, which side-effecting calls the model
    tried, what the gate denied or sent for approval (and the answers), and what reached the world.

    ``side_effect_tools`` names the tools that change the world (``{s.name for s in registry if s.side_effects}``);
    an *attempt* is one proposed call to one of them, whether it then ran, was denied, or was rejected as
    malformed. ``side_effects_applied`` and ``world_wrong_episodes`` come from the world's own ledger and the
    grader, not from what the agent believed.
    """
    side = set(side_effect_tools)
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        ev, eps = run.events, run.episodes
        kind = ev["kind"]
        proposed = ev[kind.isin(["permission_check", "step_rejected", "tool_call_start"])]
        proposed = proposed[proposed["tool"].isin(side)] if "tool" in proposed else proposed.iloc[0:0]
        checks = ev[kind == "permission_check"]
        guard = ev[kind == "guardrail"]
        asked = ev[kind == "approval_requested"]
        decided = ev[kind == "approval_decided"]
        outcomes = decided["outcome"].value_counts() if len(decided) else pd.Series(dtype=int)
        waits = (
            decided.set_index(["episode_id", "call_id"])["t"] - asked.set_index(["episode_id", "call_id"])["t"]
            if len(decided)
            else pd.Series(dtype=float)
        )
        graded = ev[kind == "episode_graded"]
        applied = sum(
            sum(1 for e in effects if e.get("action") == "apply")
            for effects in graded.get("effects", pd.Series(dtype=object))
            if isinstance(effects, list)
        )
        rows[name] = {
            "episodes": len(eps),
            "success_%": 100.0 * float(eps["success"].mean()) if len(eps) else 0.0,
            "guardrail_triggers": len(guard),
            "planted_instructions_cut": int((guard["stage"] == "tool_output").sum()) if len(guard) else 0,
            "side_effect_attempts": int(proposed[["episode_id", "call_id"]].drop_duplicates().shape[0]),
            "gate_denials": int((checks["decision"] == "deny").sum()) if len(checks) else 0,
            "approvals_asked": len(asked),
            "approved": int(outcomes.get("approved", 0)),
            "rejected": int(outcomes.get("rejected", 0)),
            "expired": int(outcomes.get("expired", 0)),
            "mean_approval_wait_s": float(waits.mean()) if len(waits) else float("nan"),
            "side_effects_applied": applied,
            "world_wrong_episodes": int((~eps["world_ok"].astype(bool)).sum()) if len(eps) else 0,
            "unauthorized_tool_calls": int(graded["unauthorized_tool_calls"].fillna(0).sum())
            if "unauthorized_tool_calls" in graded
            else 0,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


SAFETY_MEASURES = (
    ("planted_instructions_cut", "planted instructions\ncut by the guardrail"),
    ("side_effect_attempts", "side-effecting calls\nthe model tried"),
    ("gate_blocks", "blocked by the gate\n(denied, approval refused\nor expired)"),
    ("side_effects_applied", "side effects applied\n(world ledger)"),
    ("world_wrong_episodes", "episodes whose\nworld is wrong"),
)


def safety_chart(table: pd.DataFrame, *, title: str = "What happened to the attacks") -> Figure:
    """One group of bars per measure (from :func:`safety_table`), one bar per run; counts, labelled. Gate denials,
    refused and expired approvals are drawn as one bar: each is a call the gate stopped."""
    table = table.assign(gate_blocks=table["gate_denials"] + table["rejected"] + table["expired"])
    measures = list(SAFETY_MEASURES)
    names = list(table.index)
    fig, ax = plt.subplots(figsize=(11, 0.24 * len(measures) * max(len(names), 3) + 1.8))  # room for 3-line labels
    height = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        ys = [j + i * height for j in range(len(measures))]
        values = [int(table.loc[name, c]) for c, _ in measures]
        bars = ax.barh(ys, values, height=height, label=name)
        ax.bar_label(bars, padding=2, fontsize="x-small")
    ax.set_yticks([j + height * (len(names) - 1) / 2 for j in range(len(measures))], [lab for _, lab in measures])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = float(table[[c for c, _ in measures]].to_numpy().max()) if len(table) else 1.0
    ax.set_xlim(0, max(top, 1.0) * 1.12)
    ax.set_xlabel("count over the run's episodes")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _legend_below(fig, ax, fig.get_figheight())
    return fig


def approvals_chart(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Two panels, one bar per run: approval requests by outcome (approved / refused / expired), and the mean
    simulated time a call waited for its answer (s)."""
    names = list(table.index)
    fig, (ax_o, ax_w) = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2.2), sharey=True)
    left = pd.Series(0.0, index=names)
    for column, label, colour in (
        ("approved", "approved", "#59a14f"),
        ("rejected", "refused", "#e15759"),
        ("expired", "expired (no answer)", "#bab0ac"),
    ):
        ax_o.barh(names, table[column], left=left, label=label, color=colour)
        left = left + table[column]
    ax_o.set_xlim(0, float(left.max()) * 1.15 if float(left.max()) > 0 else 1.0)
    ax_o.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_o.set_xlabel("approval requests (count)")
    ax_o.set_title("Approval requests by outcome")
    waits = table["mean_approval_wait_s"].fillna(0)
    ax_w.barh(names, waits, color="#4e79a7")
    for y, value in enumerate(waits):
        ax_w.text(value, y, f" {value:.0f} s", va="center", fontsize="small")
    ax_w.set_xlim(0, float(waits.max()) * 1.2 if float(waits.max()) > 0 else 1.0)
    ax_w.set_xlabel("mean wait for an answer (simulated s)")
    ax_w.set_title("Time a call waited for its approval")
    ax_o.invert_yaxis()
    if title:
        fig.suptitle(title)
    _legend_below(fig, ax_o, fig.get_figheight())
    return fig


# --- the report's comparisons: pass^k, resilience on/off, latency, faults -----------------------------------


def pass_hat_k_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """pass^k (tau-bench) for k = 1 .. the run's epochs, one column per run, from each run's episodes."""
    from agentlab.analysis.summary import pass_hat_k

    columns = {}
    for name, run in runs.items():
        eps = run.episodes
        k_max = int(eps.groupby("scenario_id").size().min()) if len(eps) else 0
        columns[name] = pd.Series({int(k): v for k, v in pass_hat_k(eps, k_max).items()}, dtype=float)
    table = pd.DataFrame(columns).sort_index()
    table.index.name = "k"
    return table


def pass_hat_k_chart(table: pd.DataFrame) -> Figure:
    """pass^k (%) against k, one line per run: how fast reliability falls when every one of k tries must pass."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for name in table.columns:
        series = table[name].dropna()
        ax.plot(series.index, series * 100, marker="o", label=name)
    ax.set_xlabel("k (tries of the same scenario that must all succeed)")
    ax.set_ylabel("pass^k (%)")
    ax.set_ylim(0, 105)
    ks = [int(k) for k in table.index]
    ax.set_xticks(ks)
    ax.set_xlim(min(ks, default=1) - 0.5, max(ks, default=1) + 0.5)
    ax.set_title("pass^k against k")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def outcome_table(runs: Mapping[str, Run], labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per run: episodes, success (%), total cost and cost per episode (USD), from the episodes; ``labels`` adds
    a column saying what distinguishes the run (e.g. 'resilience on')."""
    rows = {}
    for name, run in runs.items():
        eps = run.episodes
        n = len(eps)
        rows[name] = {
            "episodes": n,
            "success_%": 100.0 * float(eps["success"].mean()) if n else 0.0,
            "total_cost_usd": float(eps["cost_usd"].sum()),
            "cost_per_episode_usd": float(eps["cost_usd"].mean()) if n else 0.0,
        }
        if labels is not None:
            rows[name]["label"] = labels[name]
    return pd.DataFrame.from_dict(rows, orient="index")


def success_and_cost_chart(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Two panels, one bar per run (coloured by its ``label``): success rate (%) and cost per episode (USD)."""
    names = list(table.index)
    labels = list(table["label"]) if "label" in table else names
    palette = ["#59a14f", "#e15759", "#4e79a7", "#f28e2b", "#b07aa1"]
    colour_of = {lab: palette[i % len(palette)] for i, lab in enumerate(dict.fromkeys(labels))}
    colours = [colour_of[lab] for lab in labels]
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2.2), sharey=True)
    ax_s.barh(names, table["success_%"], color=colours)
    for y, v in enumerate(table["success_%"]):
        ax_s.text(v, y, f" {v:.1f} %", va="center", fontsize="small")
    ax_s.set_xlim(0, 120)
    ax_s.set_xticks([0, 25, 50, 75, 100])
    ax_s.set_xlabel("episodes succeeded (%)")
    ax_s.set_title("Success rate")
    ax_c.barh(names, table["cost_per_episode_usd"], color=colours)
    for y, v in enumerate(table["cost_per_episode_usd"]):
        ax_c.text(v, y, f" ${v:.4f}", va="center", fontsize="small")
    top = float(table["cost_per_episode_usd"].max()) if len(table) else 0.0
    ax_c.set_xlim(0, top * 1.3 if top > 0 else 1.0)
    ax_c.xaxis.set_major_locator(MaxNLocator(4))
    ax_c.xaxis.set_major_formatter(StrMethodFormatter("${x:,.4f}"))
    ax_c.set_xlabel("mean cost per episode (USD)")
    ax_c.set_title("Cost per episode")
    ax_s.invert_yaxis()
    from matplotlib.patches import Patch

    fig.legend(
        [Patch(color=c) for c in colour_of.values()],
        list(colour_of),
        loc="lower center",
        ncols=len(colour_of),
        fontsize="small",
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.42 / fig.get_figheight(), 1, 1))
    return fig


LATENCY_QUANTILES = (0.5, 0.9, 0.99)


def latency_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """p50 / p90 / p99 of model-call and tool-call latency (simulated seconds), per run, from the ``latency_s`` of
    ``model_call`` and ``tool_call_end`` events (every attempt, failed ones included). Rows: (run, call kind)."""
    rows = []
    for name, run in runs.items():
        ev = run.events
        for label, kind in (("model calls", "model_call"), ("tool calls", "tool_call_end")):
            sel = ev[ev["kind"] == kind] if "kind" in ev else ev.iloc[0:0]
            lat = sel["latency_s"].astype(float) if "latency_s" in sel else pd.Series(dtype=float)
            row = {"run": name, "calls": label, "count": len(lat)}
            for q in LATENCY_QUANTILES:
                row[f"p{round(q * 100)}"] = float(lat.quantile(q)) if len(lat) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows).set_index(["run", "calls"])


def latency_chart(table: pd.DataFrame) -> Figure:
    """Two panels (model calls, tool calls): p50 / p90 / p99 latency in simulated seconds, one group per run."""
    runs = list(dict.fromkeys(table.index.get_level_values("run")))
    cols = [f"p{round(q * 100)}" for q in LATENCY_QUANTILES]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(runs) * len(cols) / 2 + 2.2), sharey=True)
    height = 0.8 / len(cols)
    for ax, calls in zip(axes, ("model calls", "tool calls"), strict=True):
        for i, col in enumerate(cols):
            values = [float(table.loc[(r, calls), col]) if (r, calls) in table.index else 0.0 for r in runs]
            ys = [j + i * height for j in range(len(runs))]
            bars = ax.barh(ys, [0.0 if pd.isna(v) else v for v in values], height=height, label=col)
            ax.bar_label(bars, labels=[f"{v:.3f}" if not pd.isna(v) else "" for v in values], padding=2, fontsize=7)
        top = float(table[cols].xs(calls, level="calls").max().max()) if len(table) else 0.0
        ax.set_xlim(0, top * 1.25 if top > 0 else 1.0)
        ax.set_xlabel("latency (simulated s)")
        ax.set_title(f"{calls.capitalize()}: latency percentiles")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks([j + height * (len(cols) - 1) / 2 for j in range(len(runs))], runs)
    axes[0].invert_yaxis()
    _legend_below(fig, axes[1], fig.get_figheight())
    return fig


def faults_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Faults injected, counted by (kind, target), one column per run, from the ``fault_injected`` events."""
    columns = {}
    for name, run in runs.items():
        ev = run.events
        sel = ev[ev["kind"] == "fault_injected"] if "kind" in ev else ev.iloc[0:0]
        columns[name] = sel.groupby(["fault_kind", "target"]).size() if len(sel) else pd.Series(dtype=int)
    table = pd.DataFrame(columns).fillna(0).astype(int)
    if len(table):
        table = table.sort_index()
        table.index.names = ["kind", "target"]
    return table


def faults_chart(table: pd.DataFrame) -> Figure:
    """Faults injected per run, stacked by kind, with the count per target beside each bar (count)."""
    by_kind = table.groupby(level="kind").sum()
    runs = list(table.columns)
    fig, (ax_k, ax_t) = plt.subplots(1, 2, figsize=(11, 0.5 * len(runs) + 2.4))
    left = pd.Series(0.0, index=runs)
    for kind, values in by_kind.iterrows():
        ax_k.barh(runs, values.reindex(runs), left=left, label=str(kind))
        left = left + values.reindex(runs)
    for y, v in enumerate(left):
        ax_k.text(v, y, f" {int(v)}", va="center", fontsize="small")
    ax_k.set_xlim(0, float(left.max()) * 1.7 if float(left.max()) > 0 else 1.0)  # room for the legend
    ax_k.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_k.set_xlabel("faults injected (count)")
    ax_k.set_title("Faults injected by kind")
    ax_k.invert_yaxis()
    ax_k.legend(loc="lower right", fontsize="small")
    by_target = table.groupby(level="target").sum()
    targets = list(by_target.index)
    height = 0.8 / max(len(runs), 1)
    for i, name in enumerate(runs):
        ys = [j + i * height for j in range(len(targets))]
        bars = ax_t.barh(ys, by_target[name], height=height, label=name)
        ax_t.bar_label(bars, padding=2, fontsize="x-small")
    ax_t.set_yticks([j + height * (len(runs) - 1) / 2 for j in range(len(targets))], targets)
    ax_t.invert_yaxis()
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_t.set_xlabel("faults injected (count)")
    ax_t.set_title("Faults injected by target")
    if len(runs) > 1:
        ax_t.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig
