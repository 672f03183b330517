"""The notebooks' and the report's charts plot what the runs' events say.

Each chart function is checked against an independent source: the summary the runner computed, the world's
ledger, the audit of the trace by hand, or the artists matplotlib actually drew. So a chart that plotted the
wrong column, mis-grouped a category, or counted a budget downgrade as an escalation fails here.
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import yaml

from agentlab.analysis import Run, load_run
from agentlab.analysis.charts import (
    cascade_by_category,
    cascade_chart,
    cost_breakdown,
    cost_by,
    cost_quality_frontier,
    provider_calls,
    provider_calls_chart,
    routing_points,
    safety_chart,
    safety_table,
    tier_climbs,
)
from agentlab.analysis.report import build_report, tier_order
from agentlab.domains.support import registry
from agentlab.faults import burst, error, every_nth, http_429, load_fault_plan, providers, rate, tools, window
from agentlab.llm.tiers import load_tiers
from agentlab.runs import RunOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")
POLICY = str(ROOT / "fixtures/policies/support.yaml")
ORDER = load_tiers(ROOT / "fixtures/tiers.yaml").order
POLICIES = ("always-cheapest", "always-most-capable", "cascade", "budget-aware-cascade")
SIDE_EFFECTS = frozenset(s.name for s in registry if s.side_effects)
INJECTIONS = [f"inject-00{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def policy_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("policies")
    for policy in POLICIES:
        run_suite(RunOptions(suite=SUITE, routing=policy, seed=1, out=str(root / policy), progress=False))
    return {policy: load_run(root / policy) for policy in POLICIES}


# --- cascade routing -----------------------------------------------------------------------------------------


def test_frontier_points_are_the_summaries_figures(policy_runs: dict[str, Run]) -> None:
    points = routing_points(policy_runs)
    assert list(points.index) == list(POLICIES)
    for name, run in policy_runs.items():
        s = run.summary
        assert points.loc[name, "episodes"] == s["episodes"] == 44
        assert points.loc[name, "success_%"] == pytest.approx(100 * s["success_rate"], abs=1e-4)
        assert points.loc[name, "total_cost_usd"] == pytest.approx(s["total_cost_usd"], abs=1e-6)
        assert points.loc[name, "cost_per_episode_usd"] == pytest.approx(s["total_cost_usd"] / 44, abs=1e-7)
        assert points.loc[name, "cost_per_success_usd"] == pytest.approx(s["cost_per_success"], abs=1e-6)
    # The most capable tier costs the most per episode; the cheapest tier the least, so it is on the frontier.
    assert points["cost_per_episode_usd"].idxmax() == "always-most-capable"
    assert points.loc["always-cheapest", "on_frontier"]


def test_the_frontier_chart_draws_those_points(policy_runs: dict[str, Run]) -> None:
    points = routing_points(policy_runs)
    fig = cost_quality_frontier(points)
    ax = fig.axes[0]
    drawn = sorted(tuple(round(float(v), 9) for v in c.get_offsets()[0]) for c in ax.collections)
    expected = sorted(
        {(round(c, 9), round(s, 9)) for c, s in zip(points["cost_per_episode_usd"], points["success_%"], strict=True)}
    )
    assert drawn == expected
    line = ax.lines[0]
    on = points[points["on_frontier"]].sort_values(["cost_per_episode_usd", "success_%"])
    assert list(line.get_xdata()) == pytest.approx(list(on["cost_per_episode_usd"]))
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    plt.close(fig)


def test_frontier_membership() -> None:
    """A point is off the frontier exactly when another is no dearer and no worse, and better on one."""

    def run(successes: int, cost: float) -> Run:
        eps = pd.DataFrame({"success": [True] * successes + [False] * (10 - successes), "cost_usd": [cost / 10] * 10})
        return Run(path=Path("."), events=pd.DataFrame(), episodes=eps)

    points = routing_points(
        {"cheap": run(8, 1.0), "twin": run(8, 1.0), "mid": run(9, 2.0), "dear": run(9, 3.0), "best": run(10, 3.0)}
    )
    assert points["on_frontier"].to_dict() == {"cheap": True, "twin": True, "mid": True, "dear": False, "best": True}


def test_hit_rate_and_escalations_by_category_add_up_to_the_summary(policy_runs: dict[str, Run]) -> None:
    for name, run in policy_runs.items():
        table = cascade_by_category(run, ORDER, total=True)
        total = table.loc["all"]
        assert total["hit_rate_%"] == pytest.approx(100 * run.summary["cascade_hit_rate"], abs=1e-4), name
        assert total["escalations"] == run.summary["escalations"], name
        per = table.drop(index="all")
        assert per["episodes"].sum() == total["episodes"] == 44
        assert per["model_calls"].sum() == total["model_calls"] == run.summary["llm_calls"] - failed_calls(run)
        assert per["escalations"].sum() == total["escalations"]
        assert set(per.index) == set(run.episodes["category"])
    cascade = cascade_by_category(policy_runs["cascade"], ORDER)
    assert cascade["escalations"].sum() > 0
    assert pd.isna(cascade.loc["budget", "hit_rate_%"])  # budget requests are refused before any model call
    assert (cascade_by_category(policy_runs["always-cheapest"], ORDER)["hit_rate_%"].dropna() == 100).all()
    assert (cascade_by_category(policy_runs["always-most-capable"], ORDER)["hit_rate_%"].dropna() == 0).all()


def failed_calls(run: Run) -> int:
    calls = run.events[run.events["kind"] == "model_call"]
    return int((~calls["ok"].astype(bool)).sum())


def test_the_cascade_chart_draws_the_hit_rates(policy_runs: dict[str, Run]) -> None:
    table = cascade_by_category(policy_runs["cascade"], ORDER)
    fig = cascade_chart({"cascade": table})
    hit_ax, esc_ax = fig.axes[:2]
    widths = [bar.get_width() for bar in hit_ax.patches]
    assert widths == pytest.approx(list(table["hit_rate_%"].fillna(0)))
    assert [bar.get_width() for bar in esc_ax.patches] == pytest.approx(list(table["escalations_per_episode"]))
    assert [t.get_text() for t in hit_ax.get_yticklabels()] == list(table.index)
    plt.close(fig)


def test_budget_downgrades_are_not_escalations(tmp_path: Path) -> None:
    """With a tight session budget, calls are pushed *down* a tier; the trace marks those with a previous
    tier too. tier_climbs keeps only moves up, each with the Evaluator's reason."""
    run_suite(
        RunOptions(
            suite=SUITE,
            routing="always-most-capable",
            budget_session_usd=0.004,
            seed=1,
            out=str(tmp_path),
            progress=False,
        )
    )
    run = load_run(tmp_path)
    moves = run.events[(run.events["kind"] == "routing") & run.events["previous"].notna()]
    assert len(moves) > 0 and moves["reason"].str.startswith("downgraded").all()
    assert tier_climbs(run.events, ORDER).empty
    assert cascade_by_category(run, ORDER, total=True).loc["all", "escalations"] == 0


