"""The package's layers: nothing imports upward.

Each module of ``agentlab`` belongs to one layer (the longest prefix in LAYERS that names it); a module may import
from its own layer and the layers below, never from one above. Every import counts: module-level, inside a
function (a lazy import is still a dependency), and under ``if TYPE_CHECKING:`` (an annotation that names a higher
layer is a dependency of the design even if it costs nothing at run time). The graph is read from the source with
``ast``, so the test needs no imports of its own and sees imports that a run would never execute.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agentlab"

# Lowest first. Why this order: the simulation kernel (virtual clock, loop, seeded RNG) is under everything and
# imports nothing; the production agent sits on the components and knows nothing of scenarios, fault injection
# or the simulated model; orchestration (runs) assembles the agent with those test-harness pieces; sweeps, the
# server and chaos testing drive runs; the CLI and the ``agentlab`` façade are on top.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("agentlab.errors", "agentlab.version", "agentlab.yamlfile")),
    ("simulation kernel", ("agentlab.sim",)),
    ("trace", ("agentlab.trace",)),
    (
        "model vocabulary",
        ("agentlab.llm", "agentlab.llm.types", "agentlab.llm.tiers", "agentlab.llm.pricing", "agentlab.llm.history"),
    ),
    ("tools and world", ("agentlab.tools", "agentlab.world", "agentlab.scenarios.refs")),
    ("resilience", ("agentlab.resilience",)),
    ("components", ("agentlab.components",)),
    ("agent", ("agentlab.agent",)),
    ("domains", ("agentlab.domains",)),
    ("scenarios", ("agentlab.scenarios",)),
    ("model backends", ("agentlab.llm.sim", "agentlab.llm.wire", "agentlab.llm.providers", "agentlab.llm.replay")),
    ("faults", ("agentlab.faults",)),
    ("SDK stack", ("agentlab.llm.stack",)),
    ("views", ("agentlab.analysis", "agentlab.observe")),
    ("runs", ("agentlab.runs",)),
    ("services", ("agentlab.sweeps", "agentlab.serve", "agentlab.testing")),
    (
        "front ends",
        (
            "agentlab.analysis.report",
            "agentlab.analysis.sweep",
            "agentlab.notebook",
            "agentlab.bench",
            "agentlab.bench_replay",
            "agentlab.bench_serve",
            "agentlab.bench_sweep",
        ),
    ),
    ("entry points", ("agentlab", "agentlab.cli", "agentlab.cli_flags", "agentlab.__main__")),
]
# The package itself (its __init__, the façade) is named alone; as a prefix it would claim every module.
EXACT = {"agentlab"}


def layer_of(module: str) -> int | None:
    """The index of the layer whose longest prefix names ``module`` (None: no layer claims it)."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix not in EXACT and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, is_package: bool = False) -> list[tuple[str, int, str]]:
    """Every agentlab module ``source`` imports, as (target, line, kind); kind is module, function or
    type-checking. ``from agentlab import x`` counts as importing ``agentlab.x`` when x is a submodule."""
    found: list[tuple[str, int, str]] = []
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = kind
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "type-checking"
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and kind == "module":
                inner = "function"
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, inner) for a in child.names if a.name.split(".")[0] == "agentlab")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] == "agentlab":
                    targets = {f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in child.names}
                    found.extend((target, child.lineno, inner) for target in sorted(targets))
            visit(child, inner)

    visit(ast.parse(source), "module")
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()  # a package, or a namespace package (serve/)


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports in ``source`` (as module ``module``) that reach a higher layer, one line each."""
    own = layer_of(module)
    assert own is not None, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    problems = []
    for target, line, kind in imports_of(module, source, is_package):
        theirs = layer_of(target)
        assert theirs is not None, f"{module}:{line} imports {target}, which is in no layer"
        if theirs > own:
            problems.append(
                f"{module}:{line} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]}) at {kind} level"
            )
    return problems


def all_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(p), p) for p in PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name, _ in all_modules() if layer_of(name) is None]
    assert unplaced == []


def test_every_layer_prefix_names_a_module() -> None:
    stale = [prefix for _, prefixes in LAYERS for prefix in prefixes if not _is_module(prefix)]
    assert stale == []


def test_nothing_imports_upward() -> None:
    problems = [
        problem
        for name, path in all_modules()
        for problem in upward_imports(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    ]
    assert problems == [], "upward imports:\n" + "\n".join(problems)


def test_the_kernel_imports_nothing_from_agentlab() -> None:
    """Stricter than the layer rule: the simulation kernel does not even import the base layer."""
    kernel = [
        (name, path) for name, path in all_modules() if name == "agentlab.sim" or name.startswith("agentlab.sim.")
    ]
    assert {name for name, _ in kernel} == {
        "agentlab.sim",
        "agentlab.sim.clock",
        "agentlab.sim.loop",
        "agentlab.sim.rng",
    }
    imported = {
        target
        for name, path in kernel
        for target, _, _ in imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    }
    assert imported <= {"agentlab.sim.clock", "agentlab.sim.loop", "agentlab.sim.rng"}


@pytest.mark.parametrize(
    ("module", "source", "kind"),
    [
        ("agentlab.sim.clock", "from agentlab.runs.runner import run_suite\n", "module"),
        ("agentlab.agent.system", "def f():\n    from agentlab.faults.plan import FaultPlan\n", "function"),
        (
            "agentlab.components.policy",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agentlab.scenarios.model import Suite\n",
            "type-checking",
        ),
        ("agentlab.runs.runner", "import agentlab.cli\n", "module"),
        ("agentlab.trace.events", "from agentlab import sweeps\n", "module"),
        ("agentlab.llm.tiers", "from ..runs import options\n", "module"),
    ],
)
def test_an_upward_import_is_caught(module: str, source: str, kind: str) -> None:
    """The checker itself can fail: an upward import of each kind, in a made-up source, is reported."""
    problems = upward_imports(module, source)
    assert len(problems) == 1 and f"at {kind} level" in problems[0]


def test_a_downward_import_passes() -> None:
    assert upward_imports("agentlab.runs.runner", "from agentlab.sim.clock import Clock\nimport agentlab.agent\n") == []
