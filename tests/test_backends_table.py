"""One table owns the model backends (agentlab.llm.backends.BACKENDS); every other spelling agrees with it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

import pytest

from agentlab.cli import _parser, run_options
from agentlab.errors import InputError
from agentlab.llm import stack
from agentlab.llm.backends import API_KEY_ENV, BACKENDS, LIVE, NAMES, PROVIDERS, SERVED, BackendName, Provider
from agentlab.observe.otel import SIM_PROVIDER, run_provider_name
from agentlab.runs.backends import provider_for, run_dir_suffix
from agentlab.runs.options import RunOptions
from agentlab.serve.service import AgentService, ServeConfig

ROOT = Path(__file__).resolve().parents[1]


def _option(command: str, flag: str) -> argparse.Action:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[command]._actions if flag in a.option_strings)


def test_the_table_names_the_literal() -> None:
    assert get_args(BackendName) == NAMES == tuple(BACKENDS)
    assert PROVIDERS == get_args(Provider) == ("openai", "anthropic")
    assert {b.provider for b in BACKENDS.values() if b.provider} == set(PROVIDERS)


def test_run_options_take_exactly_the_table() -> None:
    assert get_args(RunOptions.model_fields["llm"].annotation) == NAMES
    assert get_args(RunOptions.model_fields["provider"].annotation) == (Provider, type(None))
    for name in NAMES:
        RunOptions(suite="s.yaml", llm=name)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RunOptions(suite="s.yaml", llm="sim-gemini")  # type: ignore[arg-type]


def test_cli_choices_and_help_come_from_the_table() -> None:
    run_llm = _option("run", "--llm")
    assert tuple(run_llm.choices or ()) == NAMES
    assert run_options(_parser().parse_args(["run", "s.yaml"])).llm == RunOptions.model_fields["llm"].default
    for name in NAMES:
        assert f"{name}: {BACKENDS[name].description}" in (run_llm.help or "")
    assert tuple(_option("run", "--provider").choices or ()) == PROVIDERS
    assert tuple(_option("bench", "--provider").choices or ()) == PROVIDERS
    serve_llm = _option("serve", "--llm")
    assert tuple(serve_llm.choices or ()) == SERVED == tuple(n for n, b in BACKENDS.items() if b.served)
    assert "replay" not in SERVED  # cassettes are recorded per episode, not per request
    assert "replay:" not in (serve_llm.help or "") and "sim-openai:" in (serve_llm.help or "")


def test_serve_refuses_what_the_table_does_not_serve(tmp_path: Path) -> None:
    opts = RunOptions(suite=str(ROOT / "fixtures/suites/support.yaml"), llm="replay", cassettes="cassettes")
    with pytest.raises(InputError, match="agentlab serve cannot use this backend"):
        AgentService(ServeConfig(opts=opts, data_dir=tmp_path))


@pytest.mark.parametrize("name", NAMES)
def test_every_view_of_a_backend_names_the_same_provider(name: str) -> None:
    extra: dict[str, Any] = {"provider": "anthropic"} if BACKENDS[name].kind == "cassettes" else {}
    opts = RunOptions(suite="s.yaml", llm=name, **extra)  # type: ignore[arg-type]
    provider = provider_for(opts)
    assert provider == BACKENDS[name].provider or (BACKENDS[name].kind == "cassettes" and provider == "anthropic")
    assert run_provider_name({"llm": name, **extra}) == (provider or SIM_PROVIDER)
    if BACKENDS[name].sdk:
        assert stack.sdk_provider(name, extra.get("provider")) == provider
        assert run_dir_suffix(opts).startswith(f"-{name}")
    else:
        with pytest.raises(ValueError):
            stack.sdk_provider(name)
        assert run_dir_suffix(opts) == ""
    assert (name in LIVE) == BACKENDS[name].live == (name in API_KEY_ENV)
