"""The price table: what a model's tokens cost, from a versioned data file (``fixtures/prices.yaml``).

An unknown model is an error, never a silent zero: a cost report that quietly prices an unlisted
model at nothing is worse than no report. Dated snapshot names resolve to their base entry
(``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``), aliases to theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agentlab.errors import InputError
from agentlab.llm.tiers import TierTable
from agentlab.llm.types import Usage

_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


class UnknownModel(LookupError):
    """A model the price table does not list."""


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    tier: str
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")
    cached_input: float | None = Field(default=None, ge=0, description="USD per million cache-read tokens")
    context_window: int = Field(gt=0)
    aliases: tuple[str, ...] = ()

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input + cached * cached_rate + usage.output_tokens * self.output
        ) / 1e6


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    currency: str = "USD"
    models: dict[str, ModelPrice]

    def get(self, model: str) -> ModelPrice:
        found = self.models.get(model)
        if found is None:
            found = self.models.get(_SNAPSHOT.sub("", model))
        if found is None:
            found = next((p for p in self.models.values() if model in p.aliases), None)
        if found is None:
            raise UnknownModel(f"no price for model {model!r} in price table {self.version} (add it to prices.yaml)")
        return found

    def cost(self, model: str, usage: Usage) -> float:
        return self.get(model).cost(usage)


def load_prices(path: str | Path) -> PriceTable:
    from agentlab.yamlfile import read_yaml, validate_as  # the one YAML reader (and its errors)

    raw = read_yaml(Path(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), "", "a price table must be a mapping with 'version' and 'models'")
    return validate_as(PriceTable, raw, str(path))


def priced_tiers(
    tiers: TierTable,
    prices: PriceTable,
    source: str = "tiers.yaml",
    *,
    prices_source: str = "prices.yaml",
    model_option: str | None = None,
) -> TierTable:
    """The tier table with each tier's rates taken from the price-table entry of the model it calls.

    The Cost Controller estimates a call's worst case from the tier's rates and charges its usage from the
    price table; one source for both keeps an allowed call from costing more than it was estimated at (a live
    ``--model`` would otherwise be estimated at the simulated tier's rates). An unpriced model is an error,
    blamed on the price table (``prices_source``) that lacks it, and on where the name came from: the
    ``--model`` option (``model_option``, which every tier then calls) or the tier in ``source``.
    """
    profiles = {}
    for name, profile in tiers.tiers.items():
        try:
            price = prices.get(profile.model)
        except UnknownModel:
            origin = (
                f"--model {model_option}"
                if model_option is not None and profile.model == model_option
                else f"{source}: tiers.{name}.model"
            )
            problem = (
                f"no price for model {profile.model!r} (from {origin}) in price table {prices.version}; "
                "add it (or an alias) here"
            )
            raise InputError(prices_source, "models", problem) from None
        profiles[name] = profile.model_copy(
            update={
                "input_per_1k": price.input / 1000,
                "output_per_1k": price.output / 1000,
                "cached_input_per_1k": None if price.cached_input is None else price.cached_input / 1000,
            }
        )
    return TierTable(default=tiers.default, tiers=profiles)
