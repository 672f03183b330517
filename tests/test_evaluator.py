"""Evaluator: step scores, hallucinated-claim detection, and offline grading."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentlab.components.evaluator import (
    _ANSWER_CUES,
    _FACT,
    _ID,
    _NUMBER,
    ADMITS_INCOMPLETE,
    CLAIM_LEAD,
    Evaluator,
    _facts,
    known_facts,
    may_cue,
)
from agentlab.components.messages import StepOutcome
from agentlab.domains.support import CLAIMS

EV = Evaluator(claims=CLAIMS)  # the support shop's claims


# --- score_step ----------------------------------------------------------------------------------


def test_score_step_ok() -> None:
    score = EV.score_step(StepOutcome("c1", "lookup_order", True, result={"id": "ORD-1"}))
    assert (score.score, score.passed) == (1.0, True)


def test_score_step_failed_reports_error() -> None:
    outcome = StepOutcome("c1", "issue_refund", False, error_type="ToolFailed", error="order ORD-9 not found")
    score = EV.score_step(outcome)
    assert (score.score, score.passed) == (0.0, False)
    assert "ToolFailed" in score.reason
    assert "order ORD-9 not found" in score.reason


def test_score_step_fallback_is_half_credit() -> None:
    outcome = StepOutcome("c1", "web_search", True, result={"articles": []}, executed_as="kb_search")
    score = EV.score_step(outcome)
    assert (score.score, score.passed) == (0.5, True)
    assert "kb_search" in score.reason


# --- score_response --------------------------------------------------------------------------------

REFUND_CLAIMS = [
    "I've issued a refund of $20.00 for ORD-1001.",
    "I have issued a full refund to your card.",
    "Good news: I've processed your refund.",
    "i've issued the refund",
    "I have processed a partial refund of $5.",
]


@pytest.mark.parametrize("text", REFUND_CLAIMS)
def test_refund_claim_without_successful_refund_is_flagged(text: str) -> None:
    score = EV.score_response(text, {"lookup_order"})
    assert not score.passed
    assert score.score == 0.0
    assert score.unsupported == ["issue_refund"]
    assert "issue_refund" in score.reason


@pytest.mark.parametrize("text", REFUND_CLAIMS)
def test_refund_claim_after_successful_refund_is_accepted(text: str) -> None:
    score = EV.score_response(text, {"lookup_order", "issue_refund"})
    assert score.passed
    assert score.score == 1.0
    assert score.unsupported == []


@pytest.mark.parametrize(
    "text",
    [
        "Sorry, you don't have permission to issue refunds.",
        "I can't issue a refund for a cancelled order.",
        "I have not issued a refund yet; shall I?",
        "I haven't issued a refund.",
        "Would you like me to issue a refund?",
        "A refund was issued last week by another agent.",
    ],
)
def test_refusals_and_questions_are_not_claims(text: str) -> None:
    score = EV.score_response(text, set())
    assert score.passed, score.reason
    assert score.unsupported == []


@pytest.mark.parametrize(
    ("text", "tool"),
    [
        ("I've cancelled order ORD-1003.", "cancel_order"),
        ("I have canceled your order.", "cancel_order"),
        ("I've updated your shipping address.", "update_address"),
        ("I've sent you a confirmation email.", "send_email"),
        ("I have opened a support ticket for you.", "create_ticket"),
        ("I've created a new ticket.", "create_ticket"),
        ("I've escalated this to a human agent.", "escalate_to_human"),
    ],
)
def test_other_action_claims_need_their_tool(text: str, tool: str) -> None:
    assert EV.score_response(text, set()).unsupported == [tool]
    assert EV.score_response(text, {tool}).passed


def test_multiple_unsupported_claims_are_all_listed() -> None:
    score = EV.score_response("I've cancelled the order and I've issued a refund.", {"cancel_order"})
    assert score.unsupported == ["issue_refund"]
    score = EV.score_response("I've cancelled the order and I've issued a refund.", set())
    assert sorted(score.unsupported) == ["cancel_order", "issue_refund"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_answer_fails(text: str) -> None:
    score = EV.score_response(text, {"issue_refund"})
    assert not score.passed
    assert "empty" in score.reason


def test_custom_claims_replace_defaults() -> None:
    ev = Evaluator(claims={"teleport": re.compile(r"\bteleported\b")})
    assert ev.score_response("I've issued a refund.", set()).passed
    assert ev.score_response("You have been teleported.", set()).unsupported == ["teleport"]
    assert Evaluator(claims={}).score_response("I've issued a refund.", set()).passed


def test_refund_claim_with_typographic_apostrophe_is_flagged() -> None:
    assert not EV.score_response("I\u2019ve issued a refund of $20.", set()).passed


# --- facts (grounding) -------------------------------------------------------------------------------

# The plain way to find both kinds of fact in one scan; the evaluator's _FACT is written for speed and must
# match exactly the same spans.
FACT_SPEC = re.compile(f"(?=[A-Z0-9])(?:{_ID.pattern}|{_NUMBER.pattern})")


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ORDCUS-AZ0123456789.,_ x\"':\n\u0663\u00e9", max_size=40))
@example('{"id":"ORD-1004","total":59.9,"n":3}')
@example("ORD-12 AB-123 ABCDEF-123 x1.5 1.5.2 -7 .5 5. 12a _3 \u0663\u0663 1\u0663 é99")
def test_fact_scan_matches_the_plain_patterns(text: str) -> None:
    assert _FACT.findall(text) == [m.group() for m in FACT_SPEC.finditer(text)]


def _facts_one_string_at_a_time(value: object, out: set[str]) -> set[str]:
    """The plain definition of a value's facts: each string searched on its own, each number normalised."""
    if isinstance(value, str):
        out |= {f"{float(f):.2f}" if f[0].isdigit() else f for f in (m.group() for m in FACT_SPEC.finditer(value))}
    elif isinstance(value, dict):
        for v in value.values():
            _facts_one_string_at_a_time(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _facts_one_string_at_a_time(v, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.add(f"{float(value):.2f}")
    return out


FACT_TEXT = st.text(alphabet="ORDCUS-AZ0123456789._ x:\n\u0663", max_size=12)
FACT_VALUE = st.recursive(
    FACT_TEXT | st.integers(-999, 99999) | st.floats(-1e5, 1e5) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text("abc", max_size=3), inner, max_size=4),
    max_leaves=12,
)


def test_a_normalised_number_does_not_depend_on_the_numbers_seen_before() -> None:
    """The normal forms are memoised; 0, 0.0 and -0.0 are equal keys with different forms, whichever comes first."""
    for first, then in ((0, -0.0), (-0.0, 0), (0.0, -0.0)):
        _facts(first)
        assert _facts(then) == _facts_one_string_at_a_time(then, set())


@settings(max_examples=2000, deadline=None)
@given(FACT_VALUE, st.lists(FACT_TEXT, max_size=5))
@example({"a": "ORD-1001", "b": "-5", "c": "7.", "d": "x"}, ["AB-123", ".5", "12", "3"])
def test_strings_searched_together_give_the_facts_each_gives_alone(value: object, texts: list[str]) -> None:
    """_facts and known_facts search a value's strings joined into one text: no fact may appear or vanish at a seam."""
    assert _facts(value) == _facts_one_string_at_a_time(value, set())
    assert known_facts(texts) == _facts_one_string_at_a_time(texts, set())


# The plain way to find an answer's cues; the evaluator's _ANSWER_CUES is written for speed and must match exactly
# the same spans.
CUES_SPEC = re.compile(f"{CLAIM_LEAD}|{ADMITS_INCOMPLETE.pattern}", re.I)


# Pieces of cues, letters they start with, and what may stand before or after one (incl. İ and ſ, which re.I folds).
CUE_PIECES = [*"IiWwCcAaUuvehsntbmlfkp'._ ,\u0130\u017f", "I've ", "I have ", "wasn't", "was not", "couldn't"]
CUE_PIECES += ["could not", "am unable to", "unable to", " able to ", "complete", "finish"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(CUE_PIECES), max_size=10).map("".join))
@example("Order ORD-17 was shipped; refund of $42.50 issued and the customer emailed.")
@example("XI have done; _couldn't finish; wasn't completed; I wasn't able to complete it; \u0130've")
@example("We couldn't finish it.")
@example("It was unable to complete.")
@example("So I've done it")
@example("and I HAVE asked")
def test_answer_cues_match_the_plain_pattern(text: str) -> None:
    assert [m.span() for m in _ANSWER_CUES.finditer(text)] == [m.span() for m in CUES_SPEC.finditer(text)]
    assert may_cue(text) == (CUES_SPEC.search(text) is not None)


