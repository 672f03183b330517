"""Sweeps: the grid, byte-identical results on every executor (a real Dask LocalCluster included),
kill and resume, and bad specs as one line."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from agentlab.analysis import load_run
from agentlab.analysis.summary import pass_hat_k
from agentlab.cli import main
from agentlab.errors import InputError
from agentlab.sweeps import Dask, InProcess, ProcessPool, cells, load_sweep, load_sweep_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "fixtures" / "suites" / "support.yaml"
ONLY = ["lookup-001", "refund-cond-001", "refund-cond-002", "multi-001"]


def small_spec(folder: Path, **changes: object) -> Path:
    """2 fault rates x resilience on/off x 2 seeds, 4 scenarios x 2 epochs: 8 cells, 64 episodes."""
    spec = {
        "name": "small",
        "suites": [str(SUITE)],
        "faults": [{"preset": "transient", "rates": [0.0, 0.3]}],
        "resilience": [True, False],
        "seeds": [3, 4],
        "epochs": 2,
        "options": {"only": ONLY},
        **changes,
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sweep run in-process: what every other executor must reproduce byte for byte."""
    folder = tmp_path_factory.mktemp("sweep-ref")
    result = run_sweep(small_spec(folder), out=folder / "out", executor=InProcess(), progress=False)
    assert result.cells_run == 8 and result.cells_kept == 0 and result.episodes_run == 64
    return folder / "out"


def files_of(sweep_dir: Path) -> dict[str, bytes]:
    """The results and every cell's trace and summary minus its wall time (the only non-simulated figure)."""
    out = {"results.parquet": (sweep_dir / "results.parquet").read_bytes()}
    for events in sorted((sweep_dir / "cells").glob("*/events.jsonl")):
        out[str(events.relative_to(sweep_dir))] = events.read_bytes()
    return out


def test_the_grid_expands_in_a_fixed_order_with_one_run_directory_per_cell(tmp_path: Path) -> None:
    spec = load_sweep_spec(small_spec(tmp_path))
    grid = cells(spec, tmp_path / "out")
    assert [c.index for c in grid] == list(range(8))
    assert [(c.axes["fault_rate"], c.axes["resilience"], c.axes["seed"]) for c in grid] == [
        (r, res, s) for r in (0.0, 0.3) for res in (True, False) for s in (3, 4)
    ]
    assert grid[5].dir_name == "0005-support-transient@0.3-res-fixed-default-react-s4-e2"
    assert grid[5].options.out == str(tmp_path / "out" / "cells" / grid[5].dir_name)
    assert grid[5].options.only == ONLY and grid[5].options.resilience is True


def test_every_row_is_its_cells_trace_summarised(reference: Path) -> None:
    frame = load_sweep(reference)
    assert list(frame["cell"]) == list(range(8))
    for row in frame.itertuples():
        run = load_run(reference / row.run_dir)
        episodes = run.episodes
        assert row.episodes == len(episodes) == 8
        assert row.success_rate == pytest.approx(episodes["success"].mean(), abs=1e-6)
        assert row.pass_hat_2 == pytest.approx(pass_hat_k(episodes, 2)["2"], abs=1e-6)
        model = run.events[run.events["kind"] == "model_call"]
        tools = run.events[run.events["kind"] == "tool_call_end"]
        assert row.total_cost_usd == pytest.approx(model["cost_usd"].sum() + tools["cost_usd"].sum(), abs=1e-5)
        assert row.faults_injected == (run.events["kind"] == "fault_injected").sum()
        assert row.fault_rate in (0.0, 0.3)
    # The fault rate and the resilience layer show: at 30 % faults the layer off loses episodes it keeps on.
    high = frame[frame.fault_rate == 0.3].groupby("resilience").success_rate.mean()
    assert high[True] > high[False]
    assert (frame[frame.fault_rate == 0.0].faults_injected == 0).all()


def test_two_worker_processes_give_byte_identical_results(reference: Path, tmp_path: Path) -> None:
    result = run_sweep(small_spec(tmp_path), out=tmp_path / "out", executor=ProcessPool(2), progress=False)
    assert result.executor == "processes" and result.workers == 2 and result.cells_run == 8
    assert files_of(tmp_path / "out") == files_of(reference)


