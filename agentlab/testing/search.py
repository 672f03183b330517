"""``agentlab chaos``: a hypothesis search over chaos cases from the shell, with throughput figures.

The search is an ordinary ``@given`` property run by calling it; hypothesis generates the cases,
and on a violation shrinks it to a minimal case, which is re-run last — so the case the harness saw
fail last is the shrunk one, and that is the one written out for ``agentlab run ... --check``.

With ``workers > 1`` the cases are checked on a process pool first, and the search then runs as
above with those results at hand. That gives exactly the serial search's result for the same seed:
with the seed fixed and every case passing, hypothesis generates the same sequence of cases whatever
the property's body does (it draws nothing), so the sequence is generated up front by a property
that only collects; the pool checks it, stopping once the first violation in generation order is
known; the serial search then replays that prefix from the results (instantly) and shrinks the
failure as it always has — shrinking is sequential by nature, so it stays on one core. When every case
passed there is nothing to replay or shrink, and the report is summed from the pool's results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from agentlab.sweeps.executors import ProcessPool, start_method
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
    workers: int = 1,
) -> SearchReport:
    """Check ``examples`` generated cases; stop at the first violation (after shrinking it).

    ``seed`` fixes hypothesis's own randomness (None: a random search); ``progress`` is an optional
    callable given the report after every example checked (a tqdm bar's update, say). ``workers``: check
    cases on that many processes (the same result as one for the same seed; a random search gets a seed
    drawn here, so the collected and the searched sequence are one).
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if mutant is not None and start_method() != "fork":
        workers = 1  # a mutant patches this process; only forked workers would carry the patch
    if workers > 1 and seed is None:
        import random

        seed = random.SystemRandom().randrange(2**32)  # the search must be repeatable to be spread
    report = SearchReport()
    last_failure: list[tuple[ChaosCase, CaseResult]] = []  # one slot: hypothesis replays the shrunk case last
    known: dict[str, CaseResult] = {}  # results checked on the pool, by case
    with ChaosHarness(cross_run=cross_run, repro_dir=repro_dir, mutant=mutant) as harness, apply_mutant(mutant):
        report.invariants = harness.invariants

        def run(body: Any) -> None:
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            @given(chaos_cases(suite, max_faults=max_faults))
            def prop(case: ChaosCase) -> None:
                body(case)

            (hypothesis_seed(seed)(prop) if seed is not None else prop)()

        def property_holds(case: ChaosCase) -> None:
            result = known.get(case.model_dump_json())
            fresh = result is None  # a result from the pool was shown on the bar when it came in
            if result is None:
                result = harness.check(case)
            report.examples += 1
            report.runs += result.runs
            report.events += result.events
            if fresh and progress is not None:
                progress(report)
            if result.violations:
                last_failure[:] = [(case, result)]
                raise InvariantViolated(result, "")

        started = time.perf_counter()  # wall time of the search, for the throughput figure only
        generated: list[ChaosCase] = []
        if workers > 1:
            run(generated.append)
            known = _check_on_pool(generated, workers, cross_run, progress, report)
        try:
            if generated and not any(result.violations for result in known.values()):
                # Every case passed: the serial search would call the property on exactly these cases, in
                # this order, and find nothing, so its figures are these sums (no second generation pass).
                for case in generated:
                    result = known[case.model_dump_json()]
                    report.examples += 1
                    report.runs += result.runs
                    report.events += result.events
            else:
                run(property_holds)
        except InvariantViolated:
            # Hypothesis replays the shrunk case last: that is the one to write out.
            case, result = last_failure[0]
            report.case, report.failure = case, str(InvariantViolated(result, harness.reproduction(case)))
        report.wall_seconds = time.perf_counter() - started
    return report


def _check_case(task: tuple[int, ChaosCase], cross_run: bool) -> tuple[int, CaseResult]:
    index, case = task
    with ChaosHarness(cross_run=cross_run) as harness:  # its own scratch folder, in a worker process
        return index, harness.check(case)


def _check_on_pool(
    cases: list[ChaosCase], workers: int, cross_run: bool, progress: Any, report: SearchReport
) -> dict[str, CaseResult]:
    """Check ``cases`` on ``workers`` processes until every case before the first violation (in order) is checked."""
    keys = list(dict.fromkeys(case.model_dump_json() for case in cases))  # in order, each case once
    by_key = {case.model_dump_json(): case for case in cases}
    results: dict[str, CaseResult] = {}
    first_failure = len(keys)
    outstanding = set(range(len(keys)))
    # Forked workers inherit the parent's imports, loaded suites and an active mutant (search() keeps a mutant
    # search on one process where workers would not be forked).
    with ProcessPool(workers) as pool:
        for i, result in pool.map(partial(_check_case, cross_run=cross_run), list(enumerate(by_key[k] for k in keys))):
            outstanding.discard(i)
            results[keys[i]] = result
            if result.violations:
                first_failure = min(first_failure, i)
            if progress is not None:
                progress(report)
            if not any(j < first_failure for j in outstanding):
                break  # the rest come after the first violation: the search never reaches them (map cancels them)
    return results
