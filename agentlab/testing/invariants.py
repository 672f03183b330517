"""Invariants: what must hold after every run, whatever faults, budgets and permissions it had.

Each invariant is a function of a :class:`RunView` — the run's trace, its audit log and the inputs it
was a function of — returning the :class:`Violation` s it finds (none when it holds). They read the
trace and the world's ledger (in ``episode_graded.effects``), never the agent's own counters, so a
bug in the agent cannot hide itself. They work on the decoded JSONL records rather than a pandas
frame because a chaos search checks thousands of tiny runs, where building a DataFrame per run would
cost more than the run; the figures are the same ones :mod:`agentlab.analysis` computes.

Two more invariants compare runs rather than read one, and live in :mod:`agentlab.testing.harness`:
``deterministic`` (the same case twice gives byte-identical traces) and ``resume_equivalent`` (a run
killed at a generated point and resumed ends with the same ledger as one never interrupted).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from agentlab.agent import DISCLOSURE
from agentlab.components.audit import AuditLog
from agentlab.components.budgets import BudgetLimits
from agentlab.components.policy import Policy, load_policy
from agentlab.runs.grading import repeated_effects, unauthorized_effects
from agentlab.scenarios.model import Scenario
from agentlab.sim.clock import DEFAULT_EPOCH
from agentlab.tools.registry import ToolRegistry

# Every status an episode may end with (agentlab.agent and its planners); anything else is a hang or a bug.
FINAL_STATUSES = frozenset(
    {"completed", "incomplete", "max_turns", "budget_exhausted", "unavailable", "failed", "refused"}
)
# Breaker transitions resilience4j allows. Missing on purpose: closed → half_open, open → closed.
BREAKER_TRANSITIONS = frozenset(
    {("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("half_open", "closed")}
)
# Degradations after which the answer rests on less than it should: it must say what it could not verify.
UNVERIFIED_MODES = frozenset({"fallback_tool", "partial_answer"})
MONEY_EPSILON = 1e-12  # float sums of many small costs


@dataclass(frozen=True)
class Violation:
    invariant: str
    episode_id: str
    detail: str

    def __str__(self) -> str:
        where = f" [{self.episode_id}]" if self.episode_id else ""
        return f"{self.invariant}{where}: {self.detail}"


@dataclass
class RunView:
    """One finished run, as the invariants see it."""

    events: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    scenarios: dict[str, Scenario]
    registry: ToolRegistry
    policy: Policy | None = None
    limits: BudgetLimits = field(default_factory=BudgetLimits)
    max_episode_s: float = 6 * 3600.0
    # The resource a call acts on, by its domain's rules (Domain.resource_of); policy rules match it.
    resource_of: Callable[[dict[str, Any]], str] = field(default=lambda args: "*", repr=False)

    @classmethod
    def load(cls, run_dir: str | Path, registry: ToolRegistry | None = None, **kwargs: Any) -> RunView:
        """Read a run directory written by :func:`~agentlab.runs.runner.run_suite` (finished or not)."""
        from agentlab.runs.inputs import load_cached
        from agentlab.scenarios.loader import load_suite

        run_dir = Path(run_dir)
        config = orjson.loads((run_dir / "run.json").read_bytes())
        trace = run_dir / "events.jsonl"
        if not trace.exists():
            trace = run_dir / "events.jsonl.partial"
        with open(trace, "rb") as fh:
            events = [orjson.loads(line) for line in fh if line.strip()]
        audit = AuditLog(run_dir / "audit.sqlite")
        try:
            rows = audit.rows()
        finally:
            audit.close()
        suite = load_cached(load_suite, config["suite"], registry)
        return cls(
            events=events,
            audit=rows,
            scenarios={s.id: s for s in suite.scenarios},
            registry=registry or suite.domain.tools,
            resource_of=suite.domain.resource_of,
            policy=load_cached(load_policy, config["policy"]) if config.get("policy") else None,
            limits=BudgetLimits(
                session_usd=config.get("budget_session_usd"),
                user_day_usd=config.get("budget_user_day_usd"),
                user_month_usd=config.get("budget_user_month_usd"),
            ),
            **kwargs,
        )

    # Computed once per view (several invariants read them). A view is not changed after it is read; a test
    # that doctors a trace builds a new view (dataclasses.replace) before checking it.
    @cached_property
    def by_episode(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            if event.get("episode_id"):
                out[event["episode_id"]].append(event)
        return out

    @cached_property
    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """The world's side-effect ledger of each episode, as the runner read it from the world."""
        return {e["episode_id"]: e["effects"] for e in self.events if e["kind"] == "episode_graded"}


Invariant = Callable[[RunView], list[Violation]]


