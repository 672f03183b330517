"""The simulated world: typed tables a domain declares, and their SQLite store with a ledger and a journal."""

from agentlab.world.model import Environment
from agentlab.world.schema import Row, WorldSchema
from agentlab.world.store import World, WorldTemplate, build_template

__all__ = ["Environment", "Row", "World", "WorldSchema", "WorldTemplate", "build_template"]
