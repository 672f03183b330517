"""Mutants: one safety mechanism switched off at a time, to prove the invariants can fail.

Each mutant is a context manager that patches one mechanism out of the real agent. The mutation tests
(tests/test_chaos_mutants.py) search with hypothesis for a case that breaks the invariant guarding it;
``AGENTLAB_MUTANT=NAME agentlab run ... --check`` replays the case the search printed under the same
mutant. They are test instruments: nothing in the agent reads them.

========================  =========================================================  ==============================
mutant                    what is switched off                                       the invariant that catches it
========================  =========================================================  ==============================
no-idempotency-keys       tools receive no idempotency key (the agent still retries  no_duplicate_side_effects
                          ambiguous failures, believing they are keyed)
no-budget-estimate        the Cost Controller's pre-call estimate (checks 0 USD)     budgets_respected
no-permission-gate        the Permissions Gate (every tool shown and allowed)        executions_authorized_and_audited
no-half-open-probe        the breaker's half-open probe (it closes after cool-down)  breaker_state_machine
========================  =========================================================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from unittest import mock

from agentlab.errors import InputError

ENV = "AGENTLAB_MUTANT"


@contextmanager
def no_idempotency_keys() -> Iterator[None]:
    import agentlab.agent.steps
    from agentlab.tools.context import ToolContext

    def context_without_key(*args: Any, **kwargs: Any) -> ToolContext:
        kwargs["idempotency_key"] = None
        return ToolContext(*args, **kwargs)

    with mock.patch.object(agentlab.agent.steps, "ToolContext", context_without_key):  # where tool calls get theirs
        yield


@contextmanager
def no_budget_estimate() -> Iterator[None]:
    from agentlab.components.cost import CostController

    def check_nothing(self: CostController, budget: Any, request: Any, profile: Any, trace: Any) -> float:
        self._require(budget, 0.0, trace)
        return 0.0

    with mock.patch.object(CostController, "check_model", check_nothing):
        yield


@contextmanager
def no_permission_gate() -> Iterator[None]:
    import agentlab.runs.assembly
    from agentlab.components.permissions import OpenGate

    with mock.patch.object(agentlab.runs.assembly, "PermissionsGate", OpenGate):
        yield


@contextmanager
def no_half_open_probe() -> Iterator[None]:
    from agentlab.resilience.breaker import CircuitBreaker

    allow = CircuitBreaker.allow

    def allow_without_probe(self: CircuitBreaker, now: float, trace: Any) -> bool:
        if self.state == "open" and now - self.opened_at >= self.config.wait_open_s:
            self._transition("closed", "cool-down elapsed (no probe)", now, trace)
        return allow(self, now, trace)

    with mock.patch.object(CircuitBreaker, "allow", allow_without_probe):
        yield


MUTANTS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "no-idempotency-keys": no_idempotency_keys,
    "no-budget-estimate": no_budget_estimate,
    "no-permission-gate": no_permission_gate,
    "no-half-open-probe": no_half_open_probe,
}
# Which invariant must catch each mutant.
CAUGHT_BY = {
    "no-idempotency-keys": "no_duplicate_side_effects",
    "no-budget-estimate": "budgets_respected",
    "no-permission-gate": "executions_authorized_and_audited",
    "no-half-open-probe": "breaker_state_machine",
}


def mutant(name: str | None, source: str = "--mutant") -> AbstractContextManager[None]:
    """The named mutant's patch (a no-op for ``None``); ``source`` names where the name came from, for errors."""
    if not name:
        return nullcontext()
    if name not in MUTANTS:
        raise InputError(source, "", f"unknown mutant {name!r} (mutants: {', '.join(MUTANTS)})")
    return MUTANTS[name]()
