"""The simulator: virtual time, seeded randomness, and running suites as episodes of the agent."""

from agentlab.sim.clock import Clock
from agentlab.sim.loop import VirtualTimeLoop, run_virtual
from agentlab.sim.rng import RngTree

__all__ = ["Clock", "RngTree", "VirtualTimeLoop", "run_virtual"]
