"""The command a chaos failure prints must run exactly the case that failed."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from agentlab.cli import _parser, run_options
from agentlab.faults.plan import load_fault_plan
from agentlab.testing import ChaosCase, chaos_cases

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")
# Not part of what a run computes: whether a progress bar is drawn.
PRESENTATION = {"progress"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=chaos_cases(SUITE))
def test_the_printed_command_parses_to_the_options_the_harness_ran(case: ChaosCase) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        faults, policy = case.write(folder)
        argv = shlex.split(case.command(faults, policy, out=folder / "run"))
        assert argv[:2] == ["agentlab", "run"]
        from_shell = run_options(_parser().parse_args(argv[1:]))
        ran = case.options(folder / "run", policy)
        assert from_shell.model_dump(exclude=PRESENTATION | {"faults"}) == ran.model_dump(
            exclude=PRESENTATION | {"faults"}
        )
        assert load_fault_plan(from_shell.faults) == case.faults  # the plan file round-trips the case's plan
