"""Which model backend a run uses (``--llm``), checked before anything is written.

==============  ==================================================================================
``sim``         the simulated model, in process: no SDK, no HTTP (the fast default)
``sim-openai``  the real ``openai`` SDK against the simulated endpoint (Chat Completions wire format)
``sim-anthropic`` the real ``anthropic`` SDK against the simulated endpoint (Messages wire format)
``replay``      the real SDK of ``--provider`` against recorded cassettes (``--cassettes DIR``)
``openai``      the live OpenAI API (``OPENAI_API_KEY``, ``--model``)
``anthropic``   the live Anthropic API (``ANTHROPIC_API_KEY``, ``--model``)
==============  ==================================================================================

Cassettes live in ``DIR/<provider>/<suite>/<episode>.yaml`` (:mod:`agentlab.llm.replay.library`);
``--record DIR`` writes there while an SDK backend runs (``sim-*``: from the simulated endpoint;
``openai``/``anthropic``: from the live API). Every misuse is one :class:`InputError` line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentlab.errors import InputError
from agentlab.faults.plan import FaultPlan
from agentlab.llm.tiers import TierTable

if TYPE_CHECKING:
    from agentlab.runs.options import RunOptions

    from agentlab.scenarios.model import Suite

LIVE = ("openai", "anthropic")
PROVIDERS = ("openai", "anthropic")
API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def provider_for(opts: RunOptions) -> str | None:
    """The provider whose SDK and wire format the run uses (None for ``--llm sim``)."""
    if opts.llm == "sim":
        return None
    if opts.llm == "replay":
        return opts.provider
    return opts.llm.removeprefix("sim-")


def validate_backend(opts: RunOptions, suite: Suite, plan: FaultPlan | None) -> RunOptions:
    """Check the backend options together; return them with the replay provider resolved."""
    llm = opts.llm
    flag = f"--llm {llm}"
    if opts.sdk_retries < 0:
        raise InputError("--sdk-retries", "", "must be 0 or more")
    if opts.model is not None and llm not in LIVE:
        raise InputError("--model", "", f"only live providers take a model name (with {flag}, tiers pick the model)")
    if opts.tier_models and llm not in LIVE:
        raise InputError(
            "--tier-model", "", f"only live providers take model names (with {flag}, tiers pick the model)"
        )
    if opts.cassettes is not None and llm != "replay":
        raise InputError("--cassettes", "", f"only --llm replay reads cassettes (got {flag}); to record use --record")
    if opts.provider is not None and llm != "replay" and opts.provider != provider_for(opts):
        raise InputError("--provider", "", f"--provider {opts.provider} contradicts {flag}")
    if opts.record is not None and llm in ("sim", "replay"):
        others = "sim-openai|sim-anthropic|openai|anthropic"
        raise InputError("--record", "", f"{flag} makes no HTTP requests to record; use --llm {others}")
    if opts.stream and llm == "sim":
        raise InputError("--stream", "", "--llm sim has no wire format to stream; use an SDK backend")
    if plan is not None and llm == "sim" and any(f.target.providers for f in plan.faults):
        source = opts.faults if isinstance(opts.faults, str) else plan.name
        raise InputError(
            source, "faults", "provider (HTTP) faults need an SDK backend: --llm sim-openai|sim-anthropic|replay"
        )
    if llm in LIVE:
        env = API_KEY_ENV[llm]
        if not os.environ.get(env):
            raise InputError(
                flag, "", f"{env} is not set: a live run needs an API key (--llm sim-{llm} runs offline instead)"
            )
        if not opts.model and not opts.tier_models:
            raise InputError(
                flag, "--model", "a live run needs --model or --tier-model (e.g. gpt-4o-mini, claude-haiku-4-5)"
            )
    if llm != "replay":
        return opts
    if opts.cassettes is None:
        raise InputError(flag, "--cassettes", "replay needs --cassettes DIR (holding <provider>/<suite>/*.yaml)")
    from agentlab.llm.replay.library import cassette_dir

    found = [p for p in PROVIDERS if cassette_dir(opts.cassettes, p, suite.name).is_dir()]
    provider = opts.provider
    if provider is None:
        if not found:
            where = cassette_dir(opts.cassettes, "<openai|anthropic>", suite.name)
            problem = f"no cassettes for suite {suite.name!r} (expected {where}/)"
            raise InputError(opts.cassettes, "--cassettes", problem)
        if len(found) > 1:
            raise InputError(opts.cassettes, "--provider", "cassettes for both openai and anthropic: choose one")
        provider = found[0]
    elif provider not in found:
        raise InputError(
            str(cassette_dir(opts.cassettes, provider, suite.name)), "--cassettes", "no such cassette directory"
        )
    return opts.model_copy(update={"provider": provider})


def backend_tiers(tiers: TierTable, opts: RunOptions) -> TierTable:
    """The tier table a run uses: for a live provider, each tier calls its ``--tier-model``, else ``--model`` (and is
    priced as that model, from the price table: :func:`~agentlab.llm.pricing.priced_tiers`)."""
    if opts.llm not in LIVE or not (opts.model or opts.tier_models):
        return tiers
    chosen = dict(opts.tier_models or {})
    unknown = sorted(set(chosen) - set(tiers.tiers))
    if unknown:
        raise InputError("--tier-model", unknown[0], f"no such tier (tiers: {', '.join(tiers.order)})")
    missing = [name for name in tiers.order if name not in chosen and not opts.model]
    if missing:
        raise InputError("--tier-model", missing[0], "this tier has no model: name one, or give --model for the rest")
    profiles = {name: p.model_copy(update={"model": chosen.get(name, opts.model)}) for name, p in tiers.tiers.items()}
    return TierTable(default=tiers.default, tiers=profiles)


def run_dir_suffix(opts: RunOptions) -> str:
    """What a run directory's default name adds for a non-default backend (``-replay-openai``)."""
    if opts.llm == "sim":
        return ""
    if opts.llm == "replay":
        return f"-replay-{opts.provider}"
    return f"-{opts.llm}"
