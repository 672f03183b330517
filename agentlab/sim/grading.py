"""What a scenario's outcome should have been: the gold plan applied to a fresh copy of its world."""

from __future__ import annotations

import sqlite3
from typing import Any

from agentlab.scenarios.model import Scenario
from agentlab.scenarios.refs import resolve
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.world.store import World


async def expected_state(scenario: Scenario, template: sqlite3.Connection, registry: ToolRegistry) -> dict[str, Any]:
    """Run the gold steps directly (no agent, no latency, no faults) and snapshot the end state."""
    world = World.from_template(template, scenario.world, simulate_io=False)
    try:
        if scenario.expect.world == "unchanged":
            return world.snapshot()
        results: dict[str, Any] = {}
        for step in scenario.gold.steps:
            spec = registry[step.tool]
            args = spec.args_model.model_validate(resolve(step.args, results)).__dict__
            results[step.id] = await spec.fn(ToolContext(world=world, call_id=f"gold:{step.id}"), **args)
        return world.snapshot()
    finally:
        world.close()
