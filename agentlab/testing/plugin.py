"""pytest plugin (registered through the ``pytest11`` entry point): the ``chaos`` fixture and the profiles.

Profiles (select with ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE=NAME``, or
``settings.load_profile``):

* ``agentlab-ci`` — derandomized (the same examples on every CI run, so a red build is reproducible),
  no example database, no deadline (one example is several simulated runs);
* ``agentlab-deep`` — random, 10,000 examples: what ``agentlab chaos --examples 10000`` runs.

Example counts per test are set by the tests themselves with ``@settings(max_examples=...)`` on top of
the loaded profile, so that the CI profile's total stays within a few minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from agentlab.testing.harness import ChaosHarness

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("agentlab-ci", derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("agentlab-deep", max_examples=10_000, **_COMMON)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosHarness]:
    """A :class:`ChaosHarness` shared by the session (session-scoped, so hypothesis may reuse it across
    examples); runs go to a RAM-backed scratch folder, reproduction files under pytest's temp dir."""
    repro: Path = tmp_path_factory.mktemp("chaos-repro")
    harness = ChaosHarness(repro_dir=repro, mutant=os.environ.get("AGENTLAB_MUTANT"))
    yield harness
    harness.close()
