"""Model tier profiles: price, latency and competence of each simulated tier.

Profiles live in a YAML file users edit (``fixtures/tiers.yaml``). Tiers are listed cheapest
first; that order is what cascade routing climbs.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LatencyProfile(BaseModel):
    """A log-normal latency given by its median and 95th percentile, in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    median_s: float = Field(gt=0)
    p95_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LatencyProfile:
        if self.p95_s < self.median_s:
            raise ValueError("p95_s must be >= median_s")
        return self

    def sample(self, rng: random.Random) -> float:
        sigma = math.log(self.p95_s / self.median_s) / 1.6448536269514722
        return round(self.median_s * math.exp(sigma * rng.gauss(0.0, 1.0)), 6)


class ErrorModes(BaseModel):
    """Relative weights of the ways a step goes wrong when the model is not correct."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wrong_tool: float = Field(default=1.0, ge=0)
    wrong_arg: float = Field(default=1.0, ge=0)
    missing_arg: float = Field(default=1.0, ge=0)
    skipped_step: float = Field(default=1.0, ge=0)
    malformed_json: float = Field(default=1.0, ge=0)
    hallucinated_success: float = Field(default=1.0, ge=0)

    def choose(self, rng: random.Random) -> str:
        items = list(self.model_dump().items())
        total = sum(w for _, w in items)
        x = rng.random() * total
        for name, weight in items:
            x -= weight
            if x < 0:
                return name
        return items[-1][0]


class TierProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    model: str
    input_per_1k: float = Field(ge=0, description="USD per 1,000 input tokens")
    output_per_1k: float = Field(ge=0, description="USD per 1,000 output tokens")
    cached_input_per_1k: float | None = Field(default=None, ge=0)
    context_window: int = Field(default=128_000, gt=0)
    latency: LatencyProfile
    # The agent abandons a call to this tier after this long (in-process models; a provider SDK enforces its
    # own timeout). Without one, a provider that never answers holds a request for as long as it hangs.
    timeout_s: float = Field(default=120.0, gt=0)
    p_correct: float = Field(ge=0, le=1, description="probability that one step is right")
    injection_susceptibility: float = Field(default=0.3, ge=0, le=1)
    error_modes: ErrorModes = ErrorModes()

    @model_validator(mode="after")
    def _errors_possible(self) -> TierProfile:
        # A wrong step picks its kind of mistake by these weights: with every weight 0 the choice silently falls
        # to the last one (hallucinated_success), which is never what a profile with p_correct < 1 meant.
        if self.p_correct < 1 and not any(self.error_modes.model_dump().values()):
            raise ValueError(
                f"error_modes: every weight is 0, but p_correct {self.p_correct:g} < 1 makes mistakes happen: "
                "give at least one error mode a positive weight (or set p_correct to 1)"
            )
        return self

    def price(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        # Each rate read once: an attribute read on a pydantic model goes through its __getattr__ hook
        # (~0.05 µs), and this runs twice per model call.
        input_rate, cached_rate = self.input_per_1k, self.cached_input_per_1k
        if cached_rate is None:
            cached_rate = input_rate
        cached = min(cached_tokens, input_tokens)  # as the price table clamps it: cached is part of the input
        return ((input_tokens - cached) * input_rate + cached * cached_rate + output_tokens * self.output_per_1k) / 1000


class TierTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str
    tiers: dict[str, TierProfile]

    @model_validator(mode="after")
    def _names(self) -> TierTable:
        if not self.tiers:
            raise ValueError("at least one tier is required")
        if self.default not in self.tiers:
            raise ValueError(f"default tier {self.default!r} is not defined")
        for name, profile in self.tiers.items():
            object.__setattr__(profile, "name", name)
        return self

    @property
    def order(self) -> list[str]:
        """Tier names, cheapest first (file order)."""
        return list(self.tiers)

    def __getitem__(self, name: str) -> TierProfile:
        return self.tiers[name]


def load_tiers(path: str | Path) -> TierTable:
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    return validate_as(TierTable, read_yaml(Path(path)), str(path))
