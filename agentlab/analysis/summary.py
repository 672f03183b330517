"""``summary.json``: every figure computed from the trace's events (except the wall time)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from math import comb
from typing import Any

import pandas as pd

from agentlab.analysis.frames import episodes_frame


def pass_hat_k(episodes: pd.DataFrame, k_max: int) -> dict[str, float]:
    """pass^k as in tau-bench: for each scenario, comb(c, k) / comb(n, k), averaged over scenarios."""
    out: dict[str, float] = {}
    if episodes.empty:
        return out
    per = episodes.groupby("scenario_id")["success"].agg(["sum", "count"])
    for k in range(1, k_max + 1):
        vals = [comb(int(c), k) / comb(int(n), k) for c, n in zip(per["sum"], per["count"], strict=True) if n >= k]
        if vals:
            out[str(k)] = round(sum(vals) / len(vals), 6)
    return out


def _by(df: pd.DataFrame, key: str, value: str) -> dict[str, float]:
    if df.empty:
        return {}
    grouped = df.groupby(key)[value].sum()
    return {str(k): round(float(v), 6) for k, v in grouped.sort_index().items()}


def summarize(
    events: pd.DataFrame,
    *,
    suite: str,
    seed: int,
    epochs: int,
    wall_seconds: float,
    extra: dict[str, Any] | None = None,
    tier_order: list[str] | None = None,
) -> dict[str, Any]:
    """``tier_order`` (cheapest first) names the cheapest tier (for the cascade hit rate) and tells an escalation
    (to a more capable tier) from a budget's downgrade."""
    episodes = episodes_frame(events)
    kind = events["kind"] if "kind" in events else pd.Series(dtype=str)
    model = events[kind == "model_call"]
    tools = events[kind == "tool_call_end"]
    total_model = float(model["cost_usd"].sum()) if not model.empty else 0.0
    total_tool = float(tools["cost_usd"].sum()) if not tools.empty else 0.0
    n = len(episodes)
    successes = int(episodes["success"].sum()) if n else 0
    summary: dict[str, Any] = {
        "suite": suite,
        "seed": seed,
        "episodes": n,
        "epochs": epochs,
        "success_rate": round(successes / n, 6) if n else 0.0,
        "pass_hat_k": pass_hat_k(episodes, epochs),
        "llm_calls": len(model),
        "llm_calls_by_tier": {str(k): int(v) for k, v in model.groupby("tier").size().sort_index().items()}
        if not model.empty
        else {},
        "tool_calls": len(tools),
        "tool_failures": int((~tools["ok"].astype(bool)).sum()) if not tools.empty else 0,
        "total_cost_usd": round(total_model + total_tool, 6),
        "cost_by_tier": _by(model, "tier", "cost_usd"),
        "cost_by_tool": _by(tools, "tool", "cost_usd"),
        "input_tokens": int(model["input_tokens"].sum()) if not model.empty else 0,
        "output_tokens": int(model["output_tokens"].sum()) if not model.empty else 0,
        "success_by_category": {
            str(k): round(float(v), 6) for k, v in episodes.groupby("category")["success"].mean().sort_index().items()
        }
        if n
        else {},
        "status_counts": {str(k): int(v) for k, v in episodes["status"].value_counts().sort_index().items()}
        if n
        else {},
        "sim_seconds": round(float(events["t"].max() - events["t"].min()), 6) if len(events) else 0.0,
        "wall_seconds": round(wall_seconds, 3),
    }
    summary.update(resilience_figures(events))
    summary.update(cost_figures(events, model, successes, total_model + total_tool, tier_order))
    if extra:
        summary.update(extra)
    return summary


