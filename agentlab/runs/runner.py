"""Run a suite: every scenario × epoch as an episode of the real agent, on virtual time.

A run is a pure function of (suite, tiers, strategy, tier, seed, code version): the run id is a
hash of them, each episode's randomness is a child of the seed, and episodes run in a fixed order
on a :class:`VirtualTimeLoop`. Output goes to a run directory:

* ``run.json`` — what was run (written first);
* ``events.jsonl`` — the trace (written as ``events.jsonl.partial`` and renamed at the end);
* ``memory.sqlite`` — the memory manager's store;
* ``summary.json`` — computed from the events, written last and atomically.

A directory without ``summary.json`` is an unfinished run; nothing half-written looks complete.

Every input (suite, tiers, prices, policy, fault plan, budgets, backend, cassettes, model prices) is checked
before the output directory is touched, so bad input leaves it exactly as it was. A finished run there is
replaced only with ``force``, and a run holds ``DIR/run.lock`` while it writes (:mod:`agentlab.runs.rundir`).
Why not build the new run in a sibling directory and swap it in at the end: a killed run must stay where
``agentlab run --resume DIR`` finds it, and a swap would leave the old run in place of the one to resume.

What ``--resume`` gives back (tests/test_resume.py checks each): ``events.jsonl`` equal line for line to an
uninterrupted run's except for the ``run_resumed`` lines and the ``seq`` numbers after each (shifted by one per
``run_resumed``); the same audit rows (``audit.sqlite``), the same world ledger of every episode (the
``effects`` of ``episode_graded``), the same grades, and the same ``summary.json`` but for ``wall_seconds`` and
``resumed_episodes`` (the episodes a kill interrupted: see :func:`_episode_was_in_flight`). README.md,
"Resuming a run", says the same for users.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import orjson

from agentlab.analysis.frames import read_events
from agentlab.analysis.summary import summarize
from agentlab.components.memory import MemoryManager
from agentlab.errors import InputError, RunInterrupted
from agentlab.llm.backends import BACKENDS
from agentlab.runs.assembly import assemble_agent, simulation_for
from agentlab.runs.backends import provider_for, run_dir_suffix
from agentlab.runs.checkpoint import Checkpoint, RunCheckpoints
from agentlab.runs.episodes import run_episode
from agentlab.runs.options import RunOptions
from agentlab.runs.planning import PlannedRun, plan_run
from agentlab.runs.rundir import RUN_MARKER, RunDirLock, check_out_dir
from agentlab.sim.clock import Clock
from agentlab.sim.loop import RealTimeLoop, close_loop, run_virtual
from agentlab.sim.rng import RngTree
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.events import RunResumed
from agentlab.trace.recorder import EpisodeTrace, Recorder
from agentlab.version import __version__
from agentlab.world.store import remove_world_file

T = TypeVar("T")


@dataclass
class RunResult:
    run_dir: Path
    run_id: str
    summary: dict[str, Any]

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"RunResult({self.run_id}, dir={str(self.run_dir)!r}, episodes={s.get('episodes')}, "
            f"success_rate={s.get('success_rate')}, total_cost_usd={s.get('total_cost_usd')})"
        )

    def _repr_html_(self) -> str:
        from agentlab.analysis.summary import summary_html

        return summary_html(self.summary, title=f"Run {self.run_id} → {self.run_dir}")


def run_on_virtual_loop(
    make: Callable[[], Coroutine[Any, Any, T]],
    start: float = 0.0,
    *,
    allow_blocking: bool = False,
    realtime: bool = False,
) -> T:
    """Run a coroutine on a fresh virtual-time loop.

    Inside Jupyter (or any running event loop) a second loop cannot run in the same thread, so the
    simulation runs in a worker thread instead; the caller still just gets the result.
    ``allow_blocking``: the provider SDKs probe the platform in a worker thread on first use, so the
    loop may have to wait for a thread (see :class:`~agentlab.sim.loop.VirtualTimeLoop`).
    ``realtime``: a plain asyncio loop instead — a live provider is real network I/O, whose timeouts
    a virtual clock would fire at once.
    """

    def go() -> T:
        if realtime:
            loop = RealTimeLoop(start)
            try:
                return loop.run_until_complete(make())
            finally:
                close_loop(loop)
        return run_virtual(make(), start=start, allow_blocking=allow_blocking)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentlab-sim") as pool:
        return pool.submit(go).result()


def progress_bar(total: int, desc: str, *, enabled: bool) -> Any:
    """A tqdm bar (notebook widget in Jupyter) that appears only if the run lasts more than a second."""
    if not enabled:
        return nullcontext(SimpleNamespace(update=lambda n=1: None))
    from tqdm.auto import tqdm  # imported only when wanted: without ipywidgets its import warns in Jupyter

    return tqdm(total=total, delay=1.0, unit="ep", desc=desc)


def prepare_run_dir(path: Path, *, force: bool = True) -> None:
    """Create ``path``, or clear it if it holds an earlier agentlab run; refuse anything else (and a finished
    run without ``force``). The caller holds the directory's lock."""
    check_out_dir(path, force=force)
    if path.exists():
        for name in (
            "summary.json",
            "events.jsonl",
            "events.jsonl.partial",
            "memory.sqlite",
            "memory.sqlite-wal",
            "memory.sqlite-shm",
            "world.sqlite",
            "world.sqlite-wal",
            "world.sqlite-shm",
            "audit.sqlite",
            "audit.sqlite-wal",
            "audit.sqlite-shm",
            RUN_MARKER,
        ):
            (path / name).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)