def no_duplicate_side_effects(view: RunView) -> list[Violation]:
    """A non-idempotent action (a refund, an email) is applied at most once per distinct arguments."""
    non_idempotent = {s.name for s in view.registry if not s.idempotent}
    out = []
    for episode, effects in view.ledger.items():
        repeats = Counter((e["tool"], e["args"]) for e in repeated_effects(effects, non_idempotent))
        for (tool, args), n in sorted(repeats.items()):
            out.append(Violation("no_duplicate_side_effects", episode, f"{tool} {args} applied {n + 1} times"))
    return out


def budgets_respected(view: RunView) -> list[Violation]:
    """Actual spend, summed from the trace, never exceeds the request, session, user-day or user-month budget."""
    out = []
    spend: dict[tuple[str, str], float] = defaultdict(float)
    for episode, events in view.by_episode.items():
        started = next((e for e in events if e["kind"] == "episode_started"), None)
        if started is None:
            continue
        spent = sum(e.get("cost_usd", 0.0) for e in events if e["kind"] in ("model_call", "tool_call_end"))
        admitted = next((e for e in events if e["kind"] == "request_admitted"), None)
        if admitted is not None and spent > admitted["budget_usd"] + MONEY_EPSILON:
            out.append(
                Violation("budgets_respected", episode, f"request spent ${spent:.6f} of ${admitted['budget_usd']:.6f}")
            )
        # The ledger charges a request to the session, day and month in which it started (agentlab.agent).
        when = DEFAULT_EPOCH + timedelta(seconds=started["t"])
        user = started["user_id"]
        spend[("session", episode)] += spent  # the runner gives each episode its own session
        spend[("user_day", f"{user}:{when:%Y-%m-%d}")] += spent
        spend[("user_month", f"{user}:{when:%Y-%m}")] += spent
    for (scope, key), spent in sorted(spend.items()):
        limit = view.limits.limit(scope)
        if limit is not None and spent > limit + MONEY_EPSILON:
            out.append(Violation("budgets_respected", "", f"{scope} {key} spent ${spent:.6f} of ${limit:.6f}"))
    return out


def executions_authorized_and_audited(view: RunView) -> list[Violation]:
    """Every tool execution was allowed by a permission check (in the trace and in the audit log) and has
    an audit row; and no executed tool or applied effect exceeds what the user may do, judged from the
    scenario's permissions and the policy — independently of what the gate decided."""
    out = []
    audit_checks = {
        (r["episode_id"], r["call_id"], r["tool"])
        for r in view.audit
        if r["kind"] == "permission" and r["decision"] in ("allow", "approved")
    }
    audit_runs = Counter(
        (r["episode_id"], r["call_id"], r["tool"], r["attempt"]) for r in view.audit if r["kind"] == "execution"
    )
    for episode, events in view.by_episode.items():
        started = next((e for e in events if e["kind"] == "episode_started"), None)
        scenario = view.scenarios.get(started["scenario_id"]) if started else None
        allowed: set[tuple[str, str]] = set()
        executions: Counter[tuple[str, str, str, int]] = Counter()
        for e in events:
            kind = e["kind"]
            if (kind == "permission_check" and e["decision"] in ("allow", "approved")) or (
                kind == "approval_decided" and e["outcome"] == "approved"
            ):
                allowed.add((e["call_id"], e["tool"]))
            elif kind == "tool_call_start":
                call, tool = e["call_id"], e["tool"]
                executions[(episode, call, tool, e["attempt"])] += 1
                if (call, tool) not in allowed:
                    out.append(Violation("executions_authorized_and_audited", episode, f"{tool} ran without an allow"))
                elif (episode, call, tool) not in audit_checks:
                    out.append(
                        Violation(
                            "executions_authorized_and_audited", episode, f"{tool}'s permission check is not audited"
                        )
                    )
                if scenario is not None:
                    spec = view.registry.get(tool)
                    missing = sorted(spec.permissions - set(scenario.permissions)) if spec else ["(unknown tool)"]
                    if missing:
                        out.append(
                            Violation(
                                "executions_authorized_and_audited",
                                episode,
                                f"{tool} ran for a user without {', '.join(missing)}",
                            )
                        )
        for key, n in executions.items():
            if audit_runs.get(key, 0) != n:
                out.append(
                    Violation(
                        "executions_authorized_and_audited",
                        episode,
                        f"{key[2]} attempt {key[3]} ran {n}× but has {audit_runs.get(key, 0)} audit execution rows",
                    )
                )
        if scenario is not None:
            for effect, why in unauthorized_effects(
                view.ledger.get(episode, []), scenario, view.registry, view.policy, view.resource_of
            ):
                out.append(
                    Violation(
                        "executions_authorized_and_audited",
                        episode,
                        f"{effect['tool']} {effect['args']} applied: {why}",
                    )
                )
    return out


