"""Which model backend a run uses (``--llm``), checked before anything is written.

The backends themselves (names, providers, which are live, what each is) are one table,
:data:`agentlab.llm.backends.BACKENDS`; this module checks a run's backend options against it.

Cassettes live in ``DIR/<provider>/<suite>/<episode>.yaml`` (:mod:`agentlab.llm.replay.library`);
``--record DIR`` writes there while an SDK backend runs (``sim-*``: from the simulated endpoint;
``openai``/``anthropic``: from the live API). Every misuse is one :class:`InputError` line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentlab.errors import InputError
from agentlab.faults.plan import FaultPlan
from agentlab.llm.backends import API_KEY_ENV, BACKENDS, LIVE, PROVIDERS, RECORDING, provider_of
from agentlab.llm.tiers import TierTable

if TYPE_CHECKING:
    from agentlab.runs.options import RunOptions
    from agentlab.scenarios.model import Suite

# Offline backends that speak a provider's wire format (provider faults need one).
_OFFLINE_SDK = "|".join(b.name for b in BACKENDS.values() if b.sdk and not b.live)


def provider_for(opts: RunOptions) -> str | None:
    """The provider whose SDK and wire format the run uses (None for ``--llm sim``)."""
    return provider_of(opts.llm, opts.provider)


def validate_backend(opts: RunOptions, suite: Suite, plan: FaultPlan | None) -> RunOptions:
    """Check the backend options together; return them with the replay provider resolved."""
    llm = opts.llm
    backend = BACKENDS[llm]
    flag = f"--llm {llm}"
    if opts.sdk_retries < 0:
        raise InputError("--sdk-retries", "", "must be 0 or more")
    if opts.model is not None and llm not in LIVE:
        raise InputError("--model", "", f"only live providers take a model name (with {flag}, tiers pick the model)")
    if opts.tier_models and llm not in LIVE:
        raise InputError(
            "--tier-model", "", f"only live providers take model names (with {flag}, tiers pick the model)"
        )
    if opts.cassettes is not None and backend.kind != "cassettes":
        raise InputError("--cassettes", "", f"only --llm replay reads cassettes (got {flag}); to record use --record")
    if opts.provider is not None and backend.kind != "cassettes" and opts.provider != provider_for(opts):
        raise InputError("--provider", "", f"--provider {opts.provider} contradicts {flag}")
    if opts.record is not None and llm not in RECORDING:
        others = "|".join(RECORDING)
        raise InputError("--record", "", f"{flag} makes no HTTP requests to record; use --llm {others}")
    if opts.stream and not backend.sdk:
        raise InputError("--stream", "", "--llm sim has no wire format to stream; use an SDK backend")
    if plan is not None and not backend.sdk and any(f.target.providers for f in plan.faults):
        source = opts.faults if isinstance(opts.faults, str) else plan.name
        raise InputError(source, "faults", f"provider (HTTP) faults need an SDK backend: --llm {_OFFLINE_SDK}")
    if backend.live:
        env = API_KEY_ENV[llm]
        if not os.environ.get(env):
            raise InputError(
                flag,
                "",
                f"{env} is not set: a live run needs an API key (--llm {_offline_twin(llm)} runs offline instead)",
            )
        if not opts.model and not opts.tier_models:
            raise InputError(
                flag, "--model", "a live run needs --model or --tier-model (e.g. gpt-4o-mini, claude-haiku-4-5)"
            )
    if backend.kind != "cassettes":
        return opts
    if opts.cassettes is None:
        raise InputError(flag, "--cassettes", "replay needs --cassettes DIR (holding <provider>/<suite>/*.yaml)")
    from agentlab.llm.replay.library import cassette_dir

    found = [p for p in PROVIDERS if cassette_dir(opts.cassettes, p, suite.name).is_dir()]
    provider = opts.provider
    if provider is None:
        if not found:
            where = cassette_dir(opts.cassettes, f"<{'|'.join(PROVIDERS)}>", suite.name)
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


def _offline_twin(llm: str) -> str:
    """The offline backend speaking the same provider's wire format as live backend ``llm`` (sim-openai)."""
    provider = BACKENDS[llm].provider
    return next(b.name for b in BACKENDS.values() if b.kind == "endpoint" and b.provider == provider)


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
    kind = BACKENDS[opts.llm].kind
    if kind == "in-process":
        return ""
    if kind == "cassettes":
        return f"-{opts.llm}-{opts.provider}"
    return f"-{opts.llm}"
