"""Mutation check: with one safety mechanism switched off, the chaos search must find a counterexample,
print it as a fault plan, and ``agentlab run ... --check`` must show the same violation from that file."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agentlab.testing import CAUGHT_BY, MUTANTS, ChaosHarness
from agentlab.testing.search import search

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_search_finds_a_reproducible_counterexample_for_each_mutant(mutant: str, tmp_path: Path) -> None:
    report = search(SUITE, examples=3000, seed=0, mutant=mutant, cross_run=False, repro_dir=tmp_path)
    assert report.failure is not None, f"no counterexample in {report.examples} cases"
    invariant = CAUGHT_BY[mutant]
    assert f"\n  {invariant}" in report.failure
    print(f"\n{mutant}: found after {report.examples} cases (shrinking included)\n{report.failure}")

    # The printed command, run as a user would (the same interpreter's agentlab), shows the same violation.
    command = next(line.strip() for line in report.failure.splitlines() if line.strip().startswith("AGENTLAB_MUTANT="))
    env_part, _, rest = command.partition(" ")
    argv = shlex.split(rest)
    assert argv[:2] == ["agentlab", "run"]
    env = {**os.environ, "AGENTLAB_MUTANT": env_part.split("=", 1)[1]}
    done = subprocess.run([sys.executable, "-m", "agentlab", *argv[1:]], env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert re.search(rf"^invariant violated: {invariant}\b", done.stdout, re.M), done.stdout

    # Without the mutant the same case holds: the violation is the switched-off mechanism's doing.
    assert report.case is not None
    with ChaosHarness(cross_run=False) as harness:
        assert [v for v in harness.check(report.case).violations if v.invariant == invariant] == []
