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
import orjson
import pandas as pd
from matplotlib.figure import Figure

from agentlab.analysis.charts import (
    breaker_timeline,
    cascade_by_category,
    cascade_chart,
    category_table,
    cost_breakdown,
    cost_by,
    faults_chart,
    faults_table,
    latency_chart,
    latency_table,
    outcome_table,
    pass_hat_k_chart,
    pass_hat_k_table,
    success_and_cost_by_category,
    success_and_cost_chart,
)
from agentlab.analysis.episode import episode_html, episode_view
from agentlab.analysis.format import fmt_count, fmt_delta, fmt_pct, fmt_seconds, fmt_usd
from agentlab.analysis.frames import Run, load_run
from agentlab.errors import InputError
from agentlab.version import __version__

# (label, summary key, format): every figure in the summary table, in one of the formats of analysis/format.py.
SUMMARY_ROWS = [
    ("suite", "suite", "text"),
    ("strategy", "strategy", "text"),
    ("tier", "tier", "text"),
    ("routing policy", "routing", "text"),
    ("seed", "seed", "text"),
    ("episodes", "episodes", "count"),
    ("success rate", "success_rate", "pct"),
    ("pass^k (highest k)", "pass_hat_k", "pct"),
    ("total cost", "total_cost_usd", "usd"),
    ("cost per success", "cost_per_success", "usd"),
    ("model calls", "llm_calls", "count"),
    ("tool calls", "tool_calls", "count"),
    ("tool failures", "tool_failures", "count"),
    ("fault plan", "faults", "text"),
    ("faults injected", "faults_total", "count"),
    ("retries", "retries", "count"),
    ("breaker opens", "breaker_opens", "count"),
    ("degraded episodes", "degraded_episodes", "count"),
    ("rollbacks", "rollbacks", "count"),
    ("duplicate side effects", "duplicate_side_effects", "count"),
    ("cascade hit rate", "cascade_hit_rate", "pct"),
    ("unauthorized tool calls", "unauthorized_tool_calls", "count"),
    ("simulated time", "sim_seconds", "seconds"),
]

_FORMAT = {"pct": fmt_pct, "usd": fmt_usd, "seconds": fmt_seconds, "count": fmt_count}


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})  # no version stamp: same runs, same bytes
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _value(key: str, value: Any) -> Any:
    """The number a summary row shows: pass^k at its highest k; anything else as it is."""
    if key == "pass_hat_k" and isinstance(value, dict):
        return value[max(value, key=int)] if value else None
    return value


def _fmt(key: str, kind: str, value: Any) -> str:
    value = _value(key, value)
    if value is None:
        return "—"
    if kind in _FORMAT and isinstance(value, int | float) and not isinstance(value, bool):
        return _FORMAT[kind](value)
    return str(value)


def _delta(key: str, kind: str, first: Any, other: Any) -> str:
    first, other = _value(key, first), _value(key, other)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (first, other))
    if not numeric or kind == "text":
        return "=" if first == other else "differs"
    return fmt_delta(kind, first, other)


def _figures(run: Run) -> dict[str, Any]:
    """The summary's figures, recomputed from the run's trace where the summary table shows them."""
    s = dict(run.summary)
    ev, eps = run.events, run.episodes
    kind = ev["kind"] if "kind" in ev else pd.Series(dtype=str)
    n = len(eps)
    cost = float(eps["cost_usd"].sum())
    successes = int(eps["success"].sum())
    s.update(
        episodes=n,
        success_rate=successes / n if n else None,
        total_cost_usd=cost,
        cost_per_success=cost / successes if successes else None,
        llm_calls=int((kind == "model_call").sum()),
        tool_calls=int((kind == "tool_call_end").sum()),
        faults_total=int((kind == "fault_injected").sum()),
        retries=int((kind == "retry").sum()),
        sim_seconds=float(ev["t"].max() - ev["t"].min()) if len(ev) else 0.0,
    )
    return s


