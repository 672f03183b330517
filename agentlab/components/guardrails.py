"""Guardrails: screen what comes in, what tools return, and what goes out.

* **Input** — the user's request is screened for prompt-injection patterns and a length limit by
  a pluggable :class:`Classifier` (regex by default; a model-based classifier fits the same slot).
* **Tool output** — results are screened for *indirect* injection (instructions planted in an
  order note, a web page, a knowledge-base article) before the model reads them; a planted
  instruction is cut out and replaced by a marker, so the model sees the data but not the order.
* **Memory** — what the Memory Manager stores and what it loads into a prompt is screened too: a request
  refused as an injection is never stored, and stored text that would be flagged (written before this
  screen, or by another writer) is never pasted into a system prompt (defence in depth against memory
  poisoning: an instruction planted once must not ride along in every later prompt of that user).
* **Output** — the final answer is redacted: card numbers (Luhn-checked) and US social security
  numbers always; emails and phone numbers only if configured (a support agent legitimately tells
  an employee a customer's email, so that is a policy choice, not a default).

Every trigger is a ``guardrail`` event.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentlab.trace.events import GuardrailTriggered

INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"ignore (?:all |any )?(?:previous|prior|above) instructions", re.I),
    re.compile(r"disregard (?:all |any )?(?:previous|prior|above|your) (?:instructions|rules)", re.I),
    re.compile(r"\b(?:SYSTEM|ADMIN) (?:NOTICE|OVERRIDE|MESSAGE)\s*:", re.I),
    re.compile(r"you are now (?:in )?(?:developer|admin|god) mode", re.I),
    # A value ends at whitespace or a quote: an order planted in a JSON string must not take the document with it.
    re.compile(r"\bcall [a-z_]+ with (?:[a-z_]+=[^\s\"\\]+\s*)+", re.I),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    category: str = ""
    reason: str = ""
    spans: tuple[tuple[int, int], ...] = ()


_CLEAN = Verdict(False)


class Classifier(Protocol):
    def classify(self, text: str) -> Verdict: ...


class PatternClassifier:
    """Flags text matching known injection phrasings.

    The patterns are also joined into one alternation, searched first: clean text — almost all of it —
    costs one scan instead of one per pattern.
    """

    def __init__(
        self, patterns: tuple[re.Pattern[str], ...] = INJECTION_PATTERNS, keywords: tuple[str, ...] | None = None
    ) -> None:
        self.patterns = patterns
        self._any = re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.I)
        # Words every default pattern needs; text without any of them cannot match (a cheap first look).
        self.keywords = (
            keywords
            if keywords is not None
            else (
                ("ignore", "disregard", "system", "admin", "you are now", "call ")
                if patterns is INJECTION_PATTERNS
                else ()
            )
        )

    def classify(self, text: str) -> Verdict:
        if self.keywords:
            lowered = text.lower()
            for keyword in self.keywords:  # a plain loop: any() over a generator costs twice as much here
                if keyword in lowered:
                    break
            else:
                return _CLEAN
        if self._any.search(text) is None:
            return _CLEAN
        spans = tuple(m.span() for p in self.patterns for m in p.finditer(text))
        return Verdict(True, "prompt_injection", f"{len(spans)} injection pattern(s)", spans)


_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}[ -]?)?(?:\(?\d{3}\)?[ -]?)?\d{3}[ -]\d{4}\b")
_DIGIT = re.compile(r"\d")  # the same digits the patterns above mean by \d
_MIN_DIGITS = {"card_number": 13, "ssn": 9, "phone": 7}  # the fewest digits each pattern above can match
_ASCII_DIGITS = b"0123456789"


@functools.cache
def _fewest_digits(kinds: frozenset[str]) -> int:
    """The fewest digits any of ``kinds`` can match (asked on every answer, so cached per set of kinds)."""
    return min((_MIN_DIGITS[k] for k in kinds if k in _MIN_DIGITS), default=1 << 30)


def _count_digits(text: str) -> int:
    """How many characters of ``text`` are digits (``\\d``): for ASCII text, a byte count in C (~0.6 µs on an
    answer, against ~2.8 µs for ``_DIGIT.findall``, which tries the pattern at every position)."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, _ASCII_DIGITS))
    return len(_DIGIT.findall(text))  # \d also matches other scripts' digits


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class GuardrailConfig:
    max_input_chars: int = 4000
    screen_input: bool = True
    screen_tool_output: bool = True
    redact_output: bool = True
    redact: frozenset[str] = field(default_factory=lambda: frozenset({"card_number", "ssn"}))

    def __post_init__(self) -> None:
        # Any collection of kinds is accepted, and kept as a frozenset: what redact_output's cached bound is keyed by.
        object.__setattr__(self, "redact", frozenset(self.redact))


