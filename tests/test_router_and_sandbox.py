"""Tool Router (resolve, validate, fallback) and Execution Sandbox (timeouts, containment)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from agentlab.components.router import ToolRouter
from agentlab.components.sandbox import ExecutionSandbox
from agentlab.domains.support import registry as support_registry
from agentlab.errors import (
    InvalidArguments,
    PermissionDenied,
    StepError,
    ToolFailed,
    ToolTimeout,
    ToolTransientError,
    UnknownTool,
)
from agentlab.llm.types import ToolCall
from agentlab.sim.loop import run_virtual
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry, ToolSpec


def make_registry(calls: list[dict[str, Any]]) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool(permissions=["refunds"])
    async def refund(ctx: ToolContext, order_id: str, amount: float, reason: str = "") -> dict[str, Any]:
        """Refund (records its calls)."""
        calls.append({"order_id": order_id, "amount": amount, "reason": reason})
        return {"order_id": order_id, "amount": amount}

    return reg


def tool_call(name: str, args: dict[str, Any] | None, raw: str | None = None) -> ToolCall:
    if raw is None:
        raw = orjson.dumps(args).decode()
    return ToolCall(id="call_1", name=name, arguments=args, raw_arguments=raw)


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def router(calls: list[dict[str, Any]]) -> ToolRouter:
    return ToolRouter(make_registry(calls))


def route_and_run(router: ToolRouter, call: ToolCall) -> Any:
    """The agent's pipeline for one call: resolve, validate, then execute in the sandbox."""
    spec = router.resolve(call)
    args = router.validate(spec, call)
    return run_virtual(ExecutionSandbox().execute(spec, args, ToolContext(world=None)))


# --- ToolRouter ----------------------------------------------------------------------------------


def test_valid_call_is_routed_with_defaults_filled(router: ToolRouter, calls: list[dict[str, Any]]) -> None:
    result = route_and_run(router, tool_call("refund", {"order_id": "ORD-1", "amount": 12.5}))
    assert result == {"order_id": "ORD-1", "amount": 12.5}
    assert calls == [{"order_id": "ORD-1", "amount": 12.5, "reason": ""}]


def test_validate_returns_plain_argument_dict(router: ToolRouter) -> None:
    spec = router.resolve(tool_call("refund", {}))
    args = router.validate(spec, tool_call("refund", {"order_id": "ORD-1", "amount": 3, "reason": "late"}))
    assert args == {"order_id": "ORD-1", "amount": 3.0, "reason": "late"}
    assert isinstance(args["amount"], float)


def test_unknown_tool(router: ToolRouter, calls: list[dict[str, Any]]) -> None:
    with pytest.raises(UnknownTool, match="teleport"):
        route_and_run(router, tool_call("teleport", {"to": "mars"}))
    assert calls == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"order_id": 1001, "amount": 5.0}, "order_id"),  # wrong type (int for str)
        ({"order_id": "ORD-1", "amount": "five dollars"}, "amount"),  # wrong type (text for number)
        ({"order_id": "ORD-1", "amount": [5]}, "amount"),  # wrong type (list)
        ({"order_id": "ORD-1"}, "amount"),  # missing
        ({"amount": 5.0}, "order_id"),  # missing
        ({"order_id": "ORD-1", "amount": 5.0, "notify": True}, "notify"),  # extra
    ],
    ids=["int-for-str", "text-for-number", "list-for-number", "missing-amount", "missing-order", "extra"],
)
def test_invalid_arguments_never_reach_the_tool(
    router: ToolRouter, calls: list[dict[str, Any]], args: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArguments) as info:
        route_and_run(router, tool_call("refund", args))
    assert "refund" in str(info.value)
    assert field in str(info.value)
    assert calls == []


def test_boolean_for_number_is_invalid(router: ToolRouter, calls: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidArguments):
        route_and_run(router, tool_call("refund", {"order_id": "ORD-1", "amount": True}))
    assert calls == []


def test_malformed_json_arguments_are_invalid(router: ToolRouter, calls: list[dict[str, Any]]) -> None:
    call = tool_call("refund", None, raw='{"order_id": "ORD-1", "amount": 5.0')
    with pytest.raises(InvalidArguments, match="not valid JSON") as info:
        route_and_run(router, call)
    assert '{"order_id": "ORD-1"' in str(info.value)  # shows the model what it sent
    assert calls == []


def test_invalid_arguments_is_a_permanent_step_error() -> None:
    assert issubclass(InvalidArguments, StepError)
    assert InvalidArguments("x").transient is False
    assert UnknownTool("x").transient is False


def test_fallback_for_web_search_is_kb_search() -> None:
    router = ToolRouter(support_registry)
    fallback = router.fallback_for(support_registry["web_search"])
    assert fallback is support_registry["kb_search"]


def test_tools_without_fallback_have_none(router: ToolRouter) -> None:
    assert router.fallback_for(router.resolve(tool_call("refund", {}))) is None
    support = ToolRouter(support_registry)
    assert support.fallback_for(support_registry["kb_search"]) is None
    assert support.fallback_for(support_registry["issue_refund"]) is None


# --- ExecutionSandbox ------------------------------------------------------------------------------


def spec_for(fn: Any, name: str, timeout_s: float = 10.0) -> ToolSpec:
    reg = ToolRegistry()
    reg.tool(timeout_s=timeout_s, name=name)(fn)
    return reg[name]


