"""The price table: real models, dated snapshots, aliases, and no silent zero for unknown models."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from agentlab.errors import InputError
from agentlab.llm.pricing import UnknownModel, load_prices
from agentlab.llm.tiers import load_tiers
from agentlab.llm.types import Usage

ROOT = Path(__file__).resolve().parents[1]
PRICES = load_prices(ROOT / "fixtures/prices.yaml")
# Real recorded traffic, beside the checkout or where AGENTLAB_REAL_CASSETTES says (a user's clone has none).
CASSETTES = Path(os.environ.get("AGENTLAB_REAL_CASSETTES") or ROOT.parent / "shared" / "real-cassettes")


def test_every_model_in_the_real_cassettes_has_a_price() -> None:
    if not CASSETTES.is_dir():
        pytest.skip(f"the real-cassette corpus {CASSETTES} is absent (AGENTLAB_REAL_CASSETTES)")
    names = set()
    for path in CASSETTES.rglob("*.yaml"):
        names |= set(re.findall(r'"model":\s*"([^"]+)"|\bmodel: ([\w./:-]+)', path.read_text()))
    models = {a or b for a, b in names} - {"claude-does-not-exist"}
    assert len(models) >= 10
    for model in sorted(models):
        assert PRICES.get(model).input >= 0, model


def test_snapshots_and_aliases_resolve() -> None:
    assert PRICES.get("gpt-4o-mini-2024-07-18") is PRICES.get("gpt-4o-mini")
    assert PRICES.get("claude-haiku-4-5-20251001") is PRICES.get("claude-haiku-4-5")
    assert PRICES.get("claude-3-opus-latest") is PRICES.get("claude-3-opus")


def test_unknown_model_is_an_error_not_zero() -> None:
    with pytest.raises(UnknownModel, match="claude-does-not-exist"):
        PRICES.cost("claude-does-not-exist", Usage(input_tokens=10))


def test_cost_arithmetic_with_cached_tokens() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cached_tokens=400_000)
    # gpt-4o: 600k fresh x $2.50 + 400k cached x $1.25 + 100k out x $10 = 1.5 + 0.5 + 1.0
    assert PRICES.cost("gpt-4o", usage) == pytest.approx(3.0)


def test_simulated_tiers_are_priced_like_their_table_entries() -> None:
    tiers = load_tiers(ROOT / "fixtures/tiers.yaml")
    for name, profile in tiers.tiers.items():
        price = PRICES.get(profile.model)
        assert price.tier == name
        assert (price.input, price.output) == pytest.approx((profile.input_per_1k * 1000, profile.output_per_1k * 1000))


def test_bad_price_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("version: x\nmodels:\n  m: {provider: p, tier: t, input: -1, output: 1, context_window: 1}\n")
    with pytest.raises(InputError, match=r"models\.m\.input"):
        load_prices(bad)


def test_a_run_estimates_with_the_same_rates_it_charges() -> None:
    """With a live --model every tier calls that model: its pre-call estimate must use that model's price, not
    the simulated tier's (the estimate was 16x below the charge for gpt-4o)."""
    from agentlab.llm.pricing import priced_tiers
    from agentlab.runs import RunOptions
    from agentlab.runs.backends import backend_tiers

    root = Path(__file__).resolve().parents[1] / "fixtures"
    prices = load_prices(root / "prices.yaml")
    opts = RunOptions(suite=str(root / "suites/support.yaml"), llm="openai", model="gpt-4o")
    tiers = priced_tiers(backend_tiers(load_tiers(root / "tiers.yaml"), opts), prices)
    usage = Usage(input_tokens=1200, output_tokens=512, cached_tokens=200)
    for profile in tiers.tiers.values():
        estimate = profile.price(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
        assert estimate == pytest.approx(prices.cost("gpt-4o", usage), rel=1e-12)
