"""Cost Controller and tier pricing."""

from __future__ import annotations

import pytest

from agentlab.components.cost import CostController, RequestBudget
from agentlab.errors import BudgetExceeded
from agentlab.llm.tiers import LatencyProfile, TierProfile
from agentlab.llm.types import Message, ModelRequest, ToolDefinition, Usage
from agentlab.testing.trace import ListTrace
from agentlab.trace.events import BudgetChecked


def profile(input_per_1k: float, output_per_1k: float, cached: float | None = None) -> TierProfile:
    return TierProfile(
        model="m",
        input_per_1k=input_per_1k,
        output_per_1k=output_per_1k,
        cached_input_per_1k=cached,
        latency=LatencyProfile(median_s=1, p95_s=2),
        p_correct=1.0,
    )


# Prices that are exact in binary floating point, so boundaries can be tested exactly.
EXACT = profile(1.0, 2.0)


def request(prompt_tokens: int, max_tokens: int) -> ModelRequest:
    return ModelRequest(tier="t", model="m", messages=(), max_tokens=max_tokens, prompt_tokens_hint=prompt_tokens)


# --- TierProfile.price ---------------------------------------------------------------------------


def test_price_input_only() -> None:
    assert profile(0.001, 0.005).price(2000, 0) == pytest.approx(0.002)


def test_price_output_only() -> None:
    assert profile(0.001, 0.005).price(0, 3000) == pytest.approx(0.015)


def test_price_input_and_output() -> None:
    # 1500 * 0.003/1k + 400 * 0.015/1k = 0.0045 + 0.006
    assert profile(0.003, 0.015).price(1500, 400) == pytest.approx(0.0105)


def test_price_cached_tokens_use_cached_rate() -> None:
    p = profile(0.001, 0.005, cached=0.0001)
    # 1000 input of which 600 cached: 400 fresh * 0.001 + 600 * 0.0001, plus 100 output * 0.005
    assert p.price(1000, 100, cached_tokens=600) == pytest.approx((0.4 + 0.06 + 0.5) / 1000)
    assert p.price(1000, 100, cached_tokens=600) < p.price(1000, 100)


def test_price_cached_tokens_without_cached_rate_cost_full_input_rate() -> None:
    p = profile(0.001, 0.005)
    assert p.price(1000, 100, cached_tokens=600) == pytest.approx(p.price(1000, 100))


@pytest.mark.parametrize(("inp", "cached"), [(1000, 600), (1000, 1000), (300, 900), (0, 50)])
def test_tier_rates_and_the_price_table_agree_even_on_impossible_cached_counts(inp: int, cached: int) -> None:
    """Cached tokens are part of the input: more cached than input (malformed usage) is clamped, the same way
    in the tier's rates (the pre-call estimate) and in the price table (the charge)."""
    from agentlab.llm.pricing import ModelPrice

    tier = profile(0.001, 0.005, cached=0.0001)
    listed = ModelPrice(provider="sim", tier="t", input=1.0, output=5.0, cached_input=0.1, context_window=1000)
    usage = Usage(input_tokens=inp, output_tokens=100, cached_tokens=cached)
    assert tier.price(inp, 100, cached) == pytest.approx(listed.cost(usage))
    assert tier.price(inp, 100, cached) <= tier.price(inp, 100)  # caching never costs more


def test_price_zero_usage_is_free() -> None:
    assert profile(0.001, 0.005, cached=0.0001).price(0, 0, 0) == 0.0


def test_cost_controller_price_uses_usage() -> None:
    p = profile(0.001, 0.005, cached=0.0001)
    usage = Usage(input_tokens=1000, output_tokens=100, cached_tokens=600)
    assert CostController().price(p, usage) == p.price(1000, 100, 600)


def test_with_a_price_table_usage_is_priced_by_the_responding_model() -> None:
    from pathlib import Path

    import pytest

    from agentlab.llm.pricing import UnknownModel, load_prices

    prices = load_prices(Path(__file__).resolve().parents[1] / "fixtures/prices.yaml")
    controller = CostController(prices=prices)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert controller.price(profile(9, 9), usage, "gpt-4o-mini-2024-07-18") == pytest.approx(0.15)
    with pytest.raises(UnknownModel):
        controller.price(profile(9, 9), usage, "a-model-nobody-priced")


# --- budget ----------------------------------------------------------------------------------------


def test_open_charge_and_remaining() -> None:
    cost = CostController()
    budget = cost.open(1.0)
    assert budget == RequestBudget(limit_usd=1.0, spent_usd=0.0)
    cost.charge(budget, 0.25)
    cost.charge(budget, 0.5)
    assert budget.spent_usd == 0.75
    assert budget.remaining_usd == 0.25


# --- check_model -----------------------------------------------------------------------------------


