"""What a scenario's outcome should have been (the gold plan applied to a fresh copy of its world), and what the
world's ledger says went wrong: effects applied twice, effects the user was not entitled to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from agentlab.components.policy import Policy
from agentlab.errors import AgentError, InputError
from agentlab.scenarios.model import Scenario
from agentlab.scenarios.refs import UnresolvedRef, resolve
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.world.store import World, WorldTemplate, snapshot_of


@dataclass(frozen=True)
class ExpectedState:
    """A scenario's expected end state: its rows as stored (:meth:`World.rows`) and its snapshot."""

    rows: dict[str, list[tuple[Any, ...]]]
    snapshot: dict[str, list[dict[str, Any]]]

    @classmethod
    def of(cls, world: World) -> ExpectedState:
        """The end state ``world`` holds (read once)."""
        rows = world.rows()
        return cls(rows, snapshot_of(rows, world.schema))

    def end_state_of(self, world: World) -> dict[str, list[dict[str, Any]]]:
        """``world``'s snapshot, to grade against :attr:`snapshot`: its rows are read once, and made into a snapshot
        only if they differ (equal rows make an equal snapshot; most episodes' worlds end as expected)."""
        rows = world.rows()
        return self.snapshot if rows == self.rows else snapshot_of(rows, world.schema)


async def expected_state(
    scenario: Scenario, template: WorldTemplate, registry: ToolRegistry, *, source: str = "suite"
) -> ExpectedState:
    """Run the gold steps directly (no agent, no latency, no faults) and record the end state.

    The loader checks the gold plan's tools, arguments and references; what only running it can show (a
    reference resolving to a value of the wrong type, a step the tool refuses) is the suite's fault too, so it is
    an :class:`InputError` naming ``source`` and the step, not a traceback."""
    world = World.from_template(template, scenario.world, simulate_io=False)
    try:
        if scenario.expect.world == "unchanged":
            return ExpectedState.of(world)
        results: dict[str, Any] = {}
        for j, step in enumerate(scenario.gold.steps):
            spec = registry[step.tool]
            try:
                args = spec.args_model.model_validate(resolve(step.args, results)).__dict__
                results[step.id] = await spec.fn(ToolContext(world=world, call_id=f"gold:{step.id}"), **args)
            except (ValidationError, UnresolvedRef, AgentError) as exc:
                problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                place = f"scenarios ({scenario.id}).gold.steps[{j}]"
                raise InputError(source, place, f"the gold plan fails: {problem}") from None
        return ExpectedState.of(world)
    finally:
        world.close()


def repeated_effects(ledger: list[dict[str, Any]], non_idempotent: frozenset[str] | set[str]) -> list[dict[str, Any]]:
    """Non-idempotent effects applied again with the same arguments (each repeat once), from the world's own ledger."""
    seen: set[tuple[str, str]] = set()
    repeats = []
    for effect in ledger:
        if effect["action"] != "apply" or effect["tool"] not in non_idempotent:
            continue
        key = (effect["tool"], effect["args"])
        if key in seen:
            repeats.append(effect)
        seen.add(key)
    return repeats


def unauthorized_effects(
    ledger: list[dict[str, Any]],
    scenario: Scenario,
    registry: ToolRegistry,
    policy: Policy | None,
    resource_of: Callable[[dict[str, Any]], str] = lambda args: "*",  # its domain's (Domain.resource_of)
) -> list[tuple[dict[str, Any], str]]:
    """(effect, why) for each side effect the scenario's user was not entitled to, judged from the world's ledger
    and the permission rules — independently of what the gate decided at the time."""
    found = []
    role = scenario.user.role or ""
    for effect in ledger:
        if effect["action"] != "apply":
            continue
        spec = registry.get(effect["tool"])
        if spec is None or not spec.permissions <= scenario.permissions:
            found.append((effect, "the user lacks the tool's permissions"))
        elif (
            policy is not None
            and policy.decide(role, effect["tool"], resource_of(orjson.loads(effect["args"])))[0] == "deny"
        ):
            found.append((effect, f"the policy denies it to {role}"))
    return found
