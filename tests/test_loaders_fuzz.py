"""Chaos for the input loaders: generated malformed YAML never escapes as anything but an InputError.

Every loader a user's file reaches — suite, world, tiers, prices, policy, fault plan, cassette — is fed
documents hypothesis builds: random structures (wrong types, missing keys, huge integers, NaN, random
scalars), a shipped fixture with one node replaced or deleted, deep nesting, random text, and bytes that are
not UTF-8. A loader may accept a document or raise :class:`InputError` (one line: file, place, problem);
any other exception is a traceback the user would see, and fails the test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentlab.components.policy import load_policy
from agentlab.errors import InputError
from agentlab.faults.plan import load_fault_plan
from agentlab.llm.pricing import load_prices
from agentlab.llm.replay.cassette import read_cassette
from agentlab.llm.tiers import load_tiers
from agentlab.scenarios.loader import load_suite

ROOT = Path(__file__).resolve().parents[1]

# Keys the loaders look for, so random mappings often reach past the first check into the models.
KEYS = (
    "suite",
    "version",
    "world",
    "scenarios",
    "id",
    "user",
    "role",
    "permissions",
    "text",
    "gold",
    "steps",
    "tool",
    "args",
    "answer",
    "roles",
    "defaults",
    "budget_usd",
    "max_turns",
    "extends",
    "environment",
    "category",
    "tags",
    "customers",
    "orders",
    "products",
    "refunds",
    "name",
    "email",
    "total",
    "status",
    "tiers",
    "default",
    "model",
    "input_per_1k",
    "output_per_1k",
    "latency",
    "median_s",
    "p95_s",
    "p_correct",
    "error_modes",
    "wrong_tool",
    "rules",
    "effect",
    "resource",
    "reason",
    "approval_limit_usd",
    "faults",
    "target",
    "tools",
    "models",
    "providers",
    "kind",
    "rate",
    "window",
    "start_s",
    "end_s",
    "every_nth",
    "burst",
    "count",
    "scope",
    "params",
    "input",
    "output",
    "cached_input",
    "aliases",
    "interactions",
    "request",
    "response",
    "method",
    "uri",
    "body",
    "headers",
    "string",
    "code",
    "message",
    "metadata",
    "recorded_with",
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.integers(min_value=2**63, max_value=2**256) | st.integers(max_value=-(2**63), min_value=-(2**256)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(KEYS),
    st.sampled_from(["*", "", "~", "0x1F", "1e400", "-.inf", ".nan", "2026-01-01", "yes", "\x00"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner),
    max_leaves=25,
)


def _dump(value: Any) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False).encode()


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one node, found by a random walk from the root, replaced by a random value or deleted."""
    doc = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    parent, key, node = None, None, doc
    while isinstance(node, dict | list) and node and draw(st.integers(0, 3)) > 0:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if parent is None:
        return draw(VALUES)
    if draw(st.booleans()):
        parent[key] = draw(VALUES)
    elif isinstance(parent, dict):
        del parent[key]
    else:
        parent.pop(key)
    return doc


def documents(base: Any) -> st.SearchStrategy[bytes]:
    """Malformed YAML documents, as bytes, around a valid ``base``."""
    nested = st.integers(min_value=10, max_value=20_000)
    return st.one_of(
        VALUES.map(_dump),
        mutated(base).map(_dump),
        mutated(base)
        .map(_dump)
        .flatmap(  # a byte that is not UTF-8, somewhere in an otherwise good document
            lambda doc: st.tuples(st.integers(0, len(doc)), st.sampled_from([b"\xff", b"\xc3", b"\x80\x80"])).map(
                lambda at: doc[: at[0]] + at[1] + doc[at[0] :]
            )
        ),
        nested.map(lambda n: b"[" * n + b"]" * n),
        nested.map(lambda n: b"{a: " * n + b"1" + b"}" * n),
        nested.map(lambda n: "".join(f"{' ' * i}k:\n" for i in range(min(n, 3000))).encode() + b" " * 3000 + b"v\n"),
        st.text(max_size=80).map(str.encode),
        st.binary(max_size=80),
    )


