"""A sweep spec: the grid of run configurations, as YAML or built in Python, expanded into cells.

Every axis is a list; the grid is their product, in the order the fields are declared below, so a
cell's index (and its run directory's name) is a function of the spec alone::

    name: reliability
    suites: [../suites/support.yaml]          # paths are relative to the spec file
    faults:
      - {}                                    # no faults
      - {preset: transient, rates: [0.05, 0.1, 0.2]}
      - {plan: ../faults/provider-http.yaml, scale: [0.5, 1]}
      - name: outage                          # a plan inline
        plan: {faults: [{kind: error, target: {tools: ["*"]}, window: {start_s: 60, end_s: 200}}]}
    resilience: [true, false]
    routing: [null, cascade]
    tiers: [null]                             # null: the tier file's default
    strategies: [react]
    seeds: [0, 1]
    epochs: [3]
    options: {approver: approve}              # any other RunOptions field, for every cell

A scalar stands for a one-element list (``epochs: 3``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentlab.components.routing import POLICIES
from agentlab.errors import InputError
from agentlab.faults.plan import FaultPlan, load_fault_plan
from agentlab.faults.presets import transient
from agentlab.runs.options import RunOptions

# Fault presets a spec can sweep by rate (agentlab.faults.presets).
PRESETS = {"transient": transient}
# RunOptions fields the grid owns: ``options`` may not set them.
GRID_OWNED = frozenset(
    {"suite", "faults", "resilience", "routing", "tier", "strategy", "seed", "epochs", "out", "force", "progress"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultAxis(_Strict):
    """One entry of the fault axis: no faults (``{}``), a preset at each rate, or a plan file at each scale."""

    name: str | None = None  # the label in results (default: the preset's or the plan's name, or "none")
    preset: Literal["transient"] | None = None
    rates: tuple[float, ...] | None = None  # preset: the share of calls faulted
    plan: str | FaultPlan | None = None  # a fault plan YAML, or a plan itself (inline in YAML, or built in Python)
    scale: tuple[float, ...] | None = None  # plan: every fault's rate is multiplied by this (capped at 1)

    @field_validator("rates", "scale")
    @classmethod
    def _non_negative(cls, values: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if values is not None:
            if not values:
                raise ValueError("must list at least one value")
            if any(not (v >= 0) for v in values):  # also refuses NaN
                raise ValueError("values must be numbers at or above 0")
        return values

    @model_validator(mode="after")
    def _one_source(self) -> FaultAxis:
        if self.preset and self.plan is not None:
            raise ValueError("give a preset or a plan, not both")
        if self.preset and self.rates is None:
            raise ValueError(f"preset {self.preset!r} needs rates, e.g. rates: [0.05, 0.1]")
        if self.rates is not None and not self.preset:
            raise ValueError("rates go with a preset (a plan file is swept with scale)")
        if self.rates is not None and any(r > 1 for r in self.rates):
            raise ValueError("a rate is a share of calls, at most 1")
        if self.scale is not None and self.plan is None:
            raise ValueError("scale goes with a plan file")
        return self


_AXES = ("suites", "faults", "resilience", "routing", "tiers", "strategies", "seeds", "epochs")


def _listify(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


class SweepSpec(_Strict):
    """The grid. Paths in it are relative to ``base`` (the spec file's folder)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@=-]*$")
    suites: tuple[str, ...] = Field(min_length=1)
    faults: tuple[FaultAxis, ...] = (FaultAxis(),)
    resilience: tuple[bool, ...] = (True,)
    routing: tuple[str | None, ...] = (None,)
    tiers: tuple[str | None, ...] = (None,)
    strategies: tuple[Literal["react", "plan"], ...] = ("react",)
    seeds: tuple[int, ...] = (0,)
    epochs: tuple[int, ...] = (1,)
    options: dict[str, Any] = Field(default_factory=dict)
    base: str = "."  # not read from YAML: the loader sets it

    @field_validator(
        "suites", "faults", "resilience", "routing", "tiers", "strategies", "seeds", "epochs", mode="before"
    )
    @classmethod
    def _scalars_are_lists(cls, value: Any) -> Any:
        return _listify(value)

    @field_validator(*_AXES)
    @classmethod
    def _not_empty(cls, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not values:
            raise ValueError("an axis needs at least one value")
        if len(set(map(repr, values))) != len(values):
            raise ValueError("an axis lists the same value twice")
        return values

    @field_validator("routing")
    @classmethod
    def _known_routing(cls, values: tuple[str | None, ...]) -> tuple[str | None, ...]:
        unknown = [v for v in values if v is not None and v not in POLICIES]
        if unknown:
            raise ValueError(f"unknown routing policy {unknown[0]!r} (known: {', '.join(POLICIES)}, or null)")
        return values

    @field_validator("seeds")
    @classmethod
    def _seed_range(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= v < 2**63 for v in values):
            raise ValueError("seeds are integers from 0 to 2**63 - 1")
        return values

    @field_validator("epochs")
    @classmethod
    def _epochs_positive(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 or v > 10_000 for v in values):
            raise ValueError("epochs are integers from 1 to 10000")
        return values

    @field_validator("options")
    @classmethod
    def _options_fit(cls, options: dict[str, Any]) -> dict[str, Any]:
        owned = sorted(GRID_OWNED & options.keys())
        if owned:
            raise ValueError(f"{owned[0]!r} is an axis of the grid (or set by the sweep), not an option")
        unknown = sorted(options.keys() - RunOptions.model_fields.keys())
        if unknown:
            raise ValueError(f"unknown run option {unknown[0]!r}")
        try:
            RunOptions(suite="-", **options)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        return options

    def path(self, relative: str) -> str:
        """A path of the spec resolved against its folder (absolute paths stay as they are)."""
        return str(Path(self.base) / relative)

    def digest(self) -> str:
        """What the sweep directory is a function of: the spec as data (its files are checked per cell, by run id)."""
        data = self.model_dump(mode="json", exclude={"base"})
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a run's options, its axis values, and where in the sweep it lives."""

    index: int
    label: str
    axes: dict[str, Any]
    options: RunOptions

    @property
    def dir_name(self) -> str:
        return f"{self.index:04d}-{self.label}"


def _scaled(plan: FaultPlan, factor: float) -> FaultPlan:
    faults = tuple(f.model_copy(update={"rate": min(1.0, f.rate * factor)}) for f in plan.faults)
    return plan.model_copy(update={"faults": faults, "name": f"{plan.name}x{factor:g}"})


def _fault_points(spec: SweepSpec) -> list[tuple[dict[str, Any], FaultPlan | None]]:
    """Each fault setting of the grid: its columns (plan name, rate, scale) and the plan itself."""
    points: list[tuple[dict[str, Any], FaultPlan | None]] = []
    for axis in spec.faults:
        if axis.preset:
            for r in axis.rates or ():
                plan = PRESETS[axis.preset](r)
                points.append(({"fault_plan": axis.name or axis.preset, "fault_rate": r, "fault_scale": None}, plan))
        elif axis.plan is not None:
            loaded = axis.plan if isinstance(axis.plan, FaultPlan) else load_fault_plan(spec.path(axis.plan))
            for factor in axis.scale or (None,):
                plan = loaded if factor is None else _scaled(loaded, factor)
                name = axis.name or loaded.name
                points.append(({"fault_plan": name, "fault_rate": None, "fault_scale": factor}, plan))
        else:
            points.append(({"fault_plan": axis.name or "none", "fault_rate": None, "fault_scale": None}, None))
    return points


def slug(text: str) -> str:
    """``text`` as a file name: runs of other characters become one ``_``."""
    return re.sub(r"[^A-Za-z0-9.=@_-]+", "_", text).strip("_") or "x"


def cells(spec: SweepSpec, sweep_dir: str | Path) -> list[Cell]:
    """Expand the grid, in a fixed order; each cell's run directory is ``sweep_dir/cells/NNNN-label``."""
    out: list[Cell] = []
    grid = product(
        spec.suites,
        _fault_points(spec),
        spec.resilience,
        spec.routing,
        spec.tiers,
        spec.strategies,
        spec.seeds,
        spec.epochs,
    )
    for index, (suite, (fault_cols, plan), res, routing, tier, strategy, seed, epochs) in enumerate(grid):
        axes = {
            "suite": Path(suite).stem,
            **fault_cols,
            "resilience": res,
            "routing": routing,
            "tier": tier,
            "strategy": strategy,
            "seed": seed,
            "epochs": epochs,
        }
        fault = fault_cols["fault_plan"]
        level = fault_cols["fault_rate"] if fault_cols["fault_rate"] is not None else fault_cols["fault_scale"]
        parts = [
            Path(suite).stem,
            f"{fault}@{level:g}" if level is not None else fault,
            "res" if res else "nores",
            routing or "fixed",
            tier or "default",
            strategy,
            f"s{seed}",
            f"e{epochs}",
        ]
        label = slug("-".join(parts))
        dir_name = f"{index:04d}-{label}"
        options = RunOptions(
            suite=spec.path(suite),
            faults=plan,
            resilience=res,
            routing=routing,
            tier=tier,
            strategy=strategy,
            seed=seed,
            epochs=epochs,
            out=str(Path(sweep_dir) / "cells" / dir_name),
            force=True,  # the sweep owns its cells: a finished cell that is not the run asked for is replaced
            progress=False,
            **{k: spec.path(v) if k in _FILE_OPTIONS and isinstance(v, str) else v for k, v in spec.options.items()},
        )
        out.append(Cell(index=index, label=label, axes=axes, options=options))
    return out


# Options naming files: resolved against the spec's folder like the suites.
_FILE_OPTIONS = frozenset({"tiers", "policy", "prices", "approvals", "cassettes", "record"})


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec YAML: any problem is one :class:`InputError` line (file, place, problem)."""
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a sweep spec must be a mapping with at least 'name' and 'suites'")
    if "base" in raw:
        raise InputError(str(path), "base", "is set from the spec's own folder, not in the file")
    raw = {**raw, "base": str(path.parent)}
    spec: SweepSpec = validate_as(SweepSpec, raw, str(path))
    return spec
