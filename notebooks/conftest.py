"""Notebook tests on a fresh clone: cells that need the real-cassette corpus skip when it is absent.

The corpus (recorded by other projects against the live APIs) lives beside the checkout in
``../shared/real-cassettes``, or wherever ``AGENTLAB_REAL_CASSETTES`` points; it is read in place and never
copied into the project, so a user's clone has none. A cell tagged ``real-cassettes`` prints a note instead
of its table then, which cannot match the stored output: nbval skips it, with the reason, rather than fail.
When the corpus is there the cell is checked like any other.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_CASSETTES = Path(os.environ.get("AGENTLAB_REAL_CASSETTES") or ROOT.parent / "shared" / "real-cassettes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REAL_CASSETTES.is_dir():
        return
    skip = pytest.mark.skip(reason=f"the real-cassette corpus {REAL_CASSETTES} is absent (AGENTLAB_REAL_CASSETTES)")
    for item in items:
        cell = getattr(item, "cell", None)  # an nbval notebook cell
        if cell is not None and "real-cassettes" in (cell.get("metadata", {}).get("tags") or []):
            item.add_marker(skip)