def _fixture(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


SUITE = _fixture("fixtures/suites/support.yaml")
SUITE["scenarios"] = SUITE["scenarios"][:3]  # a few scenarios keep each example cheap
SUITE["world"] = str(ROOT / "fixtures/worlds/support.yaml")
WORLD = _fixture("fixtures/worlds/support.yaml")
WORLD = {table: rows[:2] for table, rows in WORLD.items()}


def _load_world(path: Path) -> Any:
    suite = path.with_name("suite.yaml")
    suite.write_bytes(_dump({**SUITE, "world": path.name}))
    return load_suite(suite)


LOADERS: dict[str, tuple[Callable[[Path], Any], Any]] = {
    "suite": (load_suite, SUITE),
    "world": (_load_world, WORLD),
    "tiers": (load_tiers, _fixture("fixtures/tiers.yaml")),
    "prices": (load_prices, _fixture("fixtures/prices.yaml")),
    "policy": (load_policy, _fixture("fixtures/policies/support.yaml")),
    "faults": (load_fault_plan, _fixture("fixtures/faults/transient-10.yaml")),
    "cassette": (read_cassette, _fixture("cassettes/openai/support/refund-cond-001_0.yaml")),
}


def _loads(name: str, doc: bytes) -> None:
    loader = LOADERS[name][0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_bytes(doc)
        try:
            loader(path)
        except InputError as exc:
            assert "\n" not in str(exc), f"an InputError must be one line: {exc!s}"
            assert exc.file, "an InputError names its file"


@pytest.mark.parametrize("name", list(LOADERS))
def test_the_valid_base_document_loads(name: str) -> None:
    """The fuzzer starts from documents that load, so a mutation is what breaks them."""
    loader, base = LOADERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_bytes(_dump(base))
        assert loader(path) is not None


# Cases the search found (or that probing around them found), kept so they are tried on every run.
FOUND = {
    "not UTF-8": b"suite: caf\xe9\n",
    "a control character": b"suite: \x1f\n",
    "a NUL": b"\x00",
    "deep nesting": b"[" * 50_000 + b"]" * 50_000,
    "a huge integer": b"rate: " + str(2**2000).encode() + b"\n",
}


@pytest.mark.parametrize("name", list(LOADERS))
@pytest.mark.parametrize("case", list(FOUND))
def test_known_malformed_documents(name: str, case: str) -> None:
    _loads(name, FOUND[case])


@pytest.mark.parametrize("key", ["world", "extends"])
def test_a_suite_path_holding_a_nul_is_an_input_error(key: str) -> None:
    with pytest.raises(InputError, match=f"{key}: not a valid path"):
        _loads_strict("suite", _dump({**SUITE, key: "a\x00b"}))


def _loads_strict(name: str, doc: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_bytes(doc)
        LOADERS[name][0](path)


def _fuzz(name: str) -> Callable[[], None]:
    @settings(
        max_examples=120,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(doc=documents(LOADERS[name][1]))
    def test(doc: bytes) -> None:
        _loads(name, doc)

    test.__name__ = f"test_malformed_{name}_is_only_ever_an_input_error"
    return test


test_malformed_suite_is_only_ever_an_input_error = _fuzz("suite")
test_malformed_world_is_only_ever_an_input_error = _fuzz("world")
test_malformed_tiers_is_only_ever_an_input_error = _fuzz("tiers")
test_malformed_prices_is_only_ever_an_input_error = _fuzz("prices")
test_malformed_policy_is_only_ever_an_input_error = _fuzz("policy")
test_malformed_faults_is_only_ever_an_input_error = _fuzz("faults")
test_malformed_cassette_is_only_ever_an_input_error = _fuzz("cassette")