def test_a_dask_local_cluster_gives_byte_identical_results(reference: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    # ship=True: each worker runs in a scratch folder and sends the run back, as on a cluster with no shared disk.
    result = run_sweep(small_spec(tmp_path), out=tmp_path / "out", executor=Dask.local(2, ship=True), progress=False)
    assert result.executor == "dask" and result.workers == 2 and result.cells_run == 8
    assert files_of(tmp_path / "out") == files_of(reference)
    # Shipped back from the workers' scratch folders, each run says where it lives now.
    run_json = next((tmp_path / "out" / "cells").glob("0000-*/run.json")).read_text()
    assert str(tmp_path / "out" / "cells") in run_json and "agentlab-cell-" not in run_json


def test_a_killed_sweep_resumes_without_redoing_finished_cells(reference: Path, tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "agentlab.cli", "sweep", str(spec), "--out", str(out), "--in-process", "--quiet"]
    killed = subprocess.run(
        command,
        env={**os.environ, "AGENTLAB_SWEEP_KILL_AFTER_CELLS": "3"},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    finished = sorted(p.parent for p in (out / "cells").glob("*/summary.json"))
    assert len(finished) == 3 and not (out / "results.parquet").exists()
    stamps = {p: (p / "events.jsonl").stat().st_mtime_ns for p in finished}

    resumed = subprocess.run([*command[:-2], "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "8 cells (5 run, 3 kept)" in resumed.stdout
    assert {p: (p / "events.jsonl").stat().st_mtime_ns for p in finished} == stamps  # not run again
    assert files_of(out) == files_of(reference)


def test_a_cell_whose_run_no_longer_matches_is_run_again(reference: Path, tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    out = tmp_path / "out"
    run_sweep(spec, out=out, progress=False)
    summary = next((out / "cells").glob("0002-*/summary.json"))
    summary.write_text(summary.read_text().replace('"run_id": "run-', '"run_id": "stale-'))
    again = run_sweep(spec, out=out, progress=False)
    assert (again.cells_run, again.cells_kept) == (1, 7)
    assert files_of(out) == files_of(reference)


def test_pass_hat_k_past_a_cells_epochs_is_missing(tmp_path: Path) -> None:
    spec = small_spec(tmp_path, faults=[{}], resilience=[True], seeds=[0], epochs=[1, 3])
    frame = run_sweep(spec, out=tmp_path / "out", progress=False).frame
    assert list(frame.epochs) == [1, 3]
    assert frame.pass_hat_3.isna().tolist() == [True, False]
    assert frame.episodes.tolist() == [4, 12]


def test_another_spec_in_the_same_directory_needs_force(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_sweep(small_spec(tmp_path), out=out, progress=False)
    other = small_spec(tmp_path, seeds=[9])
    with pytest.raises(InputError, match="different spec; pass --force"):
        run_sweep(other, out=out, progress=False)
    assert len(list((out / "cells").iterdir())) == 8  # untouched
    frame = run_sweep(other, out=out, force=True, progress=False).frame
    assert set(frame.seed) == {9} and len(list((out / "cells").iterdir())) == 4


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another sweep is writing"):
            run_sweep(small_spec(tmp_path), out=out, progress=False)


def test_an_input_error_crosses_a_process_boundary_whole() -> None:
    error = pickle.loads(pickle.dumps(InputError("suite.yaml", "scenarios[2]", "bad")))
    assert (error.file, error.place, error.problem, str(error)) == ("suite.yaml", "scenarios[2]", "bad", str(error))


@pytest.mark.parametrize(
    ("changes", "place", "problem"),
    [
        ({"routing": ["cascade", "fastest"]}, "routing", "unknown routing policy 'fastest'"),
        ({"faults": [{"rates": [0.1]}]}, "faults[0]", "rates go with a preset"),
        ({"faults": [{"preset": "transient", "rates": [1.5]}]}, "faults[0]", "at most 1"),
        ({"faults": [{"preset": "transient"}]}, "faults[0]", "needs rates"),
        ({"faults": [{"plan": "x.yaml", "scale": [-1]}]}, "faults[0].scale", "at or above 0"),
        ({"options": {"seed": 3}}, "options", "'seed' is an axis"),
        ({"options": {"approvr": "deny"}}, "options", "unknown run option 'approvr'"),
        ({"options": {"approver": "maybe"}}, "options", "approver"),
        ({"seeds": []}, "seeds", "at least one value"),
        ({"epochs": [0]}, "epochs", "from 1 to 10000"),
        ({"seeds": [1, 1]}, "seeds", "same value twice"),
        ({"name": "a b"}, "name", "pattern"),
        ({"suites": ["missing.yaml"]}, "", "file not found"),
        ({"faults": [{"plan": "missing.yaml"}]}, "", "file not found"),
        ({"tiers": ["enormous"]}, "--tier", "unknown tier 'enormous'"),
    ],
)
def test_a_bad_spec_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict, place: str, problem: str
) -> None:
    out = tmp_path / "out"
    code = main(["sweep", str(small_spec(tmp_path, **changes)), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("agentlab: error: ")
    assert place in err and problem in err
    assert not out.exists()


def test_executor_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(small_spec(tmp_path))
    assert main(["sweep", spec, "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers: must be at least 1" in capsys.readouterr().err
    assert main(["sweep", spec, "--out", str(tmp_path / "o"), "--dask", "local:x"]) == 2
    assert "expected local:N" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_python_entry_point_is_the_same_sweep(reference: Path, tmp_path: Path) -> None:
    import agentlab

    result = agentlab.sweep(small_spec(tmp_path), out=tmp_path / "out", progress=False)
    pd.testing.assert_frame_equal(result.frame, load_sweep(reference))


def test_the_surface_charts_draw_the_sweeps_own_figures(reference: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from agentlab.analysis.surfaces import cost_per_success_chart, reliability_curves, reliability_heatmap, surface

    frame = load_sweep(reference)
    table = surface(frame, "success_rate")
    on_high = frame[(frame.fault_rate == 0.3) & frame.resilience].success_rate.mean()
    assert table.loc[0.3, ("fixed", True)] == pytest.approx(on_high)
    heat = reliability_heatmap(frame)
    shown = [t.get_text() for t in heat.axes[0].texts]  # resilience on, row "fixed", fault rates 0 and 30 %
    assert shown == [f"{v * 100:.0f}" for v in table[("fixed", True)]]
    curves = reliability_curves(frame)
    assert curves.axes[1].get_title() == "pass^2 vs fault rate"
    line = curves.axes[0].get_lines()[1]  # fixed routing, resilience on
    assert list(line.get_ydata()) == pytest.approx(list(table[("fixed", True)] * 100))
    cost = cost_per_success_chart(frame).axes[0].get_lines()[1]
    rows = frame[frame.resilience & (frame.fault_rate == 0.3)]
    assert cost.get_ydata()[-1] == pytest.approx(rows.total_cost_usd.sum() / (rows.success_rate * rows.episodes).sum())


def test_a_plan_can_stand_inline_in_the_spec_and_a_file_plan_can_be_scaled(tmp_path: Path) -> None:
    inline = {"faults": [{"kind": "error", "target": {"tools": ["lookup_order"]}}]}  # every lookup fails
    plan_file = tmp_path / "plan.yaml"
    half = {"faults": [{**inline["faults"][0], "rate": 0.5}]}
    plan_file.write_text(yaml.safe_dump({"name": "half", **half}))
    faults = [{"name": "outage", "plan": inline}, {"plan": "plan.yaml", "scale": [0, 2]}]
    spec = small_spec(tmp_path, faults=faults, resilience=[False], seeds=[0], epochs=1)
    frame = run_sweep(spec, out=tmp_path / "out", progress=False).frame
    assert frame.fault_plan.tolist() == ["outage", "half", "half"]
    assert frame.fault_scale.tolist()[1:] == [0.0, 2.0]
    lookups = [load_run(tmp_path / "out" / d).events for d in frame.run_dir]
    injected = [int((ev.kind == "fault_injected").sum()) for ev in lookups]
    assert injected[0] > 0 and injected[1] == 0  # scale 0: no faults
    assert injected[2] == injected[0]  # scale 2 of a 50 % plan: every lookup fails, as in the inline plan


def test_the_notebook_short_form_keeps_the_callers_keys(reference: Path, tmp_path: Path) -> None:
    from agentlab.analysis.sweep import sweep
    from agentlab.faults.presets import transient

    table = sweep(
        str(SUITE), out_root=tmp_path / "quick", fault_plans={0.3: transient(0.3)}, seeds=(3,), epochs=2, only=ONLY
    )
    assert table.fault_plan.tolist() == [0.3] and table.run_dir.iloc[0].startswith(str(tmp_path / "quick"))
    same = load_sweep(reference).query("fault_rate == 0.3 and resilience and seed == 3").iloc[0]
    assert (table.success_rate.iloc[0], table.pass_hat_k_max.iloc[0]) == (same.success_rate, same.pass_hat_2)


def test_a_local_clusters_workers_run_without_dasks_profiler() -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")

    def callbacks(dask_worker: Any) -> list[str]:
        return sorted(dask_worker.periodic_callbacks)

    # The profiler samples every task's stack every 10 ms (~15 % of a sweep worker's CPU); a worker without
    # it still has its heartbeat, so the check cannot pass on an empty list.
    with Dask.local(1) as dask:
        (names,) = dask._client.run(callbacks).values()
    assert "heartbeat" in names and "profile" not in names


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the start method on Linux only")
def test_pools_fork_unless_this_process_is_a_running_jupyter_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process has ipykernel imported (pytest's nbval plugin) but runs no kernel: its pools must take the
    CLI's path, fork. While the check was only 'ipykernel is imported', every pool under pytest used forkserver, and
    a chaos search with a mutant (which needs fork) silently ran on one process."""
    from agentlab.sweeps.executors import in_jupyter_kernel, start_method

    assert not in_jupyter_kernel() and start_method() == "fork"

    class RunningKernel:
        @staticmethod
        def initialized() -> bool:
            return True

    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", type(sys)("ipykernel.kernelapp"))
    monkeypatch.setattr(sys.modules["ipykernel.kernelapp"], "IPKernelApp", RunningKernel, raising=False)
    assert in_jupyter_kernel() and start_method() == "forkserver"


def test_inside_a_real_jupyter_kernel_pools_use_forkserver() -> None:
    # The kernel is driven from a child process, so this test process (whose pools fork) hosts no kernel client.
    pytest.importorskip("nbclient")
    drive = (
        "import nbformat, nbclient\n"
        "cell = 'from agentlab.sweeps.executors import in_jupyter_kernel, start_method\\n'"
        " 'print(in_jupyter_kernel(), start_method())'\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])\n"
        "nbclient.NotebookClient(nb, timeout=120, kernel_name='python3').execute()\n"
        "print(nb.cells[0].outputs[0]['text'])\n"
    )
    out = subprocess.run([sys.executable, "-c", drive], capture_output=True, text=True, timeout=300, check=True).stdout
    expected = "forkserver" if sys.platform.startswith("linux") else "spawn"
    assert out.split() == ["True", expected]


def _dying_cell(dies_at: int, task: Any) -> Any:
    """A cell's real run, except that the worker given cell ``dies_at`` exits at once, as one the kernel killed
    would (module-level and bound with a partial, so the pool can pickle it)."""
    from agentlab.sweeps.work import run_cell

    if task.index == dies_at:
        os._exit(1)
    return run_cell(task)


def test_a_dead_worker_is_one_line_and_exit_3_and_the_sweep_continues(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools

    import agentlab.sweeps.runner as sweep_runner

    spec, out = str(small_spec(tmp_path)), str(tmp_path / "out")
    with monkeypatch.context() as patched:
        patched.setattr(sweep_runner, "run_cell", functools.partial(_dying_cell, 7))
        assert main(["sweep", spec, "--out", out, "--workers", "2", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("agentlab: error: sweep: a worker process died (BrokenProcessPool") and err.count("\n") == 1
    assert not (tmp_path / "out" / "results.parquet").exists()
    again = run_sweep(spec, out=out, executor=ProcessPool(2), progress=False)
    assert again.cells_run + again.cells_kept == 8
    assert files_of(tmp_path / "out") == files_of(reference)
