"""Fault plans: which calls fail, how, and when — as data (YAML) or composed in Python.

A plan is a list of faults. Each fault names its **target** (tool-name or model-tier glob
patterns), its **kind**, and a **schedule**: a rate, a window of simulated time, every Nth call, a
burst — all optional, all of them required to hold (AND). Two faults in a plan are alternatives
(OR): the first whose schedule holds is injected.

The Python API composes the way tenacity's strategies do::

    from agentlab.faults import error, rate_limit, tools, models, rate, window

    plan = (
        error().on(tools("*")).when(rate(0.10))
        | rate_limit(retry_after_s=20).on(models("fast")).when(window(30, 90) & rate(0.5))
    )

and is the same object the YAML loader produces (``fixtures/faults/*.yaml``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentlab.errors import InputError

ToolFaultKind = Literal["timeout", "error", "latency", "malformed", "partial", "wrong_result", "timeout_after_commit"]
ModelFaultKind = Literal[
    "timeout", "error", "latency", "malformed", "rate_limit", "overloaded", "server_error", "connection_reset"
]
TOOL_KINDS = frozenset(ToolFaultKind.__args__)  # type: ignore[attr-defined]
MODEL_KINDS = frozenset(ModelFaultKind.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Glob patterns over tool names and model tiers (``*`` matches everything)."""

    tools: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def matches_tool(self, name: str) -> bool:
        return any(fnmatchcase(name, p) for p in self.tools)

    def matches_model(self, tier: str, model: str = "") -> bool:
        return any(fnmatchcase(tier, p) or (model and fnmatchcase(model, p)) for p in self.models)


class Window(_Strict):
    start_s: float = Field(ge=0)
    end_s: float

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class Burst(_Strict):
    """The first ``count`` matching calls at or after ``start_s``."""

    start_s: float = Field(ge=0)
    count: int = Field(gt=0)


class Params(_Strict):
    latency_s: float = Field(default=5.0, ge=0, description="added delay (latency) or time to hang (timeout)")
    status: int = Field(default=503, ge=400, le=599, description="HTTP status for error/server_error")
    retry_after_s: float | None = Field(default=None, ge=0, description="rate_limit: the server's Retry-After")
    message: str | None = None


class Schedule(_Strict):
    """When a fault applies. Combine with ``&``; every condition given must hold."""

    rate: float = Field(default=1.0, ge=0, le=1)
    window: Window | None = None
    every_nth: int | None = Field(default=None, gt=0)
    burst: Burst | None = None

    def __and__(self, other: Schedule) -> Schedule:
        merged = self.model_dump(exclude_defaults=True)
        for key, value in other.model_dump(exclude_defaults=True).items():
            if key in merged:
                raise ValueError(f"schedule already has a {key!r} condition")
            merged[key] = value
        return Schedule.model_validate(merged)


class Fault(_Strict):
    id: str | None = None
    kind: str
    target: Target = Target()
    rate: float = Field(default=1.0, ge=0, le=1)
    window: Window | None = None
    every_nth: int | None = Field(default=None, gt=0)
    burst: Burst | None = None
    # "run": windows and counters use the run's clock and all its calls; "episode": each episode's own
    # clock (from its start) and its own calls, so one episode replays alone (``--only``) exactly.
    scope: Literal["run", "episode"] = "run"
    params: Params = Params()

    @model_validator(mode="after")
    def _kind_fits_target(self) -> Fault:
        if not self.target.tools and not self.target.models:
            raise ValueError("target needs tools or models patterns")
        if self.target.tools and self.kind not in TOOL_KINDS:
            raise ValueError(f"{self.kind!r} is not a tool fault (tool faults: {', '.join(sorted(TOOL_KINDS))})")
        if self.target.models and self.kind not in MODEL_KINDS:
            raise ValueError(f"{self.kind!r} is not a model fault (model faults: {', '.join(sorted(MODEL_KINDS))})")
        return self

    # --- the fluent Python API -------------------------------------------------------------------

    def _with(self, **update: object) -> Fault:
        # Revalidate (model_copy would not): partial().on(models("x")) must fail here, not later.
        return Fault.model_validate({**self.model_dump(), **update})

    def on(self, target: Target) -> Fault:
        return self._with(target=target.model_dump())

    def when(self, schedule: Schedule) -> Fault:
        return self._with(**schedule.model_dump(exclude_defaults=True))

    def per_episode(self) -> Fault:
        return self._with(scope="episode")

    def named(self, fault_id: str) -> Fault:
        return self._with(id=fault_id)

    def __or__(self, other: Fault | FaultPlan) -> FaultPlan:
        return FaultPlan(faults=(self,)) | other

    @property
    def label(self) -> str:
        return self.id or f"{self.kind}@{','.join(self.target.tools + self.target.models)}"


