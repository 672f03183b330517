"""Run a chaos case and check every invariant; on a violation, write the case out to replay it.

:meth:`ChaosHarness.check` runs a case as ``agentlab run`` would (the same :func:`run_suite`, the same
options), then checks:

* the single-run invariants of :mod:`agentlab.testing.invariants` over its trace and audit log;
* ``deterministic``: the same case again gives a byte-identical trace and audit log;
* ``resume_equivalent``: a child process (``os.fork``) runs the case and SIGKILLs itself after the
  case's ``kill_at`` share of the events — a real kill, nothing flushed — and the run is resumed from
  its directory, as ``agentlab run --resume`` does; every episode's ledger and grade must equal the
  uninterrupted run's.

Runs skip the pandas summary (``summarize_run=False``): a check reads the trace directly.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from agentlab.runs.options import RunOptions, resume_options
from agentlab.runs.runner import run_suite
from agentlab.testing.case import ChaosCase
from agentlab.testing.invariants import CROSS_RUN_INVARIANTS, INVARIANTS, RunView, Violation, check_view
from agentlab.tools.registry import ToolRegistry


@dataclass
class CaseResult:
    case: ChaosCase
    violations: list[Violation]
    runs: int  # simulated runs it made: the case, its repeat, the killed copy (if it was killed) and its resume
    invariants: list[str] = field(default_factory=list)  # the invariants checked
    events: int = 0  # events in the uninterrupted run's trace

    @property
    def ok(self) -> bool:
        return not self.violations


class InvariantViolated(AssertionError):
    """A case broke an invariant. The message holds the violations, the fault plan and the command."""

    def __init__(self, result: CaseResult, reproduction: str) -> None:
        self.result = result
        lines = [str(v) for v in result.violations[:10]]
        super().__init__("invariant violated:\n  " + "\n  ".join(lines) + "\n" + reproduction)


def _fast_tmp() -> Path:
    # Thousands of tiny runs: a RAM-backed /dev/shm (where there is one) keeps SQLite's syncs off the disk.
    shm = Path("/dev/shm")
    return Path(
        tempfile.mkdtemp(prefix="agentlab-chaos-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
    )


class ChaosHarness:
    """Runs chaos cases in a scratch folder. ``cross_run=False`` checks only the single-run invariants
    (one run a case instead of four: what a mutation search needs)."""

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        registry: ToolRegistry | None = None,
        cross_run: bool = True,
        repro_dir: str | Path | None = None,
        mutant: str | None = None,
    ) -> None:
        self._owned = workdir is None
        self.workdir = Path(workdir) if workdir is not None else _fast_tmp()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.cross_run = cross_run and hasattr(os, "fork")
        self.repro_dir = Path(repro_dir) if repro_dir is not None else self.workdir / "repro"
        self.mutant = mutant  # only named in reproduction commands: the caller applies it

    @property
    def invariants(self) -> list[str]:
        return list(INVARIANTS) + (list(CROSS_RUN_INVARIANTS) if self.cross_run else [])

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ChaosHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- running -----------------------------------------------------------------------------------

    def run(self, case: ChaosCase, name: str) -> Path:
        """Run ``case`` uninterrupted into ``workdir/name``; return the run directory."""
        out = self.workdir / name
        run_suite(self._options(case, out), registry=self.registry, summarize_run=False)
        return out

    def _options(self, case: ChaosCase, out: Path, *, durable: bool = False) -> RunOptions:
        return case.options(out, case.policy_file(self.workdir / "policies"), durable=durable)

    def check(self, case: ChaosCase) -> CaseResult:
        first = self.run(case, "a")
        view = RunView.load(first, self.registry)
        violations = check_view(view)
        runs = 1
        if self.cross_run:
            violations += self._deterministic(case, first, view)
            killed, resumed = self._resume_equivalent(case, view, len(view.events))
            violations += resumed
            runs += 3 if killed else 2  # the repeat, the copy to kill and, if it was killed, its resume
        return CaseResult(case, violations, runs, self.invariants, len(view.events))

    def _deterministic(self, case: ChaosCase, first: Path, view: RunView) -> list[Violation]:
        second = self.run(case, "b")
        out = []
        if (first / "events.jsonl").read_bytes() != (second / "events.jsonl").read_bytes():
            out.append(Violation("deterministic", "", "two runs of the same case wrote different events.jsonl"))
        # The audit log's rows, not its file: SQLite's page layout is not part of the run.
        if view.audit != RunView.load(second, self.registry).audit:
            out.append(Violation("deterministic", "", "two runs of the same case wrote different audit rows"))
        return out

    def _resume_equivalent(self, case: ChaosCase, view: RunView, events: int) -> tuple[bool, list[Violation]]:
        """(whether the copy was killed and resumed, what the resume broke)."""
        out_dir = self.workdir / "k"
        kill_after = max(1, min(events, round(case.kill_at * events)))
        opts = self._options(case, out_dir, durable=case.durable_worlds)
        pid = os.fork()
        if pid == 0:  # the child: run until the recorder's kill hook SIGKILLs it
            code = 0
            try:
                os.environ["AGENTLAB_KILL_AFTER_EVENTS"] = str(kill_after)
                run_suite(opts, registry=self.registry, summarize_run=False)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            # The kill point is at most the uninterrupted run's event count, so a run that behaves the same is always
            # killed: ending any other way means it emitted fewer events than the run it should equal.
            return False, [Violation("resume_equivalent", "", f"the run to be killed ended with status {status}")]
        run_suite(resume_options(out_dir), registry=self.registry, resume=True, summarize_run=False)
        resumed = RunView.load(out_dir, self.registry)
        expected, got = view.ledger, resumed.ledger
        violations = []
        for episode in sorted(set(expected) | set(got)):
            if expected.get(episode) != got.get(episode):
                violations.append(
                    Violation(
                        "resume_equivalent",
                        episode,
                        f"killed after {kill_after} of {events} events and resumed: the ledger differs "
                        f"({got.get(episode)} instead of {expected.get(episode)})",
                    )
                )
        grades = {e["episode_id"]: (e["success"], e["status"]) for e in view.events if e["kind"] == "episode_graded"}
        for e in resumed.events:
            if e["kind"] == "episode_graded" and grades.get(e["episode_id"]) != (e["success"], e["status"]):
                violations.append(
                    Violation("resume_equivalent", e["episode_id"], f"resumed, it ended {e['status']} instead")
                )
        return True, violations

    # --- failing well ------------------------------------------------------------------------------

    def reproduction(self, case: ChaosCase) -> str:
        """Write the case's fault plan (and policy) to ``repro_dir`` and say how to replay it."""
        folder = self.repro_dir / f"seed{case.seed}-{'-'.join(case.scenarios)}"[:120]
        faults, policy = case.write(folder)
        command = case.command(faults, policy, out=folder / "run", mutant=self.mutant)
        scenarios = ("scenarios " if len(case.scenarios) > 1 else "scenario ") + ", ".join(case.scenarios)
        text = [
            f"Reproduce (seed {case.seed}, {scenarios}):",
            f"  {command}",
            f"{faults}:",
            *("  " + line for line in case.faults_yaml().splitlines()),
        ]
        if policy is not None:
            text += [f"{policy}:", *("  " + line for line in (case.policy_yaml() or "").splitlines())]
        if self.cross_run:
            text.append(
                f"(deterministic: run the command twice and compare events.jsonl; resume_equivalent: run it with "
                f"AGENTLAB_KILL_AFTER_EVENTS=N, N = {case.kill_at} × the uninterrupted run's events"
                f"{', and --durable-worlds' if case.durable_worlds else ''}, then agentlab run --resume DIR)"
            )
        return "\n".join(text)

    def assert_holds(self, case: ChaosCase) -> CaseResult:
        """Check ``case``; raise :class:`InvariantViolated` (with the reproduction) if anything broke."""
        result = self.check(case)
        if result.violations:
            raise InvariantViolated(result, self.reproduction(case))
        return result