def test_cost_by_tier_and_tool_equal_the_summary(policy_runs: dict[str, Run]) -> None:
    by_tier, by_tool = cost_by(policy_runs, "tier", ORDER), cost_by(policy_runs, "tool")
    assert list(by_tier.index) == [t for t in ORDER if t in by_tier.index]
    for name, run in policy_runs.items():
        for tier, usd in run.summary["cost_by_tier"].items():
            assert by_tier.loc[tier, name] == pytest.approx(usd, abs=1e-6)
        for tool, usd in run.summary["cost_by_tool"].items():
            assert by_tool.loc[tool, name] == pytest.approx(usd, abs=1e-6)
        total = by_tier[name].sum() + by_tool[name].sum()
        assert total == pytest.approx(run.summary["total_cost_usd"], abs=1e-5)
    fig = cost_breakdown(by_tier, by_tool)
    tier_ax = fig.axes[0]
    drawn = sum(bar.get_width() for bar in tier_ax.patches)
    assert drawn == pytest.approx(float(by_tier.to_numpy().sum()))
    plt.close(fig)


# --- provider SDKs -------------------------------------------------------------------------------------------


def test_http_requests_retries_and_faults_per_call(tmp_path: Path) -> None:
    """Under the shipped HTTP fault plan every fault shows up in the chart's data: a request the SDK retried,
    or a call that failed after its retries — except slow responses, which still answer."""
    only = ["lookup-001", "lookup-003", "refund-cond-001", "refund-cond-002", "multi-001", "multi-002", "inject-003"]
    out = tmp_path / "faulty"
    run_suite(
        RunOptions(
            suite=SUITE,
            llm="sim-openai",
            faults=str(ROOT / "fixtures/faults/provider-http.yaml"),
            only=only,
            epochs=2,
            seed=0,
            out=str(out),
            progress=False,
        )
    )
    run = load_run(out)
    row = provider_calls({"faulty": run}).loc["faulty"]
    calls = run.events[run.events["kind"] == "model_call"]
    assert row["model_calls"] == len(calls) == run.summary["llm_calls"]
    assert row["http_requests"] == int(calls["http_attempts"].sum())
    assert row["sdk_retries"] == row["http_requests"] - row["model_calls"] > 0
    assert row["answered_first_try"] + row["answered_after_retries"] + row["failed_calls"] == row["model_calls"]
    injected = run.summary["faults_injected"]
    assert row["http_faults"] == sum(injected.values()) > 0
    assert row["http_faults"] - injected.get("slow_first_byte", 0) == row["sdk_retries"] + row["failed_calls"]
    fig = provider_calls_chart(provider_calls({"faulty": run}))
    stacked = [bar.get_width() for bar in fig.axes[1].patches]
    assert stacked == [row["answered_first_try"], row["answered_after_retries"], row["failed_calls"]]
    plt.close(fig)


