"""``agentlab bench``: simulator throughput, measured (never asserted in a test).

Workload ``support-5`` is fixed so figures compare across frameworks: one episode is the user
message "Check order ORD-<i> and refund it if shipped"; a scripted model answers with five
sequential tool calls, one per turn (look the order up, check stock, refund, email, log a note:
:mod:`agentlab.domains.support.bench5`) and a final text answer on the sixth turn. Tools return at once. Everything runs
through the full :class:`~agentlab.agent.AgentSystem`: all eight components active, trace written
to a JSONL file, faults off.

``--fault-rate P`` (or ``--faults PLAN``) adds transient faults on every tool and model call, with the
whole resilience layer on: the issue-4 workload. With faults on, each request arrives one simulated
second after the previous one, so breaker cool-downs elapse between requests as they would in
production. Workload ``suite`` runs a scenario suite with the simulated model, repeated to ``--episodes``.
Workload ``replay`` measures model calls per second through the real provider SDK replaying the
suite's cassettes (``--cassettes DIR --provider openai|anthropic``, ``--calls N``; see
:mod:`agentlab.bench_replay`). Workload ``sweep`` runs a sweep spec in-process, on ``--workers``
processes and on a Dask LocalCluster, and compares their throughput and their results
(:mod:`agentlab.bench_sweep`).

``--vs-floor [ROUNDS]`` sets support-5 against its floor (:func:`run_floor`): a bare asyncio loop making the
same episodes' calls with no agent around them, each model call and each tool call one turn of the loop, as a
call that does I/O takes at least (the scripted decisions and the same tool functions; no trace, gate, budget or
memory). The floor and the workload alternate in one process for ROUNDS rounds (default 5); the JSON line carries
the median rate of each and their ratio, the agent's overhead as a multiple of the floor (on a loaded machine
the two suffer the same load, so the ratio is steadier than either rate). It also carries ``calls_only_ratio``,
against the same calls made without a single loop turn: a stricter bound no asyncio program doing I/O can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from agentlab.agent import AgentSystem
from agentlab.components.audit import AuditLog
from agentlab.components.guardrails import Guardrails
from agentlab.components.memory import MemoryManager
from agentlab.components.messages import AgentRequest
from agentlab.components.permissions import PermissionsGate
from agentlab.components.recovery import RecoveryHandler
from agentlab.components.routing import Cascade
from agentlab.domains import support
from agentlab.domains.support.bench5 import BENCH_POLICY, BENCH_USER, ScriptedModel, answer, bench_tools, script
from agentlab.errors import InputError
from agentlab.faults.injector import FaultInjector
from agentlab.faults.plan import FaultPlan, load_fault_plan
from agentlab.faults.presets import transient
from agentlab.faults.transports import instrument
from agentlab.llm.tiers import LatencyProfile, TierProfile, TierTable
from agentlab.sim.clock import Clock
from agentlab.sim.loop import VirtualTimeLoop
from agentlab.trace.recorder import Recorder

BENCH_TIERS = TierTable(
    default="bench",
    tiers={
        "bench": TierProfile(
            model="scripted",
            input_per_1k=0.00015,
            output_per_1k=0.0006,
            latency=LatencyProfile(median_s=0.001, p95_s=0.001),
            p_correct=1.0,
        )
    },
)


def _timed(main: Coroutine[Any, Any, None], *closers: Callable[[], None]) -> float:
    """Wall seconds to run ``main`` on a fresh virtual-time loop and then call ``closers`` (their work is measured)."""
    loop = VirtualTimeLoop()
    started = time.perf_counter()
    try:
        loop.run_until_complete(main)
    finally:
        loop.close()
        for close in closers:
            close()
    return time.perf_counter() - started


def run_support5(
    episodes: int, trace_path: Path, plan: FaultPlan | None = None, *, safety: bool = False
) -> dict[str, Any]:
    """``safety``: the issue-5 configuration — cascade routing, the policy gate with its audit log, and
    guardrails on input, tool output and answers — on top of the full agent."""
    recorder = Recorder("bench-support-5", trace_path)
    clock = Clock()
    injector = FaultInjector(plan, seed=0) if plan else None
    model, sandbox = instrument(ScriptedModel(), injector, recorder, clock)
    extra: dict[str, Any] = {}
    audit = None
    if safety:
        audit = AuditLog(trace_path.parent / "audit.sqlite", run_id="bench-support-5")
        extra = {
            "gate": PermissionsGate(
                bench_tools,
                policy=BENCH_POLICY,
                constraints=support.CONSTRAINTS,
                resources=support.resource_of,
                audit=audit,
            ),
            "guardrails": Guardrails(),
            "routing": Cascade(),
        }
    agent = AgentSystem(
        model=model,
        registry=bench_tools,
        tiers=BENCH_TIERS,
        recorder=recorder,
        memory=MemoryManager(":memory:"),
        sandbox=sandbox,
        recovery=RecoveryHandler.resilient(),
        clock=clock,
        system_prompt=support.SYSTEM_PROMPT,
        **extra,
    )
    statuses: dict[str, int] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for i in range(episodes):
            order = f"ORD-{i}"
            request = AgentRequest(
                user=BENCH_USER,
                text=f"Check order {order} and refund it if shipped",
                session_id=f"s{i}",
                tags={"order_id": order},
            )
            if injector is not None:
                # A request arrives one simulated second after the previous one: breaker cool-downs
                # and rate windows need time to pass between requests, as they do in production.
                await asyncio.sleep(1.0)
                injector.start_episode(f"e{i}", loop.time())
            response = await agent.handle(request, episode_id=f"e{i}")
            if injector is not None:
                injector.end_episode(f"e{i}")
            elif response.status != "completed":
                raise RuntimeError(f"support-5 episode {i} ended {response.status}: {response.text}")
            statuses[response.status] = statuses.get(response.status, 0) + 1

    # The last batch of trace lines and audit rows is part of the work measured.
    elapsed = _timed(main(), recorder.close, *([audit.close] if audit is not None else []))
    events = sum(1 for _ in trace_path.open("rb"))
    return {
        "workload": "support-5",
        "faults": plan.name if plan else None,
        "safety": safety,
        "episodes": episodes,
        "completed": statuses.get("completed", 0),
        "episodes_per_s": round(episodes / elapsed, 1),
        "tool_calls_per_s": round(episodes * 5 / elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
        "events_per_episode": round(events / episodes, 1),
        "wall_seconds": round(elapsed, 3),
    }


def run_floor(
    episodes: int, *, arrivals: bool = False, turns: bool = True, calls: list[Any] | None = None
) -> dict[str, Any]:
    """The floor under support-5: each episode's six model calls and five tool calls, made by a bare asyncio loop.

    The same tool functions with the same arguments (the scripted model's decisions as a plain list,
    :func:`~agentlab.domains.support.bench5.script`) and the same final answer, on the same virtual-time
    loop, with no agent machinery: no trace, gate, budget or memory. With ``turns`` (the default), each model
    call and each tool call yields to the loop once (``asyncio.sleep(0)``): the least a call that does I/O
    costs an asyncio program, and what a real model or tool call would cost the agent too (the simulated ones
    answer without suspending). ``turns=False`` makes the calls without a loop turn: a bound below any real
    program. ``arrivals``: each episode starts one simulated second after the previous one, as support-5's do
    with faults on (a timer per episode is loop work, not agent work). ``calls``, if given, collects
    ``(tool, args, result)`` and the answers, in order (for the test that holds the floor to the workload's calls).
    """
    fns = {spec.name: spec.fn for spec in bench_tools}
    answers = 0
    sleep = asyncio.sleep

    async def main() -> None:
        nonlocal answers
        for i in range(episodes):
            order = f"ORD-{i}"
            if arrivals:
                await sleep(1.0)
            for name, args in script(order):
                if turns:
                    await sleep(0)  # the model call that chose this tool
                result = await fns[name](None, **args)
                if turns:
                    await sleep(0)  # the tool call's own turn
                if calls is not None:
                    calls.append((name, args, result))
            if turns:
                await sleep(0)  # the model call that answers
            text = answer(order)
            if calls is not None:
                calls.append(text)
            answers += 1

    elapsed = _timed(main())
    return {
        "workload": "floor" if turns else "floor-calls-only",
        "episodes": episodes,
        "completed": answers,
        "episodes_per_s": round(episodes / elapsed, 1),
        "wall_seconds": round(elapsed, 3),
    }


# Each floor runs this many times the workload's episodes in a round, so that its round lasts about as long as
# the agent's: one scheduler hiccup on a loaded machine can double a round of a few milliseconds (measured: the
# calls-only floor's rate varied 3x between rounds at 3,000 episodes).
FLOOR_SCALE = 5
CALLS_ONLY_SCALE = 20


def run_vs_floor(
    episodes: int, rounds: int, work_dir: Path, plan: FaultPlan | None = None, *, safety: bool = False
) -> dict[str, Any]:
    """support-5 and its floors, alternating for ``rounds`` rounds in this process (which goes first alternates
    too); the median rate of each, and ``ratio`` (``calls_only_ratio``), how many times slower the agent is than
    the floor (than the calls-only floor)."""
    rates: dict[str, list[float]] = {"agent": [], "floor": [], "calls_only": []}
    last: dict[str, Any] = {}
    order = ("floor", "calls_only", "agent")
    for r in range(rounds):
        for which in order if r % 2 == 0 else order[::-1]:
            if which == "agent":
                run_dir = work_dir / f"round-{r}"  # a fresh trace and audit log per round (the recorder appends)
                run_dir.mkdir(parents=True)
                result = last = run_support5(episodes, run_dir / "events.jsonl", plan, safety=safety)
            elif which == "floor":
                result = run_floor(episodes * FLOOR_SCALE, arrivals=plan is not None)
            else:
                result = run_floor(episodes * CALLS_ONLY_SCALE, arrivals=plan is not None, turns=False)
            rates[which].append(result["episodes_per_s"])
    rate, floor_rate, calls_only = (statistics.median(rates[k]) for k in ("agent", "floor", "calls_only"))
    return {
        **{k: last[k] for k in ("workload", "faults", "safety", "episodes", "completed", "events_per_episode")},
        "rounds": rounds,
        "floor_episodes": episodes * FLOOR_SCALE,
        "episodes_per_s": rate,
        "floor_episodes_per_s": floor_rate,
        "ratio": round(floor_rate / rate, 2),
        "calls_only_floor_episodes_per_s": calls_only,
        "calls_only_ratio": round(calls_only / rate, 2),
        "episodes_per_s_rounds": rates["agent"],
        "floor_episodes_per_s_rounds": rates["floor"],
        "calls_only_floor_episodes_per_s_rounds": rates["calls_only"],
    }


def run_suite_bench(suite: str, episodes: int, out: Path) -> dict[str, Any]:
    from agentlab.runs.options import RunOptions
    from agentlab.runs.runner import run_suite
    from agentlab.scenarios.loader import load_suite

    n = len(load_suite(suite).scenarios)
    epochs = max(1, round(episodes / n))
    started = time.perf_counter()
    result = run_suite(RunOptions(suite=suite, epochs=epochs, out=str(out), progress=False))
    elapsed = time.perf_counter() - started
    s = result.summary
    events = sum(1 for _ in (out / "events.jsonl").open("rb"))
    return {
        "workload": "suite",
        "episodes": s["episodes"],
        "episodes_per_s": round(s["episodes"] / elapsed, 1),
        "tool_calls_per_s": round(s["tool_calls"] / elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
        "sim_seconds": s["sim_seconds"],
        "wall_seconds": round(elapsed, 3),
    }


def main(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise InputError("--episodes", "", f"must be at least 1 (got {args.episodes})")
    if args.calls < 1:
        raise InputError("--calls", "", f"must be at least 1 (got {args.calls})")
    if not 0.0 <= args.fault_rate <= 1.0:  # also refuses NaN
        raise InputError("--fault-rate", "", f"must be a share of calls from 0 to 1 (got {args.fault_rate})")
    vs_floor = args.vs_floor
    if vs_floor is not None and (vs_floor < 1 or args.workload != "support-5"):
        raise InputError("--vs-floor", "", f"takes 1 or more rounds of workload support-5 (got {vs_floor})")
    if args.workload == "replay":  # the SDK stack replaying cassettes: see agentlab/bench_replay.py
        from agentlab.bench_replay import main_replay
        from agentlab.scenarios.loader import load_suite

        suite = load_suite(args.suite).name
        print(orjson.dumps(main_replay(args.cassettes, args.provider, suite, args.calls, args.profile)).decode())
        return 0
    if args.workload == "serve":  # agentlab serve under load on loopback: see agentlab/bench_serve.py
        from agentlab.bench_serve import main_serve

        figures = main_serve(
            args.suite,
            requests=args.requests,
            workers=args.concurrency,
            time_scale=args.time_scale,
            faults=args.faults or "fixtures/faults/transient-10.yaml",
            kills=args.kills,
        )
        print(orjson.dumps(figures).decode())
        return 0
    if args.workload == "sweep":  # one spec in-process, on a process pool and on Dask: see agentlab/bench_sweep.py
        from agentlab.bench_sweep import main_sweep

        print(orjson.dumps(main_sweep(args.spec, args.workers, dask=not args.no_dask)).decode())
        return 0
    with tempfile.TemporaryDirectory(prefix="agentlab-bench-") as tmp:

        def work() -> dict[str, Any]:
            if args.workload == "support-5":
                plan = None
                if args.faults:
                    plan = load_fault_plan(args.faults)
                elif args.fault_rate:
                    plan = transient(args.fault_rate)
                if vs_floor is not None:
                    return run_vs_floor(args.episodes, vs_floor, Path(tmp), plan, safety=args.safety)
                return run_support5(args.episodes, Path(tmp) / "events.jsonl", plan, safety=args.safety)
            return run_suite_bench(args.suite, args.episodes, Path(tmp) / "run")

        if args.profile:
            profiler = cProfile.Profile()
            result = profiler.runcall(work)
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
            print(stream.getvalue())
        else:
            result = work()
    print(orjson.dumps(result).decode())
    return 0
