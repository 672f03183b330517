"""The chaos property: for generated fault schedules, scenarios, budgets and permissions, every invariant holds.

Each example is four simulated runs (the case, the case again for determinism, a copy SIGKILLed at a
generated point, and its resume), so 150 examples are 600 runs — the CI profile; ``agentlab chaos
--examples 10000`` is the deep one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from agentlab.testing import ChaosCase, ChaosHarness, chaos_cases

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")
CI_EXAMPLES = 150
checked: list[int] = []


@settings(settings.get_profile("agentlab-ci"), max_examples=CI_EXAMPLES)
@given(case=chaos_cases(SUITE))
def test_every_invariant_holds_for_generated_chaos(chaos: ChaosHarness, case: ChaosCase) -> None:
    result = chaos.assert_holds(case)
    assert result.runs == 4 and result.events > 0
    checked.append(result.runs)


def test_the_ci_profile_ran_at_least_500_generated_runs() -> None:
    # Runs after the property above (pytest keeps file order): counts the runs the harness says it made.
    if not checked:
        pytest.skip("the chaos property did not run in this session")
    assert sum(checked) >= 500, f"only {sum(checked)} generated runs"
