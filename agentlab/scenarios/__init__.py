"""Scenario suites: typed schema, loader, and the references between gold steps."""

from agentlab.scenarios.loader import load_suite
from agentlab.scenarios.model import Scenario, Suite

__all__ = ["Scenario", "Suite", "load_suite"]