def run_in_sandbox(sandbox: ExecutionSandbox, spec: ToolSpec, args: dict[str, Any] | None = None) -> Any:
    """Execute on a virtual loop; returns (result or exception, loop time when it finished)."""

    async def main() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        try:
            result: Any = await sandbox.execute(spec, args or {}, ToolContext(world=None))
        except Exception as exc:
            result = exc
        return result, loop.time()

    return run_virtual(main())


async def sleeps_100(ctx: ToolContext) -> str:
    await asyncio.sleep(100)
    return "too late"


def test_slow_tool_times_out_at_its_timeout() -> None:
    spec = spec_for(sleeps_100, "slow", timeout_s=10)
    outcome, t = run_in_sandbox(ExecutionSandbox(), spec)
    assert isinstance(outcome, ToolTimeout)
    assert outcome.transient
    assert "slow" in str(outcome)
    assert "10s" in str(outcome)
    assert t == 10.0


def test_per_tool_timeout_override_wins() -> None:
    spec = spec_for(sleeps_100, "slow", timeout_s=10)
    sandbox = ExecutionSandbox(timeouts={"slow": 3, "other": 1})
    assert sandbox.timeout_for(spec) == 3
    outcome, t = run_in_sandbox(sandbox, spec)
    assert isinstance(outcome, ToolTimeout)
    assert "3s" in str(outcome)
    assert t == 3.0


def test_override_can_extend_the_timeout() -> None:
    async def sleeps_15(ctx: ToolContext) -> str:
        await asyncio.sleep(15)
        return "done"

    spec = spec_for(sleeps_15, "fifteen", timeout_s=10)
    assert isinstance(run_in_sandbox(ExecutionSandbox(), spec)[0], ToolTimeout)
    assert run_in_sandbox(ExecutionSandbox(timeouts={"fifteen": 20}), spec) == ("done", 15.0)


def test_override_for_another_tool_does_not_apply() -> None:
    spec = spec_for(sleeps_100, "slow", timeout_s=10)
    outcome, t = run_in_sandbox(ExecutionSandbox(timeouts={"other": 1}), spec)
    assert isinstance(outcome, ToolTimeout)
    assert t == 10.0


def test_tool_suspending_briefly_returns_its_value() -> None:
    async def sleeps_1(ctx: ToolContext, x: int) -> dict[str, int]:
        await asyncio.sleep(1)
        await asyncio.sleep(0)
        return {"x": x * 2}

    outcome, t = run_in_sandbox(ExecutionSandbox(), spec_for(sleeps_1, "brief"), {"x": 21})
    assert outcome == {"x": 42}
    assert t == 1.0


def test_tool_that_never_suspends_returns_its_value_without_time_passing() -> None:
    async def instant(ctx: ToolContext) -> str:
        return f"called {ctx.call_id or 'anon'}"

    assert run_in_sandbox(ExecutionSandbox(), spec_for(instant, "instant")) == ("called anon", 0.0)


def test_tool_receives_context_and_arguments() -> None:
    seen: list[Any] = []

    async def echo(ctx: ToolContext, a: str, b: int = 2) -> None:
        seen.append((ctx.user_id, ctx.call_id, a, b))

    spec = spec_for(echo, "echo")

    async def main() -> None:
        await ExecutionSandbox().execute(spec, {"a": "x", "b": 3}, ToolContext(world=None, call_id="c9", user_id="U"))

    run_virtual(main())
    assert seen == [("U", "c9", "x", 3)]


@pytest.mark.parametrize("suspend_first", [False, True], ids=["eager", "after-suspend"])
def test_unexpected_exception_becomes_tool_failed(suspend_first: bool) -> None:
    async def buggy(ctx: ToolContext) -> None:
        if suspend_first:
            await asyncio.sleep(2)
        raise ValueError("bad row 17")

    outcome, t = run_in_sandbox(ExecutionSandbox(), spec_for(buggy, "buggy"))
    assert isinstance(outcome, ToolFailed)
    assert not outcome.transient
    assert "buggy" in str(outcome)
    assert "ValueError" in str(outcome)
    assert "bad row 17" in str(outcome)
    assert t == (2.0 if suspend_first else 0.0)


@pytest.mark.parametrize("suspend_first", [False, True], ids=["eager", "after-suspend"])
@pytest.mark.parametrize("error_type", [ToolFailed, ToolTransientError, PermissionDenied, InvalidArguments])
def test_step_errors_pass_through_unchanged(suspend_first: bool, error_type: type[StepError]) -> None:
    error = error_type("order ORD-9 not found")

    async def refusing(ctx: ToolContext) -> None:
        if suspend_first:
            await asyncio.sleep(1)
        raise error

    outcome, _ = run_in_sandbox(ExecutionSandbox(), spec_for(refusing, "refusing"))
    assert outcome is error
    assert outcome.transient is error_type.transient


def test_tool_catching_cancellation_can_clean_up_before_timeout() -> None:
    cleaned: list[float] = []

    async def careful(ctx: ToolContext) -> None:
        try:
            await asyncio.sleep(100)
        finally:
            cleaned.append(asyncio.get_running_loop().time())

    outcome, t = run_in_sandbox(ExecutionSandbox(), spec_for(careful, "careful", timeout_s=4))
    assert isinstance(outcome, ToolTimeout)
    assert cleaned == [4.0]
    assert t == 4.0