def cost_figures(
    events: pd.DataFrame,
    model: pd.DataFrame,
    successes: int,
    total_cost: float,
    tier_order: list[str] | None = None,
) -> dict[str, Any]:
    """Cascade and cost figures: the cheapest tier's share of answered model calls, escalations (moves to a more
    capable tier; a budget's downgrade is not one), cost per success."""
    answered = model[model["ok"].astype(bool)] if not model.empty else model
    escalations = len(tier_climbs(events, tier_order)) if tier_order else 0
    hit = None
    if tier_order and len(answered):
        hit = round(float((answered["tier"] == tier_order[0]).mean()), 6)
    return {
        "tier_order": list(tier_order) if tier_order else None,  # cheapest first: what the two figures rank by
        "cascade_hit_rate": hit,
        "escalations": escalations,
        "cost_per_success": round(total_cost / successes, 6) if successes else None,
    }


def tier_climbs(events: pd.DataFrame, tier_order: Sequence[str]) -> pd.DataFrame:
    """The ``routing`` events that moved an episode to a *more* capable tier (escalations).

    A routing event with a ``previous`` tier is also written when a budget forces a call down to a cheaper
    tier; those are downgrades, not escalations, so the tier order (cheapest first) tells them apart.
    """
    if "kind" not in events or "previous" not in events:
        return events.iloc[0:0]
    rank = {tier: i for i, tier in enumerate(tier_order)}
    moves = events[(events["kind"] == "routing") & events["previous"].notna()]
    if moves.empty:  # an empty string column maps to an empty string column, which cannot be compared with numbers
        return moves
    return moves[moves["tier"].map(rank) > moves["previous"].map(rank)]


def _count(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    return events[events["kind"] == kind] if "kind" in events else events.iloc[0:0]


def resilience_figures(events: pd.DataFrame) -> dict[str, Any]:
    """Faults, retries, breakers, degradations and duplicate side effects, all from the trace."""
    faults = _count(events, "fault_injected")
    transitions = _count(events, "breaker_transition")
    degraded = _count(events, "degraded")
    graded = _count(events, "episode_graded")
    return {
        "faults_injected": {str(k): int(v) for k, v in faults["fault_kind"].value_counts().sort_index().items()}
        if len(faults)
        else {},
        "retries": len(_count(events, "retry")),
        "breaker_opens": int((transitions["to_state"] == "open").sum()) if len(transitions) else 0,
        "breaker_transitions": len(transitions),
        "degraded_episodes": int(degraded["episode_id"].nunique()) if len(degraded) else 0,
        "degradations": {str(k): int(v) for k, v in degraded["mode"].value_counts().sort_index().items()}
        if len(degraded)
        else {},
        "rollbacks": int(_count(events, "rollback")["compensated"].astype(bool).sum())
        if len(_count(events, "rollback"))
        else 0,
        "rollbacks_impossible": int((~_count(events, "rollback")["compensated"].astype(bool)).sum())
        if len(_count(events, "rollback"))
        else 0,
        "duplicate_side_effects": int(graded["duplicate_side_effects"].fillna(0).sum())
        if len(graded) and "duplicate_side_effects" in graded
        else 0,
        "resumed_episodes": resumed_episodes(events),
        "guardrail_triggers": len(_count(events, "guardrail")),
        "unauthorized_tool_calls": int(graded["unauthorized_tool_calls"].fillna(0).sum())
        if len(graded) and "unauthorized_tool_calls" in graded
        else 0,
    }


def resumed_episodes(events: pd.DataFrame) -> int:
    """Episodes a kill interrupted and a resume ran again: the distinct ``in_flight`` episodes of the
    ``run_resumed`` events. A kill between episodes (or after the last) interrupted none. (A trace from before
    ``in_flight`` was recorded counts each resume.)"""
    resumed = _count(events, "run_resumed")
    if "in_flight" not in resumed:
        return len(resumed)
    return int(resumed["in_flight"].dropna().nunique())


def summary_html(summary: dict[str, Any], title: str = "Run summary") -> str:
    rows = []
    for key, value in summary.items():
        if isinstance(value, float):
            shown = f"{value:.4f}"
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items())
        else:
            shown = str(value)
        rows.append(f"<tr><th style='text-align:left'>{html.escape(key)}</th><td>{html.escape(shown)}</td></tr>")
    return f"<b>{html.escape(title)}</b><table>{''.join(rows)}</table>"
