"""The ``agentlab`` command line.

Bad input never produces a traceback: it is one line, ``agentlab: error: FILE: PLACE: PROBLEM``,
and exit code 2. So is an I/O error (a full or read-only disk: the path and the problem). Ctrl-C is one
line too (for ``agentlab run``, how to ``--resume`` the run), exit code 130.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agentlab.errors import InputError, InputWarning, ReplayMismatch, RunInterrupted, WorkersFailed
from agentlab.llm import backends  # the backends table: no pydantic (agentlab.llm loads lazily)

if TYPE_CHECKING:
    from agentlab.runs.options import RunOptions

# The run options ``agentlab serve`` takes (the rest are about a run directory, recording or batch runs).
SERVE_FIELDS = (
    "suite",
    "strategy",
    "llm",
    "model",
    "tier_models",
    "sdk_retries",
    "tiers",
    "tier",
    "seed",
    "faults",
    "resilience",
    "policy",
    "routing",
    "guardrails",
)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. The flags made from RunOptions (which import pydantic and the option models) are
    added only for ``command`` ``run`` or ``serve`` (or None: every command), so ``agentlab audit`` starts fast."""
    parser = argparse.ArgumentParser(prog="agentlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if command in (None, "run", "serve"):
        from agentlab.cli_flags import add_run_flags

    run = sub.add_parser("run", help="run a scenario suite and write a run directory")
    # Every RunOptions field is a flag (agentlab/cli_flags.py); below, the flags that are not run options.
    if command in (None, "run"):
        add_run_flags(run)
    run.add_argument("--resume", metavar="DIR", help="continue a killed run from its last checkpoint")
    run.add_argument(
        "--check", action="store_true", help="check the chaos invariants over the finished run (exit 1 if one fails)"
    )

    run.add_argument(
        "--otel",
        nargs="?",
        const="http://127.0.0.1:4318",
        metavar="URL",
        help="export OpenTelemetry GenAI spans live, each episode as it ends, to this OTLP/HTTP receiver "
        "(default http://127.0.0.1:4318)",
    )
    run.add_argument(
        "--otel-base-time",
        metavar="ISO|now",
        help="with --otel: the wall time simulated second 0 maps to (default: now)",
    )

    serve = sub.add_parser("serve", help="serve the agent over HTTP (FastAPI): queue, 429s, idempotency, /metrics")
    if command in (None, "serve"):
        add_run_flags(
            serve,
            SERVE_FIELDS,
            overrides={
                "llm": {"choices": tuple(backends.SERVED), "help": backends.help_text(backends.SERVED)},
                "suite": {"nargs": None},
            },
        )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--data", default="runs/serve", metavar="DIR", help="trace, requests, worlds (default runs/serve)"
    )
    serve.add_argument("--workers", type=int, default=4, help="requests run at once (default 4)")
    serve.add_argument("--queue", type=int, default=32, help="requests that may wait; beyond it 429 (default 32)")
    serve.add_argument("--deadline", type=float, default=120.0, metavar="S", help="default per-request deadline")
    serve.add_argument(
        "--rate-limit", type=float, default=5.0, metavar="PER_S", help="requests per second per user (0: none)"
    )
    serve.add_argument("--burst", type=float, default=10.0, help="per-user bucket size (default 10)")
    serve.add_argument("--redis", metavar="URL", help="share rate limits and breaker states in Redis")
    serve.add_argument("--otel", metavar="URL", help="export each request's GenAI spans to this OTLP/HTTP receiver")
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="the agent's clock runs K times faster than the wall (load tests of the simulated model)",
    )

    export = sub.add_parser("export", help="export a run to another tool's format")
    export_sub = export.add_subparsers(dest="format", required=True)
    otel = export_sub.add_parser("otel", help="send a run's OpenTelemetry GenAI spans to an OTLP/HTTP receiver")
    otel.add_argument("run_dir", metavar="RUN_DIR")
    otel.add_argument(
        "--endpoint", default="http://127.0.0.1:4318", help="OTLP/HTTP receiver (default http://127.0.0.1:4318)"
    )
    otel.add_argument(
        "--base-time",
        metavar="ISO|now",
        help="the wall time simulated second 0 maps to (default: the simulated calendar's epoch, "
        "2026-01-01T00:00:00Z, so an export is repeatable)",
    )
    otel.add_argument("--service-name", default="agentlab", help="the spans' service.name (default agentlab)")

    audit = sub.add_parser("audit", help="print or export a run's audit log")
    audit.add_argument("run_dir", metavar="RUN_DIR")
    audit.add_argument("--episode", help="only this episode's rows")
    audit.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")

    report = sub.add_parser("report", help="write a self-contained HTML report from run directories")
    report.add_argument("runs", nargs="+", metavar="RUN_DIR")
    report.add_argument("-o", "--output", required=True, help="HTML file to write, e.g. reports/default.html")
    report.add_argument("--title")

    bench = sub.add_parser("bench", help="measure simulator throughput; prints one JSON line")
    bench.add_argument("--workload", choices=["support-5", "suite", "replay", "sweep", "serve"], default="support-5")
    bench.add_argument("--requests", type=int, default=300, help="serve: requests in the steady phase")
    bench.add_argument("--concurrency", type=int, default=8, help="serve: server workers (and steady clients)")
    bench.add_argument(
        "--time-scale", type=float, default=20.0, help="serve: the served agent's clock runs K times the wall"
    )
    bench.add_argument("--kills", type=int, default=3, help="serve: SIGKILLs of the server mid-request")
    bench.add_argument("--episodes", type=int, default=5000)
    bench.add_argument("--suite", default="fixtures/suites/support.yaml", help="suite for --workload suite")
    bench.add_argument(
        "--fault-rate", type=float, default=0.0, help="support-5: transient faults on this share of calls"
    )
    bench.add_argument(
        "--faults",
        metavar="PLAN",
        help="support-5: a fault plan YAML instead of --fault-rate; serve: the served faults (default transient-10)",
    )
    bench.add_argument(
        "--safety", action="store_true", help="support-5: cascade routing, policy gate with audit log, guardrails"
    )
    bench.add_argument("--cassettes", default="cassettes", metavar="DIR", help="replay: the cassettes root")
    bench.add_argument(
        "--provider",
        choices=backends.PROVIDERS,
        default="openai",
        help="replay: whose SDK",
    )
    bench.add_argument("--calls", type=int, default=3000, help="replay: model calls to make (whole passes)")
    bench.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    bench.add_argument(
        "--vs-floor",
        nargs="?",
        const=5,
        type=int,
        metavar="ROUNDS",
        help="support-5: alternate with its floor (a bare asyncio loop making the same calls) for ROUNDS rounds",
    )
    bench.add_argument(
        "--spec",
        default="fixtures/sweeps/bench-20k.yaml",
        help="sweep: the spec to run in-process, on processes, on Dask",
    )
    bench.add_argument("--workers", type=int, default=2, help="sweep: worker processes (and Dask workers)")
    bench.add_argument("--no-dask", action="store_true", help="sweep: skip the Dask LocalCluster run")

    sweep = sub.add_parser(
        "sweep", help="run a grid of configurations (suites x faults x policies x seeds) and merge the results"
    )
    sweep.add_argument("spec", metavar="SPEC", help="sweep spec YAML, e.g. fixtures/sweeps/reliability.yaml")
    sweep.add_argument("--out", help="sweep directory (default: runs/sweeps/NAME); run again to resume a killed sweep")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: the cores)")
    where.add_argument("--in-process", action="store_true", help="run every cell in this process, one by one")
    where.add_argument(
        "--dask", metavar="ADDR", help="a Dask scheduler (tcp://host:8786), or local:N for a LocalCluster"
    )
    sweep.add_argument("--force", action="store_true", help="replace a sweep directory that holds another spec")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    chaos = sub.add_parser(
        "chaos", help="property-based chaos: generated fault schedules, invariants checked, failures shrunk"
    )
    chaos.add_argument("suite", nargs="?", default="fixtures/suites/support.yaml", help="suite YAML")
    chaos.add_argument("--examples", type=int, default=500, help="generated cases to check")
    chaos.add_argument("--seed", type=int, help="hypothesis's seed (default: a random search)")
    chaos.add_argument("--max-faults", type=int, default=3, help="faults per generated plan")
    chaos.add_argument(
        "--single-run", action="store_true", help="skip the determinism and kill/resume twins (one run a case)"
    )
    chaos.add_argument("--mutant", help="switch one safety mechanism off (agentlab.testing.mutants)")
    chaos.add_argument("--repro-dir", default="runs/chaos-repro", help="where a failing case's fault plan is written")
    chaos.add_argument("--quiet", action="store_true", help="no progress bar")
    chaos.add_argument(
        "--workers", type=int, default=1, metavar="N", help="check cases on N processes (the same result as one)"
    )
    init = sub.add_parser("init", help="scaffold your own domain (tools.py, world.yaml, suite.yaml, policy.yaml)")
    init.add_argument("dir", help="folder to write it into (created if missing)")
    init.add_argument("--force", action="store_true", help="replace scaffold files already there")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """An :class:`InputWarning` is one line, as an error is; any other warning is shown the usual way."""
    if issubclass(category, InputWarning):
        print(f"agentlab: warning: {message}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser(next((w for w in words if not w.startswith("-")), None)).parse_args(words)
    warnings.showwarning = _show_warning
    try:
        if args.command == "run":
            return _run_with_mutant(args)
        if args.command == "init":
            from agentlab.domains.scaffold import init_domain

            for path in init_domain(args.dir, force=args.force):
                print(path)
            print(f"next: agentlab run {Path(args.dir) / 'suite.yaml'} --out runs/{Path(args.dir).name or 'mine'}")
            return 0
        if args.command == "chaos":
            return _chaos(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "audit":
            return _audit(args)
        if args.command == "export":
            return _export(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "report":
            from agentlab.analysis.report import write_report

            print(write_report(args.runs, args.output, title=args.title))
            return 0
        if args.command == "bench":
            from agentlab.bench import main as bench_main

            return bench_main(args)
    except InputError as exc:
        print(f"agentlab: error: {exc}", file=sys.stderr)
        return 2
    except WorkersFailed as exc:  # not 1 (a finding) nor 2 (bad input): the command itself could not finish
        print(
            f"agentlab: error: {args.command}: {exc}; run the same command again (a sweep keeps its finished cells), "
            "or with --workers 1",
            file=sys.stderr,
        )
        return 3
    except RunInterrupted as exc:
        if (Path(str(exc.run_dir)) / "run.json").exists():
            hint = f"the run in {exc.run_dir} is unfinished; continue it with: agentlab run --resume {exc.run_dir}"
        else:
            hint = f"nothing was run; {exc.run_dir} holds no run to resume"
        print(f"agentlab: interrupted: {hint}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("agentlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = None  # type: ignore[assignment]
        return 0
    except ReplayMismatch as exc:  # a replayed run asked for a request its cassettes do not hold
        print(f"agentlab: error: replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # writing a report or an export: a full or read-only disk, a directory as the file
        print(f"agentlab: error: {exc.filename or args.command}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 1


def _otel_module():  # type: ignore[no-untyped-def]
    """agentlab.observe.otel, or one error line if the ``otel`` extra is not installed."""
    try:
        from agentlab.observe import otel
    except ImportError as exc:
        raise InputError(
            "--otel", "", f"needs the otel extra ({exc.name} is missing): pip install 'agentlab[otel]'"
        ) from None
    return otel


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from agentlab.serve.app import serve
        from agentlab.serve.service import AgentService, ServeConfig
    except ImportError as exc:
        problem = f"needs the serve extra ({exc.name} is missing): pip install 'agentlab[serve]'"
        raise InputError("serve", "", problem) from None

    for flag, value, low in (("--workers", args.workers, 1), ("--queue", args.queue, 0), ("--port", args.port, 0)):
        if value < low:
            raise InputError(flag, "", f"must be at least {low}")
    if args.time_scale <= 0 or args.deadline <= 0 or args.rate_limit < 0 or args.burst < 1:
        raise InputError("serve", "", "--time-scale and --deadline must be positive, --rate-limit >= 0, --burst >= 1")
    if args.otel:
        _otel_module().traces_url(args.otel)
    from agentlab.cli_flags import options_from, run_flags

    opts = options_from(args, run_flags(SERVE_FIELDS), progress=False)
    service = AgentService(  # every input is checked here, before the port is opened
        ServeConfig(
            opts=opts,
            data_dir=Path(args.data),
            workers=args.workers,
            queue=args.queue,
            deadline_s=args.deadline,
            user_rate=args.rate_limit or None,
            user_burst=args.burst,
            redis=args.redis,
            otel=args.otel,
            time_scale=args.time_scale,
        )
    )
    print(f"agentlab serve: http://{args.host}:{args.port} ({service.run_id}, data in {args.data})", flush=True)
    serve(service, args.host, args.port, time_scale=args.time_scale)
    return 0


def _export(args: argparse.Namespace) -> int:
    otel = _otel_module()
    result = otel.export_run(
        args.run_dir,
        endpoint=args.endpoint,
        base=otel.parse_base_time(args.base_time, live=False),
        service_name=args.service_name,
    )
    print(orjson.dumps(result).decode())
    return 0


def _audit(args: argparse.Namespace) -> int:
    import pandas as pd

    from agentlab.components.audit import AuditLog

    path = Path(args.run_dir) / "audit.sqlite"
    if not path.exists():
        raise InputError(
            str(args.run_dir), "", "no audit.sqlite (not a run directory, or a run from before audit logs)"
        )
    log = AuditLog(path)
    rows = log.rows(**({"episode_id": args.episode} if args.episode else {}))
    known = {row["episode_id"] for row in log.rows()} if args.episode and not rows else set()
    log.close()
    if args.episode and not rows and args.episode not in known | _traced_episodes(Path(args.run_dir)):
        raise InputError(str(args.run_dir), "--episode", f"no episode {args.episode!r} in this run")
    frame = pd.DataFrame(rows)
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "jsonl":
        for row in rows:
            print(orjson.dumps(row).decode())
    else:
        print(frame.drop(columns=["run_id"], errors="ignore").to_string(index=False) if rows else "(no rows)")
    return 0


def _traced_episodes(run_dir: Path) -> set[str]:
    """The episode ids in a run's trace (finished or not): an episode may have no audit rows at all."""
    for name in ("events.jsonl", "events.jsonl.partial"):
        trace = run_dir / name
        if trace.exists():
            ids = set()
            with open(trace, "rb") as fh:
                for line in fh:
                    if line.startswith(b'{"kind":"episode_started"'):
                        ids.add(str(orjson.loads(line)["episode_id"]))
            return ids
    return set()


def _run_with_mutant(args: argparse.Namespace) -> int:
    """``AGENTLAB_MUTANT=NAME`` replays a mutation test's case with the same safety mechanism switched off."""
    import os

    name = os.environ.get("AGENTLAB_MUTANT")
    if not name:
        return _run(args)
    from agentlab.testing.mutants import mutant

    print(
        f"agentlab: warning: mutant {name!r} is active (a test instrument: a safety mechanism is off)", file=sys.stderr
    )
    with mutant(name, source="AGENTLAB_MUTANT"):
        return _run(args)


def _check(run_dir: object) -> int:
    from agentlab.testing.invariants import INVARIANTS, check_run

    violations = check_run(str(run_dir))
    for violation in violations:
        print(f"invariant violated: {violation}")
    if not violations:
        print(f"invariants hold: {', '.join(INVARIANTS)}")
    return 1 if violations else 0


def _chaos(args: argparse.Namespace) -> int:
    from agentlab.testing.search import search

    if args.examples < 1:
        raise InputError("--examples", "", f"must be at least 1 (got {args.examples})")
    if args.max_faults < 1:
        raise InputError("--max-faults", "", f"must be at least 1 (got {args.max_faults})")
    if args.workers < 1:
        raise InputError("--workers", "", f"must be at least 1 (got {args.workers})")
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.examples, unit="case", desc="chaos")
    try:
        report = search(
            args.suite,
            examples=args.examples,
            seed=args.seed,
            mutant=args.mutant,
            cross_run=not args.single_run,
            max_faults=args.max_faults,
            repro_dir=args.repro_dir,
            progress=(lambda r: bar.update()) if bar is not None else None,
            workers=args.workers,
        )
    finally:
        if bar is not None:
            bar.close()
    if report.failure:
        print(report.failure)
    print(orjson.dumps(report.summary()).decode())
    return 1 if report.failure else 0


def _sweep(args: argparse.Namespace) -> int:
    from agentlab.sweeps import executor_for, run_sweep

    executor = executor_for(workers=args.workers, in_process=args.in_process, dask=args.dask)
    try:
        result = run_sweep(args.spec, out=args.out, executor=executor, force=args.force, progress=not args.quiet)
    except (KeyboardInterrupt, RunInterrupted):
        print(
            "agentlab: interrupted: the sweep is unfinished; run the same command again to continue it "
            "(finished cells are kept)",
            file=sys.stderr,
        )
        return 130
    print(
        f"{result.sweep_dir}: {len(result.frame)} cells ({result.cells_run} run, {result.cells_kept} kept), "
        f"{result.episodes_run} episodes in {result.wall_seconds:.2f}s ({result.episodes_per_second:.0f} episodes/s) "
        f"on {result.executor} x{result.workers} -> {result.sweep_dir / 'results.parquet'}"
    )
    return 0


def run_options(args: argparse.Namespace) -> RunOptions:
    """The :class:`RunOptions` of an ``agentlab run`` command line (parsed by this module's parser): the flags given,
    RunOptions' defaults for the rest; the progress bar only on a terminal."""
    from agentlab.cli_flags import options_from, run_flags

    flags = run_flags()
    fixed = {} if sys.stderr.isatty() else {"progress": False}  # --quiet sets it False on a terminal too
    return options_from(args, flags, **fixed)


def _live_otel(args: argparse.Namespace, opts: RunOptions) -> Any:
    """``--otel URL``: a recorder listener exporting each episode's spans as it ends (None without the flag)."""
    if not args.otel:
        if args.otel_base_time:
            raise InputError("--otel-base-time", "", "only means something with --otel")
        return None
    from agentlab.runs.backends import provider_for

    otel = _otel_module()
    otel.traces_url(args.otel)  # a malformed URL is an error before anything runs
    return otel.LiveExporter(
        endpoint=args.otel,
        base=otel.parse_base_time(args.otel_base_time, live=True),
        provider_name=provider_for(opts) or otel.SIM_PROVIDER,
    )


def _run(args: argparse.Namespace) -> int:
    from agentlab.runs.options import resume_options
    from agentlab.runs.runner import run_suite

    if args.resume:
        ignored = _ignored_by_resume(args)
        if ignored:
            raise InputError(
                "--resume",
                "",
                f"{', '.join(ignored)} cannot be combined with it: a resumed run keeps the options it started with",
            )
    elif not args.suite:
        raise InputError("agentlab run", "SUITE", "a suite file is required (or --resume DIR)")
    opts = resume_options(args.resume) if args.resume else run_options(args)
    live = _live_otel(args, opts)
    try:
        result = run_suite(opts, resume=bool(args.resume), listeners=[live] if live is not None else ())
    finally:
        if live is not None:
            live.close()
    if args.resume:
        print(f"{result.run_dir}: resumed and finished, success {result.summary['success_rate']:.1%}")
        return _check(result.run_dir) if args.check else 0
    s = result.summary
    print(
        f"{result.run_dir}: {s['episodes']} episodes, success {s['success_rate']:.1%}, "
        f"cost ${s['total_cost_usd']:.4f}, {s['sim_seconds']:.0f}s simulated in {s['wall_seconds']:.2f}s"
    )
    print(
        orjson.dumps(
            {k: s[k] for k in ("success_rate", "pass_hat_k", "llm_calls", "tool_calls", "total_cost_usd")}
        ).decode()
    )
    return _check(result.run_dir) if args.check else 0


# What --resume honours besides DIR: --quiet (a resume draws no bar anyway), --check and --otel (spans of the rest);
# the last three are not run options.
_RESUME_OPTIONS = frozenset({"progress"})


def _ignored_by_resume(args: argparse.Namespace) -> list[str]:
    """The options on a ``--resume`` command line that the resume would silently ignore (its run.json decides)."""
    from agentlab.cli_flags import given, run_flags

    return [flag.flag for flag in given(args, run_flags()) if flag.field not in _RESUME_OPTIONS]


if __name__ == "__main__":
    sys.exit(main())
