"""Evaluator: scores each step's result and the final answer, online and offline.

Online, it catches what the agent can check by itself: a failed step, and an answer that claims an
action no successful tool call performed (hallucinated success). Offline, :meth:`grade` compares an
episode's outcome with its scenario: the world's end state (as tau-bench compares database state)
and the facts the answer must and must not contain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentlab.components.messages import StepOutcome

# A claim ("I've issued a refund") is a domain's phrase after this lead; see agentlab.domains.claim. Every claim
# a domain declares that way lets _ANSWER_CUES below rule out, in one scan, texts that claim nothing.
CLAIM_LEAD = r"\bI(?:'ve| have) "


@dataclass(slots=True, frozen=True)
class Score:
    score: float
    passed: bool
    reason: str
    unsupported: list[str] = field(default_factory=list)
    incomplete: bool = False  # the answer itself says the request was not completed


# An answer that admits the work was not finished (then the agent rolls back what it did).
ADMITS_INCOMPLETE = re.compile(
    r"\b(?:wasn't|was not|couldn't|could not|am unable to|unable to) (?:able to )?"
    r"(?:complete|finish)\b",
    re.I,
)


# Text with no claim lead and no admission can fail none of the answer checks: one scan tells, where
# the checks themselves take one scan per claim (measured: ~2.5 µs instead of ~7 µs for a typical answer).
# It is f"{CLAIM_LEAD}|{ADMITS_INCOMPLETE.pattern}" (re.I), written as _FACT below is: starting by consuming
# the one letter every cue starts with, so the engine skips in C every position that cannot start one (a
# leading \b makes it try each position); the lookbehinds restate that \b and which letter it was. Measured on
# support-5's answer: ~35 % of the plain alternation's time (-2.5 % of the bench's instructions per episode).
# tests/test_evaluator.py checks that it matches exactly where the plain alternation does.
_ANSWER_CUES = re.compile(
    r"[iwcau](?:"
    r"(?<=\bi)(?:'ve| have) "  # CLAIM_LEAD
    r"|(?<=\b[wcau])(?:(?<=w)(?:asn't|as not)|(?<=c)(?:ouldn't|ould not)|(?<=a)m unable to|(?<=u)nable to)"
    r" (?:able to )?(?:complete|finish)\b"  # ADMITS_INCOMPLETE
    r")",
    re.I,
)


def may_cue(text: str) -> bool:
    """Whether ``text`` holds an answer cue (``_ANSWER_CUES`` finds one). ASCII text without any of the four
    words every cue contains, lowercased, holds none: a few substring scans tell, where even the fast regex cost
    ~21,000 instructions on support-5's answer (callgrind); other text is left to the regex (re.I folds ſ, İ)."""
    if text.isascii():
        low = text.lower()
        if "i've " not in low and "i have " not in low and "complete" not in low and "finish" not in low:
            return False
    return _ANSWER_CUES.search(text) is not None


@dataclass(slots=True)
class Grade:
    success: bool
    world_ok: bool
    answer_ok: bool
    reasons: list[str]


_STEP_OK = Score(1.0, True, "ok")
_ANSWER_OK = Score(1.0, True, "ok")
_ANSWER_INCOMPLETE = Score(0.5, True, "the answer reports the request as not completed", incomplete=True)


# Facts a model can get wrong while sounding sure: ids like ORD-1004 and money or counts like 59.90.
_ID = re.compile(r"\b[A-Z]{2,5}-\d{3,}\b")
_NUMBER = re.compile(r"(?<![\w.\-])\d+(?:\.\d+)?(?![\w.])")
# Both in one scan. Every fact starts with [A-Z0-9], and a pattern that starts by consuming such a character
# lets the regex engine skip, in C, every position that cannot start one (a lookahead does not: the engine
# then tries each position). The lookbehinds restate, for the character just consumed, _ID's leading \b
# and _NUMBER's (?<![\w.\-]). Measured on support-5's texts: ~35 % less than with a leading lookahead.
# tests/test_evaluator.py checks that it finds exactly what _ID and _NUMBER find.
_FACT = re.compile(
    r"[A-Z0-9](?:"
    r"(?<=(?<!\w)[A-Z])[A-Z]{1,4}-\d{3,}\b"  # an id (_ID)
    r"|(?<=(?<![\w.\-])[0-9])\d*(?:\.\d+)?(?![\w.])"  # a number (_NUMBER)
    r")"
)


# Normalised numbers, memoised: the same few figures (a price, a stock count) recur in every tool result and
# argument, and formatting one costs a float() and a format (~0.3 µs). Bounded: cleared when it fills.
_NORMALISED: dict[Any, str] = {}
_NORMALISED_MAX = 4096


