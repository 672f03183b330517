"""One scenario as one graded episode of the agent (:func:`run_episode`), and what a run's episodes share.

The runner calls it for every scenario × epoch; ``agentlab serve`` calls it once per request. Grading compares the
world the agent left with the scenario's gold plan replayed on a fresh world (:mod:`agentlab.runs.grading`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlab.agent import AgentSystem
from agentlab.components.evaluator import Evaluator
from agentlab.components.messages import AgentRequest, User
from agentlab.components.policy import Policy
from agentlab.faults.injector import FaultInjector
from agentlab.runs.grading import ExpectedState, expected_state, repeated_effects, unauthorized_effects
from agentlab.scenarios.model import Scenario, Suite
from agentlab.sim.clock import Clock
from agentlab.sim.rng import RngTree
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.events import EpisodeGraded, EpisodeStarted
from agentlab.trace.recorder import EpisodeTrace
from agentlab.world.store import World


@dataclass
class Simulation:
    """Everything the episodes of one run share."""

    suite: Suite
    agent: AgentSystem
    registry: ToolRegistry
    template: Any
    rng: RngTree
    clock: Clock
    strategy: str
    tier: str
    injector: FaultInjector | None
    non_idempotent: frozenset[str]
    expected: dict[str, ExpectedState]
    world_path: Path | None = None  # the in-flight episode's world, on disk so a kill cannot lose it
    policy: Policy | None = None


async def run_episode(
    sim: Simulation,
    scenario: Scenario,
    epoch: int,
    *,
    episode_id: str | None = None,
    world_path: Path | None = None,
    user_id: str | None = None,
) -> EpisodeGraded:
    """One scenario as one episode of the agent, graded against its gold plan; returns the grade event.

    ``agentlab serve`` runs each request through here too, with its own ``episode_id`` (the request id),
    its own durable world file (so a worker killed mid-request resumes it without repeating a side
    effect) and the caller's ``user_id``.
    """
    agent, clock = sim.agent, sim.clock
    if scenario.id not in sim.expected:
        sim.expected[scenario.id] = await expected_state(scenario, sim.template, sim.registry, source=sim.suite.path)
    episode_id = episode_id or scenario.episode_id(epoch)
    world_path = world_path or sim.world_path
    user = scenario.user.id if user_id is None else user_id
    trace = EpisodeTrace(agent.recorder, episode_id, clock)
    trace.emit(
        EpisodeStarted(
            scenario_id=scenario.id,
            category=scenario.category,
            epoch=epoch,
            strategy=sim.strategy,
            tier=sim.tier,
            user_id=user,
            request=scenario.request,
        )
    )
    # On disk before the episode does anything: after a kill, --resume tells an interrupted episode (this line is
    # past the last checkpoint) from a kill between episodes (summary's resumed_episodes). One write an episode.
    agent.recorder.flush()
    if sim.injector is not None:
        sim.injector.start_episode(episode_id, clock.now())
    world_options: dict[str, Any] = {
        "clock": clock,
        "rng": sim.rng.child("world", episode_id).random(),
        "environment": sim.suite.environment,
    }
    if world_path is not None:
        world = World.persisted(sim.template, world_path, episode_id, scenario.world, **world_options)
    else:
        world = World.from_template(sim.template, scenario.world, **world_options)
    try:
        request = AgentRequest(
            user=User(id=user, role=scenario.user.role or "", permissions=scenario.permissions),
            text=scenario.request,
            session_id=episode_id,
            budget_usd=scenario.budget_usd or 0.0,
            max_turns=scenario.max_turns or 12,
            tags={"scenario_id": scenario.id, "episode_id": episode_id},
        )
        response = await agent.handle(request, episode_id=episode_id, env=world)
        expected = sim.expected[scenario.id]
        grade = Evaluator.grade(
            answer=response.text,
            end_state=expected.end_state_of(world),
            expected_state=expected.snapshot,
            answer_contains=scenario.expect.answer_contains,
            answer_excludes=scenario.expect.answer_excludes,
        )
        ledger = world.effects()
        duplicates = len(repeated_effects(ledger, sim.non_idempotent))
        unauthorized = len(
            unauthorized_effects(ledger, scenario, sim.registry, sim.policy, sim.suite.domain.resource_of)
        )
        effects = [
            {"tool": e["tool"], "action": e["action"], "args": e["args"], "call_id": e["call_id"]} for e in ledger
        ]
    finally:
        world.close()
        if sim.injector is not None:
            sim.injector.end_episode(episode_id)
    graded = EpisodeGraded(
        scenario_id=scenario.id,
        category=scenario.category,
        epoch=epoch,
        success=grade.success,
        world_ok=grade.world_ok,
        answer_ok=grade.answer_ok,
        status=response.status,
        reasons=grade.reasons,
        duplicate_side_effects=duplicates,
        unauthorized_tool_calls=unauthorized,
        effects=effects,
    )
    trace.emit(graded)
    return graded
