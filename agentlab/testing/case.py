"""A chaos case: everything one generated run is a function of, and how to replay it from the shell.

A case is plain data (pydantic), so hypothesis can generate and shrink it and a failure can be
written out as files: the fault plan as YAML (the format of ``fixtures/faults/``), the permission
policy as YAML if the case has one, and the one ``agentlab run`` command that reproduces the run.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agentlab.components.policy import Policy
from agentlab.faults.plan import FaultPlan
from agentlab.runs.options import RunOptions


class ChaosCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    scenarios: tuple[str, ...] = Field(min_length=1)
    epochs: int = Field(default=1, ge=1)
    seed: int = 0
    faults: FaultPlan = FaultPlan(name="chaos")
    policy: Policy | None = None
    approver: Literal["approve", "deny", "never"] = "approve"
    budget_session_usd: float | None = None
    budget_user_day_usd: float | None = None
    budget_user_month_usd: float | None = None
    routing: str | None = None
    # Where the resume invariant kills the run: this fraction of the way through its events.
    kill_at: float = Field(default=0.5, gt=0, le=1)
    durable_worlds: bool = False

    def faults_yaml(self) -> str:
        data = self.faults.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump({"name": self.faults.name, **data}, sort_keys=False, default_flow_style=None)

    def policy_yaml(self) -> str | None:
        if self.policy is None:
            return None
        return yaml.safe_dump(self.policy.model_dump(mode="json"), sort_keys=False, default_flow_style=None)

    def policy_file(self, folder: Path) -> Path | None:
        """The case's policy as a YAML file under ``folder`` (named by its content, written once)."""
        text = self.policy_yaml()
        if text is None:
            return None
        path = folder / f"policy-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def options(self, out: Path, policy_path: Path | None, *, durable: bool = False) -> RunOptions:
        return RunOptions(
            suite=self.suite,
            only=list(self.scenarios),
            epochs=self.epochs,
            seed=self.seed,
            faults=self.faults if self.faults else None,
            policy=str(policy_path) if policy_path else None,
            approver=self.approver,
            budget_session_usd=self.budget_session_usd,
            budget_user_day_usd=self.budget_user_day_usd,
            budget_user_month_usd=self.budget_user_month_usd,
            routing=self.routing,
            durable_worlds=durable,
            out=str(out),
            progress=False,
        )

    def write(self, folder: Path) -> tuple[Path, Path | None]:
        """Write ``faults.yaml`` (and ``policy.yaml``) into ``folder``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        faults = folder / "faults.yaml"
        faults.write_text(self.faults_yaml())
        policy = None
        if (text := self.policy_yaml()) is not None:
            policy = folder / "policy.yaml"
            policy.write_text(text)
        return faults, policy

    def command(
        self, faults: Path, policy: Path | None = None, *, out: Path | None = None, mutant: str | None = None
    ) -> str:
        """The ``agentlab run`` command that replays this case and checks its invariants."""
        parts = ["agentlab", "run", self.suite, "--faults", str(faults), "--seed", str(self.seed)]
        for scenario in self.scenarios:
            parts += ["--only", scenario]
        if self.epochs != 1:
            parts += ["--epochs", str(self.epochs)]
        if policy is not None:
            parts += ["--policy", str(policy)]
        if self.approver != "approve":
            parts += ["--approver", self.approver]
        for scope in ("session", "user_day", "user_month"):
            value = getattr(self, f"budget_{scope}_usd")
            if value is not None:
                parts += [f"--budget-{scope.replace('_', '-')}", repr(value)]
        if self.routing:
            parts += ["--routing", self.routing]
        if out is not None:
            parts += ["--out", str(out)]
        parts += ["--quiet", "--check"]
        command = shlex.join(parts)
        return f"AGENTLAB_MUTANT={mutant} {command}" if mutant else command
