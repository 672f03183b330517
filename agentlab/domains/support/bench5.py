"""The ``support-5`` benchmark workload's tools and scripted model (see :mod:`agentlab.bench`).

Support-shaped on purpose, and fixed, so figures compare across frameworks: five sequential tool calls that
return at once, then an answer. The tools do not touch a world; what is measured is the agent around them.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentlab.components.messages import User
from agentlab.components.policy import Policy, Rule
from agentlab.llm.types import ModelRequest, ModelResponse, ToolCall, Usage
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry

bench_tools = ToolRegistry()


@bench_tools.tool(permissions=["orders:read"])
async def lookup_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order."""
    return {"id": order_id, "status": "shipped", "total": 42.5, "product_id": "PRD-001", "customer_id": "CUS-001"}


@bench_tools.tool(permissions=["inventory:read"])
async def check_inventory(ctx: ToolContext, product_id: str) -> dict[str, Any]:
    """Check stock."""
    return {"product_id": product_id, "stock": 3}


@bench_tools.tool(permissions=["refunds"], idempotent=False, side_effects=True)
async def issue_refund(ctx: ToolContext, order_id: str, amount: float) -> dict[str, Any]:
    """Refund an order."""
    return {"refund_id": "RF-0001", "order_id": order_id, "amount": amount}


@bench_tools.tool(permissions=["email:send"], idempotent=False, side_effects=True)
async def send_email(ctx: ToolContext, customer_id: str, subject: str, body: str) -> dict[str, Any]:
    """Email a customer."""
    return {"email_id": "EM-0001"}


@bench_tools.tool(permissions=["notes:write"])
async def log_note(ctx: ToolContext, text: str) -> dict[str, Any]:
    """Log a note."""
    return {"ok": True}


# The policy ``--safety`` gates with: fixtures/policies/support.yaml, written here rather than read from the file, so
# that an installed package (which has no fixtures) can run the benchmark and a fixture edit cannot silently change
# it (a test holds the two equal). support-5's user is a senior; its refund stays under the approval limit.
BENCH_POLICY = Policy(
    default="deny",
    approval_limit_usd=100,
    rules=(
        Rule(role="viewer", tool="*", resource="*", effect="allow", reason="viewers are limited by their tool ACLs"),
        Rule(role="*", tool="escalate_to_human", effect="allow"),
        Rule(role="agent", tool="*", effect="allow"),
        Rule(role="senior", tool="*", effect="allow"),
        Rule(role="customer", tool="lookup_order", effect="allow"),
        Rule(role="customer", tool="kb_search", effect="allow"),
        Rule(role="customer", tool="create_ticket", effect="allow"),
    ),
)

BENCH_USER = User(id="U-bench", role="senior", permissions=frozenset(s for t in bench_tools for s in t.permissions))


def script(order: str) -> list[tuple[str, dict[str, Any]]]:
    """The scripted model's five decisions for one order, as a plain list: what the floor runs
    (:func:`agentlab.bench.run_floor`) and what :class:`ScriptedModel` calls, one a turn."""
    return [
        ("lookup_order", {"order_id": order}),
        ("check_inventory", {"product_id": "PRD-001"}),
        ("issue_refund", {"order_id": order, "amount": 42.5}),
        ("send_email", {"customer_id": "CUS-001", "subject": "Refund", "body": f"Refunded {order}."}),
        ("log_note", {"text": f"refunded {order}"}),
    ]


def answer(order: str) -> str:
    """The scripted model's final answer for one order."""
    return f"Order {order} was shipped; refund of $42.50 issued and the customer emailed."


class ScriptedModel:
    """Answers support-5 deterministically: the five calls of :func:`script`, one a turn, then :func:`answer`.
    No latency, no randomness. The script is made once per order (an episode), not once per turn."""

    # Class defaults, shadowed per instance on first use (subclasses need not call an __init__).
    _order = ""
    _script: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012  (never mutated: replaced per order)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        turn = (len(request.messages) - 2) // 2  # system, user, then (assistant, tool) pairs
        order = request.metadata["order_id"]
        prompt = request.prompt_tokens()
        if order != self._order:
            self._order, self._script = order, script(order)
        if turn >= len(self._script):
            text = answer(order)
            return ModelResponse(model="scripted", text=text, usage=Usage(input_tokens=prompt, output_tokens=20))
        name, args = self._script[turn]
        raw = orjson.dumps(args).decode()
        tool_call = ToolCall(id=f"call_{turn}", name=name, arguments=args, raw_arguments=raw)
        return ModelResponse(
            model="scripted",
            tool_calls=(tool_call,),
            stop_reason="tool_use",
            usage=Usage(input_tokens=prompt, output_tokens=len(raw) // 4 + 5),
        )
