"""Fault plans: which calls fail, how, and when — as data (YAML) or composed in Python.

A plan is a list of faults. Each fault names its **target** (tool-name, model-tier or provider glob
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

Three layers, three targets: ``tools`` faults enter below the Execution Sandbox, ``models`` faults
wrap the model client (agentlab's typed errors, no HTTP), and ``providers`` faults (``openai``,
``anthropic``) enter at the HTTP layer below a provider SDK — real status codes, headers and
bodies, so the SDK's own retries and back-off run (:mod:`agentlab.faults.http`)::

    http_429(retry_after_s=20).on(providers("openai")).when(burst(0, 2))
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentlab.errors import InputError

ToolFaultKind = Literal["timeout", "error", "latency", "malformed", "partial", "wrong_result", "timeout_after_commit"]
ModelFaultKind = Literal[
    "timeout", "error", "latency", "malformed", "rate_limit", "overloaded", "server_error", "connection_reset"
]
# HTTP-layer faults under a provider SDK: status codes with the provider's error body and headers,
# or a broken connection/response.
ProviderFaultKind = Literal[
    "http_429", "http_5xx", "http_529", "reset", "read_timeout", "slow_first_byte", "truncated_body"
]
TOOL_KINDS = frozenset(ToolFaultKind.__args__)  # type: ignore[attr-defined]
MODEL_KINDS = frozenset(ModelFaultKind.__args__)  # type: ignore[attr-defined]
PROVIDER_KINDS = frozenset(ProviderFaultKind.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Glob patterns over tool names, model tiers, and providers (``*`` matches everything).

    ``providers`` patterns match the provider (``openai``, ``anthropic``) or the model named in the
    request body, as ``models`` patterns match the tier or its model.
    """

    tools: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()

    def matches_tool(self, name: str) -> bool:
        return any(fnmatchcase(name, p) for p in self.tools)

    def matches_model(self, tier: str, model: str = "") -> bool:
        return any(fnmatchcase(tier, p) or (model and fnmatchcase(model, p)) for p in self.models)

    def matches_provider(self, provider: str, model: str = "") -> bool:
        return any(fnmatchcase(provider, p) or (model and fnmatchcase(model, p)) for p in self.providers)


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
    # HTTP faults only: a ``retry-after-ms`` header, and the non-standard ``x-should-retry`` the SDKs obey.
    retry_after_ms: float | None = Field(default=None, ge=0, description="http_*: a retry-after-ms header")
    should_retry: bool | None = Field(default=None, description="http_*: an x-should-retry: true|false header")
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
        target = self.target
        if not target.tools and not target.models and not target.providers:
            raise ValueError("target needs tools or models patterns (or providers, for HTTP faults)")
        if target.tools and self.kind not in TOOL_KINDS:
            raise ValueError(f"{self.kind!r} is not a tool fault (tool faults: {', '.join(sorted(TOOL_KINDS))})")
        if target.models and self.kind not in MODEL_KINDS:
            raise ValueError(f"{self.kind!r} is not a model fault (model faults: {', '.join(sorted(MODEL_KINDS))})")
        if target.providers and self.kind not in PROVIDER_KINDS:
            raise ValueError(
                f"{self.kind!r} is not a provider fault (provider faults: {', '.join(sorted(PROVIDER_KINDS))})"
            )
        if self.kind == "http_5xx" and not 500 <= self.params.status <= 599:
            raise ValueError(f"http_5xx needs params.status between 500 and 599, not {self.params.status}")
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
        return self.id or f"{self.kind}@{','.join(self.target.tools + self.target.models + self.target.providers)}"

    @property
    def http_status(self) -> int | None:
        """The HTTP status this fault answers with, if it answers with one."""
        if self.kind in ("error", "server_error", "http_5xx"):
            return self.params.status
        return {"rate_limit": 429, "http_429": 429, "overloaded": 529, "http_529": 529}.get(self.kind)

    # --- display: a fault is read far more often than it is written ---------------------------------

    def _describe(self) -> dict[str, str]:
        """The fault as four short strings (target, kind, schedule, parameters), for tables and reprs."""
        t = self.target
        target = "; ".join(
            f"{layer} {', '.join(patterns)}"
            for layer, patterns in (("tools", t.tools), ("models", t.models), ("providers", t.providers))
            if patterns
        )
        when = []
        if self.rate < 1:
            when.append(f"{self.rate * 100:g} % of calls")
        if self.window is not None:
            when.append(f"{self.window.start_s:g} s ≤ t < {self.window.end_s:g} s")
        if self.every_nth is not None:
            when.append("every call" if self.every_nth == 1 else f"every {_ordinal(self.every_nth)} call")
        if self.burst is not None:
            when.append(f"first {self.burst.count} calls from t = {self.burst.start_s:g} s")
        schedule = " and ".join(when) or "every call"
        if self.scope == "episode":
            schedule += " (per episode)"
        p = self.params
        shown = []
        if self.http_status is not None:
            shown.append(f"status {self.http_status}")
        if self.kind == "read_timeout":
            shown.append(f"no answer: the client's read timeout (else {p.latency_s:g} s)")
        elif self.kind in _HANG_KINDS:
            shown.append(f"hangs {p.latency_s:g} s")
        elif self.kind in _DELAY_KINDS:
            shown.append(f"delay {p.latency_s:g} s")
        if p.retry_after_s is not None:
            shown.append(f"retry-after {p.retry_after_s:g} s")
        if p.retry_after_ms is not None:
            shown.append(f"retry-after-ms {p.retry_after_ms:g}")
        if p.should_retry is not None:
            shown.append(f"x-should-retry {str(p.should_retry).lower()}")
        if p.message:
            shown.append(f"message {p.message!r}")
        return {"target": target, "kind": self.kind, "schedule": schedule, "parameters": ", ".join(shown) or "—"}

    def _repr_html_(self) -> str:
        return _faults_table([self], caption=None)


