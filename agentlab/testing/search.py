"""``agentlab chaos``: a hypothesis search over chaos cases from the shell, with throughput figures.

The search is an ordinary ``@given`` property run by calling it; hypothesis generates the cases,
and on a violation shrinks it to a minimal case, which is re-run last — so the case the harness saw
fail last is the shrunk one, and that is the one written out for ``agentlab run ... --check``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from agentlab.testing.case import ChaosCase
from agentlab.testing.harness import CaseResult, ChaosHarness, InvariantViolated
from agentlab.testing.mutants import mutant as apply_mutant
from agentlab.testing.strategies import chaos_cases


@dataclass
class SearchReport:
    examples: int = 0
    runs: int = 0
    events: int = 0
    wall_seconds: float = 0.0
    invariants: list[str] = field(default_factory=list)
    failure: str | None = None  # the shrunk case's violations and reproduction
    case: ChaosCase | None = None

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "runs": self.runs,
            "events": self.events,
            "wall_seconds": round(self.wall_seconds, 2),
            "examples_per_second": round(self.examples_per_second, 1),
            "invariants": self.invariants,
            "passed": self.failure is None,
        }


def search(
    suite: str,
    *,
    examples: int,
    seed: int | None = None,
    mutant: str | None = None,
    cross_run: bool = True,
    max_faults: int = 3,
    repro_dir: str | Path | None = None,
    progress: Any = None,
) -> SearchReport:
    """Check ``examples`` generated cases; stop at the first violation (after shrinking it).

    ``seed`` fixes hypothesis's own randomness (None: a random search); ``progress`` is an optional
    callable given the report after every example (a tqdm bar's update, say).
    """
    report = SearchReport()
    last_failure: list[tuple[ChaosCase, CaseResult]] = []  # one slot: hypothesis replays the shrunk case last
    with ChaosHarness(cross_run=cross_run, repro_dir=repro_dir, mutant=mutant) as harness, apply_mutant(mutant):
        report.invariants = harness.invariants

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(chaos_cases(suite, max_faults=max_faults))
        def property_holds(case: ChaosCase) -> None:
            result = harness.check(case)
            report.examples += 1
            report.runs += result.runs
            report.events += result.events
            if progress is not None:
                progress(report)
            if result.violations:
                last_failure[:] = [(case, result)]
                raise InvariantViolated(result, "")

        test = hypothesis_seed(seed)(property_holds) if seed is not None else property_holds
        started = time.perf_counter()  # wall time of the search, for the throughput figure only
        try:
            test()
        except InvariantViolated:
            # Hypothesis replays the shrunk case last: that is the one to write out.
            case, result = last_failure[0]
            report.case, report.failure = case, str(InvariantViolated(result, harness.reproduction(case)))
        report.wall_seconds = time.perf_counter() - started
    return report
