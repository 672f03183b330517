"""Each invariant, on a real run (holds) and on that run's trace doctored to break it (fails).

The mutation tests (test_chaos_mutants.py) show four invariants failing on a real agent with a mechanism
switched off; these show that every invariant, the other two and the cross-run pair included, can fail.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from agentlab.components.budgets import BudgetLimits
from agentlab.faults import models, rate, server_error
from agentlab.faults.plan import FaultPlan
from agentlab.testing import ChaosCase, ChaosHarness, RunView, check_view
from agentlab.testing.invariants import INVARIANTS

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> RunView:
    """A refund, an email and a breaker that opens: every invariant has something to read."""
    plan = FaultPlan(name="flaky", faults=(server_error().on(models("balanced")).when(rate(0.3)),))
    case = ChaosCase(suite=SUITE, scenarios=("multi-005", "refund-cond-005"), epochs=2, seed=3, faults=plan)
    with ChaosHarness(tmp_path_factory.mktemp("inv"), cross_run=False) as harness:
        return RunView.load(harness.run(case, "a"))


def first(view: RunView, kind: str, **where: object) -> dict:
    return next(e for e in view.events if e["kind"] == kind and all(e.get(k) == v for k, v in where.items()))


def test_a_real_run_satisfies_every_invariant(view: RunView) -> None:
    kinds = {e["kind"] for e in view.events}
    assert {"tool_call_start", "permission_check", "model_call", "episode_graded"} <= kinds
    assert any(e["action"] == "apply" for effects in view.ledger.values() for e in effects)
    assert check_view(view) == []


def doctored(view: RunView) -> RunView:
    """A fresh view over a deep copy of the trace (a new view: its cached groupings are computed afresh)."""
    return dataclasses.replace(view, events=copy.deepcopy(view.events), audit=copy.deepcopy(view.audit),
                               scenarios=dict(view.scenarios))  # fmt: skip


def test_a_side_effect_applied_twice_is_caught(view: RunView) -> None:
    v = doctored(view)
    graded = next(
        e for e in v.events if e["kind"] == "episode_graded" and any(x["tool"] == "issue_refund" for x in e["effects"])
    )
    graded["effects"].append(next(x for x in graded["effects"] if x["tool"] == "issue_refund"))
    assert [x.invariant for x in INVARIANTS["no_duplicate_side_effects"](v)] == ["no_duplicate_side_effects"]


def test_overspending_any_scope_is_caught(view: RunView) -> None:
    v = doctored(view)
    first(v, "model_call", ok=True)["cost_usd"] += 1.0  # beyond the request's budget
    assert any("request spent" in x.detail for x in INVARIANTS["budgets_respected"](v))
    v = doctored(view)
    v.limits = BudgetLimits(user_day_usd=0.0001)
    assert any("user_day" in x.detail for x in INVARIANTS["budgets_respected"](v))


def test_an_execution_without_an_allow_or_an_audit_row_is_caught(view: RunView) -> None:
    check = INVARIANTS["executions_authorized_and_audited"]
    v = doctored(view)
    first(v, "permission_check")["decision"] = "deny"
    assert any("ran without an allow" in x.detail for x in check(v))
    v = doctored(view)
    v.audit = [r for r in v.audit if r["kind"] != "execution"]
    assert any("audit execution rows" in x.detail for x in check(v))
    v = doctored(view)
    scenario = v.scenarios["refund-cond-005"]
    v.scenarios["refund-cond-005"] = scenario.model_copy(
        update={"user": scenario.user.model_copy(update={"permissions": []})}
    )
    assert any("ran for a user without" in x.detail for x in check(v))


def test_an_illegal_breaker_transition_is_caught(view: RunView) -> None:
    v = doctored(view)
    opened = first(v, "breaker_transition", to_state="open")
    v.events.insert(v.events.index(opened) + 1, {**opened, "from_state": "open", "to_state": "closed", "reason": "x"})
    found = INVARIANTS["breaker_state_machine"](v)
    assert any("illegal open → closed" in x.detail for x in found)


def test_a_breaker_that_closes_without_a_successful_probe_is_caught(view: RunView) -> None:
    """open → half_open → closed is legal only with a successful call through the breaker in between. (The
    no-half-open-probe mutant is caught earlier, by its illegal open → closed, so this clause needs its own.)"""
    check = INVARIANTS["breaker_state_machine"]

    def reopened(with_probe: bool) -> RunView:
        v = doctored(view)
        opened = first(v, "breaker_transition", to_state="open")
        at = v.events.index(opened) + 1
        half = {**opened, "from_state": "open", "to_state": "half_open", "reason": "cool-down elapsed"}
        closed = {**opened, "from_state": "half_open", "to_state": "closed", "reason": "probe succeeded"}
        probe = {**first(v, "model_call", ok=True, tier=opened["breaker"].removeprefix("model:"))}
        v.events[at:at] = [half, probe, closed] if with_probe else [half, closed]
        return v

    assert check(reopened(with_probe=True)) == []
    assert [x.detail for x in check(reopened(with_probe=False))] == [
        f"{first(view, 'breaker_transition')['breaker']}: closed with no successful probe"
    ]


def test_an_episode_without_an_end_or_that_runs_for_hours_is_caught(view: RunView) -> None:
    v = doctored(view)
    v.events.remove(first(v, "final_response"))
    assert any("0 final responses" in x.detail for x in INVARIANTS["episodes_end"](v))
    v = doctored(view)
    v.max_episode_s = 1.0
    assert any("simulated time" in x.detail for x in INVARIANTS["episodes_end"](v))


def test_a_partial_answer_that_hides_what_it_could_not_verify_is_caught(view: RunView) -> None:
    v = doctored(view)
    final = first(v, "final_response")
    v.events.insert(v.events.index(final), {**final, "kind": "degraded", "mode": "partial_answer", "target": "model"})
    final["text"] = "All done."
    assert [x.invariant for x in INVARIANTS["degraded_answers_disclose"](v)] == ["degraded_answers_disclose"]


def test_the_cross_run_invariants_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that is not a function of its inputs, and a resume that loses what the kill interrupted."""
    import agentlab.runs.runner as runner

    case = ChaosCase(suite=SUITE, scenarios=("refund-cond-005",), seed=1, kill_at=0.5)
    harness = ChaosHarness(tmp_path, cross_run=True)
    original = runner.run_episode
    calls = {"n": 0}

    async def nondeterministic(sim, scenario, epoch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        await original(sim, scenario, epoch + (calls["n"] > 1))  # every run after the first: another episode id

    monkeypatch.setattr(runner, "run_episode", nondeterministic)
    names = {v.invariant for v in harness.check(case).violations}
    assert {"deterministic", "resume_equivalent"} <= names
