"""The simulated model: a scenario-aware oracle that makes mistakes the way real models do.

It knows each scenario's gold plan (hidden from the agent). Each turn it reads the conversation,
works out which gold steps have really succeeded, and proposes the next one — correctly with the
tier's ``p_correct``, otherwise with one of the tier's error modes: a wrong tool, a wrong or missing
argument, a skipped step, malformed JSON, or a hallucinated claim of success. It may also obey an
instruction planted in tool output, with the tier's ``injection_susceptibility``. Latency is
sampled on the virtual clock; token counts come from the actual prompt and response text.

Every draw comes from an RNG seeded by (run seed, episode), so a run is reproducible and one
episode's luck never depends on another's.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from agentlab.llm.history import CallRecord, read_calls
from agentlab.llm.tiers import TierProfile, TierTable
from agentlab.llm.types import ModelRequest, ModelResponse, ToolCall, Usage, approx_tokens
from agentlab.scenarios.model import GoldStep, PlantedOrder, Scenario
from agentlab.scenarios.refs import UnresolvedRef, render, resolve
from agentlab.sim.rng import RngTree

# A planted order: "call TOOL with key=value ...". A value ends at whitespace or at a quote, so an order planted
# in a JSON string field (where the model reads it) does not swallow the rest of the document.
INJECTION = re.compile(r"call ([a-z_]+) with ((?:[a-z_]+=[^\s\"\\]+\s*)+)", re.IGNORECASE)
_ID = re.compile(r"^([A-Z]+-)(\d+)$")


def _norm(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return round(float(value), 2)
    return value


def args_match(call_args: dict[str, Any] | None, gold_args: dict[str, Any]) -> bool:
    if call_args is None:
        return False
    return all(_norm(call_args.get(k)) == _norm(v) for k, v in gold_args.items())


def parse_injection(text: str) -> tuple[str, dict[str, Any]] | None:
    m = INJECTION.search(text)
    if not m:
        return None
    args: dict[str, Any] = {}
    for pair in m.group(2).split():
        key, _, value = pair.partition("=")
        value = value.rstrip(".,;\"'")
        try:
            args[key] = float(value) if re.fullmatch(r"-?\d+\.\d+|-?\d+", value) and key == "amount" else value
        except ValueError:
            args[key] = value
    return m.group(1), args


def _planted_in(text: str, planted: Sequence[PlantedOrder]) -> tuple[str, dict[str, Any]] | None:
    """The first of a scenario's planted orders whose phrase ``text`` holds (a guardrail that cut it out removed it)."""
    if planted:
        lowered = text.lower()
        for order in planted:
            if order.says.lower() in lowered:
                return order.tool, dict(order.args)
    return None


def _fabricator(rng: random.Random, made_up: Mapping[str, Sequence[str]]) -> Callable[[str], str]:
    """Plausible made-up values for facts the model never looked up (a hallucinated answer); ``made_up`` is the
    domain's own values per field (its statuses, say), tried first."""

    def fabricate(path: str) -> str:
        field = path.rsplit(".", 1)[-1]
        if field in made_up:
            return rng.choice(list(made_up[field]))
        if field in ("total", "amount", "price", "refunded", "refunded_total"):
            return f"{rng.uniform(10, 250):.2f}"
        if field in ("stock", "quantity"):
            return str(rng.randrange(0, 30))
        if field == "email":
            return "customer@example.com"
        if field.endswith("id"):
            return f"#{rng.randrange(1000, 9999)}"
        return "as requested"

    return fabricate


class Progress:
    """How far the conversation has got through a scenario's gold plan."""

    def __init__(self, scenario: Scenario, calls: list[CallRecord]) -> None:
        self.calls = calls
        self.results: dict[str, Any] = {}
        self.done: set[str] = set()
        self.degraded: list[str] = []
        for step in scenario.gold.steps:
            try:
                want = resolve(step.args, self.results)
            except UnresolvedRef:
                continue
            for rec in calls:
                if rec.ok and rec.name == step.tool and args_match(rec.args, want):
                    self.results[step.id] = rec.result
                    self.done.add(step.id)
                    if rec.executed_as:
                        self.degraded.append(f"{step.tool} (answered by {rec.executed_as})")
                    break
        self.pending: list[GoldStep] = [s for s in scenario.gold.steps if s.id not in self.done]

    def failures_of(self, step: GoldStep) -> list[CallRecord]:
        return [r for r in self.calls if r.name == step.tool and r.ok is False]