def run_suite(
    opts: RunOptions,
    *,
    registry: ToolRegistry | None = None,
    resume: bool = False,
    summarize_run: bool = True,
    listeners: Sequence[Callable[[Any], None]] = (),
) -> RunResult:
    """Validate everything, run every episode, and write the run directory.

    Nothing is written until every input has been checked (:func:`plan_run`); a finished run at ``opts.out``
    is replaced only with ``opts.force``, and ``DIR/run.lock`` keeps a second run out while this one writes.
    An I/O error while writing (a full or read-only disk) is an :class:`InputError` naming the path; Ctrl-C is
    :class:`~agentlab.errors.RunInterrupted`, naming the directory to ``--resume``.

    With ``resume=True`` (``agentlab run --resume DIR``), continue a killed run in ``opts.out`` from its
    last checkpoint: finished episodes are not run again.

    ``summarize_run=False`` finishes the trace but skips the pandas summary (``summary.json``; the result's
    ``summary`` is empty): for a chaos search, which checks invariants over the trace of thousands of tiny
    runs, where the summary's fixed cost (~40 ms) would be most of the time.

    ``listeners`` see every event as it is emitted (``agentlab run --otel`` exports spans from them);
    they cannot change the run.
    """
    planned = plan_run(opts, registry)
    opts, suite, tier = planned.opts, planned.suite, planned.tier
    run_dir = Path(opts.out or f"runs/{suite.name}-{opts.strategy}-{tier}-s{opts.seed}{run_dir_suffix(opts)}")
    if resume:
        if orjson.loads((run_dir / RUN_MARKER).read_bytes())["run_id"] != planned.run_id:
            raise InputError(
                str(run_dir),
                "--resume",
                "the run's inputs (suite, tiers, prices, policy, options or code) changed since it started",
            )
    else:
        check_out_dir(run_dir, force=opts.force)  # before the lock file: a refused run leaves DIR as it was
    started_writing = False
    try:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = RunDirLock(run_dir)
            lock.acquire()
        except OSError as exc:
            raise _io_error(exc, run_dir) from None
        try:
            started_writing = True
            return _write_run(planned, run_dir, resume, summarize_run, listeners)
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _is_io_error(exc):
                raise
            raise _io_error(exc, run_dir) from None
        finally:
            lock.release()
    except KeyboardInterrupt:
        if started_writing:
            raise RunInterrupted(run_dir) from None
        raise


def _is_io_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("disk", "readonly", "read-only", "unable to open", "i/o"))


