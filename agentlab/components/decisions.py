"""A person's approval decisions as a table: (episode, tool, arguments digest) -> approve | deny.

Why a table and not a callback that asks while the run goes on: a simulated run is a pure function of its
inputs, and an answer given mid-run would make it depend on when somebody clicked (in Jupyter it cannot even
work: widget callbacks are not processed while the cell that runs the simulation executes). So the flow is

1. run with an approver that does not answer (``--approver never``): every approval the agent asked for is an
   ``approval_requested`` event on the trace, with the user, tool and arguments (:func:`pending_approvals`);
2. a person decides (the notebook's :class:`agentlab.notebook.approver.WidgetApprover`, or a YAML file);
3. run again with the decisions as an input (``RunOptions(approvals=FILE)`` / ``agentlab run --approvals
   FILE``). The file is hashed into the run id like a policy, so the run is as reproducible as any other.

A request the table does not cover is answered by the run's ``--approver`` policy (the fallback). Later
approvals in an episode can differ once an earlier answer changed its course: they show up as pending again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import orjson
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict

from agentlab.components.approvals import ApprovalRequest, Approver, SimulatedApprover
from agentlab.errors import InputError

Verdict = Literal["approve", "deny"]


def args_digest(args: dict[str, Any] | None) -> str:
    """A short, stable digest of a call's (redacted) arguments: keys sorted, so order does not matter."""
    return hashlib.sha256(orjson.dumps(args or {}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class ApprovalDecision(BaseModel):
    """One answer. ``user``, ``args`` and ``reason`` are there for the reader of the file; the key is
    (``episode``, ``tool``, ``args_digest``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    episode: str
    tool: str
    args_digest: str
    decision: Verdict
    user: str | None = None
    args: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.episode, self.tool, self.args_digest)


class DecisionTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[ApprovalDecision] = []

    def lookup(self, episode: str, tool: str, digest: str) -> Verdict | None:
        for d in self.decisions:
            if d.key == (episode, tool, digest):
                return d.decision
        return None

    def to_yaml(self) -> str:
        """The table as YAML, in a stable order (sorted by key): the same decisions give the same bytes."""
        rows = [d.model_dump(exclude_none=True) for d in sorted(self.decisions, key=lambda d: d.key)]
        return yaml.safe_dump({"decisions": rows}, sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


def load_decisions(path: str | Path) -> DecisionTable:
    """Read a decision table; bad input is an :class:`InputError` naming the place (``decisions[2].decision``)."""
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "an approvals file must be a mapping with 'decisions'")
    table = validate_as(DecisionTable, raw, str(path))
    seen: dict[tuple[str, str, str], int] = {}
    for i, d in enumerate(table.decisions):
        if d.key in seen:
            raise InputError(
                str(path), f"decisions[{i}]", f"the same request as decisions[{seen[d.key]}] (episode, tool, args)"
            )
        if d.args is not None and args_digest(d.args) != d.args_digest:
            raise InputError(str(path), f"decisions[{i}].args_digest", "does not match the args given beside it")
        seen[d.key] = i
    return table


class TableApprover:
    """Answers from a :class:`DecisionTable` after ``delay_s`` of simulated time (as a person would, not at
    once); a request the table does not cover goes to ``fallback``."""

    def __init__(self, table: DecisionTable, fallback: Approver | None = None, delay_s: float = 30.0) -> None:
        self.table = table
        self.fallback = fallback or SimulatedApprover("never")
        self.delay_s = delay_s

    async def decide(self, request: ApprovalRequest) -> bool | None:
        import asyncio

        verdict = self.table.lookup(request.episode_id, request.tool, args_digest(request.args))
        if verdict is None:
            return await self.fallback.decide(request)
        await asyncio.sleep(self.delay_s)
        return verdict == "approve"


PENDING_COLUMNS = ["episode", "tool", "args_digest", "user", "args", "reason", "outcome"]


def pending_approvals(events: pd.DataFrame, decided: Iterable[tuple[str, str, str]] = ()) -> pd.DataFrame:
    """Every approval a run asked for, from its trace: one row per (episode, tool, args digest), in trace order,
    with how it ended in that run (approved / rejected / expired). Keys in ``decided`` are left out."""
    if "kind" not in events:
        return pd.DataFrame(columns=PENDING_COLUMNS)
    asked = events[events["kind"] == "approval_requested"]
    ended = events[events["kind"] == "approval_decided"]
    outcome = {(r.episode_id, r.call_id): r.outcome for r in ended.itertuples()}
    done = set(decided)
    rows, seen = [], set()
    for r in asked.sort_values("seq").itertuples():
        args = getattr(r, "args", None)
        args = args if isinstance(args, dict) else {}
        key = (r.episode_id, r.tool, args_digest(args))
        if key in seen or key in done:
            continue
        seen.add(key)
        user = getattr(r, "user_id", None)
        rows.append(
            {
                "episode": r.episode_id,
                "tool": r.tool,
                "args_digest": key[2],
                "user": user if isinstance(user, str) else None,
                "args": args,
                "reason": r.reason,
                "outcome": outcome.get((r.episode_id, r.call_id)),
            }
        )
    return pd.DataFrame(rows, columns=PENDING_COLUMNS)