def test_check_model_returns_worst_case_estimate_and_emits_nothing_when_allowed() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=10.0)
    # 500 prompt tokens * 1.0/1k + 250 max output tokens * 2.0/1k
    estimate = CostController().check_model(budget, request(500, 250), EXACT, trace)
    assert estimate == 1.0
    assert trace.events == []
    assert budget.spent_usd == 0.0  # checking does not charge


def test_check_model_allows_exactly_reaching_the_limit() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=4.0, spent_usd=3.0)
    assert CostController().check_model(budget, request(500, 250), EXACT, trace) == 1.0
    assert trace.events == []


def test_check_model_refuses_when_spent_plus_estimate_exceeds_limit() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=4.0, spent_usd=3.5)
    with pytest.raises(BudgetExceeded) as info:
        CostController().check_model(budget, request(500, 250), EXACT, trace)
    exc = info.value
    assert (exc.scope, exc.estimate_usd, exc.spent_usd, exc.limit_usd) == ("request", 1.0, 3.5, 4.0)
    assert len(trace.events) == 1
    event = trace.events[0]
    assert isinstance(event, BudgetChecked)
    assert event.kind == "budget_check"
    assert event.allowed is False
    assert (event.estimate_usd, event.spent_usd, event.limit_usd) == (1.0, 3.5, 4.0)


def test_check_model_estimate_counts_max_tokens_not_actual_output() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=1.0)
    # Prompt alone (0.1) fits; the full max_tokens of output (2000 * 2/1k = 4.0) does not.
    with pytest.raises(BudgetExceeded):
        CostController().check_model(budget, request(100, 2000), EXACT, trace)
    assert [e.allowed for e in trace.events] == [False]  # type: ignore[attr-defined]


def test_check_model_estimates_prompt_from_messages_and_tools() -> None:
    trace = ListTrace()
    # message_chars = len(content) + 8; 392 + 8 = 400 chars = 100 tokens; plus 50 tool tokens.
    req = ModelRequest(
        tier="t",
        model="m",
        messages=(Message(role="user", content="x" * 392),),
        tools=(ToolDefinition(name="t", description="", parameters={}, tokens=50),),
        max_tokens=0,
    )
    estimate = CostController().check_model(RequestBudget(limit_usd=10.0), req, EXACT, trace)
    assert estimate == 150 / 1000


# --- admit -----------------------------------------------------------------------------------------


def test_admit_refuses_budget_below_one_small_call() -> None:
    trace = ListTrace()
    cost = CostController(min_prompt_tokens=200)
    # One small call: 200 prompt tokens + 512 output = 0.2 + 1.024 = 1.224
    budget = cost.open(1.2)
    assert cost.admit(budget, EXACT, 512, trace) is False
    assert len(trace.events) == 1
    event = trace.events[0]
    assert isinstance(event, BudgetChecked)
    assert event.allowed is False
    assert event.estimate_usd == pytest.approx(1.224)
    assert event.limit_usd == 1.2


def test_admit_accepts_budget_that_covers_one_small_call() -> None:
    trace = ListTrace()
    cost = CostController(min_prompt_tokens=200)
    budget = cost.open(1.25)
    assert cost.admit(budget, EXACT, 512, trace) is True
    assert [e.allowed for e in trace.events] == [True]  # type: ignore[attr-defined]


def test_admit_uses_min_prompt_tokens() -> None:
    trace = ListTrace()
    # 1000 prompt tokens alone cost 1.0 > 0.9
    assert CostController(min_prompt_tokens=1000).admit(RequestBudget(0.9), EXACT, 0, trace) is False
    assert CostController(min_prompt_tokens=100).admit(RequestBudget(0.9), EXACT, 0, trace) is True


def test_admit_refuses_zero_budget() -> None:
    assert CostController().admit(RequestBudget(0.0), profile(0.001, 0.005), 512, ListTrace()) is False


# --- check_tool ------------------------------------------------------------------------------------


def test_check_tool_free_tool_is_never_refused() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=1.0, spent_usd=2.0)  # already over budget
    CostController().check_tool(budget, "lookup_order", 0.0, trace)
    assert trace.events == []


def test_check_tool_within_budget_emits_nothing() -> None:
    trace = ListTrace()
    CostController().check_tool(RequestBudget(limit_usd=1.0, spent_usd=0.5), "web_search", 0.5, trace)
    assert trace.events == []


def test_check_tool_over_budget_raises_and_emits_one_event() -> None:
    trace = ListTrace()
    budget = RequestBudget(limit_usd=1.0, spent_usd=0.75)
    with pytest.raises(BudgetExceeded) as info:
        CostController().check_tool(budget, "web_search", 0.5, trace)
    assert info.value.estimate_usd == 0.5
    assert len(trace.events) == 1
    assert trace.events[0].allowed is False  # type: ignore[attr-defined]
    assert trace.events[0].estimate_usd == 0.5  # type: ignore[attr-defined]
    assert budget.spent_usd == 0.75