def test_known_facts_are_ids_and_normalised_numbers() -> None:
    facts = known_facts(['{"id":"ORD-1004","total":59.9,"stock":3}', "Refund 20 for CUS-001 (not ORD-12)"])
    assert facts == {"ORD-1004", "59.90", "3.00", "20.00", "CUS-001"}


# --- grade -------------------------------------------------------------------------------------------

STATE = {"orders": [{"id": "ORD-1", "refunded": 20.0}], "refunds": [{"id": "RF-0001", "amount": 20.0}]}


def test_grade_success() -> None:
    grade = Evaluator.grade(
        answer="Refund of $20.00 issued for ORD-1.",
        end_state=STATE,
        expected_state=STATE,
        answer_contains=["ord-1", "$20.00"],
        answer_excludes=["cancelled"],
    )
    assert grade.success and grade.world_ok and grade.answer_ok
    assert grade.reasons == []


def test_grade_world_mismatch_names_the_table() -> None:
    end = {"orders": [{"id": "ORD-1", "refunded": 0.0}], "refunds": []}
    grade = Evaluator.grade(answer="done", end_state=end, expected_state=STATE, answer_contains=[], answer_excludes=[])
    assert not grade.success
    assert not grade.world_ok
    assert grade.answer_ok
    assert len(grade.reasons) == 2
    assert any("orders" in r for r in grade.reasons)
    assert any("refunds" in r for r in grade.reasons)


