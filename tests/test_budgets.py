"""Property tests: for any budgets, prompts and prices, spend never exceeds any budget scope —
and the same check fails when the pre-call estimate is switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.components.budgets import BudgetLedger, BudgetLimits, ScopeKeys
from agentlab.errors import BudgetExceeded

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

limits = st.builds(
    BudgetLimits,
    request_usd=st.none() | st.floats(0.0, 0.5),
    session_usd=st.none() | st.floats(0.0, 1.0),
    user_day_usd=st.none() | st.floats(0.0, 2.0),
    user_month_usd=st.none() | st.floats(0.0, 5.0),
)
# A call: who, which session and request, when (seconds after the epoch), prompt size, the output cap,
# the output actually produced (never above the cap), and the tier's prices (USD per million tokens).
calls = st.lists(
    st.tuples(
        st.sampled_from(["U-1", "U-2"]),
        st.integers(0, 3),
        st.integers(0, 5),
        st.floats(0, 90 * 86400),
        st.integers(0, 20_000),
        st.integers(1, 4096),
        st.floats(0, 1),
        st.floats(0.0, 20.0),
        st.floats(0.0, 80.0),
    ),
    max_size=60,
)


def simulate(limit: BudgetLimits, script: list, *, estimate: bool) -> BudgetLedger:
    ledger = BudgetLedger(limit)
    for user, session, request, at, prompt, cap, used, in_price, out_price in sorted(script, key=lambda c: c[3]):
        keys = ScopeKeys.of(user, f"{user}-s{session}", f"{user}-s{session}-r{request}", EPOCH + timedelta(seconds=at))
        worst = (prompt * in_price + cap * out_price) / 1e6
        actual = (prompt * in_price + int(cap * used) * out_price) / 1e6
        if estimate:
            try:
                ledger.check(keys, worst)
            except BudgetExceeded:
                continue  # refused: nothing is spent
        ledger.charge(keys, actual)
    return ledger


@settings(max_examples=300, deadline=None)
@given(limits, calls)
def test_spend_never_exceeds_any_scope(limit: BudgetLimits, script: list) -> None:
    assert simulate(limit, script, estimate=True).over_budget() == []


def test_without_the_pre_call_estimate_budgets_are_overrun() -> None:
    """The check can fail: switch the estimate off and hypothesis finds an overrun."""
    found: list = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(limits, calls)
    def probe(limit: BudgetLimits, script: list) -> None:
        if simulate(limit, script, estimate=False).over_budget():
            found.append((limit, script))

    probe()
    assert found, "hypothesis found no overrun with the estimate switched off"


def test_calendar_scopes_reset_on_the_simulated_clock() -> None:
    ledger = BudgetLedger(BudgetLimits(user_day_usd=1.0))
    day1 = ScopeKeys.of("U-1", "s1", "r1", EPOCH + timedelta(hours=23))
    day2 = ScopeKeys.of("U-1", "s2", "r2", EPOCH + timedelta(hours=25))
    ledger.charge(day1, 0.9)
    assert ledger.headroom(day1) == ("user_day", 0.09999999999999998)
    assert ledger.headroom(day2)[1] == 1.0  # a new day on the simulated calendar
    assert day1.user_month == day2.user_month == "month:U-1:2026-01"
