"""A durable world's journal when a re-run does not repeat its first run (issue 17).

``agentlab serve`` re-runs a request killed mid-way on the real-time loop, so the re-run may make
its calls in another order than the first run did. Each test runs a "first process" of calls
against a file-backed world, closes it (the kill), reopens it as a restarted server would and runs
a re-run whose calls differ, through the real ExecutionSandbox and support tools. The world's own
ledger says whether an effect was applied twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentlab.components.sandbox import ExecutionSandbox
from agentlab.domains.support import registry
from agentlab.scenarios.loader import load_suite
from agentlab.sim.loop import run_virtual
from agentlab.tools.context import ToolContext
from agentlab.world.store import World, build_template

SUITE = Path("fixtures/suites/support.yaml")
EMAIL_A = {"customer_id": "CUS-001", "subject": "Your refund", "body": "We refunded ORD-1001."}
EMAIL_B = {"customer_id": "CUS-001", "subject": "Your new address", "body": "Your address is updated."}
EPISODE = "req-1"


@pytest.fixture
def template():  # type: ignore[no-untyped-def]
    conn = build_template(load_suite(SUITE, registry).world)
    yield conn
    conn.close()


def _process(template: Any, path: Path, calls: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """One server process's run of a request: open (or reopen) its world, make ``calls``, close it."""
    world = World.persisted(template, path, EPISODE, simulate_io=False)
    sandbox = ExecutionSandbox()

    async def go() -> list[Any]:
        out = []
        for call_id, tool, args in calls:
            ctx = ToolContext(world=world, call_id=call_id, user_id="U-ana", episode_id=EPISODE)
            out.append(await sandbox.execute(registry[tool], dict(args), ctx))
        return out

    try:
        return run_virtual(go())
    finally:
        world.close()


def _applied(template: Any, path: Path, tool: str) -> list[str]:
    world = World.persisted(template, path, EPISODE, simulate_io=False)
    try:
        return [e["args"] for e in world.effects() if e["tool"] == tool and e["action"] == "apply"]
    finally:
        world.close()


def test_an_email_the_first_run_sent_is_not_sent_again_by_a_rerun_that_diverged(template: Any, tmp_path: Path) -> None:
    path = tmp_path / "world.sqlite"
    first = _process(template, path, [("c1", "lookup_order", {"order_id": "ORD-1001"}), ("c2", "send_email", EMAIL_A)])
    # The re-run makes one more call first (say a model call drew differently), so the email is c3, not c2.
    again = _process(
        template,
        path,
        [
            ("c1", "get_customer", {"customer_id": "CUS-001"}),
            ("c2", "lookup_order", {"order_id": "ORD-1001"}),
            ("c3", "send_email", EMAIL_A),
        ],
    )
    assert again[2] == first[1]  # answered with the first run's email, not a new one
    assert len(_applied(template, path, "send_email")) == 1


def test_a_call_id_that_names_another_action_in_the_rerun_is_run_not_answered(template: Any, tmp_path: Path) -> None:
    path = tmp_path / "world.sqlite"
    (first,) = _process(template, path, [("c1", "send_email", EMAIL_A)])
    # The re-run's c1 is another email: it is sent (not answered with email A's result); its c2 is email A,
    # which the first run already sent: answered from the journal.
    b, a = _process(template, path, [("c1", "send_email", EMAIL_B), ("c2", "send_email", EMAIL_A)])
    assert a == first and b != first
    applied = _applied(template, path, "send_email")
    assert len(applied) == 2 and len(set(applied)) == 2


def test_a_rerun_that_repeats_its_first_run_is_answered_by_position(template: Any, tmp_path: Path) -> None:
    """The deterministic case (``agentlab run --resume``) is unchanged: each first-run call answers its own replay
    once, and an action the re-run repeats beyond what the first run did runs for real, as it would have
    in an uninterrupted run."""
    path = tmp_path / "world.sqlite"
    refund = {"order_id": "ORD-1001", "amount": 10.0, "reason": "late"}
    first = _process(template, path, [("c1", "issue_refund", refund), ("c2", "send_email", EMAIL_A)])
    again = _process(
        template,
        path,
        [("c1", "issue_refund", refund), ("c2", "send_email", EMAIL_A), ("c3", "send_email", EMAIL_A)],
    )
    assert again[:2] == first
    assert again[2] != first[1]
    assert len(_applied(template, path, "issue_refund")) == 1
    assert len(_applied(template, path, "send_email")) == 2


def test_a_third_process_still_recognises_the_first_runs_effects(template: Any, tmp_path: Path) -> None:
    path = tmp_path / "world.sqlite"
    _process(template, path, [("c1", "send_email", EMAIL_A)])
    _process(template, path, [("c1", "lookup_order", {"order_id": "ORD-1001"}), ("c2", "send_email", EMAIL_B)])
    _process(
        template,
        path,
        [
            ("c1", "get_customer", {"customer_id": "CUS-001"}),
            ("c2", "send_email", EMAIL_B),
            ("c3", "send_email", EMAIL_A),
        ],
    )
    applied = _applied(template, path, "send_email")
    assert len(applied) == 2 and len(set(applied)) == 2


def test_the_gate_skips_world_reading_constraints_only_for_the_same_action(template: Any, tmp_path: Path) -> None:
    """A replayed call skips the permission constraints that read the world (it was decided before the kill);
    a call whose id the first run used for another action must be checked like any new call."""
    path = tmp_path / "world.sqlite"
    refund = {"order_id": "ORD-1001", "amount": 10.0, "reason": "late"}
    _process(template, path, [("c1", "issue_refund", refund)])
    spec = registry["issue_refund"]
    world = World.persisted(template, path, EPISODE, simulate_io=False)
    try:
        assert world.holds_call("issue_refund", "c1", spec.identity(refund), spec.effectful)
        assert world.holds_call("issue_refund", "c4", spec.identity(refund), spec.effectful)  # moved, same action
        other = {**refund, "amount": 20.0}
        assert not world.holds_call("issue_refund", "c1", spec.identity(other), spec.effectful)
    finally:
        world.close()


def test_a_compensation_the_first_run_applied_is_not_applied_again(template: Any, tmp_path: Path) -> None:
    """A world tool's rollback is journaled by ``world_tool`` itself (``undo:<tool>``): a process killed after
    compensating, whose re-run compensates again, restores the order once."""
    path = tmp_path / "world.sqlite"
    (cancelled,) = _process(template, path, [("c1", "cancel_order", {"order_id": "ORD-1003"})])
    spec = registry["cancel_order"]
    assert spec.rollback is not None
    for _ in range(2):  # the compensation, then its re-run in a new process
        world = World.persisted(template, path, EPISODE, simulate_io=False)
        try:
            ctx = ToolContext(world=world, call_id="c1", user_id="U-ana", episode_id=EPISODE)
            run_virtual(spec.rollback(ctx, {"order_id": "ORD-1003"}, cancelled))
        finally:
            world.close()
    world = World.persisted(template, path, EPISODE, simulate_io=False)
    try:
        undone = [e for e in world.effects() if e["tool"] == "cancel_order" and e["action"] == "compensate"]
        (order,) = world.all("SELECT status FROM orders WHERE id = 'ORD-1003'")
    finally:
        world.close()
    assert len(undone) == 1 and order["status"] == cancelled["previous_status"]