def test_grade_only_differing_tables_are_reported() -> None:
    end = {"orders": STATE["orders"], "refunds": []}
    grade = Evaluator.grade(answer="", end_state=end, expected_state=STATE, answer_contains=[], answer_excludes=[])
    assert not grade.world_ok
    assert len(grade.reasons) == 1
    assert "refunds" in grade.reasons[0]


def test_grade_answer_contains_is_case_insensitive() -> None:
    grade = Evaluator.grade(
        answer="Your order ORD-1 has SHIPPED.",
        end_state=STATE,
        expected_state=STATE,
        answer_contains=["ord-1", "Shipped"],
        answer_excludes=[],
    )
    assert grade.answer_ok and grade.success


def test_grade_missing_fact_fails_answer() -> None:
    grade = Evaluator.grade(
        answer="Your order has shipped.",
        end_state=STATE,
        expected_state=STATE,
        answer_contains=["ORD-1", "shipped"],
        answer_excludes=[],
    )
    assert grade.world_ok
    assert not grade.answer_ok
    assert not grade.success
    assert grade.reasons == ["answer lacks 'ORD-1'"]


def test_grade_excluded_fact_is_case_insensitive() -> None:
    grade = Evaluator.grade(
        answer="Your order was CANCELLED.",
        end_state=STATE,
        expected_state=STATE,
        answer_contains=[],
        answer_excludes=["cancelled", "refund"],
    )
    assert not grade.answer_ok
    assert not grade.success
    assert grade.reasons == ["answer contains 'cancelled'"]


def test_grade_world_and_answer_both_wrong() -> None:
    grade = Evaluator.grade(
        answer="nothing",
        end_state={"orders": [], "refunds": []},
        expected_state=STATE,
        answer_contains=["ORD-1"],
        answer_excludes=["nothing"],
    )
    assert not grade.world_ok and not grade.answer_ok and not grade.success
    assert len(grade.reasons) == 4
