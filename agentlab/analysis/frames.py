"""A run, loaded back as pandas DataFrames: the one source every table, chart and figure reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

EPISODE_COLUMNS = [
    "episode_id",
    "scenario_id",
    "category",
    "epoch",
    "success",
    "world_ok",
    "answer_ok",
    "status",
    "cost_usd",
    "model_cost_usd",
    "tool_cost_usd",
    "input_tokens",
    "output_tokens",
    "llm_calls",
    "tool_calls",
    "tool_failures",
    "retries",
    "sim_seconds",
]


_NUMERIC_EVENT_COLUMNS = pd.Index(["cost_usd", "input_tokens", "output_tokens", "ok"])


def read_events(path: str | Path) -> pd.DataFrame:
    """Every event of a JSONL trace, one row each (columns are the union of the event fields)."""
    with open(path, "rb") as fh:
        records = [orjson.loads(line) for line in fh if line.strip()]
    return pd.DataFrame.from_records(records)


def episodes_frame(events: pd.DataFrame) -> pd.DataFrame:
    """One row per episode: outcome, cost, tokens, steps and simulated duration."""
    if events.empty or "kind" not in events:
        return pd.DataFrame(columns=EPISODE_COLUMNS)
    # A run may lack whole event kinds (every request refused: no model or tool calls); their columns too.
    events = events.reindex(columns=events.columns.union(_NUMERIC_EVENT_COLUMNS, sort=False))
    graded = events[events["kind"] == "episode_graded"].set_index("episode_id")
    by_ep = events.groupby("episode_id")
    kind = events["kind"]
    model = events[kind == "model_call"].groupby("episode_id")
    tool_ends = events[kind == "tool_call_end"]
    tools = tool_ends.groupby("episode_id")
    out = pd.DataFrame(index=graded.index)
    for col in ("scenario_id", "category", "epoch", "success", "world_ok", "answer_ok", "status"):
        out[col] = graded[col]
    out["model_cost_usd"] = model["cost_usd"].sum()
    out["tool_cost_usd"] = tools["cost_usd"].sum()
    out["input_tokens"] = model["input_tokens"].sum()
    out["output_tokens"] = model["output_tokens"].sum()
    out["llm_calls"] = model.size()
    out["tool_calls"] = tools.size()
    out["tool_failures"] = (~tool_ends["ok"].astype(bool)).groupby(tool_ends["episode_id"]).sum()  # no call per episode
    out["retries"] = events[kind == "retry"].groupby("episode_id").size()
    out["sim_seconds"] = by_ep["t"].max() - by_ep["t"].min()
    numeric = [
        "model_cost_usd",
        "tool_cost_usd",
        "input_tokens",
        "output_tokens",
        "llm_calls",
        "tool_calls",
        "tool_failures",
        "retries",
        "sim_seconds",
    ]
    out[numeric] = out[numeric].fillna(0)
    out["cost_usd"] = out["model_cost_usd"] + out["tool_cost_usd"]
    for col in ("input_tokens", "output_tokens", "llm_calls", "tool_calls", "tool_failures", "retries", "epoch"):
        out[col] = out[col].astype(int)
    out["success"] = out["success"].astype(bool)
    return out.reset_index()[EPISODE_COLUMNS]


@dataclass
class Run:
    """A finished run directory: its events, its episodes, and its summary."""

    path: Path
    events: pd.DataFrame
    episodes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def trace(self, episode_id: str) -> pd.DataFrame:
        """One episode's events as a readable table."""
        ev = self.events[self.events["episode_id"] == episode_id]
        cols = [
            c
            for c in (
                "seq",
                "t",
                "kind",
                "tool",
                "call_id",
                "attempt",
                "ok",
                "decision",
                "purpose",
                "tier",
                "cost_usd",
                "error_type",
                "reason",
                "status",
            )
            if c in ev
        ]
        table = ev[cols].dropna(axis=1, how="all").reset_index(drop=True)
        if "attempt" in table:
            table["attempt"] = table["attempt"].astype("Int64")
        return table

    def _repr_html_(self) -> str:
        from agentlab.analysis.summary import summary_html

        return summary_html(self.summary, title=f"Run {self.path.name}")


def load_run(path: str | Path) -> Run:
    path = Path(path)
    events_path = path / "events.jsonl"
    if not events_path.exists():
        raise FileNotFoundError(f"{path}: no events.jsonl (the run did not finish, or this is not a run directory)")
    events = read_events(events_path)
    summary_path = path / "summary.json"
    summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else {}
    return Run(path=path, events=events, episodes=episodes_frame(events), summary=summary)