def _columns(names: list[str]) -> list[str]:
    """The table's header: each run, and after every run but the first its Δ against the first."""
    out = [names[0]]
    for name in names[1:]:
        out += [name, f"Δ {name} − {names[0]}"]
    return out


def _summary_rows(runs: dict[str, Run]) -> list[list[str]]:
    figures = [_figures(run) for run in runs.values()]
    rows = []
    for label, key, kind in SUMMARY_ROWS:
        cells = [_fmt(key, kind, figures[0].get(key))]
        for f in figures[1:]:
            cells += [_fmt(key, kind, f.get(key)), _delta(key, kind, figures[0].get(key), f.get(key))]
        rows.append([label, *cells])
    return rows


# Options that cannot change a run's figures (where it writes, whether it may overwrite it, the progress bar):
# never shown.
_HIDDEN_OPTIONS = frozenset({"out", "force", "progress"})
# Options naming files: shown by file name (run.json holds the path as typed, or resolved, which says where the
# run was started rather than what it ran).
_FILE_OPTIONS = frozenset({"suite", "tiers", "policy", "prices", "approvals", "cassettes", "record"})
# run.json records these resolved (the tier table found, the default tier): for one run, not "set" by anyone.
_RESOLVED_OPTIONS = frozenset({"suite", "tiers", "tier"})


def run_options(run: Run) -> dict[str, Any]:
    """Every RunOptions field of a run, from its ``run.json`` (defaults for fields an older run.json lacks)."""
    from agentlab.runs.options import RunOptions

    path = Path(run.path) / "run.json"
    config = orjson.loads(path.read_bytes()) if path.exists() else {}
    out: dict[str, Any] = {}
    for name, field in RunOptions.model_fields.items():
        if name in _HIDDEN_OPTIONS:
            continue
        value = config.get(name, field.default)
        if name == "faults" and isinstance(value, dict):
            value = value.get("name") or "(unnamed plan)"
        elif name in _FILE_OPTIONS and isinstance(value, str):
            value = Path(value).name
        out[name] = value
    return out


def _option_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _option_rows(runs: dict[str, Run]) -> tuple[list[list[str]], str]:
    """One row per option that differs between the runs (one run: per option set away from its default)."""
    from agentlab.runs.options import RunOptions

    options = [run_options(run) for run in runs.values()]
    rows = []
    for name in options[0]:
        values = [o.get(name) for o in options]
        if len(options) > 1:
            if all(v == values[0] for v in values):
                continue
            cells = [_option_text(name, values[0])]
            for v in values[1:]:
                cells += [_option_text(name, v), "=" if v == values[0] else "differs"]
        else:
            if values[0] == RunOptions.model_fields[name].default or name in _RESOLVED_OPTIONS:
                continue
            cells = [_option_text(name, values[0])]
        rows.append([name, *cells])
    note = "Options that differ between the runs" if len(options) > 1 else "Options set away from their defaults"
    return rows, note