def breaker_state_machine(view: RunView) -> list[Violation]:
    """Breaker transitions follow closed → open → half_open → (closed | open), each from the state the
    previous one left, and a half-open breaker closes only after a successful probe."""
    out = []
    state: dict[str, str] = defaultdict(lambda: "closed")
    probes_ok: dict[str, int] = defaultdict(int)
    for e in view.events:
        kind = e["kind"]
        if kind == "breaker_transition":
            name, src, dst = e["breaker"], e["from_state"], e["to_state"]
            episode = e.get("episode_id", "")
            if src != state[name]:
                out.append(Violation("breaker_state_machine", episode, f"{name}: {src} → {dst} while {state[name]}"))
            if (src, dst) not in BREAKER_TRANSITIONS:
                out.append(
                    Violation("breaker_state_machine", episode, f"{name}: illegal {src} → {dst} ({e['reason']})")
                )
            elif dst == "closed" and probes_ok[name] == 0:
                out.append(Violation("breaker_state_machine", episode, f"{name}: closed with no successful probe"))
            state[name] = dst
            probes_ok[name] = 0
        elif kind == "tool_call_end" and e["ok"]:
            probes_ok[f"tool:{e['tool']}"] += 1
        elif kind == "model_call" and e["ok"]:
            probes_ok[f"model:{e['tier']}"] += 1
    return out


def episodes_end(view: RunView) -> list[Violation]:
    """Every episode that started ends — a final response with a known status, then its grade — within
    ``max_episode_s`` of simulated time."""
    out = []
    for episode, events in view.by_episode.items():
        started = next((e for e in events if e["kind"] == "episode_started"), None)
        finals = [e for e in events if e["kind"] == "final_response"]
        graded = [e for e in events if e["kind"] == "episode_graded"]
        if started is None:
            continue
        if len(finals) != 1 or len(graded) != 1:
            out.append(Violation("episodes_end", episode, f"{len(finals)} final responses and {len(graded)} grades"))
            continue
        if finals[0]["status"] not in FINAL_STATUSES:
            out.append(Violation("episodes_end", episode, f"unknown final status {finals[0]['status']!r}"))
        if not finals[0]["text"].strip():
            out.append(Violation("episodes_end", episode, "the final answer is empty"))
        took = finals[0]["t"] - started["t"]
        if took > view.max_episode_s:
            out.append(Violation("episodes_end", episode, f"took {took:.0f}s of simulated time"))
    return out


def degraded_answers_disclose(view: RunView) -> list[Violation]:
    """An answer given with less than it should have had (a fallback tool's result, a partial answer)
    says what it could not verify."""
    out = []
    for episode, events in view.by_episode.items():
        final = next((e for e in events if e["kind"] == "final_response"), None)
        if final is None:
            continue
        text = final["text"].lower()
        for e in events:
            if e["kind"] != "degraded" or e["mode"] not in UNVERIFIED_MODES:
                continue
            if e["mode"] == "fallback_tool":
                used = any(
                    x["kind"] == "tool_call_end" and x["ok"] and x.get("degraded_from") == e["target"].split(":", 1)[1]
                    for x in events
                )
                if not used or final["status"] != "completed":
                    continue  # the fallback's answer was not used, or the answer claims nothing
            if DISCLOSURE not in text:
                out.append(
                    Violation(
                        "degraded_answers_disclose",
                        episode,
                        f"{e['mode']} on {e['target']} but the answer does not say what it could not verify",
                    )
                )
                break
    return out


INVARIANTS: dict[str, Invariant] = {
    "no_duplicate_side_effects": no_duplicate_side_effects,
    "budgets_respected": budgets_respected,
    "executions_authorized_and_audited": executions_authorized_and_audited,
    "breaker_state_machine": breaker_state_machine,
    "episodes_end": episodes_end,
    "degraded_answers_disclose": degraded_answers_disclose,
}
# Checked by comparing runs (agentlab.testing.harness), listed here so reports can name them all.
CROSS_RUN_INVARIANTS = ("deterministic", "resume_equivalent")


def check_view(view: RunView, only: Iterable[str] | None = None) -> list[Violation]:
    """Every single-run invariant (or those named in ``only``) over one run."""
    names = list(only) if only is not None else list(INVARIANTS)
    return [v for name in names for v in INVARIANTS[name](view)]


def check_run(run_dir: str | Path, registry: ToolRegistry | None = None) -> list[Violation]:
    """Every single-run invariant over a run directory (``agentlab run ... --check`` prints these)."""
    return check_view(RunView.load(run_dir, registry))
