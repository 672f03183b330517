"""What a run is asked to do: :class:`RunOptions`, one pydantic model that ``agentlab run``'s flags, a sweep's cells,
a chaos case and a notebook all fill in.

Each field's description is its ``agentlab run`` flag's help, and the CLI builds the flags from the fields
(:mod:`agentlab.cli_flags`), so a new option is on the command line by existing. It is kept apart from the runner
(and light: pydantic, the fault plan model, the backend table and the routing policy names) so the CLI and a sweep
worker can read it without importing the agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlab.components.routing import POLICIES
from agentlab.errors import InputError
from agentlab.faults.plan import Fault, FaultPlan
from agentlab.llm import backends
from agentlab.llm.backends import BackendName, Provider
from agentlab.runs.rundir import RUN_MARKER


def _cli(**hints: Any) -> dict[str, Any]:
    """How a field appears on ``agentlab run`` where the generic rule (:mod:`agentlab.cli_flags`) needs a hint:
    ``flag`` (its name, if not ``--field-name``; ``--no-field`` for a field that defaults to True), ``metavar``,
    ``choices``, ``positional``, ``requires`` (another field it only applies with), ``example``."""
    return {"cli": hints}


# The budget scopes beyond a request's: each a RunOptions field budget_<scope>_usd, flag --budget-<scope>.
BUDGET_SCOPES = ("session", "user-day", "user-month")


def _budget(scope: str) -> Any:
    """A budget field: USD, 0 or more, finite; None for no limit."""
    return Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description=f"budget per {scope.replace('-', ' ')}",
        json_schema_extra=_cli(flag=f"--budget-{scope}", metavar="USD"),
    )


class RunOptions(BaseModel):
    """What a run is asked to do. Every field is a flag of ``agentlab run`` (help: its description)."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(
        description="suite YAML, e.g. fixtures/suites/support.yaml", json_schema_extra=_cli(positional=True)
    )
    strategy: Literal["react", "plan"] = Field("react", description="how the agent works: react, or plan first")
    # The model backend, one of the table agentlab.llm.backends.BACKENDS: the in-process simulated model, the real
    # SDKs against the simulated endpoint, replayed cassettes, or a live provider.
    llm: BackendName = Field("sim", description=backends.help_text())
    provider: Provider | None = Field(None, description="replay: whose cassettes (default: the only ones in DIR)")
    cassettes: str | None = Field(
        None, description="replay: DIR holding <provider>/<suite>/<episode>.yaml", json_schema_extra=_cli(metavar="DIR")
    )
    record: str | None = Field(
        None,
        description="record every HTTP exchange into DIR/<provider>/<suite>/<episode>.yaml "
        "(sim-openai|sim-anthropic: from the simulated endpoint; openai|anthropic: live)",
        json_schema_extra=_cli(metavar="DIR"),
    )
    record_mode: Literal["record", "record-missing"] = Field(
        "record",
        description="with --record: re-record everything (default: record), or replay what DIR has and record the rest",
        json_schema_extra=_cli(requires="record"),
    )
    model: str | None = Field(
        None, description="live providers: the model to call, e.g. gpt-4o-mini (every tier calls it)"
    )
    # Live providers: a real model per tier ({"fast": "gpt-4o-mini", ...}), so cascade routing climbs real
    # models; a tier not named here calls ``model``.
    tier_models: dict[str, str] | None = Field(
        None,
        description="live providers: the model a tier calls, e.g. fast=gpt-4o-mini (repeatable; other tiers call "
        "--model)",
        json_schema_extra=_cli(flag="--tier-model", metavar="TIER=MODEL", example="fast=gpt-4o-mini"),
    )
    # SDK backends: the SDK's own max_retries. While it is > 0 the agent does not retry model calls itself.
    sdk_retries: int = Field(  # (0 or more: checked by validate_backend)
        default=2,
        lt=2**63,
        description="SDK backends: the SDK's own retries (default 2); while N > 0 the agent does not retry model calls",
        json_schema_extra=_cli(metavar="N"),
    )
    stream: bool = Field(False, description="SDK backends: streamed (SSE) responses")
    tiers: str | None = Field(None, description="tier profiles YAML (default: the nearest tiers.yaml above the suite)")
    tier: str | None = Field(None, description="model tier to use (default: the tier file's default)")
    seed: int = Field(default=0, ge=-(2**63), lt=2**63, description="the run's seed (every episode's randomness)")
    epochs: int = Field(  # (at least 1: checked by run_suite, as --epochs)
        default=1, lt=2**63, description="runs of each scenario (for pass^k)"
    )
    faults: str | FaultPlan | Fault | None = Field(  # a YAML path, or a plan (or one fault) built in Python
        None,
        description="fault plan YAML, e.g. fixtures/faults/transient-10.yaml",
        json_schema_extra=_cli(metavar="PLAN"),
    )
    resilience: bool = Field(True, description="retries, breakers, fallbacks and idempotency keys")
    # Keep the in-flight episode's world in a file and journal every call, so a resumed run continues
    # that episode mid-way against the world as the kill left it (slower: ~3 ms an episode for the file).
    durable_worlds: bool = Field(
        False,
        description="keep the in-flight episode's world on disk with a journal of every call (resume mid-episode)",
    )
    # Safety: the permission policy (rule matrix YAML; None: tool ACLs only), who answers approvals,
    # whether guardrails screen input, tool output and answers, and whether the gate runs at all
    # (off only to measure what it prevents).
    policy: str | None = Field(
        None,
        description="permission policy (rule matrix) YAML, e.g. fixtures/policies/support.yaml",
        json_schema_extra=_cli(metavar="FILE"),
    )
    approver: Literal["approve", "deny", "never"] = Field(
        "approve", description="how the simulated approver answers ASK decisions (never: the deadline expires)"
    )
    # A person's decisions, YAML (agentlab.components.decisions): requests it covers are answered from it,
    # the rest by ``approver``.
    approvals: str | None = Field(
        None,
        description="a person's decisions (YAML: episode, tool, args_digest, approve|deny); the rest go to --approver",
        json_schema_extra=_cli(metavar="FILE"),
    )
    guardrails: bool = Field(True, description="input/tool-output/output screening")
    gate: bool = Field(
        True, description="the permission gate (without it every call goes through: to measure what it prevents)"
    )
    # Budgets beyond each scenario's per-request budget (USD; None: no limit), on the simulated calendar.
    budget_session_usd: float | None = _budget("session")
    budget_user_day_usd: float | None = _budget("user-day")
    budget_user_month_usd: float | None = _budget("user-month")
    prices: str | None = Field(
        None,
        description="price table YAML (default: the nearest prices.yaml)",
        json_schema_extra=_cli(metavar="FILE"),
    )
    # Cascade routing policy (agentlab.components.routing.POLICIES). None: every call on ``tier``.
    routing: str | None = Field(
        None,
        description="cascade routing policy across model tiers (default: every call on --tier)",
        json_schema_extra=_cli(choices=tuple(POLICIES)),
    )
    out: str | None = Field(None, description="run directory (default: runs/SUITE-STRATEGY-TIER-sSEED)")
    only: list[str] | None = Field(
        None, description="run only this scenario (repeatable)", json_schema_extra=_cli(metavar="SCENARIO")
    )
    progress: bool = Field(
        True, description="the progress bar (drawn on a terminal only)", json_schema_extra=_cli(flag="--quiet")
    )
    force: bool = Field(  # without it, a finished run at ``out`` is never touched
        False, description="replace a finished run at --out (kept without it)"
    )


# Options that cannot change what a run does: where it writes, whether a bar is drawn, where recordings go,
# and whether the in-flight world is kept on disk (a durable run's trace equals an in-memory one's).
NON_SEMANTIC = frozenset({"out", "progress", "record", "cassettes", "durable_worlds", "force"})


# Options naming files: the id hashes their contents instead of their paths.
FILE_OPTIONS = frozenset({"suite", "tiers", "faults", "policy", "prices", "approvals"})


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