def _worst(run: Run, limit: int = 5) -> list[dict[str, Any]]:
    """The failed episodes, costliest first: request, tool calls and answer, with the full timeline folded."""
    failed = run.episodes[~run.episodes["success"]].sort_values(["cost_usd", "episode_id"], ascending=[False, True])
    out = []
    for _, row in failed.head(limit).iterrows():
        view = episode_view(run, row["episode_id"])
        out.append(
            {
                "episode_id": row["episode_id"],
                "status": row["status"],
                "reasons": "; ".join(view.reasons),
                "cost": fmt_usd(view.cost_usd),
                "summary_html": episode_html(view, timeline=False),
                "trace_html": episode_html(view, timeline=True),
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
    return {
        "chart": _png(cascade_chart(tables)),
        "cheapest": {name: order[0] for name, order in orders.items()},
        "tables": {
            name: table.rename(columns=_CASCADE_COLUMNS).round(3).to_html(border=0, na_rep="—")
            for name, table in tables.items()
        },
    }


def _html(df: pd.DataFrame, formats: dict[str, Any], *, index: bool = True) -> str:
    """A DataFrame as an HTML table, each column in its format (columns not named keep their own)."""
    df = df.copy()
    for col in df.columns:
        f = formats.get(col)
        if f is not None:
            df[col] = df[col].map(f)
    return df.to_html(border=0, na_rep="—", index=index)


def _resilience(runs: dict[str, Run]) -> dict[str, Any] | None:
    """Success and cost with the resilience layer on and off, when the compared runs differ in it (else None)."""
    flags = {name: run_options(run)["resilience"] for name, run in runs.items()}
    if len(set(flags.values())) < 2:
        return None
    labels = {name: f"resilience {'on' if on else 'off'}" for name, on in flags.items()}
    table = outcome_table(runs, labels)
    shown = table.rename(
        columns={
            "label": "resilience",
            "success_%": "success",
            "total_cost_usd": "total cost",
            "cost_per_episode_usd": "cost per episode",
        }
    )[["resilience", "episodes", "success", "total cost", "cost per episode"]]
    return {
        "chart": _png(success_and_cost_chart(table, title="Success and cost with the resilience layer on and off")),
        "table": _html(
            shown,
            {
                "episodes": fmt_count,
                "success": lambda v: fmt_pct(v / 100),
                "total cost": fmt_usd,
                "cost per episode": fmt_usd,
            },
        ),
    }


def _costs(runs: dict[str, Run]) -> dict[str, Any]:
    orders = [tier_order(run) for run in runs.values()]
    longest = max(orders, key=len) if orders else []
    by_tier, by_tool = cost_by(runs, "tier", longest or None), cost_by(runs, "tool")
    usd = dict.fromkeys(runs, fmt_usd)
    return {
        "chart": _png(cost_breakdown(by_tier, by_tool)),
        "by_tier": _html(by_tier, usd),
        "by_tool": _html(by_tool[(by_tool > 0).any(axis=1)], usd),
    }


def _latency(runs: dict[str, Run]) -> dict[str, Any]:
    table = latency_table(runs)
    formats = {"count": fmt_count, **{c: fmt_seconds for c in table.columns if c.startswith("p")}}
    return {"chart": _png(latency_chart(table)), "table": _html(table, formats)}


def _faults(runs: dict[str, Run]) -> dict[str, Any] | None:
    table = faults_table(runs)
    if table.empty:
        return None
    return {"chart": _png(faults_chart(table)), "table": _html(table, dict.fromkeys(runs, fmt_count))}


def _pass_k(runs: dict[str, Run]) -> dict[str, Any]:
    table = pass_hat_k_table(runs)
    return {
        "chart": _png(pass_hat_k_chart(table)),
        "table": _html(table, dict.fromkeys(runs, fmt_pct)),
        "k_max": int(table.index.max()) if len(table) else 0,
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
    option_rows, option_note = _option_rows(runs)
    category_formats = {"episodes": fmt_count, "success_%": lambda v: fmt_pct(v / 100), "mean_cost_usd": fmt_usd}
    return env.get_template("report.html.j2").render(
        title=title or "agentlab report: " + ", ".join(runs),
        version=__version__,
        run_names=names,
        columns=_columns(names),
        summary_rows=_summary_rows(runs),
        option_rows=option_rows,
        option_note=option_note,
        chart=chart,
        pass_k=_pass_k(runs),
        resilience=_resilience(runs),
        costs=_costs(runs),
        latency=_latency(runs),
        faults=_faults(runs),
        timelines=timelines,
        cascade=_cascade(runs),
        categories={
            name: _html(
                category_table(r.episodes).rename(columns={"mean_tool_calls": "mean tool calls"}),
                {**category_formats, "mean tool calls": lambda v: f"{v:.2f}"},
            )
            .replace(">success_%<", ">success<")
            .replace(">mean_cost_usd<", ">mean cost<")
            for name, r in runs.items()
        },
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