# --- safety --------------------------------------------------------------------------------------------------


def test_safety_figures_with_the_defences_on_and_off(tmp_path: Path) -> None:
    runs = {}
    for name, options in (("on", {}), ("off", {"guardrails": False, "gate": False})):
        run_suite(
            RunOptions(
                suite=SUITE,
                only=INJECTIONS,
                epochs=5,
                seed=1,
                policy=POLICY,
                out=str(tmp_path / name),
                progress=False,
                **options,
            )
        )
        runs[name] = load_run(tmp_path / name)
    table = safety_table(runs, SIDE_EFFECTS)
    on, off = table.loc["on"], table.loc["off"]
    assert on["planted_instructions_cut"] == runs["on"].summary["guardrail_triggers"] > 0
    assert on["side_effect_attempts"] == on["side_effects_applied"] == on["world_wrong_episodes"] == 0
    # The check can fail: without the defences the model follows the planted instructions and the world changes.
    assert off["planted_instructions_cut"] == 0
    assert off["side_effect_attempts"] >= off["side_effects_applied"] > 0
    ledger = [e for effects in ev_of(runs["off"], "episode_graded")["effects"] for e in effects]
    assert off["side_effects_applied"] == sum(e["action"] == "apply" for e in ledger)
    assert off["world_wrong_episodes"] == int((~runs["off"].episodes["world_ok"].astype(bool)).sum()) > 0
    assert off["unauthorized_tool_calls"] == runs["off"].summary["unauthorized_tool_calls"]
    fig = safety_chart(table)
    assert len(fig.axes[0].patches) == 2 * 5
    plt.close(fig)


def ev_of(run: Run, kind: str) -> pd.DataFrame:
    return run.events[run.events["kind"] == kind]