def _io_error(exc: OSError | sqlite3.OperationalError, run_dir: Path) -> InputError:
    """An I/O failure while writing the run (a full or read-only disk) as one line naming the path."""
    if isinstance(exc, OSError):
        path = exc.filename or run_dir
        problem = exc.strerror or str(exc)
    else:
        path, problem = run_dir, str(exc)
    return InputError(str(path), "", f"cannot write the run: {problem}")


def _write_run(
    planned: PlannedRun,
    run_dir: Path,
    resume: bool,
    summarize_run: bool,
    listeners: Sequence[Callable[[Any], None]],
) -> RunResult:
    """Write the run into ``run_dir`` (whose lock the caller holds): a new run from scratch, or the rest of one."""
    opts, plan = planned.opts, planned.faults
    partial = run_dir / "events.jsonl.partial"
    checkpoint: Checkpoint | None = None
    if resume:
        if (run_dir / "summary.json").exists():  # another resume finished it while this one waited to start
            raise InputError(str(run_dir), "--resume", "this run already finished (summary.json exists)")
        memory = MemoryManager(run_dir / "memory.sqlite")
        checkpoint = RunCheckpoints(memory).load()
        memory.close()
        if not partial.exists():
            partial.touch()
    else:
        prepare_run_dir(run_dir, force=opts.force)
        config = {
            "run_id": planned.run_id,
            "agentlab_version": __version__,
            **opts.model_dump(exclude={"faults"}),
            "faults": plan.model_dump(mode="json") if plan else None,
            "tiers": str(planned.tiers_path),
            "tier": planned.tier,
            "suite_digest": planned.suite.digest,
        }
        (run_dir / RUN_MARKER).write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return _execute_run(planned, run_dir, checkpoint, resumed=resume, summarize_run=summarize_run, listeners=listeners)


def _execute_run(
    planned: PlannedRun,
    run_dir: Path,
    checkpoint: Checkpoint | None,
    *,
    resumed: bool,
    summarize_run: bool = True,
    listeners: Sequence[Callable[[Any], None]] = (),
) -> RunResult:
    opts, run_id = planned.opts, planned.run_id
    partial = run_dir / "events.jsonl.partial"
    resume_at = (checkpoint.trace_offset, checkpoint.seq) if checkpoint else ((0, 0) if resumed else None)
    in_flight = _episode_was_in_flight(partial, resume_at[0]) if resume_at is not None else False
    started = time.perf_counter()  # wall time for the summary only; never read in the simulated path
    with Recorder(run_id, partial, resume_at=resume_at) as recorder:
        recorder.listeners.extend(listeners)
        kill_after = os.environ.get("AGENTLAB_KILL_AFTER_EVENTS")
        if kill_after:  # crash testing: the run SIGKILLs itself after this many events
            recorder.listeners.append(_killer(int(kill_after)))
        run_on_virtual_loop(
            lambda: _run_episodes(planned, recorder, run_dir / "memory.sqlite", checkpoint, resumed, in_flight),
            start=checkpoint.t if checkpoint else 0.0,
            allow_blocking=BACKENDS[opts.llm].sdk,
            realtime=BACKENDS[opts.llm].live,
        )
    wall = time.perf_counter() - started
    summary = _summary(partial, planned, wall) if summarize_run else {}
    os.replace(partial, run_dir / "events.jsonl")
    if summarize_run:
        tmp = run_dir / "summary.json.tmp"
        tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        os.replace(tmp, run_dir / "summary.json")
    return RunResult(run_dir=run_dir, run_id=run_id, summary=summary)


def _episode_was_in_flight(partial: Path, offset: int) -> bool:
    """Whether a kill interrupted an episode: an ``episode_started`` is in the trace after the checkpoint's offset
    (each is written out as the episode starts, see :func:`run_episode`); if not, the kill fell between episodes.
    Read before the resumed recorder cuts those bytes off."""
    with open(partial, "rb") as fh:
        fh.seek(offset)
        tail = fh.read()
    return any(line.startswith(b'{"kind":"episode_started"') for line in tail.splitlines())


