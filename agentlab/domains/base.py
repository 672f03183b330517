"""A domain: everything agentlab knows about one business, in one value the generic agent receives.

The agent, the simulator, fault injection, grading and chaos testing are the same for every business. What
differs is here: the tools and the world they act on, the agent's instructions, the rules a call must meet
beyond its permissions, what an answer may claim, and how the simulated world misbehaves by default. The
built-in support shop and travel desk are domains like any a user writes; they load the same way, through
the ``agentlab.domains`` entry point group or a ``module:attr`` / ``file.py:attr`` reference in a suite.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.components.evaluator import CLAIM_LEAD
from agentlab.components.policy import Constraint
from agentlab.errors import InputError
from agentlab.tools.registry import ToolRegistry, ToolSpec
from agentlab.world.model import Environment
from agentlab.world.schema import WorldSchema

ENTRY_POINTS = "agentlab.domains"

# (tool the model wrongly chose, the gold step's arguments, the request) -> that tool's arguments, or None when
# the simulated model cannot make up a plausible call of that tool (it then calls it with no arguments at all,
# which the agent rejects as invalid).
MistakeArgs = Callable[[str, dict[str, Any], str], "dict[str, Any] | None"]


def claim(verb_phrase: str) -> re.Pattern[str]:
    """A claim pattern: "I've"/"I have" followed by ``verb_phrase`` (a regex), case-insensitive.

    An answer matching it asserts an action; the Evaluator fails it unless the tool really succeeded.
    """
    return re.compile(CLAIM_LEAD + verb_phrase, re.I)


@dataclass(frozen=True, eq=False)
class Domain:
    """One business the agent can work in.

    ``constraints`` maps a tool to checks of its arguments against the world (see
    :mod:`agentlab.components.policy`); ``constraint_roles`` are the roles those checks give a meaning to.
    ``resource_keys`` lists (argument, kind) pairs: the first argument present names the resource a policy rule
    matches (``order_id`` → ``order:ORD-1004``). ``claims`` maps an action tool to the phrases that claim it
    happened. ``corruptions`` says how a ``wrong_result`` fault falsifies a text field: field → (value to put,
    value to put when it already holds that one). ``mistake_args`` lets the simulated model make a plausible
    wrong call of a tool (default :func:`default_wrong_call_args`: a ``query`` tool gets the request, a tool whose
    required arguments the right call also has gets those). ``made_up`` gives, per result field, the plausible
    values the simulated model invents for it when it hallucinates an answer (``status`` → the domain's statuses).
    """

    name: str
    tools: ToolRegistry
    world: WorldSchema
    system_prompt: str
    environment: Environment = field(default_factory=Environment)
    constraints: Mapping[str, tuple[Constraint, ...]] = field(default_factory=dict)
    constraint_roles: frozenset[str] = frozenset()
    resource_keys: tuple[tuple[str, str], ...] = ()
    claims: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    corruptions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    mistake_args: MistakeArgs | None = None
    made_up: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        for tool in [*self.constraints, *self.claims]:
            if tool not in self.tools:
                raise ValueError(
                    f"domain {self.name!r}: {tool!r} names no tool (tools: {', '.join(self.tools.names())})"
                )

    def resource_of(self, args: dict[str, Any]) -> str:
        """The resource a call acts on, from its arguments (the first of ``resource_keys`` present), or ``*``."""
        for key, kind in self.resource_keys:
            if key in args:
                return f"{kind}:{args[key]}"
        return "*"

    def wrong_call_args(self, tool: str, gold_args: dict[str, Any], request: str) -> dict[str, Any] | None:
        """Arguments for a wrong choice of ``tool`` by the simulated model (see ``mistake_args``)."""
        if self.mistake_args is not None:
            return self.mistake_args(tool, gold_args, request)
        return default_wrong_call_args(self.tools[tool], gold_args, request)

    def __repr__(self) -> str:
        return f"Domain({self.name!r}, {len(self.tools)} tools, {self.world!r})"


def default_wrong_call_args(spec: ToolSpec, gold_args: dict[str, Any], request: str) -> dict[str, Any] | None:
    """A domain's wrong call of ``spec`` unless its ``mistake_args`` says otherwise: a ``query`` tool searches the
    request; a tool whose required arguments the right call also has gets those; any other, no call (None). A
    domain's own ``mistake_args`` may call it for the tools it has nothing to add for."""
    required = spec.required_args
    if required == ["query"]:
        return {"query": request[:60]}
    if required and all(name in gold_args for name in required):
        return {name: gold_args[name] for name in required}
    return None


_loaded: dict[str, Domain] = {}
_sources: dict[Domain, str] = {}  # source_digest of each domain load_domain returned (Domain hashes by identity)


def available_domains() -> list[str]:
    """Names of the domains installed packages declare (entry point group ``agentlab.domains``)."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)})


def load_domain(ref: str, *, base: Path | None = None, file: str = "", place: str = "domain") -> Domain:
    """The domain ``ref`` names: an installed domain's name (``support``), ``package.module:attr``, or
    ``path/to/file.py:attr`` (relative to ``base``, the suite's folder). ``attr`` defaults to ``domain``.
    Problems are one :class:`InputError` naming ``file`` and ``place``."""
    key = ref if base is None else f"{base}|{ref}"
    found = _loaded.get(key)
    if found is not None:
        return found

    def fail(problem: str) -> InputError:
        return InputError(file or ref, place, problem)

    target, _, attr = ref.partition(":")
    attr = attr or "domain"
    try:
        if target.endswith(".py"):
            path = (base / target if base is not None else Path(target)).resolve()
            if not path.is_file():
                raise fail(f"domain file {target} not found")
            module = _import_file(path)
        elif ":" in ref or "." in target:
            module = importlib.import_module(target)
        else:
            points = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINTS) if ep.name == ref]
            if not points:
                known = ", ".join(available_domains()) or "none installed"
                raise fail(
                    f"no domain named {ref!r} (installed: {known}; a package declares one in the "
                    f"{ENTRY_POINTS!r} entry point group, or name it as module:attr or file.py:attr)"
                )
            value = points[0].load()
            module, attr = importlib.import_module(points[0].module), ""
    except InputError:
        raise
    except Exception as exc:  # a user's module failing to import is their bug, but still one line
        raise fail(f"cannot load domain {ref!r}: {type(exc).__name__}: {exc}") from None
    if attr:
        value = getattr(module, attr, None)
        if value is None:
            raise fail(f"{target} has no attribute {attr!r}")
    if callable(value) and not isinstance(value, Domain):
        value = value()
    if not isinstance(value, Domain):
        raise fail(f"{ref!r} is a {type(value).__name__}, not an agentlab Domain")
    _sources[value] = _source_digest(module)
    _loaded[key] = value
    return value


def source_digest(domain: Domain) -> str:
    """A hash of the code of a domain loaded from outside agentlab ("" for agentlab's own, whose code the
    version covers): part of a suite's digest, so a run id changes when the user's tools change."""
    return _sources.get(domain, "")


def _source_digest(module: Any) -> str:
    # The whole package a domain lives in (its tools may sit in a sibling module), or its one file.
    path = Path(getattr(module, "__file__", "") or "")
    if not path.is_file() or Path(__file__).resolve().parents[1] in path.resolve().parents:
        return ""
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path.parent).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _import_file(path: Path) -> Any:
    """Import a user's domain file once, under a name derived from its path (so two files never collide)."""
    name = f"agentlab_user_domain_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