class FaultPlan(_Strict):
    name: str = "faults"
    description: str = ""
    faults: tuple[Fault, ...] = ()

    def __or__(self, other: Fault | FaultPlan) -> FaultPlan:
        extra = other.faults if isinstance(other, FaultPlan) else (other,)
        return self.model_copy(update={"faults": self.faults + extra})

    def __bool__(self) -> bool:
        return bool(self.faults)

    def _repr_html_(self) -> str:
        """A compact table in Jupyter: one row per fault; the first whose schedule holds is injected."""
        count = f"{len(self.faults)} fault{'s' if len(self.faults) != 1 else ''}"
        caption = f"<b>{html.escape(self.name)}</b>: {html.escape(self.description or count)}"
        if self.description:
            caption += f" ({count})"
        return _faults_table(list(self.faults), caption=caption)


_HANG_KINDS = frozenset({"timeout", "timeout_after_commit"})
_DELAY_KINDS = frozenset({"latency", "slow_first_byte"})


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _faults_table(faults: list[Fault], caption: str | None) -> str:
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("id", "target", "kind", "schedule", "parameters"))
    rows = []
    for fault in faults:
        d = fault._describe()
        cells = [fault.id or "", d["target"], d["kind"], d["schedule"], d["parameters"]]
        rows.append("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        rows.append("<tr><td colspan='5'>no faults: every call succeeds</td></tr>")
    top = f"<caption style='text-align:left'>{caption}</caption>" if caption else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --- constructors: kinds, targets, schedules -------------------------------------------------------


def _fault(kind: str, **params: object) -> Fault:
    # A provisional target keeps validation happy until .on() sets the real one.
    if kind in TOOL_KINDS:
        target = Target(tools=("*",))
    elif kind in MODEL_KINDS:
        target = Target(models=("*",))
    else:
        target = Target(providers=("*",))
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


def http_429(
    retry_after_s: float | None = None, *, retry_after_ms: float | None = None, should_retry: bool | None = None
) -> Fault:
    """A provider's 429, with ``retry-after`` and/or ``retry-after-ms`` headers if given."""
    return _fault(
        "http_429", status=429, retry_after_s=retry_after_s, retry_after_ms=retry_after_ms, should_retry=should_retry
    )


def http_5xx(status: int = 500, *, should_retry: bool | None = None, retry_after_s: float | None = None) -> Fault:
    """A provider's 500/502/503 (any 5xx) with its error body."""
    return _fault("http_5xx", status=status, should_retry=should_retry, retry_after_s=retry_after_s)


def http_529(*, should_retry: bool | None = None, retry_after_s: float | None = None) -> Fault:
    """Anthropic's 529 ``overloaded_error``."""
    return _fault("http_529", status=529, should_retry=should_retry, retry_after_s=retry_after_s)


def reset() -> Fault:
    """The connection is reset before a response: the SDK sees a connection error."""
    return _fault("reset")


def read_timeout(after_s: float = 600.0) -> Fault:
    """The provider never answers: the client's read timeout elapses (``after_s`` if the client has none)."""
    return _fault("read_timeout", latency_s=after_s)


def slow_first_byte(seconds: float) -> Fault:
    """The real response, after ``seconds`` (a read timeout if that exceeds the client's)."""
    return _fault("slow_first_byte", latency_s=seconds)


def truncated_body() -> Fault:
    """The real response with its body cut off half-way: not valid JSON (or an unfinished stream)."""
    return _fault("truncated_body")


def tools(*patterns: str) -> Target:
    return Target(tools=patterns or ("*",))


def models(*patterns: str) -> Target:
    return Target(models=patterns or ("*",))


def providers(*patterns: str) -> Target:
    """HTTP-layer target: ``providers("openai")``, ``providers("anthropic")``, ``providers()`` for both."""
    return Target(providers=patterns or ("*",))


def rate(p: float) -> Schedule:
    return Schedule(rate=p)


def window(start_s: float, end_s: float) -> Schedule:
    return Schedule(window=Window(start_s=start_s, end_s=end_s))


def every_nth(n: int) -> Schedule:
    return Schedule(every_nth=n)


def burst(start_s: float, count: int) -> Schedule:
    return Schedule(burst=Burst(start_s=start_s, count=count))


def check_targets(
    plan: FaultPlan, file: str, tools: Iterable[str], tiers: Iterable[tuple[str, str]], providers: Iterable[str]
) -> None:
    """Every target pattern must match something the run has: a tool, a tier (or its model), a provider.

    A pattern that matches nothing is a typo (``lookup_ordr``) that would make the run measure no faults
    while it says it injected some, so it is an error, not a warning. ``tiers``: (name, model) pairs.
    """
    tools, tiers, providers = list(tools), list(tiers), list(providers)

    def any_tool(p: str) -> bool:
        return any(Target(tools=(p,)).matches_tool(name) for name in tools)

    def any_tier(p: str) -> bool:
        return any(Target(models=(p,)).matches_model(name, model) for name, model in tiers)

    def any_provider(p: str) -> bool:  # the provider, or the model a tier sends in the request body
        target = Target(providers=(p,))
        return any(target.matches_provider(x) for x in providers) or any(
            target.matches_provider("", model) for _, model in tiers
        )

    for i, fault in enumerate(plan.faults):
        place = f"faults[{i}]{f' ({fault.id})' if fault.id else ''}.target"
        for key, patterns, matches, known in (
            ("tools", fault.target.tools, any_tool, tools),
            ("models", fault.target.models, any_tier, [name for name, _ in tiers]),
            ("providers", fault.target.providers, any_provider, providers),
        ):
            for j, pattern in enumerate(patterns):
                if not matches(pattern):
                    raise InputError(
                        file, f"{place}.{key}[{j}]", f"{pattern!r} matches no {key[:-1]} ({key}: {', '.join(known)})"
                    )


def load_fault_plan(path: str | Path) -> FaultPlan:
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a fault plan must be a mapping with 'faults'")
    raw.setdefault("name", path.stem)
    return validate_as(FaultPlan, raw, str(path))
