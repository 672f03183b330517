"""A person approves or denies, in a notebook, the actions a run asked approval for.

The simulation runs inside one executing cell (on a virtual-time loop in a worker thread), and Jupyter does not
process widget messages while a cell executes: an approver that waited for a click during the run would wait
forever. So the person decides *between* runs, and the run reads the decisions as an input
(:mod:`agentlab.components.decisions`): run with ``approver="never"``, show :class:`WidgetApprover` over the run's
pending approvals, click, then run again with ``approvals=widget.save(PATH)``. The second run is a pure function
of its inputs, decisions included, so it reproduces exactly (and ``agentlab run --approvals PATH`` repeats it).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from agentlab.components.decisions import ApprovalDecision, DecisionTable, Verdict, pending_approvals


class WidgetApprover:
    """One row per pending approval — user, tool, arguments, the policy's reason — with Approve / Deny buttons.

    ``decisions`` is the table so far (a click replaces that row's earlier answer); ``widget`` is what the notebook
    displays. Approvals already in ``table`` are not shown again.
    """

    def __init__(self, events: pd.DataFrame, table: DecisionTable | None = None) -> None:
        self.base = table or DecisionTable()
        self.pending = pending_approvals(events, decided=[d.key for d in self.base.decisions])
        self._chosen: dict[tuple[str, str, str], Verdict] = {}
        self.rows: list[dict[str, Any]] = []
        boxes = []
        for record in self.pending.to_dict("records"):
            key = (record["episode"], record["tool"], record["args_digest"])
            approve = widgets.Button(description="Approve", button_style="success", icon="check")
            deny = widgets.Button(description="Deny", button_style="danger", icon="times")
            status = widgets.HTML(value="<i>undecided</i>")
            approve.on_click(lambda _b, key=key, status=status: self._decide(key, "approve", status))
            deny.on_click(lambda _b, key=key, status=status: self._decide(key, "deny", status))
            info = widgets.HTML(value=_describe(record))
            self.rows.append({"key": key, "approve": approve, "deny": deny, "status": status, "record": record})
            boxes.append(widgets.HBox([info, widgets.VBox([widgets.HBox([approve, deny]), status])]))
        header = widgets.HTML(
            value=f"<b>{len(self.rows)} approval(s) pending</b>" if self.rows else "<b>Nothing pending.</b>"
        )
        self.widget = widgets.VBox([header, *boxes])

    def _decide(self, key: tuple[str, str, str], verdict: Verdict, status: widgets.HTML) -> None:
        self._chosen[key] = verdict
        colour, word = ("#2a7", "approved") if verdict == "approve" else ("#c33", "denied")
        status.value = f"<b style='color:{colour}'>{word}</b>"

    def decide_all(self, verdict: Verdict) -> None:
        """Answer every pending row the same way (as clicking each row's button would)."""
        for row in self.rows:
            (row["approve"] if verdict == "approve" else row["deny"]).click()

    @property
    def decisions(self) -> DecisionTable:
        """The earlier table plus this widget's answers (undecided rows are left out: the fallback answers them)."""
        chosen = [
            ApprovalDecision(
                episode=row["record"]["episode"],
                tool=row["record"]["tool"],
                args_digest=row["record"]["args_digest"],
                decision=self._chosen[row["key"]],
                user=row["record"]["user"],
                args=row["record"]["args"],
                reason=row["record"]["reason"],
            )
            for row in self.rows
            if row["key"] in self._chosen
        ]
        return DecisionTable(decisions=[*self.base.decisions, *chosen])

    def save(self, path: str | Path) -> str:
        """Write the decisions as YAML (for ``RunOptions(approvals=...)`` / ``agentlab run --approvals``)."""
        return str(self.decisions.save(path))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _describe(record: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in (record["args"] or {}).items())
    return (
        f"<div style='min-width:34em'><code>{html.escape(record['tool'])}({html.escape(args)})</code><br>"
        f"<span style='color:#667'>episode {html.escape(record['episode'])} · user "
        f"{html.escape(str(record['user']))} · {html.escape(str(record['reason']))}</span></div>"
    )
