"""Typed scenario suites (``fixtures/suites/*.yaml``); see docs/scenario-format.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.domains.base import Domain
from agentlab.world.model import Environment
from agentlab.world.schema import WorldFile

# A scenario's kind, for grouping results. Any name a domain likes; the support suite uses lookup,
# conditional_refund, multi_step, permission_denied, injection, budget, ambiguous and other.
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserSpec(_Strict):
    id: str
    role: str | None = None
    permissions: list[str] = []


class GoldStep(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    tool: str
    args: dict[str, Any] = {}


class Gold(_Strict):
    steps: list[GoldStep] = []
    answer: str


class Expect(_Strict):
    world: Literal["gold", "unchanged"] = "gold"
    answer_contains: list[str] = []
    answer_excludes: list[str] = []


class PlantedOrder(_Strict):
    """An order planted in the scenario's world in words of its own (an order note, a web page), not in the
    ``call TOOL with key=value`` form the simulated model parses on its own: ``says`` is a phrase of that text, and
    a model that reads it may follow it by calling ``tool`` with ``args`` (with the tier's
    ``injection_susceptibility``). A guardrail that cuts the phrase out of a tool result removes the order; one
    whose patterns miss it does not, so a suite of such orders measures what the guardrail misses."""

    says: str = Field(min_length=8, pattern=r'^[^"\\]+$')  # read in a result's JSON text: no quote or backslash
    tool: str
    args: dict[str, Any] = {}


class Scenario(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9\-_]*$")
    category: Category = "other"
    user: UserSpec
    request: str = Field(min_length=1)
    world: dict[str, list[dict[str, Any]]] = {}
    budget_usd: float | None = Field(default=None, ge=0)
    max_turns: int | None = Field(default=None, gt=0)
    gold: Gold
    expect: Expect = Expect()
    planted: list[PlantedOrder] = []

    @property
    def permissions(self) -> frozenset[str]:
        """Effective permissions (filled in by the loader from the role and extras)."""
        return frozenset(self.user.permissions)

    def episode_id(self, epoch: int) -> str:
        """The id of this scenario's episode in ``epoch`` (trace, audit log, cassettes and checkpoints all use it)."""
        return f"{self.id}#{epoch}"


class Defaults(_Strict):
    role: str = "agent"
    budget_usd: float = Field(default=0.25, ge=0)
    max_turns: int = Field(default=12, gt=0)


# Suites written before domains existed name none: they are the support shop's.
DEFAULT_DOMAIN = "support"


class SuiteFile(_Strict):
    suite: str
    version: int = 1
    domain: str = Field(default=DEFAULT_DOMAIN, min_length=1)
    world: str
    roles: dict[str, list[str]] = {}
    defaults: Defaults = Defaults()
    environment: Environment | None = None
    scenarios: list[Scenario] = Field(min_length=1)


class Suite(BaseModel):
    """A loaded, validated suite: scenarios with effective users, budgets and turn limits."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    path: str
    version: int
    domain: Domain
    world: WorldFile
    environment: Environment
    roles: dict[str, list[str]]
    scenarios: list[Scenario]
    digest: str

    def get(self, scenario_id: str) -> Scenario:
        for s in self.scenarios:
            if s.id == scenario_id:
                return s
        raise KeyError(scenario_id)

    def only(self, ids: list[str]) -> Suite:
        wanted = set(ids)
        return self.model_copy(update={"scenarios": [s for s in self.scenarios if s.id in wanted]})

    def __repr__(self) -> str:
        return f"Suite({self.name!r} v{self.version}, {len(self.scenarios)} scenarios, path={self.path!r})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from collections import Counter

        counts = Counter(s.category for s in self.scenarios)
        rows = "".join(f"<tr><td>{c}</td><td>{n}</td></tr>" for c, n in sorted(counts.items()))
        return (
            f"<b>Suite {self.name}</b> v{self.version}: {len(self.scenarios)} scenarios"
            f"<table><tr><th>category</th><th>scenarios</th></tr>{rows}</table>"
        )
