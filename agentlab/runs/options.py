"""What a run is asked to do: :class:`RunOptions`, one pydantic model that ``agentlab run``'s flags, a sweep's cells,
a chaos case and a notebook all fill in.

It is kept apart from the runner (and light: pydantic and the fault plan model only) so the CLI can build its
flags from the fields and a worker process can unpickle a cell's options without importing the agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlab.errors import InputError
from agentlab.faults.plan import Fault, FaultPlan
from agentlab.llm.backends import BackendName, Provider
from agentlab.runs.rundir import RUN_MARKER


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    strategy: Literal["react", "plan"] = "react"
    # The model backend, one of the table agentlab.llm.backends.BACKENDS: the in-process simulated model, the real
    # SDKs against the simulated endpoint, replayed cassettes, or a live provider.
    llm: BackendName = "sim"
    provider: Provider | None = None  # replay: whose cassettes (default: the only ones)
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
