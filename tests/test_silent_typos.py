"""Typos that used to make a run's results silently wrong (issue 14, item 4, the loader side).

Each is now one line naming the file, the place and the problem: an error (exit 2, no run directory) when
the input cannot be meant, a warning (the run goes on) when it may be meant for another suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agentlab.cli import main
from agentlab.components.policy import load_policy
from agentlab.errors import InputError
from agentlab.faults import error, models, providers, tools
from agentlab.llm.tiers import load_tiers
from agentlab.runs import RunOptions, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = str(ROOT / "fixtures/suites/support.yaml")
POLICY = ROOT / "fixtures/policies/support.yaml"
TIERS = ROOT / "fixtures/tiers.yaml"


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


# --- fault plans -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind", "place", "fragment"),
    [
        ({"tools": ["lookup_ordr"]}, "error", "faults[0] (typo).target.tools[0]", "'lookup_ordr' matches no tool"),
        ({"tools": ["*", "refund_*"]}, "error", "faults[0] (typo).target.tools[1]", "'refund_*' matches no tool"),
        ({"models": ["balnced"]}, "error", "faults[0] (typo).target.models[0]", "'balnced' matches no model"),
    ],
)
def test_a_fault_target_matching_nothing_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: dict, kind: str, place: str, fragment: str
) -> None:
    plan = write(tmp_path, "plan.yaml", {"faults": [{"id": "typo", "target": target, "kind": kind}]})
    out = tmp_path / "out"
    code, err = run_cli(capsys, "run", SUITE, "--faults", plan, "--only", "lookup-001", "--out", str(out), "--quiet")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"agentlab: error: {plan}: {place}: {fragment}")
    assert not out.exists()


def test_fault_targets_that_match_are_accepted_globs_tier_models_and_providers(tmp_path: Path) -> None:
    plan = error().on(tools("lookup_*")) | error().on(models("sim-powerful")) | error().on(models("fast"))
    result = run_suite(RunOptions(suite=SUITE, faults=plan, only=["lookup-001"], out=str(tmp_path), progress=False))
    assert result.summary["episodes"] == 1


def test_a_provider_target_matching_nothing_is_an_error_in_a_python_plan(tmp_path: Path) -> None:
    from agentlab.faults import http_429

    plan = http_429().on(providers("opneai"))
    opts = RunOptions(suite=SUITE, llm="sim-openai", faults=plan, only=["lookup-001"], out=str(tmp_path / "o"))
    with pytest.raises(InputError, match=r"target\.providers\[0\]: 'opneai' matches no provider"):
        run_suite(opts)
    assert not (tmp_path / "o").exists()


# --- policies --------------------------------------------------------------------------------------


def policy_with(tmp_path: Path, **changes: Any) -> str:
    policy = yaml.safe_load(POLICY.read_text())
    policy.update(changes)
    return write(tmp_path, "policy.yaml", policy)


def test_a_policy_rule_naming_an_unknown_tool_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = [*yaml.safe_load(POLICY.read_text())["rules"], {"role": "senior", "tool": "issue_refnd", "effect": "ask"}]
    policy = policy_with(tmp_path, rules=rules)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "run", SUITE, "--policy", policy, "--only", "lookup-001", "--out", str(out), "--quiet")
    assert code == 2
    assert (
        err
        == f"agentlab: error: {policy}: rules[{len(rules) - 1}].tool: 'issue_refnd' matches no tool"
        + err[err.index(" (tools: ") :]
    )
    assert err.count("\n") == 1
    assert not out.exists()


def test_a_policy_rule_naming_an_unknown_role_is_a_one_line_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warning, not an error: one policy may serve suites with different roles."""
    policy = policy_with(tmp_path, rules=[{"role": "senoir", "tool": "*", "effect": "allow"}])
    out = tmp_path / "out"
    code, err = run_cli(capsys, "run", SUITE, "--policy", policy, "--only", "lookup-001", "--out", str(out), "--quiet")
    assert code == 0
    assert (out / "summary.json").exists()
    assert err.count("\n") == 1
    assert err.startswith(f"agentlab: warning: {policy}: rules[0].role: 'senoir' matches no role of this suite")


def test_the_shipped_policy_draws_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    code, err = run_cli(capsys, "run", SUITE, "--policy", str(POLICY), "--only", "lookup-001", "--out", out, "--quiet")
    assert (code, err) == (0, "")


@pytest.mark.parametrize("limit", [-1, -0.01, float("nan")])
def test_a_negative_approval_limit_is_an_error(tmp_path: Path, limit: float) -> None:
    policy = policy_with(tmp_path, approval_limit_usd=limit)
    with pytest.raises(InputError, match=r"approval_limit_usd: Input should be greater than or equal to 0") as info:
        load_policy(policy)
    assert info.value.file == policy


# --- tiers -----------------------------------------------------------------------------------------


def tiers_with_error_modes(tmp_path: Path, tier: str, p_correct: float, weights: dict[str, float]) -> str:
    table = yaml.safe_load(TIERS.read_text())
    table["tiers"][tier].update(p_correct=p_correct, error_modes=weights)
    return write(tmp_path, "tiers.yaml", table)


ZERO = dict.fromkeys(
    ["wrong_tool", "wrong_arg", "missing_arg", "skipped_step", "malformed_json", "hallucinated_success"], 0
)


def test_a_tier_whose_error_weights_are_all_zero_is_an_error(tmp_path: Path) -> None:
    path = tiers_with_error_modes(tmp_path, "fast", 0.6, ZERO)
    with pytest.raises(InputError, match=r"error_modes: every weight is 0, but p_correct 0\.6 < 1") as info:
        load_tiers(path)
    assert (info.value.file, info.value.place) == (path, "tiers.fast")


def test_zero_error_weights_are_fine_for_a_tier_that_never_errs(tmp_path: Path) -> None:
    assert load_tiers(tiers_with_error_modes(tmp_path, "fast", 1.0, ZERO)).tiers["fast"].p_correct == 1.0