@pytest.mark.parametrize(("approver", "outcome", "wait"), [("approve", "approved", 30.0), ("never", "expired", 300.0)])
def test_approval_figures(tmp_path: Path, approver: str, outcome: str, wait: float) -> None:
    policy = yaml.safe_load(Path(POLICY).read_text())
    policy["approval_limit_usd"] = 30  # refund-cond-001 refunds 49.98: it now needs a human
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(policy))
    run_suite(
        RunOptions(
            suite=SUITE,
            only=["refund-cond-001"],
            tier="powerful",
            seed=1,
            policy=str(strict),
            approver=approver,
            out=str(tmp_path / "run"),
            progress=False,
        )
    )
    run = load_run(tmp_path / "run")
    row = safety_table({approver: run}, SIDE_EFFECTS).loc[approver]
    decided = ev_of(run, "approval_decided")
    assert row["approvals_asked"] == len(ev_of(run, "approval_requested")) == len(decided) > 0
    assert row[outcome] == len(decided) and set(decided["outcome"]) == {outcome}
    assert row["mean_approval_wait_s"] == pytest.approx(wait)


# --- fault plans in Jupyter ----------------------------------------------------------------------------------


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th", "caption"):
            self._in = tag
            if tag != "caption":
                self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "caption"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "caption":
            self.caption += data
        elif self._in:
            self.rows[-1][-1] += data


def cells(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def test_fault_plan_html_repr_from_yaml() -> None:
    plan = load_fault_plan(ROOT / "fixtures/faults/provider-http.yaml")
    table = cells(plan._repr_html_())
    assert table.rows[0] == ["id", "target", "kind", "schedule", "parameters"]
    assert len(table.rows) == 1 + len(plan.faults) == 10
    assert table.rows[1] == ["http-429", "providers *", "http_429", "4 % of calls", "status 429, retry-after 2 s"]
    assert table.rows[4] == [
        "http-503-no-retry",
        "providers *",
        "http_5xx",
        "1 % of calls",
        "status 503, x-should-retry false",
    ]
    assert table.rows[5][1:3] == ["providers anthropic", "http_529"]
    assert table.caption.startswith("provider-http: 429s with retry-after") and table.caption.endswith("(9 faults)")


def test_fault_plan_html_repr_of_a_composed_plan() -> None:
    plan = (
        error(503).on(tools("web_search")).when(window(30, 90))
        | error().on(tools("issue_*")).when(rate(0.05) & every_nth(3))
        | http_429(retry_after_s=20).on(providers("openai")).when(burst(0, 2)).per_episode().named("<429>")
    )
    rows = cells(plan._repr_html_()).rows[1:]
    assert rows == [
        ["", "tools web_search", "error", "30 s ≤ t < 90 s", "status 503"],
        ["", "tools issue_*", "error", "5 % of calls and every 3rd call", "status 503"],
        [
            "<429>",
            "providers openai",
            "http_429",
            "first 2 calls from t = 0 s (per episode)",
            "status 429, retry-after 20 s",
        ],
    ]
    assert "&lt;429&gt;" in plan._repr_html_()  # escaped, not markup
    single = cells(plan.faults[0]._repr_html_()).rows
    assert single[1] == rows[0]


# --- the report's cascade section ----------------------------------------------------------------------------


def test_report_adds_cascade_charts_only_for_runs_that_used_several_tiers(policy_runs: dict[str, Run]) -> None:
    cascade, single = policy_runs["cascade"].path, policy_runs["always-cheapest"].path
    page = build_report([cascade, single])
    assert "<h2>Cascade routing</h2>" in page
    start = page.index("<h2>Cascade routing</h2>")
    section = page[start : page.index("<h2", start + 4)]
    costs = page[page.index('<h2 id="costs">') :]
    costs = costs[: costs.index("<h2", 4)]
    # the hit-rate chart here; cost by tier and tool has its own section, drawn for every report
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', section + costs)
    assert len(images) == 2
    from PIL import Image

    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.width > 500 and image.height > 150
    assert "<h3>cascade</h3>" in section and "<h3>always-cheapest</h3>" not in section
    assert "Cascade routing" not in build_report([single])
    assert tier_order(policy_runs["cascade"]) == list(ORDER)
