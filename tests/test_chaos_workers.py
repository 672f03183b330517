"""``agentlab chaos --workers N``: cases checked on a process pool, with exactly the serial search's result."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

import agentlab.testing.search as search_module
from agentlab.cli import main
from agentlab.errors import WorkersFailed
from agentlab.testing.search import search

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")


def _same(report) -> tuple:  # everything but the wall time
    summary = report.summary()
    summary.pop("wall_seconds"), summary.pop("examples_per_second")
    return summary, report.failure, report.case


def test_a_passing_search_on_two_workers_is_the_serial_search(tmp_path: Path) -> None:
    seen: list[int] = []
    serial = search(SUITE, examples=12, seed=7, repro_dir=tmp_path / "a")
    spread = search(SUITE, examples=12, seed=7, repro_dir=tmp_path / "b", workers=2, progress=lambda r: seen.append(1))
    assert serial.failure is None and serial.examples == 12 and serial.runs > 12  # cross-run twins ran too
    assert _same(spread) == _same(serial)
    assert len(seen) == 12  # the bar moved once a case, while the pool checked them


@pytest.mark.parametrize(("mutant", "seed"), [("no-budget-estimate", 0), ("no-budget-estimate", 2)])
def test_a_failing_search_on_two_workers_shrinks_to_the_same_case(
    mutant: str, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[int] = []

    class CountedPool(search_module.ProcessPool):
        def __enter__(self):  # type: ignore[no-untyped-def]
            pools.append(self.workers)
            return super().__enter__()

    monkeypatch.setattr(search_module, "ProcessPool", CountedPool)
    serial = search(SUITE, examples=150, seed=seed, mutant=mutant, cross_run=False, repro_dir=tmp_path)
    spread = search(SUITE, examples=150, seed=seed, mutant=mutant, cross_run=False, repro_dir=tmp_path, workers=2)
    assert serial.failure is not None  # found, then shrunk, in fewer than 150 examples
    assert _same(spread) == _same(serial)
    assert pools == [2]  # the second search really ran on a pool (a mutant search needs fork to spread)


def test_workers_below_one_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--examples", "1", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "agentlab: error: --workers: must be at least 1 (got 0)\n"


def _dying_check(dies_at: int, task, cross_run):  # type: ignore[no-untyped-def]
    """The real check, except that the worker given the ``dies_at``-th distinct case exits at once, as one the kernel
    killed would. Module-level and bound with a partial, so the pool can pickle it whatever its start method (a
    forkserver's workers would not see a patched global)."""
    if task[0] == dies_at:
        os._exit(1)
    return _real_check(task, cross_run)


_real_check = search_module._check_case


def _a_worker_dies_at(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    monkeypatch.setattr(search_module, "_check_case", partial(_dying_check, index))


@pytest.mark.parametrize("index", [2, 20])  # early: a later submit finds the pool broken; late: a result does
def test_a_dead_worker_is_reported_as_such_not_as_a_failing_case(
    index: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _a_worker_dies_at(monkeypatch, index)
    with pytest.raises(WorkersFailed) as caught:
        search(SUITE, examples=40, seed=0, workers=2)
    assert "BrokenProcessPool" in str(caught.value)
    assert not getattr(caught.value, "__notes__", None)  # hypothesis did not shrink it as a failing case
    assert main(["chaos", SUITE, "--examples", "40", "--seed", "0", "--workers", "2", "--quiet"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("agentlab: error: chaos: a worker process died") and err.count("\n") == 1
