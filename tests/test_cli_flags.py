"""``agentlab run``'s flags come from RunOptions' fields: each field is a flag (or excluded with a reason), no
flags means RunOptions' defaults, every flag has help, and the flags users know keep their names and meaning."""

from __future__ import annotations

import argparse
import sys

import pytest
from pydantic import Field

from agentlab.cli import SERVE_FIELDS, _parser, run_options
from agentlab.cli_flags import EXCLUDED, add_run_flags, options_from, run_flags
from agentlab.errors import InputError
from agentlab.runs.options import RunOptions


def _run_parser() -> argparse.ArgumentParser:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _actions(command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


def test_every_field_is_a_flag_or_excluded_with_a_reason() -> None:
    flags = {flag.field for flag in run_flags()}
    assert all(reason.strip() for reason in EXCLUDED.values())
    assert flags | set(EXCLUDED) == set(RunOptions.model_fields)
    assert not flags & set(EXCLUDED)
    on_the_parser = _actions("run")
    assert flags <= set(on_the_parser)


def test_every_flag_has_help() -> None:
    for field, action in _actions("run").items():
        assert action.help and action.help.strip(), field
    for name, info in RunOptions.model_fields.items():
        assert info.description, f"RunOptions.{name} has no description (its flag's help)"


def test_no_flags_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # off a terminal the CLI draws no bar
    assert run_options(_parser().parse_args(["run", "s.yaml"])) == RunOptions(suite="s.yaml")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert run_options(_parser().parse_args(["run", "s.yaml"])) == RunOptions(suite="s.yaml", progress=False)


# Every flag ``agentlab run`` had before the flags were generated, with a value and what it sets.
KNOWN = [
    (["--strategy", "plan"], {"strategy": "plan"}),
    (["--llm", "sim-openai"], {"llm": "sim-openai"}),
    (["--provider", "anthropic"], {"provider": "anthropic"}),
    (["--cassettes", "c"], {"cassettes": "c"}),
    (["--record", "r", "--record-mode", "record-missing"], {"record": "r", "record_mode": "record-missing"}),
    (["--model", "gpt-4o"], {"model": "gpt-4o"}),
    (["--tier-model", "fast=a", "--tier-model", "smart=b"], {"tier_models": {"fast": "a", "smart": "b"}}),
    (["--sdk-retries", "0"], {"sdk_retries": 0}),
    (["--stream"], {"stream": True}),
    (["--tiers", "t.yaml", "--tier", "fast"], {"tiers": "t.yaml", "tier": "fast"}),
    (["--seed", "7", "--epochs", "3"], {"seed": 7, "epochs": 3}),
    (["--only", "a", "--only", "b"], {"only": ["a", "b"]}),
    (["--faults", "f.yaml"], {"faults": "f.yaml"}),
    (["--no-resilience"], {"resilience": False}),
    (["--out", "o", "--force"], {"out": "o", "force": True}),
    (["--quiet"], {"progress": False}),
    (["--durable-worlds"], {"durable_worlds": True}),
    (
        ["--policy", "p.yaml", "--approver", "deny", "--approvals", "a.yaml"],
        {"policy": "p.yaml", "approver": "deny", "approvals": "a.yaml"},
    ),
    (["--no-guardrails", "--no-gate"], {"guardrails": False, "gate": False}),
    (["--routing", "cascade"], {"routing": "cascade"}),
    (
        ["--budget-session", "1", "--budget-user-day", "2", "--budget-user-month", "3"],
        {"budget_session_usd": 1.0, "budget_user_day_usd": 2.0, "budget_user_month_usd": 3.0},
    ),
    (["--prices", "p.yaml"], {"prices": "p.yaml"}),
]


@pytest.mark.parametrize(("argv", "expected"), KNOWN, ids=[k[0][0] for k in KNOWN])
def test_the_flags_users_know_set_what_they_did(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: dict[str, object]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    opts = run_options(_parser().parse_args(["run", "s.yaml", *argv]))
    assert opts == RunOptions(suite="s.yaml", **expected)  # type: ignore[arg-type]


def test_every_field_is_covered_by_a_known_flag() -> None:
    """KNOWN above is complete: a new field gets a flag by existing, and a line here saying what it sets."""
    covered = {field for _, expected in KNOWN for field in expected}
    assert covered | {"suite"} == set(RunOptions.model_fields) - set(EXCLUDED)


@pytest.mark.parametrize(
    ("argv", "flag", "problem"),
    [
        (["--record-mode", "record-missing"], "--record-mode", "only applies with --record DIR"),
        (["--tier-model", "fast"], "--tier-model", "expected TIER=MODEL"),
        (["--tier-model", "fast=a", "--tier-model", "fast=b"], "--tier-model", "tier 'fast' is given twice"),
        (["--budget-session", "-1"], "--budget-session", "greater than or equal to 0"),
        (["--seed", str(2**63)], "--seed", "less than"),
    ],
)
def test_a_bad_value_names_its_flag(argv: list[str], flag: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        run_options(_parser().parse_args(["run", "s.yaml", *argv]))
    assert caught.value.file == flag and problem in str(caught.value)


def test_serve_takes_its_fields_with_the_same_flags() -> None:
    run = {flag.field: flag.flag for flag in run_flags()}
    serve = _actions("serve")
    for field in SERVE_FIELDS:
        action = serve[field]
        assert action.option_strings == ([] if field == "suite" else [run[field]])


def test_serve_needs_its_suite_where_run_does_not() -> None:
    assert _actions("serve")["suite"].nargs is None  # serve's override
    assert _actions("run")["suite"].nargs == "?"  # run --resume DIR needs no suite
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve"])


class _More(RunOptions):
    """RunOptions with fields it does not have today, of the kinds the generic rule covers."""

    warmup_episodes: int = Field(default=0, description="episodes run before measuring")
    shadow: bool = Field(default=False, description="also run a shadow agent")
    replicas: bool = Field(default=True, description="replicated memory")
    extra_tags: list[str] | None = Field(default=None, description="tags added to every episode")


def test_a_new_field_gets_a_flag_by_existing() -> None:
    """End to end: a field added to the options model is parsed from its flag into the model, with no CLI code."""
    parser = argparse.ArgumentParser()
    flags = add_run_flags(parser, schema=_More)
    argv = ["s.yaml", "--warmup-episodes", "3", "--shadow", "--no-replicas", "--extra-tags", "a", "--extra-tags", "b"]
    opts = options_from(parser.parse_args(argv), flags, schema=_More)
    assert isinstance(opts, _More)
    assert (opts.warmup_episodes, opts.shadow, opts.replicas, opts.extra_tags) == (3, True, False, ["a", "b"])
    assert options_from(parser.parse_args(["s.yaml"]), flags, schema=_More) == _More(suite="s.yaml")
    with pytest.raises(SystemExit):  # its type is the flag's type
        parser.parse_args(["s.yaml", "--warmup-episodes", "three"])
