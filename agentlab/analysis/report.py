"""``agentlab report``: one self-contained HTML file from one or more run directories.

Built on Jinja (the page) and matplotlib (charts, embedded as base64 PNG), so the file opens
anywhere with no network. Everything in it is computed from the runs' events.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import jinja2
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

import agentlab
from agentlab.analysis.charts import (
    breaker_timeline,
    cascade_by_category,
    cascade_chart,
    category_table,
    cost_breakdown,
    cost_by,
    success_and_cost_by_category,
)
from agentlab.analysis.frames import Run, load_run
from agentlab.errors import InputError

SUMMARY_ROWS = [
    ("suite", "suite"),
    ("strategy", "strategy"),
    ("tier", "tier"),
    ("routing policy", "routing"),
    ("seed", "seed"),
    ("episodes", "episodes"),
    ("success rate", "success_rate"),
    ("pass^k (highest k)", "pass_hat_k"),
    ("total cost (USD)", "total_cost_usd"),
    ("cost per success (USD)", "cost_per_success"),
    ("model calls", "llm_calls"),
    ("tool calls", "tool_calls"),
    ("tool failures", "tool_failures"),
    ("fault plan", "faults"),
    ("faults injected", "faults_total"),
    ("retries", "retries"),
    ("breaker opens", "breaker_opens"),
    ("degraded episodes", "degraded_episodes"),
    ("rollbacks", "rollbacks"),
    ("duplicate side effects", "duplicate_side_effects"),
    ("cascade hit rate", "cascade_hit_rate"),
    ("unauthorized tool calls", "unauthorized_tool_calls"),
    ("simulated time (s)", "sim_seconds"),
]


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, dict):
        if key == "pass_hat_k" and value:
            k = max(value, key=int)
            return f"{value[k]:.3f} (k={k})"
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.1%}" if key == "success_rate" else f"{value:.4f}"
    return "—" if value is None else str(value)


def _figures(run: Run) -> dict[str, Any]:
    s = dict(run.summary)
    s["faults_total"] = sum((s.get("faults_injected") or {}).values())
    return s


def _delta(key: str, first: Any, last: Any) -> str:
    if key == "pass_hat_k" and isinstance(first, dict) and isinstance(last, dict) and first and last:
        k = max(first, key=int)
        first, last = first.get(k), last.get(k)
    if (
        isinstance(first, bool)
        or isinstance(last, bool)
        or not isinstance(first, int | float)
        or not isinstance(last, int | float)
    ):
        return "" if first == last else "differs"
    diff = last - first
    if diff == 0:
        return "="
    if key in ("success_rate", "pass_hat_k"):
        return f"{diff * 100:+.1f} pts"
    return f"{diff:+.4f}" if isinstance(diff, float) else f"{diff:+d}"


def _summary_rows(runs: dict[str, Run]) -> list[list[str]]:
    figures = [_figures(run) for run in runs.values()]
    rows = []
    for label, key in SUMMARY_ROWS:
        cells = [_fmt(key, f.get(key)) for f in figures]
        if len(figures) > 1:
            cells.append(_delta(key, figures[0].get(key), figures[-1].get(key)))
        rows.append([label, *cells])
    return rows


def _worst(run: Run, limit: int = 5) -> list[dict[str, Any]]:
    failed = run.episodes[~run.episodes["success"]].sort_values(["cost_usd"], ascending=False).head(limit)
    graded = run.events[run.events["kind"] == "episode_graded"].set_index("episode_id")
    out = []
    for _, row in failed.iterrows():
        reasons = graded.loc[row["episode_id"], "reasons"]
        trace = run.trace(row["episode_id"])
        out.append(
            {
                "episode_id": row["episode_id"],
                "status": row["status"],
                "reasons": "; ".join(reasons) if isinstance(reasons, list) else str(reasons),
                "trace_html": trace.to_html(index=False, na_rep="", classes="trace", border=0),
            }
        )
    return out


def tier_order(run: Run) -> list[str]:
    """The run's model tiers, cheapest first, as the run recorded them in its summary."""
    return list(run.summary.get("tier_order") or [])


_CASCADE_COLUMNS = {
    "success_%": "success %",
    "model_calls": "model calls",
    "cheapest_tier_calls": "on cheapest",
    "hit_rate_%": "hit rate %",
    "escalated_episodes": "escalated eps",
    "escalations_per_episode": "esc. / episode",
}


def _cascade(runs: dict[str, Run]) -> dict[str, Any] | None:
    """The cascade section, for the runs whose answered model calls used more than one tier (else None)."""
    routed = {}
    for name, run in runs.items():
        ev = run.events
        if "kind" not in ev:
            continue
        answered = ev[(ev["kind"] == "model_call") & ev["ok"].astype(bool)] if "ok" in ev else ev.iloc[0:0]
        if answered["tier"].nunique() > 1:
            routed[name] = run
    if not routed:
        return None
    orders = {name: tier_order(run) for name, run in routed.items()}
    tables = {name: cascade_by_category(run, orders[name], total=True) for name, run in routed.items()}
    longest = max(orders.values(), key=len)
    return {
        "chart": _png(cascade_chart(tables)),
        "costs": _png(cost_breakdown(cost_by(routed, "tier", longest), cost_by(routed, "tool"))),
        "cheapest": {name: order[0] for name, order in orders.items()},
        "tables": {
            name: table.rename(columns=_CASCADE_COLUMNS).round(3).to_html(border=0, na_rep="—")
            for name, table in tables.items()
        },
    }


def build_report(run_dirs: list[str | Path], *, title: str | None = None) -> str:
    runs: dict[str, Run] = {}
    for d in run_dirs:
        path = Path(d)
        if not (path / "summary.json").exists():
            raise InputError(str(path), "", "not a finished run directory (no summary.json)")
        label = path.name
        while label in runs:
            label += "'"
        runs[label] = load_run(path)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentlab.analysis", "templates"), autoescape=jinja2.select_autoescape()
    )
    names = list(runs)
    chart = _png(success_and_cost_by_category({name: r.episodes for name, r in runs.items()}))
    timelines = {
        name: _png(breaker_timeline(r.events))
        for name, r in runs.items()
        if "kind" in r.events and (r.events["kind"] == "breaker_transition").any()
    }
    return env.get_template("report.html.j2").render(
        title=title or "agentlab report: " + ", ".join(runs),
        version=agentlab.__version__,
        run_names=names,
        delta_header=f"Δ ({names[-1]} − {names[0]})" if len(names) > 1 else None,
        summary_rows=_summary_rows(runs),
        chart=chart,
        timelines=timelines,
        cascade=_cascade(runs),
        categories={name: category_table(r.episodes).round(4).to_html(border=0) for name, r in runs.items()},
        worst={name: _worst(r) for name, r in runs.items()},
        escape=html.escape,
    )


def write_report(run_dirs: list[str | Path], out: str | Path, *, title: str | None = None) -> Path:
    """Render the report and write it atomically: a half-written report never appears, and a failed write (a full
    disk) leaves no temporary file behind."""
    out = Path(out)
    if out.is_dir():
        raise InputError(str(out), "-o", "is a directory: give the HTML file to write, e.g. reports/NAME.html")
    if out.exists() and not out.is_file():  # a device or a pipe: the atomic rename would replace it with a file
        raise InputError(str(out), "-o", "exists and is not a regular file")
    page = build_report(run_dirs, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
