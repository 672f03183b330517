"""The agent package's seams: planners see only PlannerView, and tool and model calls share one guarded attempt."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import agentlab.agent.model_calls
import agentlab.agent.steps
from agentlab.agent import AgentSystem
from agentlab.agent.guarded import guarded
from agentlab.bench import BENCH_TIERS, BENCH_USER, ScriptedModel, bench_tools
from agentlab.components import planner
from agentlab.components.memory import MemoryManager
from agentlab.components.messages import AgentRequest
from agentlab.components.planner import PlannerView
from agentlab.components.recovery import RecoveryHandler
from agentlab.components.sandbox import ExecutionSandbox
from agentlab.errors import Overloaded, ToolTransientError
from agentlab.llm.types import ModelRequest, ModelResponse
from agentlab.resilience.breaker import BreakerConfig
from agentlab.sim.loop import run_virtual
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolSpec
from agentlab.trace.recorder import Recorder

PLANNER_SOURCE = Path(planner.__file__)


def _view_members() -> set[str]:
    return {name for name in vars(PlannerView) if not name.startswith("_")} | set(PlannerView.__annotations__)


def test_planners_touch_the_episode_only_through_planner_view() -> None:
    """No planner reads ``episode.system`` (or anything else the view does not offer), nor imports the agent."""
    tree = ast.parse(PLANNER_SOURCE.read_text())
    imports = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imports += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [m for m in imports if m and (m == "agentlab.agent" or m.startswith("agentlab.agent."))]
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "system"]
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "episode"
    }
    assert used, "the AST walk found no episode.<attr> at all: it is not looking at the planners"
    assert used <= _view_members(), f"planners use {sorted(used - _view_members())}, which PlannerView does not offer"
    assert "system" not in _view_members()


def _agent(model: Any, invoker: Any = None, breakers: BreakerConfig | None = None) -> tuple[AgentSystem, Recorder]:
    recorder = Recorder("r")
    agent = AgentSystem(
        model=model,
        registry=bench_tools,
        tiers=BENCH_TIERS,
        recorder=recorder,
        memory=MemoryManager(),
        sandbox=ExecutionSandbox(invoker=invoker),
        recovery=RecoveryHandler.resilient(breakers),
    )
    return agent, recorder


def _handle(agent: AgentSystem) -> str:
    request = AgentRequest(user=BENCH_USER, text="Check order ORD-1", session_id="s", tags={"order_id": "ORD-1"})
    return run_virtual(agent.handle(request, episode_id="e")).status


def test_the_episode_a_planner_gets_is_a_planner_view() -> None:
    seen: list[bool] = []

    class Probe:
        name = "probe"

        async def run(self, episode: PlannerView) -> tuple[str, str]:
            seen.append(isinstance(episode, PlannerView))
            return "done", "completed"

    agent, _ = _agent(ScriptedModel())
    agent.planner = Probe()
    assert _handle(agent) == "completed"
    assert seen == [True]


class FirstCallDown(ScriptedModel):
    """The first model request fails (transiently); the rest are answered."""

    def __init__(self, times: int = 1) -> None:
        self.calls = 0
        self.times = times

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls <= self.times:
            raise Overloaded("the model is overloaded")
        return await super().complete(request)


def lookup_down(times: int) -> Any:
    """A tool invoker under which lookup_order fails (transiently) on its first ``times`` attempts."""
    failures = {"n": 0}

    async def invoke(spec: ToolSpec, args: dict[str, Any], ctx: ToolContext) -> Any:
        if spec.name == "lookup_order" and failures["n"] < times:
            failures["n"] += 1
            raise ToolTransientError("lookup is down")
        return await spec.fn(ctx, **args)

    return invoke


def shape(recorder: Recorder, target: str) -> list[tuple[Any, ...]]:
    """The resilience-relevant events of one call target, with what tells a tool call from a model call taken out."""
    kind, name = target.split(":")
    out: list[tuple[Any, ...]] = []
    ends = "model_call" if kind == "model" else "tool_call_end"  # one event ends each attempt
    for e in recorder.events:
        if e.kind == ends and (e.tier if kind == "model" else e.tool) == name:
            out.append(("attempt", e.attempt, e.ok, e.error_type))
        elif e.kind == "retry" and e.target == target:
            out.append(("retry", e.attempt))
        elif e.kind == "call_rejected" and e.target == target:
            out.append(("rejected", e.reason))
        elif e.kind == "breaker_transition" and e.breaker == target:
            out.append(("breaker", e.from_state, e.to_state))
    return out


def test_a_retried_tool_call_and_a_retried_model_call_leave_the_same_trace_shape() -> None:
    model_agent, model_trace = _agent(FirstCallDown())
    tool_agent, tool_trace = _agent(ScriptedModel(), lookup_down(1))
    assert _handle(model_agent) == _handle(tool_agent) == "completed"
    model_shape = shape(model_trace, "model:bench")[:3]
    tool_shape = shape(tool_trace, "tool:lookup_order")
    expected_failure = {"model:bench": "Overloaded", "tool:lookup_order": "ToolTransientError"}
    assert model_shape[0] == ("attempt", 1, False, expected_failure["model:bench"])
    assert tool_shape[0] == ("attempt", 1, False, expected_failure["tool:lookup_order"])
    assert model_shape[1:] == tool_shape[1:] == [("retry", 2), ("attempt", 2, True, None)]


def test_an_open_breaker_refuses_a_tool_call_and_a_model_call_alike() -> None:
    trips = BreakerConfig(window_size=1, minimum_calls=1, consecutive_failures=1, wait_open_s=100)
    model_agent, model_trace = _agent(FirstCallDown(), breakers=trips)
    tool_agent, tool_trace = _agent(ScriptedModel(), lookup_down(1), breakers=trips)
    _handle(model_agent), _handle(tool_agent)
    expected = [("breaker", "closed", "open"), ("retry", 2), ("rejected", "circuit breaker open")]
    model_shape, tool_shape = shape(model_trace, "model:bench"), shape(tool_trace, "tool:lookup_order")
    assert [model_shape[0], *model_shape[2:4]] == [tool_shape[0], *tool_shape[2:4]] == expected
    rejected = [e for e in tool_trace.events if e.kind == "call_rejected"]
    assert rejected[0].call_id == "c1"  # a tool's rejection names its call; a model call has no call id
    assert [e.call_id for e in model_trace.events if e.kind == "call_rejected"] == [None]


def test_every_tool_and_model_call_goes_through_the_one_guarded_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy on the shared helper sees each tier call and each tool execution exactly once, and changes nothing."""
    plain_agent, plain_trace = _agent(FirstCallDown(), lookup_down(1))
    assert _handle(plain_agent) == "completed"

    targets: list[str] = []

    async def spy(*args: Any, **kwargs: Any) -> Any:
        targets.append(inspect.signature(guarded).bind(*args, **kwargs).arguments["target"])
        return await guarded(*args, **kwargs)

    monkeypatch.setattr(agentlab.agent.model_calls, "guarded", spy)
    monkeypatch.setattr(agentlab.agent.steps, "guarded", spy)
    agent, recorder = _agent(FirstCallDown(), lookup_down(1))
    assert _handle(agent) == "completed"

    model_calls = [f"model:{e.tier}" for e in recorder.events if e.kind == "model_call" and e.attempt == 1]
    tool_calls = [f"tool:{e.tool}" for e in recorder.events if e.kind == "tool_call_start" and e.attempt == 1]
    assert [t for t in targets if t.startswith("model:")] == model_calls and len(model_calls) == 6
    assert [t for t in targets if t.startswith("tool:")] == tool_calls and len(tool_calls) == 5
    assert [e.kind for e in recorder.events] == [e.kind for e in plain_trace.events]
