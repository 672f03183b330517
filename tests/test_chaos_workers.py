"""``agentlab chaos --workers N``: cases checked on a process pool, with exactly the serial search's result."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.cli import main
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
def test_a_failing_search_on_two_workers_shrinks_to_the_same_case(mutant: str, seed: int, tmp_path: Path) -> None:
    serial = search(SUITE, examples=150, seed=seed, mutant=mutant, cross_run=False, repro_dir=tmp_path)
    spread = search(SUITE, examples=150, seed=seed, mutant=mutant, cross_run=False, repro_dir=tmp_path, workers=2)
    assert serial.failure is not None  # found, then shrunk, in fewer than 150 examples
    assert _same(spread) == _same(serial)


def test_workers_below_one_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--examples", "1", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "agentlab: error: --workers: must be at least 1 (got 0)\n"