class Guardrails:
    def __init__(self, config: GuardrailConfig | None = None, classifier: Classifier | None = None) -> None:
        self.config = config or GuardrailConfig()
        self.classifier = classifier or PatternClassifier()

    # --- input ---------------------------------------------------------------------------------

    def screen_input(self, text: str, trace: Any) -> Verdict:
        if not self.config.screen_input:
            return _CLEAN
        if len(text) > self.config.max_input_chars:
            verdict = Verdict(True, "too_long", f"{len(text)} characters > {self.config.max_input_chars}")
        else:
            verdict = self.classifier.classify(text)
        if verdict.flagged:
            trace.emit(
                GuardrailTriggered(stage="input", category=verdict.category, action="refuse", reason=verdict.reason)
            )
        return verdict

    # --- tool output ---------------------------------------------------------------------------

    def screen_tool_output(self, tool: str, content: str, trace: Any, call_id: str = "") -> str:
        """The tool result with planted instructions cut out (unchanged when nothing is found)."""
        if not self.config.screen_tool_output:
            return content
        verdict = self.classifier.classify(content)
        if not verdict.flagged:
            return content
        cleaned = _cut(content, verdict.spans, "[removed: instruction found in tool output]")
        trace.emit(
            GuardrailTriggered(
                stage="tool_output",
                category="indirect_injection",
                action="neutralise",
                reason=f"{tool}: {verdict.reason}",
                call_id=call_id,
            )
        )
        return cleaned

    # --- memory --------------------------------------------------------------------------------

    def screen_memory(self, texts: list[str], stage: str, trace: Any) -> list[bool]:
        """Which of ``texts`` may be stored (``stage`` ``memory_store``) or pasted into a prompt (``memory_load``).

        Flagged texts are dropped, with one ``guardrail`` event for all of them; clean text costs one classify.
        """
        if not self.config.screen_input:
            return [True] * len(texts)
        keep = [not self.classifier.classify(text).flagged for text in texts]
        dropped = keep.count(False)
        if dropped:
            trace.emit(
                GuardrailTriggered(
                    stage=stage,
                    category="prompt_injection",
                    action="drop",
                    reason=f"{dropped} memory item(s) with injection pattern(s)",
                )
            )
        return keep

    # --- output --------------------------------------------------------------------------------

    def redact_output(self, text: str, trace: Any) -> str:
        if not self.config.redact_output:
            return text
        kinds = self.config.redact
        # A cheap first look, since most answers hold no PII: a card number has at least 13 digits, an SSN 9,
        # a phone number 7, an email an "@". Redacting only removes digits, so one count made first stays a
        # safe bound for every pattern. An answer with fewer digits than the least any configured kind needs
        # (and no "@", if emails are redacted) returns here: one digit count, no scan (support-5's answer).
        n_digits = _count_digits(text)
        if n_digits < _fewest_digits(kinds) and not ("email" in kinds and "@" in text):
            return text
        found: list[str] = []
        possible = {kind: n_digits >= fewest for kind, fewest in _MIN_DIGITS.items()} | {"email": "@" in text}

        def card(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group(0))
            if 13 <= len(digits) <= 19 and _luhn(digits):
                found.append("card_number")
                return "[redacted card number]"
            return m.group(0)

        if "card_number" in kinds and possible["card_number"]:
            text = _CARD.sub(card, text)
        for kind, pattern, label in (
            ("ssn", _SSN, "[redacted SSN]"),
            ("email", _EMAIL, "[redacted email]"),
            ("phone", _PHONE, "[redacted phone]"),
        ):
            if kind in kinds and possible[kind]:
                text, n = pattern.subn(label, text)
                found += [kind] * n
        if found:
            trace.emit(
                GuardrailTriggered(
                    stage="output", category="pii", action="redact", reason=", ".join(sorted(set(found)))
                )
            )
        return text


def _sentence_end(text: str, i: int) -> bool:
    ch = text[i]
    return ch in '"\n' or (ch == "." and (i + 1 == len(text) or text[i + 1] in ' "\n'))


def _cut(text: str, spans: tuple[tuple[int, int], ...], marker: str) -> str:
    """Remove each flagged span, extended to the end of its sentence (the planted order)."""
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        stop = end
        while stop < len(text) and not _sentence_end(text, stop):
            stop += 1
        out += [text[last:start], marker]
        last = stop
    out.append(text[last:])
    return "".join(out)
