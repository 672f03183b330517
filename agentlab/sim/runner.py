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
replaced only with ``force``, and a run holds ``DIR/run.lock`` while it writes (:mod:`agentlab.sim.rundir`).
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
import hashlib
import math
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
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlab.agent import AgentSystem
from agentlab.analysis.frames import read_events
from agentlab.analysis.summary import summarize
from agentlab.components.approvals import ApprovalQueue, Approver, SimulatedApprover
from agentlab.components.audit import AuditLog
from agentlab.components.budgets import BudgetLedger, BudgetLimits
from agentlab.components.cost import CostController
from agentlab.components.decisions import TableApprover, load_decisions
from agentlab.components.evaluator import Evaluator
from agentlab.components.guardrails import Guardrails
from agentlab.components.memory import MemoryManager
from agentlab.components.messages import AgentRequest, User
from agentlab.components.permissions import OpenGate, PermissionsGate
from agentlab.components.policy import Policy, check_policy, load_policy
from agentlab.components.recovery import RecoveryHandler
from agentlab.components.routing import POLICIES
from agentlab.errors import InputError, RunInterrupted
from agentlab.faults.injector import FaultInjector
from agentlab.faults.plan import Fault, FaultPlan, check_targets, load_fault_plan
from agentlab.faults.transports import instrument
from agentlab.llm.pricing import load_prices, priced_tiers
from agentlab.llm.sim import SimulatedModel
from agentlab.llm.tiers import TierTable, load_tiers
from agentlab.llm.types import ModelClient
from agentlab.resilience.store import StateStore
from agentlab.scenarios.loader import load_suite
from agentlab.scenarios.model import Scenario, Suite
from agentlab.sim.backends import API_KEY_ENV, LIVE, backend_tiers, provider_for, run_dir_suffix, validate_backend
from agentlab.sim.checkpoint import Checkpoint, RunCheckpoints
from agentlab.sim.clock import Clock
from agentlab.sim.grading import expected_state, repeated_effects, unauthorized_effects
from agentlab.sim.inputs import load_cached
from agentlab.sim.loop import RealTimeLoop, close_loop, run_virtual
from agentlab.sim.rng import RngTree
from agentlab.sim.rundir import RUN_MARKER, RunDirLock, check_out_dir
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.events import EpisodeGraded, EpisodeStarted, RunResumed
from agentlab.trace.recorder import EpisodeTrace, Recorder
from agentlab.version import __version__
from agentlab.world.store import World, build_template, remove_world_file

T = TypeVar("T")


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    strategy: Literal["react", "plan"] = "react"
    # The model backend (agentlab.sim.backends): the in-process simulated model, the real SDKs against the
    # simulated endpoint, replayed cassettes, or a live provider.
    llm: Literal["sim", "sim-openai", "sim-anthropic", "replay", "openai", "anthropic"] = "sim"
    provider: Literal["openai", "anthropic"] | None = None  # replay: whose cassettes (default: the only ones)
    cassettes: str | None = None  # replay: DIR holding <provider>/<suite>/<episode>.yaml
    record: str | None = None  # SDK backends: record every HTTP exchange into DIR/<provider>/<suite>/
    record_mode: Literal["record", "record-missing"] = "record"
    model: str | None = None  # live providers: the model every tier calls
    # Live providers: a real model per tier ({"fast": "gpt-4o-mini", ...}), so cascade routing climbs real
    # models; a tier not named here calls ``model``.
    tier_models: dict[str, str] | None = None
    # SDK backends: the SDK's own max_retries. While it is > 0 the agent does not retry model calls itself.
    sdk_retries: int = Field(default=2, lt=2**63)  # (0 or more: checked by validate_backend)
    stream: bool = False  # SDK backends: ask for streamed (SSE) responses
    tiers: str | None = None
    tier: str | None = None
    seed: int = Field(default=0, ge=-(2**63), lt=2**63)
    epochs: int = Field(default=1, lt=2**63)  # (at least 1: checked by run_suite, as --epochs)
    faults: str | FaultPlan | Fault | None = None  # a YAML path, or a plan (or one fault) built in Python
    resilience: bool = True
    # Keep the in-flight episode's world in a file and journal every call, so a resumed run continues
    # that episode mid-way against the world as the kill left it (slower: ~3 ms an episode for the file).
    durable_worlds: bool = False
    # Safety: the permission policy (rule matrix YAML; None: tool ACLs only), who answers approvals,
    # whether guardrails screen input, tool output and answers, and whether the gate runs at all
    # (off only to measure what it prevents).
    policy: str | None = None
    approver: Literal["approve", "deny", "never"] = "approve"
    # A person's decisions, YAML (agentlab.components.decisions): requests it covers are answered from it,
    # the rest by ``approver``.
    approvals: str | None = None
    guardrails: bool = True
    gate: bool = True
    # Budgets beyond each scenario's per-request budget (USD; None: no limit), on the simulated calendar.
    budget_session_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    budget_user_day_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    budget_user_month_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    prices: str | None = None  # price table YAML (default: the nearest prices.yaml above the suite)
    # Cascade routing policy: always-cheapest | always-most-capable | cascade | budget-aware-cascade.
    # None: every call on ``tier``.
    routing: str | None = None
    out: str | None = None
    only: list[str] | None = None
    progress: bool = True
    force: bool = False  # replace a finished run at ``out`` (without it, a finished run is never touched)


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


