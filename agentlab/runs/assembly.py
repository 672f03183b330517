"""Build the production agent a run (or ``agentlab serve``) uses, from a suite and its :class:`RunOptions`.

One place wires the model backend, fault injection, prices, budgets, permissions, guardrails, routing and the
resilience layer into an :class:`~agentlab.agent.AgentSystem`, so the served agent is the one the simulator tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlab.agent import AgentSystem
from agentlab.components.approvals import ApprovalQueue, Approver, SimulatedApprover
from agentlab.components.audit import AuditLog
from agentlab.components.budgets import BudgetLedger, BudgetLimits
from agentlab.components.cost import CostController
from agentlab.components.decisions import TableApprover, load_decisions
from agentlab.components.evaluator import Evaluator
from agentlab.components.guardrails import Guardrails
from agentlab.components.memory import MemoryManager
from agentlab.components.permissions import OpenGate, PermissionsGate
from agentlab.components.policy import Policy, load_policy
from agentlab.components.recovery import RecoveryHandler
from agentlab.components.routing import POLICIES
from agentlab.faults.injector import FaultInjector
from agentlab.faults.transports import instrument
from agentlab.llm.backends import API_KEY_ENV, BACKENDS
from agentlab.llm.pricing import load_prices
from agentlab.llm.sim import SimulatedModel
from agentlab.llm.tiers import TierTable
from agentlab.llm.types import ModelClient
from agentlab.resilience.store import StateStore
from agentlab.runs.episodes import Simulation
from agentlab.runs.inputs import load_cached
from agentlab.runs.options import RunOptions
from agentlab.runs.planning import PlannedRun, prices_path
from agentlab.scenarios.model import Suite
from agentlab.sim.clock import Clock
from agentlab.sim.rng import RngTree
from agentlab.tools.registry import ToolRegistry
from agentlab.trace.recorder import EpisodeTrace, Recorder
from agentlab.world.store import build_template


def build_model(suite: Suite, tiers: TierTable, rng: RngTree, registry: ToolRegistry) -> ModelClient:
    safe = [s.name for s in registry if not s.side_effects]
    return SimulatedModel(
        tiers,
        suite.scenarios,
        rng,
        safe_tools=safe,
        mistake_args=suite.domain.wrong_call_args,
        made_up=suite.domain.made_up,
    )


def approver_for(opts: RunOptions) -> Approver:
    """The simulated approver, answering from the run's decision table first when it has one."""
    fallback = SimulatedApprover(opts.approver)
    if not opts.approvals:
        return fallback
    return TableApprover(load_cached(load_decisions, opts.approvals), fallback)


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
    planned: PlannedRun,
    recorder: Recorder,
    memory: MemoryManager,
    audit_path: Path,
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
    suite, tiers, opts, registry, plan = planned.suite, planned.tiers, planned.opts, planned.registry, planned.faults
    injector = FaultInjector(plan, opts.seed) if plan else None
    model = build_model(suite, tiers, rng, registry)
    stack = None
    if BACKENDS[opts.llm].sdk:  # the real provider SDK over agentlab's transports (imported only now: it is heavy)
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
            api_key=os.environ.get(API_KEY_ENV[opts.llm]) if BACKENDS[opts.llm].live else None,
        )
        model = stack.model
    model, sandbox = instrument(model, injector, recorder, clock, corruptions=suite.domain.corruptions)
    # One retry layer per model call: while the SDK retries, the agent does not (components/recovery.py).
    retry_model_calls = stack is None or opts.sdk_retries == 0
    policy = load_cached(load_policy, opts.policy) if opts.policy else None
    prices = load_cached(load_prices, prices_path(opts))
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
        tiers=planned.priced,
        recorder=recorder,
        tier=planned.tier,
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


def simulation_for(
    planned: PlannedRun, parts: AgentParts, rng: RngTree, clock: Clock, *, world_path: Path | None = None
) -> Simulation:
    """What the episodes of a run (or of ``agentlab serve``) share around the agent :func:`assemble_agent` built.

    ``world_path``: where the in-flight episode's world lives, so a kill cannot lose it (``--durable-worlds``).
    """
    registry = planned.registry
    return Simulation(
        suite=planned.suite,
        agent=parts.agent,
        registry=registry,
        template=build_template(planned.suite.world),
        rng=rng,
        clock=clock,
        strategy=planned.opts.strategy,
        tier=planned.tier,
        injector=parts.injector,
        non_idempotent=frozenset(s.name for s in registry if not s.idempotent),
        expected={},
        world_path=world_path,
        policy=parts.policy,
    )