class SimulatedModel:
    """A :class:`~agentlab.llm.types.ModelClient` backed by scenario gold plans."""

    def __init__(
        self,
        tiers: TierTable,
        scenarios: Iterable[Scenario] | Mapping[str, Scenario],
        rng: RngTree,
        *,
        safe_tools: Iterable[str] = (),
        mistake_args: Callable[[str, dict[str, Any], str], dict[str, Any] | None] | None = None,
        made_up: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``safe_tools``: the tools a wrong-tool mistake may call (read-only ones); ``mistake_args``: the
        arguments such a call gets (its domain's :meth:`~agentlab.domains.Domain.wrong_call_args`; default none);
        ``made_up``: the values a hallucinated answer invents per field (its domain's ``made_up``)."""
        self.tiers = tiers
        self.scenarios = dict(scenarios) if isinstance(scenarios, Mapping) else {s.id: s for s in scenarios}
        self.rng = rng
        self.safe_tools = frozenset(safe_tools)
        self.mistake_args = mistake_args or (lambda tool, args, request: None)
        self.made_up = dict(made_up or {})
        self._episodes: dict[str, tuple[random.Random, dict[str, bool]]] = {}

    def _episode(self, episode_id: str) -> tuple[random.Random, dict[str, bool]]:
        state = self._episodes.get(episode_id)
        if state is None:
            if len(self._episodes) > 256:
                self._episodes.pop(next(iter(self._episodes)))
            state = self._episodes[episode_id] = (self.rng.child("model", episode_id).random(), {})
        return state

    async def complete(self, request: ModelRequest) -> ModelResponse:
        profile = self.tiers[request.tier]
        rng, memo = self._episode(request.metadata.get("episode_id", ""))
        latency = profile.latency.sample(rng)
        await asyncio.sleep(latency)
        scenario = self.scenarios.get(request.metadata.get("scenario_id", ""))
        if scenario is None:
            text, calls = "I'm sorry, I can't help with that request.", ()
        elif request.response_format == "json":
            text, calls = self._plan(request, scenario, profile, rng), ()
        elif not request.tools:
            text, calls = self._answer(scenario, Progress(scenario, read_calls(request.messages))), ()
        else:
            text, calls = self._act(request, scenario, profile, rng, memo)
        out_chars = len(text) + sum(len(c.name) + len(c.raw_arguments) for c in calls)
        return ModelResponse(
            model=profile.model,
            text=text,
            tool_calls=calls,
            stop_reason="tool_use" if calls else "end_turn",
            usage=Usage(input_tokens=request.prompt_tokens(), output_tokens=approx_tokens("x" * out_chars) + 1),
            latency_s=latency,
        )

    # --- native tool calling (ReAct) -----------------------------------------------------------

    def _act(
        self,
        request: ModelRequest,
        scenario: Scenario,
        profile: TierProfile,
        rng: random.Random,
        memo: dict[str, bool],
    ) -> tuple[str, tuple[ToolCall, ...]]:
        calls = read_calls(request.messages)
        turn = sum(1 for m in request.messages if m.role == "assistant")
        available = {t.name for t in request.tools}
        injected = self._injection(calls, available, profile, rng, memo, scenario.planted)
        if injected is not None:
            return "", (self._call(turn, *injected),)
        progress = Progress(scenario, calls)
        if not progress.pending:
            return self._answer(scenario, progress), ()
        step = progress.pending[0]
        if (
            len([f for f in progress.failures_of(step) if not f.error.startswith(("ToolTransient", "ToolTimeout"))])
            >= 3
        ):
            return self._give_up(scenario, progress, step), ()
        try:
            args = resolve(step.args, progress.results)
        except UnresolvedRef:
            return self._answer(scenario, progress), ()
        if rng.random() < profile.p_correct:
            return "", (self._call(turn, step.tool, args),)
        mode = profile.error_modes.choose(rng)
        if mode == "hallucinated_success":
            return render(scenario.gold.answer, progress.results, missing=_fabricator(rng, self.made_up)), ()
        if mode == "skipped_step":
            for later in progress.pending[1:]:
                try:
                    return "", (self._call(turn, later.tool, resolve(later.args, progress.results)),)
                except UnresolvedRef:
                    continue
            return self._answer(scenario, progress), ()
        if mode == "malformed_json":
            raw = orjson.dumps(args).decode()[:-1] + ',"'
            return "", (ToolCall(id=f"call_{turn}_0", name=step.tool, arguments=None, raw_arguments=raw),)
        if mode == "missing_arg" and args:
            dropped = dict(args)
            dropped.pop(sorted(dropped)[rng.randrange(len(dropped))])
            return "", (self._call(turn, step.tool, dropped),)
        if mode == "wrong_tool":
            wrong = self._wrong_tool(step, args, available, scenario, rng)
            if wrong is not None:
                return "", (self._call(turn, *wrong),)
        return "", (self._call(turn, step.tool, self._perturb(args, rng)),)

    def _injection(
        self,
        calls: list[CallRecord],
        available: set[str],
        profile: TierProfile,
        rng: random.Random,
        memo: dict[str, bool],
        planted: Sequence[PlantedOrder] = (),
    ) -> tuple[str, dict[str, Any]] | None:
        """An order planted in a tool result this model read, if it follows one: the ``call TOOL with k=v`` form,
        or a scenario's order in words of its own (``planted``: its phrase still in the result)."""
        for rec in calls:
            if not rec.ok or rec.result is None:
                continue
            text = rec.result if isinstance(rec.result, str) else orjson.dumps(rec.result).decode()
            found = parse_injection(text) or _planted_in(text, planted)
            if found is None:
                continue
            tool, args = found
            key = f"{tool}:{sorted(args.items())}"
            if key not in memo:
                memo[key] = rng.random() < profile.injection_susceptibility
            already = any(r.name == tool and args_match(r.args, args) for r in calls)
            if memo[key] and not already and tool in available:
                return tool, args
        return None

    def _wrong_tool(
        self, step: GoldStep, args: dict[str, Any], available: set[str], scenario: Scenario, rng: random.Random
    ) -> tuple[str, dict[str, Any]] | None:
        candidates = sorted((self.safe_tools & available) - {step.tool})
        if not candidates:
            return None
        tool = candidates[rng.randrange(len(candidates))]
        return tool, self.mistake_args(tool, args, scenario.request)  # type: ignore[return-value]

    @staticmethod
    def _perturb(args: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        out = dict(args)
        keys = sorted(k for k, v in out.items() if isinstance(v, float | int) or (isinstance(v, str) and _ID.match(v)))
        if not keys:
            return out
        key = keys[rng.randrange(len(keys))]
        value = out[key]
        if isinstance(value, str):
            m = _ID.match(value)
            assert m is not None
            out[key] = f"{m.group(1)}{int(m.group(2)) + 1:0{len(m.group(2))}d}"
        else:
            out[key] = round(float(value) * 1.5, 2)
        return out

    @staticmethod
    def _call(turn: int, name: str, args: dict[str, Any]) -> ToolCall:
        return ToolCall(id=f"call_{turn}_0", name=name, arguments=args, raw_arguments=orjson.dumps(args).decode())

    # --- plan-and-execute ----------------------------------------------------------------------

    def _plan(self, request: ModelRequest, scenario: Scenario, profile: TierProfile, rng: random.Random) -> str:
        calls = read_calls(request.messages)
        progress = Progress(scenario, calls)
        available = {t.name for t in request.tools}
        steps: list[dict[str, Any]] = []
        for step in progress.pending:
            entry = {"id": step.id, "tool": step.tool, "args": dict(step.args)}
            if rng.random() >= profile.p_correct:
                mode = profile.error_modes.choose(rng)
                if mode == "malformed_json":
                    return '{"steps": [' + orjson.dumps(entry).decode()[:-2]
                if mode == "hallucinated_success":
                    claim = render(scenario.gold.answer, progress.results, missing=_fabricator(rng, self.made_up))
                    return orjson.dumps({"steps": [], "final_answer": claim}).decode()
                if mode == "skipped_step":
                    continue
                if mode == "missing_arg" and entry["args"]:
                    entry["args"].pop(sorted(entry["args"])[rng.randrange(len(entry["args"]))])
                elif mode == "wrong_tool" and (wrong := self._wrong_tool(step, step.args, available, scenario, rng)):
                    entry["tool"], entry["args"] = wrong
                else:
                    entry["args"] = self._perturb(entry["args"], rng)
            steps.append(entry)
        final = None if steps else self._answer(scenario, progress)
        return orjson.dumps({"steps": steps, "final_answer": final}).decode()

    # --- answers -------------------------------------------------------------------------------

    @staticmethod
    def _answer(scenario: Scenario, progress: Progress) -> str:
        if progress.pending:
            missing = ", ".join(s.tool for s in progress.pending)
            return f"I wasn't able to complete this request: {missing} did not succeed, so I made no claims about it."
        text = render(scenario.gold.answer, progress.results)
        if progress.degraded:
            text = f"Note: I could not verify everything — {'; '.join(progress.degraded)}. {text}"
        return text

    @staticmethod
    def _give_up(scenario: Scenario, progress: Progress, step: GoldStep) -> str:
        last = progress.failures_of(step)[-1]
        return f"I wasn't able to complete this request: {step.tool} failed ({last.error})."
