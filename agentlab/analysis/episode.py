"""One episode, read from a run's trace: its request, answer, timeline, model and tool calls, faults, breakers and
approvals — as DataFrames, and as one self-contained HTML fragment.

The notebook viewer (:mod:`agentlab.notebook.viewer`) and the report's worst episodes show the same thing, so it is
built here, from :func:`agentlab.analysis.load_run`'s events only (one trace, many views). Tool *results* are not in
the trace (only whether a call worked, its error, latency and fee), so neither are they here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from agentlab.analysis.format import fmt_seconds, fmt_usd

if TYPE_CHECKING:
    from agentlab.analysis.frames import Run


def _short(value: Any, limit: int = 90) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _present(row: pd.Series, name: str) -> Any:
    value = row.get(name)
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    return value


def describe(row: pd.Series) -> str:
    """One line saying what an event was, in words (the timeline's 'what' column)."""
    kind = row["kind"]
    get = lambda name: _present(row, name)  # noqa: E731
    if kind == "episode_started":
        return f"request from {get('user_id')}: {_short(get('request'), 120)}"
    if kind == "model_call":
        ok = "ok" if get("ok") else f"failed ({get('error_type')})"
        return (
            f"{get('purpose')} on {get('tier')} ({get('model')}): {ok}, {int(get('tool_calls') or 0)} tool call(s), "
            f"{fmt_seconds(get('latency_s') or 0.0)}, {fmt_usd(get('cost_usd') or 0.0)}"
        )
    if kind == "tool_call_start":
        return f"{get('tool')}({_short(get('args') or {})}) attempt {int(get('attempt') or 1)}"
    if kind == "tool_call_end":
        ok = "ok" if get("ok") else f"failed: {get('error_type')} {_short(get('error') or '', 60)}"
        via = f" via fallback from {get('degraded_from')}" if get("degraded_from") else ""
        return f"{get('tool')} {ok}{via}, {fmt_seconds(get('latency_s') or 0.0)}"
    if kind == "fault_injected":
        return f"fault {get('fault_kind')} on {get('target_type')} {get('target')}"
    if kind == "breaker_transition":
        return f"breaker {get('breaker')}: {get('from_state')} → {get('to_state')} ({get('reason')})"
    if kind == "retry":
        return f"retry {get('target')} attempt {int(get('attempt') or 0)} in {fmt_seconds(get('delay_s') or 0.0)}"
    if kind == "permission_check":
        return f"permission {get('tool')}: {get('decision')} ({get('reason')})"
    if kind == "approval_requested":
        return f"approval asked: {get('tool')}({_short(get('args') or {})}) — {get('reason')}"
    if kind == "approval_decided":
        return f"approval {get('outcome')}: {get('tool')}"
    if kind == "budget_check":
        verdict = "allowed" if get("allowed") else "refused"
        return (
            f"budget {get('scope')}: estimate {fmt_usd(get('estimate_usd'))}, spent {fmt_usd(get('spent_usd'))} "
            f"of {fmt_usd(get('limit_usd'))}: {verdict}"
        )
    if kind == "request_admitted":
        return f"admitted {get('user_id')} ({get('role')}), budget {fmt_usd(get('budget_usd'))}"
    if kind in ("memory_loaded", "memory_saved"):
        return f"memory {kind.split('_')[1]}: {int(get('items') or 0)} item(s)"
    if kind == "evaluation":
        return f"check {get('target')}: {'passed' if get('passed') else 'failed'} ({get('reason')})"
    if kind == "final_response":
        return f"answer ({get('status')}): {_short(get('text'), 120)}"
    if kind == "episode_graded":
        reasons = get("reasons") or []
        verdict = "success" if get("success") else "failure"
        return f"graded {verdict}" + (f": {'; '.join(reasons)}" if reasons else "")
    for name in ("reason", "mode", "target", "tool", "status"):
        if get(name) is not None:
            return f"{name}: {_short(get(name))}"
    return ""


@dataclass
class EpisodeView:
    """An episode's parts, each a DataFrame (or text), all from the trace."""

    episode_id: str
    scenario_id: str
    category: str
    user: str
    request: str
    answer: str
    status: str
    success: bool | None
    reasons: list[str]
    cost_usd: float
    sim_seconds: float
    timeline: pd.DataFrame  # t, kind, what
    model_calls: pd.DataFrame
    tool_calls: pd.DataFrame  # call_id, tool, attempt, args, ok, latency_s, cost_usd, error
    faults: pd.DataFrame
    breakers: pd.DataFrame
    approvals: pd.DataFrame


def _cols(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df.reindex(columns=cols).reset_index(drop=True)


def episode_view(run: Run, episode_id: str) -> EpisodeView:
    ev = run.events
    if "episode_id" not in ev or episode_id not in set(ev["episode_id"].dropna()):
        raise KeyError(f"{run.path}: no episode {episode_id!r} in the trace")
    ev = ev[ev["episode_id"] == episode_id].sort_values("seq")
    kind = ev["kind"]
    started = ev[kind == "episode_started"]
    final = ev[kind == "final_response"]
    graded = ev[kind == "episode_graded"]
    g = graded.iloc[0] if len(graded) else None
    s = started.iloc[0] if len(started) else None
    starts = ev[kind == "tool_call_start"].reindex(columns=["call_id", "attempt", "args"])  # a run may call no tool
    ends = ev[kind == "tool_call_end"].reindex(
        columns=["t", "call_id", "tool", "attempt", "ok", "latency_s", "cost_usd", "error_type", "error"]
    )
    tools = ends.merge(starts, on=["call_id", "attempt"], how="left")
    tools["attempt"] = tools["attempt"].astype("Int64")
    tools["args"] = tools["args"].map(lambda a: _short(a, 120) if isinstance(a, dict) else "")
    tools = _cols(tools, ["t", "call_id", "tool", "attempt", "args", "ok", "latency_s", "cost_usd", "error_type"])
    timeline = pd.DataFrame(
        {"t": ev["t"].to_numpy(), "kind": ev["kind"].to_numpy(), "what": [describe(r) for _, r in ev.iterrows()]}
    )
    episodes = run.episodes.set_index("episode_id")
    row = episodes.loc[episode_id] if episode_id in episodes.index else None
    return EpisodeView(
        episode_id=episode_id,
        scenario_id=str(g["scenario_id"]) if g is not None else "",
        category=str(g["category"]) if g is not None else "",
        user=str(s["user_id"]) if s is not None else "",
        request=str(s["request"]) if s is not None else "",
        answer=str(final.iloc[-1]["text"]) if len(final) else "",
        status=str(final.iloc[-1]["status"]) if len(final) else "",
        success=bool(g["success"]) if g is not None else None,
        reasons=list(g["reasons"]) if g is not None and isinstance(g["reasons"], list) else [],
        cost_usd=float(row["cost_usd"]) if row is not None else 0.0,
        sim_seconds=float(row["sim_seconds"]) if row is not None else 0.0,
        timeline=timeline,
        model_calls=_cols(
            ev[kind == "model_call"],
            ["t", "purpose", "tier", "attempt", "ok", "latency_s", "input_tokens", "output_tokens", "cost_usd"],
        ).astype({"attempt": "Int64", "input_tokens": "Int64", "output_tokens": "Int64"}),
        tool_calls=tools,
        faults=_cols(ev[kind == "fault_injected"], ["t", "fault_kind", "target_type", "target"]),
        breakers=_cols(ev[kind == "breaker_transition"], ["t", "breaker", "from_state", "to_state", "reason"]),
        approvals=_cols(ev[kind.isin(["approval_requested", "approval_decided"])], ["t", "kind", "tool", "outcome"]),
    )


def _table(df: pd.DataFrame, formats: dict[str, Any] | None = None) -> str:
    if df.empty:
        return "<p class='muted'>none</p>"
    df = df.copy()
    for col, f in (formats or {}).items():
        if col in df:
            df[col] = df[col].map(lambda v, f=f: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else f(v))
    return df.to_html(index=False, na_rep="", border=0, classes="episode")


_FORMATS = {"t": lambda v: f"{v:,.3f}", "latency_s": fmt_seconds, "cost_usd": fmt_usd}


def episode_html(view: EpisodeView, *, timeline: bool = True) -> str:
    """The episode as one HTML fragment (no scripts, no external files): works in a notebook and in the report."""
    e = html.escape
    verdict = "—" if view.success is None else ("success" if view.success else "failure")
    reasons = f" ({e('; '.join(view.reasons))})" if view.reasons else ""
    parts = [
        f"<div class='episode-view'><h4>{e(view.episode_id)} · {e(view.category)} · {verdict}{reasons}</h4>",
        f"<p><b>request</b> ({e(view.user)}): {e(view.request)}</p>",
        f"<p><b>answer</b> ({e(view.status)}): {e(view.answer)}</p>",
        f"<p class='muted'>cost {fmt_usd(view.cost_usd)} · {fmt_seconds(view.sim_seconds)} simulated</p>",
        "<h5>Tool calls</h5>",
        _table(view.tool_calls, _FORMATS),
    ]
    if timeline:
        parts += ["<h5>Model calls</h5>", _table(view.model_calls, _FORMATS)]
        for title, df in (("Faults injected", view.faults), ("Breaker transitions", view.breakers)):
            parts += [f"<h5>{title}</h5>", _table(df, _FORMATS)]
        if not view.approvals.empty:
            parts += ["<h5>Approvals</h5>", _table(view.approvals, _FORMATS)]
        parts += ["<h5>Timeline (simulated seconds)</h5>", _table(view.timeline, _FORMATS)]
    parts.append("</div>")
    return "\n".join(parts)
