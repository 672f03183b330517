"""Check every input of a run and compute its id, before anything is written.

:func:`plan_run` loads the suite, tiers, prices, policy, decisions, fault plan and cassettes a run names and
raises an :class:`~agentlab.errors.InputError` for whatever is wrong, so bad input never costs a run directory
its previous contents. The run id (:func:`run_id_for`) hashes everything a run is a function of; a sweep
compares it to tell whether an existing cell directory is still the run it asks for.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import orjson

from agentlab.components.decisions import load_decisions
from agentlab.components.policy import check_policy, load_policy
from agentlab.errors import InputError
from agentlab.faults.plan import Fault, FaultPlan, check_targets, load_fault_plan
from agentlab.llm.backends import PROVIDERS
from agentlab.llm.pricing import load_prices, priced_tiers
from agentlab.llm.tiers import TierTable, load_tiers
from agentlab.runs.backends import backend_tiers, provider_for, validate_backend
from agentlab.runs.inputs import load_cached
from agentlab.runs.options import BUDGET_SCOPES, FILE_OPTIONS, NON_SEMANTIC, RunOptions
from agentlab.scenarios.loader import load_suite
from agentlab.scenarios.model import Suite
from agentlab.tools.registry import ToolRegistry
from agentlab.version import __version__


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
    priced: TierTable  # ``tiers`` with the run's prices: what the agent charges by (the model backends get ``tiers``)


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
    for scope in BUDGET_SCOPES:  # RunOptions checks these too, unless built with model_construct or changed since
        value = getattr(opts, f"budget_{scope.replace('-', '_')}_usd")
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"--budget-{scope}", "", f"must be a finite amount of 0 or more (got {value})")

    plan = load_cached(load_fault_plan, opts.faults) if isinstance(opts.faults, str) else opts.faults
    if isinstance(plan, Fault):
        plan = FaultPlan(faults=(plan,))
    opts = validate_backend(opts, suite, plan)  # a missing API key stops here: nothing is written yet
    if opts.approvals:  # a bad decision table stops here too
        load_cached(load_decisions, opts.approvals)
    tiers = backend_tiers(tiers, opts)
    check_inputs(opts, plan, suite, tiers, registry)  # also loads the policy: a bad one stops here
    priced_tiers = priced(tiers, opts)  # an unpriced model is an error, not a zero
    _check_cassettes(opts, suite)
    run_id = run_id_for(suite, tiers_path.read_bytes(), opts, tier, plan)
    return PlannedRun(opts, registry, suite, tiers, tiers_path, tier, plan, run_id, priced_tiers)


def priced(tiers: TierTable, opts: RunOptions) -> TierTable:
    """The tiers with their prices from the run's price table; a model it does not price is an InputError."""
    path = prices_path(opts)  # found by walking up from the tiers file: once
    prices = load_cached(load_prices, path)
    return priced_tiers(
        tiers, prices, str(opts.tiers or "tiers.yaml"), prices_source=str(path), model_option=opts.model
    )


def check_inputs(
    opts: RunOptions, plan: FaultPlan | None, suite: Suite, tiers: TierTable, registry: ToolRegistry
) -> None:
    """Typos that would silently make a run measure something else: a fault target or a policy rule that
    matches nothing the run has (errors), a policy rule for a role the suite does not know (a warning)."""
    tools = [spec.name for spec in registry]
    if plan:
        file = opts.faults if isinstance(opts.faults, str) else f"fault plan {plan.name}"
        check_targets(plan, file, tools, [(name, tiers[name].model) for name in tiers.order], PROVIDERS)
    if opts.policy:
        policy = load_cached(load_policy, opts.policy)
        check_policy(policy, opts.policy, tools, suite.roles, suite.domain.constraint_roles)


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
            path = directory / episode_file(scenario.episode_id(epoch))
            if path.is_file():
                read_cassette(path)
