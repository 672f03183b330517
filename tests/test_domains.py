"""Domains: the core names no domain's tools, a user's domain runs from outside the repo, and `agentlab init`."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from agentlab.cli import main
from agentlab.domains import load_domain
from agentlab.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def test_no_module_outside_domains_names_a_support_tool() -> None:
    names = load_domain("support").tools.names()
    word = re.compile(r"\b(?:" + "|".join(names) + r")\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in sorted((ROOT / "agentlab").rglob("*.py"))
        if "domains" not in path.relative_to(ROOT / "agentlab").parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if word.search(line)
    ]
    assert offenders == []


# A whole domain, written by a user outside the repo: tools, world, suite (the test's 60-line budget).
TOOLS = '''
from agentlab.domains import Domain, claim
from agentlab.errors import ToolFailed
from agentlab.tools import ToolRegistry
from agentlab.tools.world_tool import record_effect, world_tool
from agentlab.world import Row, WorldSchema

class Book(Row):
    title: str
    loaned: bool = False

tools = ToolRegistry()

@world_tool(tools, permissions=["read"])
def find_book(ctx, book_id: str) -> dict:
    """Look a book up."""
    return ctx.world.one("SELECT * FROM books WHERE id = ?", book_id) or {}

@world_tool(tools, permissions=["lend"], side_effects=True)
def lend_book(ctx, book_id: str) -> dict:
    """Lend a book that is on the shelf."""
    if ctx.world.one("SELECT loaned FROM books WHERE id = ?", book_id)["loaned"]:
        raise ToolFailed(f"{book_id} is out")
    ctx.world.execute("UPDATE books SET loaned = 1 WHERE id = ?", book_id)
    record_effect(ctx, "lend_book", {"book_id": book_id})
    return {"book_id": book_id, "loaned": True}

domain = Domain(name="library", tools=tools, world=WorldSchema({"books": Book}), system_prompt="You lend books.",
                claims={"lend_book": claim(r"lent\\b")})
'''
SUITE = """
suite: library
domain: library.py:domain
world: world.yaml
roles: {member: [read, lend]}
defaults: {role: member}
scenarios:
  - {id: find, user: {id: U-1}, request: "Is BK-2 on the shelf?",
     gold: {steps: [{id: b, tool: find_book, args: {book_id: BK-2}}], answer: "BK-2 is out."}}
  - {id: lend, category: conditional_action, user: {id: U-1}, request: "Lend me BK-1 if it is on the shelf.",
     gold: {steps: [{id: b, tool: find_book, args: {book_id: BK-1}},
                    {id: l, tool: lend_book, args: {book_id: BK-1}}], answer: "I've lent you BK-1."}}
"""


def test_a_domain_written_outside_the_repo_runs_and_survives_a_chaos_search(tmp_path: Path, capsys) -> None:
    home = tmp_path / "library"
    home.mkdir()
    (home / "library.py").write_text(TOOLS)
    (home / "world.yaml").write_text("books: [{id: BK-1, title: Dune}, {id: BK-2, title: Emma, loaned: true}]\n")
    (home / "suite.yaml").write_text(SUITE)
    for name in ("tiers.yaml", "prices.yaml"):
        (home / name).write_bytes((FIXTURES / name).read_bytes())
    assert len(TOOLS.strip().splitlines()) + len(SUITE.strip().splitlines()) + 1 < 60

    assert main(["run", str(home / "suite.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = orjson.loads((tmp_path / "run" / "summary.json").read_bytes())
    assert summary["episodes"] == 2 and summary["success_rate"] > 0
    capsys.readouterr()
    code = main(["chaos", str(home / "suite.yaml"), "--examples", "6", "--seed", "3", "--quiet",
                 "--repro-dir", str(tmp_path / "repro")])  # fmt: skip
    result = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["passed"] and result["examples"] == 6


def test_agentlab_init_scaffolds_a_domain_that_runs_at_once(tmp_path: Path, capsys) -> None:
    assert main(["init", str(tmp_path / "mine")]) == 0
    suite = tmp_path / "mine" / "suite.yaml"
    assert main(["run", str(suite), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = orjson.loads((tmp_path / "run" / "summary.json").read_bytes())
    assert summary["episodes"] == 6 and summary["success_rate"] >= 0.5
    # A second init refuses to overwrite the user's files.
    assert main(["init", str(tmp_path / "mine")]) == 2
    assert "already holds tools.py" in capsys.readouterr().err


def test_an_unknown_domain_is_one_line_naming_the_suite(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        (FIXTURES / "suites" / "support.yaml").read_text().replace("suite: support", "suite: x\ndomain: nope")
    )
    with pytest.raises(InputError, match=r"no domain named 'nope'"):
        from agentlab.scenarios.loader import load_suite

        load_suite(suite)


def test_a_user_domains_code_is_part_of_the_run_id(tmp_path: Path) -> None:
    from agentlab.runs import RunOptions, plan_run

    for name in ("a", "b", "c"):
        assert main(["init", str(tmp_path / name)]) == 0
    tools = tmp_path / "c" / "tools.py"
    tools.write_text(tools.read_text() + "\n# one changed line of the user's tools\n")
    ids = {name: plan_run(RunOptions(suite=str(tmp_path / name / "suite.yaml"))).run_id for name in ("a", "b", "c")}
    # The same files in another folder are the same run; a change to the domain's code is another run.
    assert ids["a"] == ids["b"] and ids["c"] != ids["a"]
