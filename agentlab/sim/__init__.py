"""The simulation kernel: virtual time (:class:`Clock`, :class:`VirtualTimeLoop`), seeded randomness (:class:`RngTree`).

Everything above runs on it, so it imports nothing from agentlab: a layer test (tests/test_layers.py) keeps it so.
Running suites as episodes of the agent is orchestration, in :mod:`agentlab.runs`.
"""

from agentlab.sim.clock import Clock
from agentlab.sim.loop import VirtualTimeLoop, run_virtual
from agentlab.sim.rng import RngTree

__all__ = ["Clock", "RngTree", "VirtualTimeLoop", "run_virtual"]