class FaultPlan(_Strict):
    name: str = "faults"
    description: str = ""
    faults: tuple[Fault, ...] = ()

    def __or__(self, other: Fault | FaultPlan) -> FaultPlan:
        extra = other.faults if isinstance(other, FaultPlan) else (other,)
        return self.model_copy(update={"faults": self.faults + extra})

    def __bool__(self) -> bool:
        return bool(self.faults)


# --- constructors: kinds, targets, schedules -------------------------------------------------------


def _fault(kind: str, **params: object) -> Fault:
    # A provisional target keeps validation happy until .on() sets the real one.
    target = Target(tools=("*",)) if kind in TOOL_KINDS else Target(models=("*",))
    clean = {k: v for k, v in params.items() if v is not None}
    return Fault(kind=kind, target=target, params=Params(**clean))  # type: ignore[arg-type]


def timeout(after_s: float = 3600.0) -> Fault:
    """The call hangs (``after_s``) until the caller's timeout gives up; nothing happens."""
    return _fault("timeout", latency_s=after_s)


def error(status: int = 503, message: str | None = None) -> Fault:
    """The call fails at once (a 5xx from the tool's upstream or the provider); nothing happens."""
    return _fault("error", status=status, message=message)


def latency(seconds: float) -> Fault:
    return _fault("latency", latency_s=seconds)


def malformed() -> Fault:
    return _fault("malformed")


def partial() -> Fault:
    return _fault("partial")


def wrong_result() -> Fault:
    return _fault("wrong_result")


def timeout_after_commit(after_s: float = 3600.0) -> Fault:
    """The side effect happens, then the response is lost: the caller sees a timeout."""
    return _fault("timeout_after_commit", latency_s=after_s)


def rate_limit(retry_after_s: float | None = None) -> Fault:
    return _fault("rate_limit", status=429, retry_after_s=retry_after_s)


def overloaded() -> Fault:
    return _fault("overloaded", status=529)


def server_error(status: int = 500) -> Fault:
    return _fault("server_error", status=status)


def connection_reset() -> Fault:
    return _fault("connection_reset")


def tools(*patterns: str) -> Target:
    return Target(tools=patterns or ("*",))


def models(*patterns: str) -> Target:
    return Target(models=patterns or ("*",))


def rate(p: float) -> Schedule:
    return Schedule(rate=p)


def window(start_s: float, end_s: float) -> Schedule:
    return Schedule(window=Window(start_s=start_s, end_s=end_s))


def every_nth(n: int) -> Schedule:
    return Schedule(every_nth=n)


def burst(start_s: float, count: int) -> Schedule:
    return Schedule(burst=Burst(start_s=start_s, count=count))


def load_fault_plan(path: str | Path) -> FaultPlan:
    from agentlab.scenarios.loader import read_yaml, validate_as

    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a fault plan must be a mapping with 'faults'")
    raw.setdefault("name", path.stem)
    return validate_as(FaultPlan, raw, str(path))
