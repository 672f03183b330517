"""The simulated customer-support world: typed rows, and their SQLite store with a ledger."""

from agentlab.world.model import Environment, WorldSpec
from agentlab.world.store import World, build_template

__all__ = ["Environment", "World", "WorldSpec", "build_template"]
