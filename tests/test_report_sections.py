"""The report's sections hold the right figures: each is recomputed here from the raw events.jsonl (plain json and
statistics, not the analysis DataFrames) and looked for in the HTML."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from math import comb
from pathlib import Path

import numpy as np
import pytest

from agentlab.analysis.format import fmt_count, fmt_delta, fmt_pct, fmt_seconds, fmt_usd
from agentlab.analysis.report import build_report
from agentlab.runs import RunOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")
FAULTS = str(ROOT / "fixtures/faults/transient-10.yaml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sections")
    out = {}
    for name, resilience in (("on", True), ("off", False)):
        opts = RunOptions(
            suite=SUITE, faults=FAULTS, resilience=resilience, epochs=2, out=str(root / name), progress=False
        )
        run_suite(opts.model_copy(update={"force": name == "off"}))  # overwriting a directory changes no figure
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def page(runs: dict[str, Path]) -> str:
    return build_report([runs["on"], runs["off"]])


def events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def section(page: str, anchor: str) -> str:
    start = page.index(f'<h2 id="{anchor}">')
    end = page.find("<h2", start + 4)
    return page[start : end if end > 0 else len(page)]


def row(html: str, *head: str) -> list[str]:
    """The cells of the first table row whose header cells are ``head``."""
    for tr in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        ths = [re.sub(r"<.*?>", "", t).strip() for t in re.findall(r"<th[^>]*>(.*?)</th>", tr, flags=re.S)]
        if ths[: len(head)] == list(head):
            return [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)]
    raise AssertionError(f"no row {head}")


def from_row(html: str, header: str) -> str:
    """The table from the row whose first header cell is ``header`` on."""
    return html[html.rindex("<tr>", 0, html.index(f">{header}</th>")) :]


def test_every_new_section_is_there(page: str) -> None:
    for anchor in ("summary", "options", "pass-k", "resilience", "costs", "latency", "faults", "breakers", "worst"):
        assert f'id="{anchor}"' in page, anchor


def test_latency_percentiles_from_the_trace(runs: dict[str, Path], page: str) -> None:
    html = section(page, "latency")
    for name in ("on", "off"):
        ev = events(runs[name])
        for label, kind in (("model calls", "model_call"), ("tool calls", "tool_call_end")):
            lat = [e["latency_s"] for e in ev if e["kind"] == kind]
            expected = [fmt_count(len(lat))] + [fmt_seconds(float(np.percentile(lat, q))) for q in (50, 90, 99)]
            part = from_row(html, name)  # a run's first row names it; its second only the calls
            cells = row(part, name, label) if label == "model calls" else row(part, label)
            assert cells == expected, (name, label)
        assert statistics.median(lat) > 0


def test_faults_by_kind_and_target(runs: dict[str, Path], page: str) -> None:
    html = section(page, "faults")
    counts = {
        name: Counter((e["fault_kind"], e["target"]) for e in events(runs[name]) if e["kind"] == "fault_injected")
        for name in runs
    }
    assert counts["on"]  # transient-10 injects faults
    for kind, target in counts["on"]:
        part = from_row(html, kind)  # a kind's first row names it; the rest of its rows only the target
        cells = row(part, kind, target) if row_exists(part, kind, target) else row(part, target)
        assert cells == [fmt_count(counts["on"][(kind, target)]), fmt_count(counts["off"][(kind, target)])]


def row_exists(html: str, *head: str) -> bool:
    try:
        row(html, *head)
        return True
    except AssertionError:
        return False


def pass_k(ev: list[dict], k: int) -> float:
    per: dict[str, list[bool]] = {}
    for e in ev:
        if e["kind"] == "episode_graded":
            per.setdefault(e["scenario_id"], []).append(e["success"])
    return sum(comb(sum(v), k) / comb(len(v), k) for v in per.values()) / len(per)


def test_pass_k_against_k(runs: dict[str, Path], page: str) -> None:
    html = section(page, "pass-k")
    for k in (1, 2):
        assert row(html, str(k)) == [fmt_pct(pass_k(events(runs["on"]), k)), fmt_pct(pass_k(events(runs["off"]), k))]
    assert not row_exists(html, "3")  # two epochs: k stops at 2


def test_summary_delta_and_options(runs: dict[str, Path], page: str) -> None:
    graded = {n: [e for e in events(runs[n]) if e["kind"] == "episode_graded"] for n in runs}
    rate = {n: sum(e["success"] for e in g) / len(g) for n, g in graded.items()}
    summary = page[page.index('id="summary"') : page.index('id="options"')]
    assert row(page, "success rate") == [
        fmt_pct(rate["on"]),
        fmt_pct(rate["off"]),
        fmt_delta("pct", rate["on"], rate["off"]),
    ]
    cost = {
        n: sum(e.get("cost_usd", 0.0) for e in events(runs[n]) if e["kind"] in ("model_call", "tool_call_end"))
        for n in runs
    }
    assert row(page, "total cost") == [
        fmt_usd(cost["on"]),
        fmt_usd(cost["off"]),
        fmt_delta("usd", cost["on"], cost["off"]),
    ]
    assert "Δ off − on" in summary
    options = page[page.index('id="options"') :]
    assert row(options, "resilience") == ["on", "off", "differs"]
    assert not row_exists(options, "seed")  # the same in both: no row


def test_resilience_section_and_costs(runs: dict[str, Path], page: str) -> None:
    html = section(page, "resilience")
    for name, label in (("on", "resilience on"), ("off", "resilience off")):
        graded = [e for e in events(runs[name]) if e["kind"] == "episode_graded"]
        assert row(html, name)[:3] == [
            label,
            fmt_count(len(graded)),
            fmt_pct(sum(e["success"] for e in graded) / len(graded)),
        ]
    costs = section(page, "costs")
    tiers = {n: Counter() for n in runs}
    for n in runs:
        for e in events(runs[n]):
            if e["kind"] == "model_call":
                tiers[n][e["tier"]] += e["cost_usd"]
    for tier in tiers["on"]:
        assert row(costs, tier) == [fmt_usd(tiers["on"][tier]), fmt_usd(tiers["off"][tier])]


def test_worst_episodes_show_request_tool_calls_and_answer(runs: dict[str, Path], page: str) -> None:
    import html as htmllib

    html = section(page, "worst")
    ev = events(runs["off"])
    failed = [e["episode_id"] for e in ev if e["kind"] == "episode_graded" and not e["success"]]
    assert failed
    shown = [ep for ep in failed if f"<h4>{ep} ·" in html]
    assert shown
    ep = shown[0]
    request = next(e["request"] for e in ev if e["kind"] == "episode_started" and e["episode_id"] == ep)
    answer = next(e["text"] for e in ev if e["kind"] == "final_response" and e["episode_id"] == ep)
    assert htmllib.escape(request) in html and htmllib.escape(answer) in html
    tools = [e["tool"] for e in ev if e["kind"] == "tool_call_end" and e["episode_id"] == ep]
    block = html[html.index(f"<h4>{ep} ·") :]
    for tool in tools:
        assert f"<td>{tool}</td>" in block


def test_a_delta_for_every_run_and_the_same_bytes_twice(runs: dict[str, Path]) -> None:
    page = build_report([runs["on"], runs["off"], runs["on"]])
    assert "Δ off − on" in page and "Δ on' − on" in page
    assert row(page, "episodes")[-1] == "="  # the third run is the first again
    assert page == build_report([runs["on"], runs["off"], runs["on"]])


def test_one_run_shows_the_options_it_set(runs: dict[str, Path]) -> None:
    page = build_report([runs["off"]])
    options = page[page.index('id="options"') :]
    assert row(options, "resilience") == ["off"]
    assert row(options, "epochs") == ["2"]
    for hidden in ("force", "out", "progress"):  # set away from their defaults, but they change no figure
        assert not row_exists(options, hidden)
    assert 'id="resilience"' not in page  # nothing to compare


def test_a_delta_is_the_difference_of_the_figures_as_shown() -> None:
    # $0.0024 and $0.0027: a reader subtracts to +$0.0003, though the unrounded costs differ by $0.00022.
    assert fmt_delta("usd", 0.00244, 0.00266) == "+$0.0003"
    assert fmt_delta("usd", 0.00241, 0.00239) == "="  # both read $0.0024
    assert fmt_delta("pct", 0.12345, 0.12355) == "+0.1 pts"  # 12.3 % and 12.4 %
    assert fmt_delta("seconds", 0.4124, 0.4136) == "+0.002 s"  # 0.412 s and 0.414 s (unrounded: +0.0012)
    assert fmt_delta("seconds", 9.0, 12.34) == "+3.3 s"  # as precise as the coarser figure (12.3 s)
    assert fmt_delta("count", 3, 5) == "+2"


def test_every_summary_delta_agrees_with_its_two_cells(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="options"')]
    checked = 0
    for label in ("total cost", "cost per success", "success rate"):
        first, other, delta = row(summary, label)
        number = re.compile(r"-?\$?(-?[\d,]+\.\d+)")
        a, b = (float(number.search(c).group(1).replace(",", "")) for c in (first, other))  # type: ignore[union-attr]
        if delta == "=":
            assert first == other
        else:
            shown = float(number.search(delta).group(1).replace(",", ""))  # type: ignore[union-attr]
            assert abs(abs(b - a) - shown) < 1e-9 and (delta.startswith("+") == (b > a))
        checked += 1
    assert checked == 3
