"""A person's approvals: the widget's buttons make a decision table, and a run that reads it answers exactly those
requests that way (the rest by the fallback), deterministically; a bad table is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentlab.analysis import load_run
from agentlab.cli import main
from agentlab.components.decisions import args_digest, load_decisions, pending_approvals
from agentlab.errors import InputError
from agentlab.notebook.approver import WidgetApprover
from agentlab.runs import RunOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")
REFUNDS = ["refund-cond-001", "refund-cond-003", "refund-cond-006"]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped policy with refunds above $30 sent for approval."""
    policy = yaml.safe_load((ROOT / "fixtures/policies/support.yaml").read_text())
    policy["approval_limit_usd"] = 30
    path = tmp_path_factory.mktemp("policy") / "strict.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def run(strict: Path, out: Path, approvals: Path | None = None) -> Path:
    opts = RunOptions(
        suite=SUITE,
        only=REFUNDS,
        policy=str(strict),
        approver="never",
        approvals=str(approvals) if approvals else None,
        out=str(out),
        progress=False,
    )
    return run_suite(opts).run_dir


@pytest.fixture(scope="module")
def first(strict: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(strict, tmp_path_factory.mktemp("first") / "run")


def outcomes(run_dir: Path) -> dict[str, str]:
    ev = load_run(run_dir).events
    decided = ev[ev["kind"] == "approval_decided"]
    return dict(zip(decided["episode_id"], decided["outcome"], strict=False))


def test_pending_approvals_come_from_the_trace(first: Path) -> None:
    pending = pending_approvals(load_run(first).events)
    assert list(pending["episode"]) == [f"{s}#0" for s in REFUNDS]
    assert set(pending["tool"]) == {"issue_refund"} and set(pending["outcome"]) == {"expired"}
    for args, digest in zip(pending["args"], pending["args_digest"], strict=True):
        assert args["amount"] > 30 and digest == args_digest(args)
    assert pending_approvals(load_run(first).events, decided=[tuple(pending.iloc[0][:3])])["episode"].tolist() == [
        f"{s}#0" for s in REFUNDS[1:]
    ]


def test_buttons_make_the_table(first: Path, tmp_path: Path) -> None:
    widget = WidgetApprover(load_run(first).events)
    assert len(widget.rows) == 3 and "3 approval(s) pending" in widget.widget.children[0].value
    widget.rows[0]["deny"].click()
    widget.rows[0]["approve"].click()  # a second click replaces the first answer
    widget.rows[1]["deny"].click()
    assert "approved" in widget.rows[0]["status"].value and "denied" in widget.rows[1]["status"].value
    assert "undecided" in widget.rows[2]["status"].value
    table = load_decisions(widget.save(tmp_path / "decisions.yaml"))
    assert [(d.episode, d.decision) for d in table.decisions] == [
        (f"{REFUNDS[0]}#0", "approve"),
        (f"{REFUNDS[1]}#0", "deny"),
    ]
    # decided rows are not offered again by the next widget
    again = WidgetApprover(load_run(first).events, table)
    assert [row["key"][0] for row in again.rows] == [f"{REFUNDS[2]}#0"]
    again.decide_all("deny")
    assert len(again.decisions.decisions) == 3


def test_a_run_answers_from_the_table(first: Path, strict: Path, tmp_path: Path) -> None:
    widget = WidgetApprover(load_run(first).events)
    widget.rows[0]["approve"].click()
    widget.rows[1]["deny"].click()
    path = Path(widget.save(tmp_path / "decisions.yaml"))
    second = run(strict, tmp_path / "second", path)
    assert outcomes(first) == dict.fromkeys([f"{s}#0" for s in REFUNDS], "expired")
    got = outcomes(second)
    assert got == {f"{REFUNDS[0]}#0": "approved", f"{REFUNDS[1]}#0": "rejected", f"{REFUNDS[2]}#0": "expired"}
    ev = load_run(second).events
    ok = ev[(ev["kind"] == "tool_call_end") & (ev["tool"] == "issue_refund") & ev["ok"].astype(bool)]
    assert ok["episode_id"].tolist() == [f"{REFUNDS[0]}#0"]  # only the approved refund ran
    # reproducible: the same decisions give the same trace; the table is part of the run id
    third = run(strict, tmp_path / "third", path)
    assert (second / "events.jsonl").read_bytes() == (third / "events.jsonl").read_bytes()
    ids = {load_run(d).summary["run_id"] for d in (first, second)}
    assert len(ids) == 2


def test_the_cli_reads_the_table(first: Path, strict: Path, tmp_path: Path) -> None:
    widget = WidgetApprover(load_run(first).events)
    widget.decide_all("approve")
    path = widget.save(tmp_path / "d.yaml")
    out = tmp_path / "cli"
    args = ["run", SUITE, "--policy", str(strict), "--approver", "never", "--approvals", path, "--out", str(out)]
    assert main([*args, *(a for s in REFUNDS for a in ("--only", s)), "--quiet"]) == 0
    assert set(outcomes(out).values()) == {"approved"}


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("decisions: [{episode: e#0, tool: t, args_digest: x, decision: maybe}]", "decisions"),
        ("- 1", ""),
        (
            "decisions: [{episode: e#0, tool: t, args_digest: x, decision: deny},"
            " {episode: e#0, tool: t, args_digest: x, decision: approve}]",
            "decisions[1]",
        ),
        (
            "decisions: [{episode: e#0, tool: t, args_digest: x, decision: deny, args: {a: 1}}]",
            "decisions[0].args_digest",
        ),
    ],
)
def test_a_bad_table_is_one_line(tmp_path: Path, text: str, place: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_decisions(path)
    assert err.value.place.startswith(place)
    out = tmp_path / "never-written"
    assert main(["run", SUITE, "--approvals", str(path), "--out", str(out), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"agentlab: error: {path}")
    assert not out.exists()