def _number(value: Any) -> str:
    """A number (or a number's text from _FACT) normalised to two decimals, as every fact is compared."""
    if value == 0:  # 0, 0.0 and -0.0 are one dict key but two normal forms ("0.00", "-0.00"): never memoised
        return f"{float(value):.2f}"
    norm = _NORMALISED.get(value)
    if norm is None:
        if len(_NORMALISED) >= _NORMALISED_MAX:
            _NORMALISED.clear()
        norm = _NORMALISED[value] = f"{float(value):.2f}"
    return norm


def _text_facts(text: str, out: set[str]) -> None:
    for fact in _FACT.findall(text):
        out.add(_number(fact) if fact[0].isdigit() else fact)


# Texts are searched joined by this: a regex call costs ~0.6 µs before it reads a character, so one search of
# a tool call's strings beats one per string. A newline is neither a word character, "." nor "-", so each
# string's edges read as a text's start and end to every boundary in _FACT, and no fact spans two strings.
_JOIN = "\n"


def _gather(value: Any, texts: list[str], out: set[str]) -> None:
    """Numbers in ``value`` into ``out``; its strings into ``texts``, to be searched in one go."""
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict | list | tuple):
        for v in value.values() if isinstance(value, dict) else value:
            kind = type(v)
            if kind is str:
                texts.append(v)
            elif kind is float or kind is int:
                out.add(_number(v))
            else:
                _gather(v, texts, out)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int | float):
        out.add(_number(value))


def _facts(value: Any, into: set[str] | None = None) -> set[str]:
    """Ids and numbers in a value (strings searched; numbers normalised to two decimals), added to ``into``."""
    out = set() if into is None else into
    texts: list[str] = []
    _gather(value, texts, out)
    if texts:
        _text_facts(texts[0] if len(texts) == 1 else _JOIN.join(texts), out)
    return out


def known_facts(texts: list[str], into: set[str] | None = None) -> set[str]:
    """Every id and number that appears in ``texts`` (the request and the tool results so far)."""
    out = set() if into is None else into
    if texts:
        _text_facts(texts[0] if len(texts) == 1 else _JOIN.join(texts), out)
    return out


class Evaluator:
    def __init__(self, claims: Mapping[str, re.Pattern[str]] | None = None) -> None:
        """``claims`` maps an action tool to the phrases that claim it happened (its domain's ``claims``)."""
        self.claims = dict(claims or {})
        # The one-scan shortcut is only sound for claims that all start with CLAIM_LEAD.
        leads = all(p.pattern.startswith(CLAIM_LEAD) for p in self.claims.values())
        self._cues = _ANSWER_CUES if leads else None

    def score_step(self, outcome: StepOutcome) -> Score:
        if outcome.ok:
            if outcome.executed_as:
                return Score(0.5, True, f"answered by fallback {outcome.executed_as}")
            return _STEP_OK
        return Score(0.0, False, f"{outcome.error_type}: {outcome.error}")

    def score_response(self, text: str, succeeded_tools: set[str]) -> Score:
        if not text.strip():
            return Score(0.0, False, "empty answer")
        if "\u2019" in text:  # a typographic apostrophe must not hide a claim ("I’ve issued a refund")
            text = text.replace("\u2019", "'")
        if self._cues is not None and not may_cue(text):
            return _ANSWER_OK  # no claim and no admission anywhere in the text
        unsupported = [
            tool for tool, pattern in self.claims.items() if tool not in succeeded_tools and pattern.search(text)
        ]
        if unsupported:
            return Score(0.0, False, f"claims actions that did not happen: {', '.join(unsupported)}", unsupported)
        if ADMITS_INCOMPLETE.search(text):
            return _ANSWER_INCOMPLETE
        return _ANSWER_OK

    @staticmethod
    def grounding(value: Any, known: set[str]) -> tuple[float, list[str]]:
        """Share of the ids and numbers in ``value`` that the conversation already contains, and the rest.

        A side-effecting call whose order id or amount appears nowhere in the request or the tool results
        was made up (a wrong argument); an answer quoting a total no tool returned was hallucinated.
        """
        facts = _facts(value)
        if not facts:
            return 1.0, []
        unknown = sorted(facts - known)
        return 1.0 - len(unknown) / len(facts), unknown

    @staticmethod
    def grade(
        *,
        answer: str,
        end_state: dict[str, Any],
        expected_state: dict[str, Any],
        answer_contains: list[str],
        answer_excludes: list[str],
    ) -> Grade:
        reasons: list[str] = []
        world_ok = end_state == expected_state
        if not world_ok:
            for table in expected_state:
                if end_state.get(table) != expected_state[table]:
                    reasons.append(f"world: {table} differs from the expected end state")
        low = answer.lower()
        missing = [f for f in answer_contains if f.lower() not in low]
        present = [f for f in answer_excludes if f.lower() in low]
        reasons += [f"answer lacks {m!r}" for m in missing] + [f"answer contains {p!r}" for p in present]
        answer_ok = not missing and not present
        return Grade(world_ok and answer_ok, world_ok, answer_ok, reasons)