def _summary(trace: Path, planned: PlannedRun, wall: float) -> dict[str, Any]:
    opts, plan, suite = planned.opts, planned.faults, planned.suite
    return summarize(
        read_events(trace),
        suite=suite.name,
        seed=opts.seed,
        epochs=opts.epochs,
        wall_seconds=wall,
        tier_order=planned.tiers.order,
        extra={
            "run_id": planned.run_id,
            "strategy": opts.strategy,
            # A routing policy picks each call's tier (llm_calls_by_tier).
            "tier": None if opts.routing else planned.tier,
            "llm": opts.llm,
            **({"provider": provider_for(opts), "sdk_retries": opts.sdk_retries} if BACKENDS[opts.llm].sdk else {}),
            "faults": plan.name if plan else None,
            "resilience": opts.resilience,
            "routing": opts.routing,
        },
    )


def _killer(after: int) -> Callable[[Any], None]:
    seen = [0]

    def listener(event: Any) -> None:
        seen[0] += 1
        if seen[0] >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return listener


async def _run_episodes(
    planned: PlannedRun,
    recorder: Recorder,
    memory_path: Path,
    checkpoint: Checkpoint | None = None,
    resumed: bool = False,
    in_flight: bool = False,
) -> None:
    opts, suite = planned.opts, planned.suite
    rng = RngTree(opts.seed)
    clock = Clock()
    # Memory rows are committed only with the checkpoint that covers them (see runs/checkpoint.py).
    memory = MemoryManager(memory_path, flush_every=1 << 30)
    checkpoints = RunCheckpoints(memory)
    parts = assemble_agent(planned, recorder, memory, memory_path.parent / "audit.sqlite", rng, clock)
    agent, stack, injector, ledger, audit = parts.agent, parts.stack, parts.injector, parts.ledger, parts.audit
    world_path = memory_path.parent / "world.sqlite" if opts.durable_worlds else None
    sim = simulation_for(planned, parts, rng, clock, world_path=world_path)
    total = len(suite.scenarios) * opts.epochs
    first, resumes = 0, 0
    if checkpoint is not None:
        first, resumes = checkpoint.next_episode, checkpoint.resumes
        if agent.recovery.breakers is not None:
            agent.recovery.breakers.restore(checkpoint.state["breakers"])
        if injector is not None:
            injector.restore(checkpoint.state["injector"])
        if ledger is not None:
            ledger.spent = dict(checkpoint.state.get("budgets", {}))
    if resumed:
        resumes += 1
        interrupted = None
        if first < total:  # the interrupted episode runs again: its partial audit rows go
            epoch, scenario_index = divmod(first, len(suite.scenarios))
            next_id = suite.scenarios[scenario_index].episode_id(epoch)
            audit.forget_episode(next_id)
            interrupted = next_id if in_flight else None
        EpisodeTrace(recorder, "", clock).emit(RunResumed(next_episode=first, in_flight=interrupted))
    finished = False
    try:
        with progress_bar(total, suite.name, enabled=opts.progress) as bar:
            bar.update(first)
            for index in range(first, total):
                epoch, scenario_index = divmod(index, len(suite.scenarios))
                scenario = suite.scenarios[scenario_index]
                episode_id = scenario.episode_id(epoch)
                await run_episode(sim, scenario, epoch)
                if ledger is not None:  # an episode is its own session (run_episode): it has ended
                    ledger.end_session(episode_id)
                if stack is not None:  # save the episode's recording before the checkpoint covers it
                    stack.end_episode(episode_id)
                state = {
                    "breakers": agent.recovery.breakers.snapshot() if agent.recovery.breakers is not None else {},
                    "injector": injector.snapshot() if injector is not None else {},
                    # Day and month spend outlive an episode: a resumed run must not start them at zero.
                    "budgets": dict(ledger.spent) if ledger is not None else {},
                }
                audit.flush()  # the audit rows of every checkpointed episode are durable
                offset, seq = recorder.position()
                checkpoints.save(index + 1, clock.now(), offset, seq, state, resumes)
                if sim.world_path is not None:  # only now: the checkpoint covers this episode
                    remove_world_file(sim.world_path)
                bar.update()
        finished = True
    finally:
        memory.close()
        audit.close()
        sim.template.close()
        if stack is not None:  # an unfinished episode's recording is not saved
            await stack.aclose(save=finished)
