"""Tool specs and their metadata; the support tools acting on a SQLite world."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any, Literal

import orjson
import pytest

from agentlab.domains.support import registry as support
from agentlab.domains.support.world import WorldSpec
from agentlab.errors import ToolFailed, ToolTransientError
from agentlab.llm.tiers import LatencyProfile
from agentlab.sim.loop import run_virtual
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.world.model import Environment
from agentlab.world.store import World, build_template

SPEC = WorldSpec.model_validate(
    {
        "customers": [
            {"id": "CUS-1", "name": "Alice Martin", "email": "alice@example.com", "address": "1 Oak St"},
            {"id": "CUS-2", "name": "Bruno Okafor", "email": "bruno@example.com", "address": "2 Pine Ave"},
        ],
        "products": [
            {"id": "PRD-1", "name": "Shoes", "price": 89.99, "stock": 10},
            {"id": "PRD-2", "name": "Tent", "price": 249.0, "stock": 2},
        ],
        "orders": [
            {"id": "ORD-1", "customer_id": "CUS-1", "product_id": "PRD-1", "quantity": 1, "total": 89.99,
             "status": "shipped", "refunded": 0.0},
            {"id": "ORD-2", "customer_id": "CUS-2", "product_id": "PRD-2", "quantity": 2, "total": 498.0,
             "status": "processing", "refunded": 0.0, "address": "2 Pine Ave"},
            {"id": "ORD-3", "customer_id": "CUS-1", "product_id": "PRD-1", "quantity": 1, "total": 89.99,
             "status": "cancelled"},
            {"id": "ORD-4", "customer_id": "CUS-2", "product_id": "PRD-1", "quantity": 1, "total": 50.0,
             "status": "delivered", "refunded": 20.0},
        ],
        "kb_articles": [{"id": "KB-1", "title": "Returns policy", "body": "Returns within 30 days."}],
        "web_pages": [{"id": "W-1", "url": "https://carrier.example", "title": "Tracking", "body": "Track parcels."}],
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def template() -> Iterator[sqlite3.Connection]:
    conn = build_template(SPEC)
    yield conn
    conn.close()


@pytest.fixture
def world(template: sqlite3.Connection) -> Iterator[World]:
    w = World.from_template(template, simulate_io=False)
    yield w
    w.close()


_call_ids = itertools.count(1)


def call(world: World, tool: str, call_id: str | None = None, **args: Any) -> Any:
    """Validate ``args`` like the router does and run the support tool on ``world`` (a fresh call id each time,
    as an agent gives every call its own)."""
    call_id = call_id or f"c{next(_call_ids)}"
    spec = support[tool]
    validated = spec.args_model.model_validate(args).__dict__
    return run_virtual(spec.fn(ToolContext(world=world, call_id=call_id), **validated))


def order(world: World, order_id: str) -> dict[str, Any]:
    row = world.one("SELECT * FROM orders WHERE id = ?", order_id)
    assert row is not None
    return row


def stock(world: World, product_id: str) -> int:
    row = world.one("SELECT stock FROM products WHERE id = ?", product_id)
    assert row is not None
    return row["stock"]


def full_state(world: World) -> dict[str, Any]:
    return {**world.snapshot(ignore=frozenset()), "effects": world.effects()}


# --- ToolSpec -----------------------------------------------------------------------------------


def test_tool_schema_has_required_args_types_and_no_titles() -> None:
    reg = ToolRegistry()

    @reg.tool(permissions=["p"])
    async def demo(
        ctx: ToolContext, order_id: str, amount: float, count: int = 1, level: Literal["low", "high"] = "low"
    ) -> None:
        """Do a demo thing.

        Second paragraph is not part of the description.
        """

    spec = reg["demo"]
    schema = spec.definition.parameters
    assert spec.definition.name == "demo"
    assert spec.description == spec.definition.description == "Do a demo thing."
    assert schema["type"] == "object"
    assert schema["required"] == ["order_id", "amount"]
    assert spec.required_args == ["order_id", "amount"]
    props = schema["properties"]
    assert list(props) == ["order_id", "amount", "count", "level"]  # ctx is not an argument
    assert props["order_id"]["type"] == "string"
    assert props["amount"]["type"] == "number"
    assert props["count"] == {"type": "integer", "default": 1}
    assert props["level"]["enum"] == ["low", "high"]
    assert "title" not in schema
    assert all("title" not in p for p in props.values())
    # The token estimate is the size of the JSON a model would see, at ~4 characters a token.
    text = orjson.dumps({"name": "demo", "description": "Do a demo thing.", "parameters": schema})
    assert spec.definition.tokens == len(text) // 4 > 0


def test_registry_rejects_duplicate_names() -> None:
    reg = ToolRegistry()

    async def f(ctx: ToolContext) -> None:
        """F."""

    reg.tool()(f)
    with pytest.raises(ValueError, match="already registered"):
        reg.tool()(f)
    reg.tool(name="g")(f)
    assert reg.names() == ["f", "g"]
    assert "g" in reg and "h" not in reg and len(reg) == 2


def test_support_schemas() -> None:
    for spec in support:
        params = spec.definition.parameters
        assert "title" not in params
        assert all("title" not in p for p in params["properties"].values()), spec.name
        assert params.get("required", []) == spec.required_args
    assert support["issue_refund"].required_args == ["order_id", "amount"]
    assert support["issue_refund"].definition.parameters["properties"]["amount"]["type"] == "number"
    assert support["create_ticket"].definition.parameters["properties"]["priority"]["enum"] == [
        "low",
        "normal",
        "high",
        "urgent",
    ]


def test_issue_refund_metadata() -> None:
    spec = support["issue_refund"]
    assert spec.idempotent is False
    assert spec.side_effects is True
    assert spec.permissions == frozenset({"refunds"})
    assert spec.rollback is None


def test_cancel_order_metadata() -> None:
    spec = support["cancel_order"]
    assert spec.rollback is not None
    assert spec.side_effects is True
    assert spec.permissions == frozenset({"orders:write"})


def test_web_search_metadata() -> None:
    spec = support["web_search"]
    assert spec.fallback == "kb_search"
    assert spec.fallback in support
    assert spec.external is True
    assert spec.cost_usd > 0
    assert support["kb_search"].fallback is None


def test_reads_have_no_side_effects_and_writes_do() -> None:
    reads = {"lookup_order", "get_customer", "search_customers", "check_inventory", "kb_search", "web_search"}
    for spec in support:
        assert spec.permissions, f"{spec.name} must require a permission"
        assert spec.side_effects == (spec.name not in reads), spec.name
        if spec.name in reads:
            assert spec.idempotent, spec.name


def test_redacted_fields_are_real_arguments() -> None:
    assert support["get_customer"].redact == frozenset({"phone"})
    assert support["send_email"].redact == frozenset({"body"})
    assert "body" in support["send_email"].args_model.model_fields


# --- World: reads ----------------------------------------------------------------------------------


def test_lookup_order_reads_the_world(world: World) -> None:
    row = call(world, "lookup_order", order_id="ORD-2")
    assert row["status"] == "processing"
    assert row["total"] == 498.0
    with pytest.raises(ToolFailed, match="ORD-404"):
        call(world, "lookup_order", order_id="ORD-404")


def test_get_customer_lists_order_ids(world: World) -> None:
    assert call(world, "get_customer", customer_id="CUS-1")["order_ids"] == ["ORD-1", "ORD-3"]


# --- issue_refund ----------------------------------------------------------------------------------


def test_refund_writes_row_order_and_one_effect(world: World) -> None:
    result = call(world, "issue_refund", call_id="c5", order_id="ORD-1", amount=30.0, reason="late")
    assert result == {"refund_id": "RF-0001", "order_id": "ORD-1", "amount": 30.0, "refunded_total": 30.0}
    refunds = world.all("SELECT id, order_id, amount, reason FROM refunds")
    assert refunds == [{"id": "RF-0001", "order_id": "ORD-1", "amount": 30.0, "reason": "late"}]
    assert order(world, "ORD-1")["refunded"] == 30.0
    effects = world.effects()
    assert len(effects) == 1
    assert effects[0]["tool"] == "issue_refund"
    assert effects[0]["action"] == "apply"
    assert effects[0]["call_id"] == "c5"
    assert orjson.loads(effects[0]["args"]) == {"order_id": "ORD-1", "amount": 30.0}


def test_refunds_accumulate_up_to_the_total(world: World) -> None:
    call(world, "issue_refund", order_id="ORD-1", amount=39.99)
    second = call(world, "issue_refund", order_id="ORD-1", amount=50.0)
    assert second["refund_id"] == "RF-0002"
    assert second["refunded_total"] == 89.99
    with pytest.raises(ToolFailed):
        call(world, "issue_refund", order_id="ORD-1", amount=0.01)
    assert len(world.effects()) == 2


@pytest.mark.parametrize(
    ("order_id", "amount", "message"),
    [
        ("ORD-1", 89.999, "must be > 0 and <= 89.99"),  # rounds to 90.00 > remaining
        ("ORD-1", 100.0, "<= 89.99"),
        ("ORD-4", 30.01, "<= 30.00"),  # 50.00 total, 20.00 already refunded
        ("ORD-1", 0.0, "must be > 0"),
        ("ORD-1", -5.0, "must be > 0"),
        ("ORD-3", 10.0, "cancelled"),
        ("ORD-404", 10.0, "not found"),
    ],
)
def test_refund_rules_refuse_and_leave_world_unchanged(
    world: World, order_id: str, amount: float, message: str
) -> None:
    before = full_state(world)
    with pytest.raises(ToolFailed, match=message):
        call(world, "issue_refund", order_id=order_id, amount=amount)
    assert full_state(world) == before


def test_refund_of_exact_remaining_amount_is_allowed(world: World) -> None:
    assert call(world, "issue_refund", order_id="ORD-4", amount=30.0)["refunded_total"] == 50.0


def test_refund_that_rounds_to_zero_is_refused(world: World) -> None:
    before = full_state(world)
    with pytest.raises(ToolFailed):
        call(world, "issue_refund", order_id="ORD-1", amount=0.004)
    assert full_state(world) == before


# --- cancel_order and its rollback -------------------------------------------------------------------


def test_cancel_then_rollback_restores_status_and_stock(world: World) -> None:
    spec = support["cancel_order"]
    args = {"order_id": "ORD-2", "reason": ""}
    result = call(world, "cancel_order", call_id="c1", **args)
    assert result == {"order_id": "ORD-2", "status": "cancelled", "previous_status": "processing"}
    assert order(world, "ORD-2")["status"] == "cancelled"
    assert stock(world, "PRD-2") == 4  # 2 in stock + 2 returned

    assert spec.rollback is not None
    run_virtual(spec.rollback(ToolContext(world=world, call_id="c2"), args, result))
    assert order(world, "ORD-2")["status"] == "processing"
    assert stock(world, "PRD-2") == 2
    assert [(e["tool"], e["action"], e["call_id"]) for e in world.effects()] == [
        ("cancel_order", "apply", "c1"),
        ("cancel_order", "compensate", "c2"),
    ]


@pytest.mark.parametrize("order_id", ["ORD-1", "ORD-3", "ORD-4"])
def test_only_processing_orders_can_be_cancelled(world: World, order_id: str) -> None:
    before = full_state(world)
    with pytest.raises(ToolFailed, match="only processing orders"):
        call(world, "cancel_order", order_id=order_id)
    assert full_state(world) == before


def test_update_address_rollback(world: World) -> None:
    spec = support["update_address"]
    args = {"customer_id": "CUS-2", "address": "9 New Rd"}
    result = call(world, "update_address", **args)
    assert result["previous_address"] == "2 Pine Ave"
    assert order(world, "ORD-2")["address"] == "9 New Rd"  # processing order follows the customer
    assert order(world, "ORD-4")["address"] == ""  # delivered order keeps its address
    assert spec.rollback is not None
    run_virtual(spec.rollback(ToolContext(world=world), args, result))
    customer = world.one("SELECT address FROM customers WHERE id = 'CUS-2'")
    assert customer == {"address": "2 Pine Ave"}
    assert [e["action"] for e in world.effects()] == ["apply", "compensate"]


# --- transactions, isolation, patches, snapshots -------------------------------------------------------


def test_failure_inside_transaction_rolls_back_partial_writes(world: World) -> None:
    before = full_state(world)
    with pytest.raises(RuntimeError, match="boom"), world.transaction() as w:
        w.execute("UPDATE orders SET status = 'shipped' WHERE id = 'ORD-2'")
        w.execute("INSERT INTO refunds (id, order_id, amount, reason, t) VALUES ('RF-X', 'ORD-2', 1, '', 0)")
        w.record_effect("issue_refund", {"order_id": "ORD-2"})
        raise RuntimeError("boom")
    assert full_state(world) == before


def test_nested_transaction_failure_only_rolls_back_the_inner_part(world: World) -> None:
    with world.transaction() as w:
        w.execute("UPDATE products SET stock = 99 WHERE id = 'PRD-1'")
        with pytest.raises(ToolFailed), w.transaction():
            w.execute("UPDATE products SET stock = 0 WHERE id = 'PRD-2'")
            raise ToolFailed("inner")
    assert stock(world, "PRD-1") == 99
    assert stock(world, "PRD-2") == 2


def test_successful_transaction_commits(world: World) -> None:
    with world.transaction() as w:
        w.execute("UPDATE products SET stock = 7 WHERE id = 'PRD-2'")
    assert stock(world, "PRD-2") == 7


def test_worlds_from_the_same_template_do_not_share_state(template: sqlite3.Connection) -> None:
    a = World.from_template(template, simulate_io=False)
    b = World.from_template(template, simulate_io=False)
    call(a, "issue_refund", order_id="ORD-1", amount=10.0)
    call(a, "cancel_order", order_id="ORD-2")
    assert order(b, "ORD-1")["refunded"] == 0.0
    assert order(b, "ORD-2")["status"] == "processing"
    assert b.effects() == []
    assert b.all("SELECT * FROM refunds") == []
    # And the template itself is untouched: a third copy is pristine.
    c = World.from_template(template, simulate_io=False)
    assert c.snapshot() == b.snapshot() != a.snapshot()
    for w in (a, b, c):
        w.close()


def test_apply_patch_updates_and_inserts(template: sqlite3.Connection) -> None:
    patch = {
        "orders": [{"id": "ORD-1", "status": "delivered", "note": "left at door"}],
        "products": [{"id": "PRD-9", "name": "Stove", "price": 74.25, "stock": 3}],
    }
    world = World.from_template(template, patch, simulate_io=False)
    updated = order(world, "ORD-1")
    assert updated["status"] == "delivered"
    assert updated["note"] == "left at door"
    assert updated["total"] == 89.99  # fields not in the patch are kept
    assert updated["customer_id"] == "CUS-1"
    assert world.one("SELECT * FROM products WHERE id = 'PRD-9'") == {
        "id": "PRD-9",
        "name": "Stove",
        "price": 74.25,
        "stock": 3,
    }
    assert len(world.all("SELECT id FROM products")) == 3
    world.close()


def test_apply_patch_validates_rows_and_applies_nothing_on_error(world: World) -> None:
    before = full_state(world)
    with pytest.raises(ValueError):  # pydantic ValidationError is a ValueError
        world.apply_patch({"orders": [{"id": "ORD-1", "status": "lost"}], "products": []})
    with pytest.raises(ValueError):
        world.apply_patch(
            {
                "products": [{"id": "PRD-1", "stock": 1}],
                "customers": [{"id": "CUS-9", "name": "No Email"}],  # new row, incomplete
            }
        )
    assert full_state(world) == before


def test_snapshot_drops_volatile_columns_and_rounds(world: World) -> None:
    call(world, "issue_refund", order_id="ORD-1", amount=10.0, reason="some free text")
    call(world, "send_email", customer_id="CUS-1", subject="Hi", body="Your refund")
    world.execute("UPDATE products SET price = 1.23456 WHERE id = 'PRD-1'")
    snap = world.snapshot()
    assert set(snap) == {"customers", "products", "orders", "refunds", "emails", "tickets", "escalations"}
    assert snap["refunds"] == [{"id": "RF-0001", "order_id": "ORD-1", "amount": 10.0}]
    assert snap["emails"] == [{"id": "EM-0001", "customer_id": "CUS-1"}]
    for rows in snap.values():
        for row in rows:
            assert not (set(row) & SPEC.world_schema.volatile)
    assert snap["products"][0]["price"] == 1.23
    assert [o["id"] for o in snap["orders"]] == ["ORD-1", "ORD-2", "ORD-3", "ORD-4"]
    # Without ignoring anything, the volatile columns are there.
    assert world.snapshot(ignore=frozenset())["refunds"][0]["reason"] == "some free text"
    assert world.snapshot(ignore={"reason"}) == world.snapshot(ignore=["reason"])  # any collection of names
    assert "reason" not in world.snapshot(ignore={"reason"})["refunds"][0]


def test_grading_reads_rows_first_and_snapshots_only_a_world_that_differs(template: Any) -> None:
    from agentlab.runs.grading import ExpectedState

    gold = World.from_template(template, simulate_io=False)
    call(gold, "issue_refund", order_id="ORD-1", amount=10.0, reason="gold's words")
    expected = ExpectedState.of(gold)
    assert expected.snapshot == gold.snapshot()
    gold.close()

    same = World.from_template(template, simulate_io=False)
    call(same, "issue_refund", order_id="ORD-1", amount=10.0, reason="other words")  # a volatile column differs
    assert same.rows() == expected.rows
    assert expected.end_state_of(same) is expected.snapshot  # equal rows: no snapshot made

    noisy = World.from_template(template, simulate_io=False)
    call(noisy, "issue_refund", order_id="ORD-1", amount=10.0, reason="x")
    noisy.execute("UPDATE refunds SET amount = amount + 1e-9")  # float noise: rows differ, the snapshot does not
    assert noisy.rows() != expected.rows
    assert expected.end_state_of(noisy) is not expected.snapshot and expected.end_state_of(noisy) == expected.snapshot

    wrong = World.from_template(template, simulate_io=False)
    call(wrong, "issue_refund", order_id="ORD-1", amount=12.0, reason="x")
    assert expected.end_state_of(wrong) == wrong.snapshot() != expected.snapshot
    for w in (same, noisy, wrong):
        w.close()


def test_a_lent_copy_comes_back_as_the_template_whatever_the_episode_left_open() -> None:
    """In-memory worlds reuse their template's copies: each closed world's changes are undone, including a
    transaction it left open, so the next world (and its ledger's numbering) starts exactly as a fresh copy."""
    template = build_template(SPEC)
    fresh = sqlite3.connect(":memory:")
    template.backup(fresh)
    pristine = {t: fresh.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("orders", "effects")}
    fresh.close()

    first = World.from_template(template, {"orders": [{"id": "ORD-1", "status": "delivered"}]}, simulate_io=False)
    call(first, "issue_refund", order_id="ORD-1", amount=10.0)
    first.conn.execute("SAVEPOINT left_open")  # an episode that ended mid-transaction
    first.execute("UPDATE products SET stock = 0")
    lent = first.conn
    first.close()
    with pytest.raises(sqlite3.ProgrammingError):  # a closed world cannot reach the copy it had
        first.one("SELECT 1")

    second = World.from_template(template, simulate_io=False)
    assert second.conn is lent  # the same copy, lent again
    for table, rows in pristine.items():
        assert [tuple(r.values()) for r in second.all(f"SELECT * FROM {table} ORDER BY rowid")] == rows
    assert second.one("SELECT MIN(stock) AS s FROM products")["s"] > 0  # type: ignore[index]
    call(second, "issue_refund", order_id="ORD-1", amount=10.0)
    assert [e["seq"] for e in second.effects()] == [1]  # the ledger numbers from 1 again

    third = World.from_template(template, simulate_io=False)  # open beside the second: a copy of its own
    assert third.conn is not second.conn and third.effects() == []
    second.close()
    third.close()

    committed = World.from_template(template, simulate_io=False)
    call(committed, "issue_refund", order_id="ORD-1", amount=10.0)
    spoiled = committed.conn
    spoiled.commit()  # ends the outer savepoint too: this copy cannot be undone
    committed.close()
    fourth = World.from_template(template, simulate_io=False)
    assert fourth.conn is not spoiled and fourth.effects() == []
    fourth.close()
    template.close()


def test_world_now_reads_the_clock() -> None:
    class FixedClock:
        def now(self) -> float:
            return 12.5

    template = build_template(SPEC)
    world = World.from_template(template, clock=FixedClock(), simulate_io=False)
    call(world, "issue_refund", order_id="ORD-1", amount=1.0)
    assert world.one("SELECT t FROM refunds") == {"t": 12.5}
    assert world.effects()[0]["t"] == 12.5
    world.close()
    template.close()


def test_simulated_io_takes_virtual_time_and_can_fail(template: sqlite3.Connection) -> None:
    env = Environment(default_latency=LatencyProfile(median_s=2.0, p95_s=2.0), latency={}, flaky={"kb_search": 1.0})
    world = World.from_template(template, environment=env)

    async def main() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        row = await support["lookup_order"].fn(ToolContext(world=world), order_id="ORD-1")
        t = loop.time()
        with pytest.raises(ToolTransientError):
            await support["kb_search"].fn(ToolContext(world=world), query="returns")
        return row["id"], t

    assert run_virtual(main()) == ("ORD-1", 2.0)
    world.close()