def find_tiers(suite_path: Path, name: str = "tiers.yaml") -> Path:
    """The nearest ``name`` at or above the suite's folder (``fixtures/tiers.yaml``, ``fixtures/prices.yaml``)."""
    for folder in [suite_path.resolve().parent, *suite_path.resolve().parents]:
        candidate = folder / name
        if candidate.exists():
            return candidate
    raise InputError(str(suite_path), "", f"no {name} found beside or above the suite; pass it explicitly")


def prices_path(opts: RunOptions) -> Path:
    """The price table a run uses (and its id hashes): ``--prices``, or the nearest prices.yaml above the suite."""
    return Path(opts.prices) if opts.prices else find_tiers(Path(opts.suite), "prices.yaml")


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


# Options that cannot change what a run does: where it writes, whether a bar is drawn, where recordings go,
# and whether the in-flight world is kept on disk (a durable run's trace equals an in-memory one's).
NON_SEMANTIC = frozenset({"out", "progress", "record", "cassettes", "durable_worlds", "force"})
# Options naming files: the id hashes their contents instead of their paths.
FILE_OPTIONS = frozenset({"suite", "tiers", "faults", "policy", "prices", "approvals"})


def _digest(path: str | Path | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None


def _cassettes_digest(opts: RunOptions, suite: Suite) -> str:
    """A replayed run's recordings, by content (its ``--cassettes`` path is not part of the run, what it holds is)."""
    from agentlab.llm.replay.library import cassette_dir

    folder = cassette_dir(opts.cassettes or "", opts.provider or "", suite.name)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_id_for(suite: Suite, tiers_bytes: bytes, opts: RunOptions, tier: str, plan: FaultPlan | None) -> str:
    """A hash of everything the run is a function of: every option that can change it, files by content,
    and the code version. Two runs with the same id produce the same trace."""
    # The resolved tier is hashed below; tier_models only when set, so runs without it keep their ids.
    unset = {"tier_models"} if opts.tier_models is None else set()
    options = opts.model_dump(exclude=NON_SEMANTIC | FILE_OPTIONS | {"tier"} | unset)
    prices = prices_path(opts)
    key = orjson.dumps(
        {
            "options": options,
            "suite": suite.digest,
            "tiers": hashlib.sha256(tiers_bytes).hexdigest(),
            "tier": tier,
            "faults": plan.model_dump(mode="json") if plan else None,
            "policy": _digest(opts.policy),
            # Only a run with a decision table carries the key: other runs' ids are as before.
            **({"approvals": _digest(opts.approvals)} if opts.approvals else {}),
            "prices": _digest(prices),
            "record_mode": opts.record_mode if opts.record else None,
            "version": __version__,
            # Only a replayed run reads cassettes (and only its id carries the key: other runs' ids are as before).
            **({"cassettes": _cassettes_digest(opts, suite)} if opts.llm == "replay" else {}),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return "run-" + hashlib.sha256(key).hexdigest()[:12]


def approver_for(opts: RunOptions) -> Approver:
    """The simulated approver, answering from the run's decision table first when it has one."""
    fallback = SimulatedApprover(opts.approver)
    if not opts.approvals:
        return fallback
    return TableApprover(load_cached(load_decisions, opts.approvals), fallback)


def build_model(suite: Suite, tiers: TierTable, rng: RngTree, registry: ToolRegistry) -> ModelClient:
    safe = [s.name for s in registry if not s.side_effects]
    return SimulatedModel(tiers, suite.scenarios, rng, safe_tools=safe, mistake_args=suite.domain.wrong_call_args)


def resume_options(run_dir: str | Path) -> RunOptions:
    """The options a run directory was started with (from its ``run.json``), to resume it."""
    run_dir = Path(run_dir)
    marker = run_dir / RUN_MARKER
    if not marker.exists():
        raise InputError(str(run_dir), "--resume", "not an agentlab run directory (no run.json)")
    if (run_dir / "summary.json").exists():
        raise InputError(str(run_dir), "--resume", "this run already finished (summary.json exists)")
    try:
        config = orjson.loads(marker.read_bytes())
        fields = {k: config[k] for k in RunOptions.model_fields if k in config and k != "faults"}
        faults = FaultPlan.model_validate(config["faults"]) if config.get("faults") else None
        return RunOptions(
            **{**fields, "faults": faults, "out": str(run_dir), "tiers": config["tiers"], "progress": False}
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else "not a run.json agentlab wrote"
        raise InputError(str(marker), "--resume", f"cannot resume from it ({problem})") from None


@dataclass(frozen=True)
class PlannedRun:
    """A run's inputs, loaded and checked, and the id they hash to; nothing has been written yet."""

    opts: RunOptions
    registry: ToolRegistry
    suite: Suite
    tiers: TierTable
    tiers_path: Path
    tier: str
    faults: FaultPlan | None
    run_id: str


def plan_run(opts: RunOptions, registry: ToolRegistry | None = None) -> PlannedRun:
    """Load and check every input of a run and compute its id, without touching the run directory.

    Whatever is wrong is an :class:`InputError` here, so a bad price table, policy, budget, model or cassette
    can never cost the run directory its previous contents. A sweep also uses it to tell whether a cell's
    existing run directory is still the run it asks for.
    """
    suite_path = Path(opts.suite)
    suite = load_cached(load_suite, suite_path, registry)
    registry = registry or suite.domain.tools
    if opts.only:
        unknown = sorted(set(opts.only) - {s.id for s in suite.scenarios})
        if unknown:
            raise InputError(str(suite_path), "--only", f"no scenario named {', '.join(unknown)}")
        suite = suite.only(opts.only)
    tiers_path = Path(opts.tiers) if opts.tiers else find_tiers(suite_path)
    tiers = load_cached(load_tiers, tiers_path)
    tier = opts.tier or tiers.default
    if tier not in tiers.tiers:
        raise InputError(str(tiers_path), "--tier", f"unknown tier {tier!r} (tiers: {', '.join(tiers.order)})")
    if opts.epochs < 1:
        raise InputError("--epochs", "", "must be at least 1")
    for flag, value in (
        ("--budget-session", opts.budget_session_usd),
        ("--budget-user-day", opts.budget_user_day_usd),
        ("--budget-user-month", opts.budget_user_month_usd),
    ):  # RunOptions checks these too, unless it was built with model_construct or changed after validation
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(flag, "", f"must be a finite amount of 0 or more (got {value})")

    plan = load_cached(load_fault_plan, opts.faults) if isinstance(opts.faults, str) else opts.faults
    if isinstance(plan, Fault):
        plan = FaultPlan(faults=(plan,))
    opts = validate_backend(opts, suite, plan)  # a missing API key stops here: nothing is written yet
    if opts.approvals:  # a bad decision table stops here too
        load_cached(load_decisions, opts.approvals)
    tiers = backend_tiers(tiers, opts)
    check_inputs(opts, plan, suite, tiers, registry)
    if opts.policy:
        load_cached(load_policy, opts.policy)
    priced(tiers, opts)  # an unpriced model is an error, not a zero
    _check_cassettes(opts, suite)
    run_id = run_id_for(suite, tiers_path.read_bytes(), opts, tier, plan)
    return PlannedRun(opts, registry, suite, tiers, tiers_path, tier, plan, run_id)


def priced(tiers: TierTable, opts: RunOptions) -> TierTable:
    """The tiers with their prices from the run's price table; a model it does not price is an InputError."""
    prices = load_cached(load_prices, prices_path(opts))
    return priced_tiers(
        tiers, prices, str(opts.tiers or "tiers.yaml"), prices_source=str(prices_path(opts)), model_option=opts.model
    )


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
    opts, registry, suite, tiers, tier = planned.opts, planned.registry, planned.suite, planned.tiers, planned.tier
    plan, run_id, tiers_path = planned.faults, planned.run_id, planned.tiers_path
    run_dir = Path(opts.out or f"runs/{suite.name}-{opts.strategy}-{tier}-s{opts.seed}{run_dir_suffix(opts)}")
    if resume:
        if orjson.loads((run_dir / RUN_MARKER).read_bytes())["run_id"] != run_id:
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
            return _write_run(
                suite, tiers, tier, tiers_path, opts, registry, plan, run_id, run_dir, resume, summarize_run, listeners
            )
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


def _check_cassettes(opts: RunOptions, suite: Suite) -> None:
    """The cassettes a run will read are readable (a broken one found mid-run would stop the run with a partial
    trace). A missing one is not an error here: an episode that makes no model call (a budget refused up front)
    has none; one that needs it stops the run with a one-line replay mismatch."""
    if opts.llm == "replay":
        folder = Path(opts.cassettes or "")
    elif opts.record and opts.record_mode == "record-missing":
        folder = Path(opts.record)
    else:
        return
    from agentlab.llm.replay.cassette import read_cassette
    from agentlab.llm.replay.library import cassette_dir, episode_file

    directory = cassette_dir(folder, provider_for(opts) or "", suite.name)
    for epoch in range(opts.epochs):
        for scenario in suite.scenarios:
            path = directory / episode_file(f"{scenario.id}#{epoch}")
            if path.is_file():
                read_cassette(path)


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
    suite: Suite,
    tiers: TierTable,
    tier: str,
    tiers_path: Path,
    opts: RunOptions,
    registry: ToolRegistry,
    plan: FaultPlan | None,
    run_id: str,
    run_dir: Path,
    resume: bool,
    summarize_run: bool,
    listeners: Sequence[Callable[[Any], None]],
) -> RunResult:
    """Write the run into ``run_dir`` (whose lock the caller holds): a new run from scratch, or the rest of one."""
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
            "run_id": run_id,
            "agentlab_version": __version__,
            **opts.model_dump(exclude={"faults"}),
            "faults": plan.model_dump(mode="json") if plan else None,
            "tiers": str(tiers_path),
            "tier": tier,
            "suite_digest": suite.digest,
        }
        (run_dir / RUN_MARKER).write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return _execute_run(
        suite,
        tiers,
        tier,
        opts,
        registry,
        plan,
        run_id,
        run_dir,
        checkpoint,
        resumed=resume,
        summarize_run=summarize_run,
        listeners=listeners,
    )


def check_inputs(
    opts: RunOptions, plan: FaultPlan | None, suite: Suite, tiers: TierTable, registry: ToolRegistry
) -> None:
    """Typos that would silently make a run measure something else: a fault target or a policy rule that
    matches nothing the run has (errors), a policy rule for a role the suite does not know (a warning)."""
    tools = [spec.name for spec in registry]
    if plan:
        file = opts.faults if isinstance(opts.faults, str) else f"fault plan {plan.name}"
        check_targets(plan, file, tools, [(name, tiers[name].model) for name in tiers.order], ("openai", "anthropic"))
    if opts.policy:
        policy = load_cached(load_policy, opts.policy)
        check_policy(policy, opts.policy, tools, suite.roles, suite.domain.constraint_roles)


def _execute_run(
    suite: Suite,
    tiers: TierTable,
    tier: str,
    opts: RunOptions,
    registry: ToolRegistry,
    plan: FaultPlan | None,
    run_id: str,
    run_dir: Path,
    checkpoint: Checkpoint | None,
    *,
    resumed: bool,
    summarize_run: bool = True,
    listeners: Sequence[Callable[[Any], None]] = (),
) -> RunResult:
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
            lambda: _run_episodes(
                suite,
                tiers,
                tier,
                opts,
                registry,
                recorder,
                run_dir / "memory.sqlite",
                plan,
                checkpoint,
                resumed,
                in_flight,
            ),
            start=checkpoint.t if checkpoint else 0.0,
            allow_blocking=opts.llm != "sim",
            realtime=opts.llm in LIVE,
        )
    wall = time.perf_counter() - started
    summary = _summary(partial, suite, tiers, tier, opts, plan, run_id, wall) if summarize_run else {}
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


def _summary(
    trace: Path,
    suite: Suite,
    tiers: TierTable,
    tier: str,
    opts: RunOptions,
    plan: FaultPlan | None,
    run_id: str,
    wall: float,
) -> dict[str, Any]:
    return summarize(
        read_events(trace),
        suite=suite.name,
        seed=opts.seed,
        epochs=opts.epochs,
        wall_seconds=wall,
        tier_order=tiers.order,
        extra={
            "run_id": run_id,
            "strategy": opts.strategy,
            "tier": None if opts.routing else tier,  # a routing policy picks each call's tier (llm_calls_by_tier)
            "llm": opts.llm,
            **({"provider": provider_for(opts), "sdk_retries": opts.sdk_retries} if opts.llm != "sim" else {}),
            "faults": plan.name if plan else None,
            "resilience": opts.resilience,
            "routing": opts.routing,
        },
    )


@dataclass
class Simulation:
    """Everything the episodes of one run share."""

    suite: Suite
    agent: AgentSystem
    registry: ToolRegistry
    template: Any
    rng: RngTree
    clock: Clock
    strategy: str
    tier: str
    injector: FaultInjector | None
    non_idempotent: frozenset[str]
    expected: dict[str, dict[str, Any]]
    world_path: Path | None = None  # the in-flight episode's world, on disk so a kill cannot lose it
    policy: Policy | None = None


def _killer(after: int) -> Callable[[Any], None]:
    seen = [0]

    def listener(event: Any) -> None:
        seen[0] += 1
        if seen[0] >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return listener


@dataclass
class AgentParts:
    """An assembled :class:`AgentSystem` and the pieces its owner must keep, checkpoint or close."""

    agent: AgentSystem
    stack: Any  # the SDK stack (None for --llm sim): its recordings are saved per episode, then closed
    injector: FaultInjector | None
    ledger: BudgetLedger | None
    audit: AuditLog
    policy: Policy | None


def assemble_agent(
    suite: Suite,
    tiers: TierTable,
    tier: str,
    opts: RunOptions,
    registry: ToolRegistry,
    recorder: Recorder,
    memory: MemoryManager,
    audit_path: Path,
    plan: FaultPlan | None,
    rng: RngTree,
    clock: Clock,
    *,
    store: StateStore | None = None,
) -> AgentParts:
    """The production agent as a run configures it: model backend (simulated, SDK, replayed or live),
    fault injection, prices, budgets, permissions, guardrails, routing and the resilience layer.

    ``agentlab run`` and ``agentlab serve`` both build their agent here, so a served agent is the one the
    simulator tests. ``store``: where breaker state lives (default in memory; a RedisStore to share it).
    Must be called on the loop the agent will run on (an SDK stack binds to it).
    """
    injector = FaultInjector(plan, opts.seed) if plan else None
    model = build_model(suite, tiers, rng, registry)
    stack = None
    if opts.llm != "sim":  # the real provider SDK over agentlab's transports (imported only now: it is heavy)
        from agentlab.llm.stack import build_sdk_stack

        stack = build_sdk_stack(
            opts.llm,  # type: ignore[arg-type]
            tiers=tiers,
            suite=suite.name,
            sim_model=model,
            replay_provider=opts.provider,
            cassettes=opts.cassettes,
            record=opts.record,
            record_mode=opts.record_mode,
            sdk_retries=opts.sdk_retries,
            stream=opts.stream,
            injector=injector,
            trace_for=lambda episode_id: EpisodeTrace(recorder, episode_id, clock),
            seed=opts.seed,
            api_key=os.environ.get(API_KEY_ENV[opts.llm]) if opts.llm in LIVE else None,
        )
        model = stack.model
    model, sandbox = instrument(model, injector, recorder, clock, corruptions=suite.domain.corruptions)
    # One retry layer per model call: while the SDK retries, the agent does not (components/recovery.py).
    retry_model_calls = stack is None or opts.sdk_retries == 0
    policy = load_cached(load_policy, opts.policy) if opts.policy else None
    prices = load_cached(load_prices, prices_path(opts))
    tiers = priced(tiers, opts)
    limits = BudgetLimits(
        session_usd=opts.budget_session_usd,
        user_day_usd=opts.budget_user_day_usd,
        user_month_usd=opts.budget_user_month_usd,
    )
    ledger = BudgetLedger(limits) if limits.model_dump(exclude_none=True) else None
    audit = AuditLog(audit_path, run_id=recorder.run_id)
    gate_class = PermissionsGate if opts.gate else OpenGate
    gate = gate_class(
        registry,
        policy=policy,
        constraints=suite.domain.constraints if policy else None,
        resources=suite.domain.resource_of,
        approvals=ApprovalQueue(approver_for(opts)),
        audit=audit,
    )
    agent = AgentSystem(
        model=model,
        registry=registry,
        tiers=tiers,
        recorder=recorder,
        tier=tier,
        strategy=opts.strategy,
        memory=memory,
        sandbox=sandbox,
        gate=gate,
        cost=CostController(prices=prices, ledger=ledger),
        guardrails=Guardrails() if opts.guardrails else None,
        routing=POLICIES[opts.routing]() if opts.routing else None,
        recovery=(
            RecoveryHandler.resilient(retry_model_calls=retry_model_calls, store=store)
            if opts.resilience
            else RecoveryHandler.disabled()
        ),
        rng=rng,
        clock=clock,
        model_timeouts=stack is None,
        system_prompt=suite.domain.system_prompt,
        evaluator=Evaluator(
            claims=suite.domain.claims
        ),  # the SDKs time their own requests out (one timeout layer per call)
    )
    return AgentParts(agent=agent, stack=stack, injector=injector, ledger=ledger, audit=audit, policy=policy)


async def _run_episodes(
    suite: Suite,
    tiers: TierTable,
    tier: str,
    opts: RunOptions,
    registry: ToolRegistry,
    recorder: Recorder,
    memory_path: Path,
    plan: FaultPlan | None,
    checkpoint: Checkpoint | None = None,
    resumed: bool = False,
    in_flight: bool = False,
) -> None:
    rng = RngTree(opts.seed)
    clock = Clock()
    template = build_template(suite.world)
    # Memory rows are committed only with the checkpoint that covers them (see sim/checkpoint.py).
    memory = MemoryManager(memory_path, flush_every=1 << 30)
    checkpoints = RunCheckpoints(memory)
    audit_path = memory_path.parent / "audit.sqlite"
    parts = assemble_agent(suite, tiers, tier, opts, registry, recorder, memory, audit_path, plan, rng, clock)
    agent, stack, injector, ledger, audit, policy = (
        parts.agent,
        parts.stack,
        parts.injector,
        parts.ledger,
        parts.audit,
        parts.policy,
    )
    sim = Simulation(
        suite=suite,
        agent=agent,
        registry=registry,
        template=template,
        rng=rng,
        clock=clock,
        strategy=opts.strategy,
        tier=tier,
        injector=injector,
        non_idempotent=frozenset(s.name for s in registry if not s.idempotent),
        policy=policy,
        expected={},
        world_path=memory_path.parent / "world.sqlite" if opts.durable_worlds else None,
    )
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
            next_id = f"{suite.scenarios[scenario_index].id}#{epoch}"
            audit.forget_episode(next_id)
            interrupted = next_id if in_flight else None
        EpisodeTrace(recorder, "", clock).emit(RunResumed(next_episode=first, in_flight=interrupted))
    finished = False
    try:
        with progress_bar(total, suite.name, enabled=opts.progress) as bar:
            bar.update(first)
            for index in range(first, total):
                epoch, scenario = divmod(index, len(suite.scenarios))
                episode_id = f"{suite.scenarios[scenario].id}#{epoch}"
                await run_episode(sim, suite.scenarios[scenario], epoch)
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
        template.close()
        if stack is not None:  # an unfinished episode's recording is not saved
            await stack.aclose(save=finished)


async def run_episode(
    sim: Simulation,
    scenario: Scenario,
    epoch: int,
    *,
    episode_id: str | None = None,
    world_path: Path | None = None,
    user_id: str | None = None,
) -> EpisodeGraded:
    """One scenario as one episode of the agent, graded against its gold plan; returns the grade event.

    ``agentlab serve`` runs each request through here too, with its own ``episode_id`` (the request id),
    its own durable world file (so a worker killed mid-request resumes it without repeating a side
    effect) and the caller's ``user_id``.
    """
    agent, clock = sim.agent, sim.clock
    if scenario.id not in sim.expected:
        sim.expected[scenario.id] = await expected_state(scenario, sim.template, sim.registry, source=sim.suite.path)
    episode_id = episode_id or f"{scenario.id}#{epoch}"
    world_path = world_path or sim.world_path
    user = scenario.user.id if user_id is None else user_id
    trace = EpisodeTrace(agent.recorder, episode_id, clock)
    trace.emit(
        EpisodeStarted(
            scenario_id=scenario.id,
            category=scenario.category,
            epoch=epoch,
            strategy=sim.strategy,
            tier=sim.tier,
            user_id=user,
            request=scenario.request,
        )
    )
    # On disk before the episode does anything: after a kill, --resume tells an interrupted episode (this line is
    # past the last checkpoint) from a kill between episodes (summary's resumed_episodes). One write an episode.
    agent.recorder.flush()
    if sim.injector is not None:
        sim.injector.start_episode(episode_id, clock.now())
    world_options: dict[str, Any] = {
        "clock": clock,
        "rng": sim.rng.child("world", episode_id).random(),
        "environment": sim.suite.environment,
    }
    if world_path is not None:
        world = World.persisted(sim.template, world_path, episode_id, scenario.world, **world_options)
    else:
        world = World.from_template(sim.template, scenario.world, **world_options)
    try:
        request = AgentRequest(
            user=User(id=user, role=scenario.user.role or "", permissions=scenario.permissions),
            text=scenario.request,
            session_id=episode_id,
            budget_usd=scenario.budget_usd or 0.0,
            max_turns=scenario.max_turns or 12,
            tags={"scenario_id": scenario.id, "episode_id": episode_id},
        )
        response = await agent.handle(request, episode_id=episode_id, env=world)
        grade = Evaluator.grade(
            answer=response.text,
            end_state=world.snapshot(),
            expected_state=sim.expected[scenario.id],
            answer_contains=scenario.expect.answer_contains,
            answer_excludes=scenario.expect.answer_excludes,
        )
        ledger = world.effects()
        duplicates = len(repeated_effects(ledger, sim.non_idempotent))
        unauthorized = len(
            unauthorized_effects(ledger, scenario, sim.registry, sim.policy, sim.suite.domain.resource_of)
        )
        effects = [
            {"tool": e["tool"], "action": e["action"], "args": e["args"], "call_id": e["call_id"]} for e in ledger
        ]
    finally:
        world.close()
        if sim.injector is not None:
            sim.injector.end_episode(episode_id)
    graded = EpisodeGraded(
        scenario_id=scenario.id,
        category=scenario.category,
        epoch=epoch,
        success=grade.success,
        world_ok=grade.world_ok,
        answer_ok=grade.answer_ok,
        status=response.status,
        reasons=grade.reasons,
        duplicate_side_effects=duplicates,
        unauthorized_tool_calls=unauthorized,
        effects=effects,
    )
    trace.emit(graded)
    return graded
