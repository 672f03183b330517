"""Property-based chaos testing: generate fault schedules, run the agent, check invariants, shrink.

* :mod:`~agentlab.testing.strategies` — hypothesis strategies: fault plans, schedules on simulated time,
  scenarios from a suite, budgets, permission policies, whole :class:`ChaosCase` s;
* :mod:`~agentlab.testing.invariants` — what must hold after every run, each a function of its trace;
* :mod:`~agentlab.testing.harness` — runs a case (and its determinism and kill/resume twins) and
  turns a violation into a fault-plan YAML plus the ``agentlab run`` command that replays it;
* :mod:`~agentlab.testing.mutants` — safety mechanisms switched off one at a time, to show the
  invariants can fail;
* :mod:`~agentlab.testing.plugin` — pytest fixtures (``chaos``) and hypothesis profiles
  (``agentlab-ci``, ``agentlab-deep``); ``agentlab chaos --examples N`` runs the same search from the shell;
* :mod:`~agentlab.testing.trace` — :class:`ListTrace`, an in-memory trace for a single component's unit test.
"""

from agentlab.testing.case import ChaosCase
from agentlab.testing.harness import CaseResult, ChaosHarness, InvariantViolated
from agentlab.testing.invariants import INVARIANTS, RunView, Violation, check_run, check_view
from agentlab.testing.mutants import CAUGHT_BY, MUTANTS, mutant
from agentlab.testing.strategies import (
    budget_limits,
    chaos_cases,
    fault_plans,
    faults,
    policies,
    scenario_ids,
    schedules,
    windows,
)

__all__ = [
    "CAUGHT_BY",
    "INVARIANTS",
    "MUTANTS",
    "CaseResult",
    "ChaosCase",
    "ChaosHarness",
    "InvariantViolated",
    "RunView",
    "Violation",
    "budget_limits",
    "chaos_cases",
    "check_run",
    "check_view",
    "fault_plans",
    "faults",
    "mutant",
    "policies",
    "scenario_ids",
    "schedules",
    "windows",
]
