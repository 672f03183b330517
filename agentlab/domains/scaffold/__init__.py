"""``agentlab init DIR``: a user's own domain, ready to run (tools.py, world.yaml, suite.yaml, policy.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

from agentlab.errors import InputError

TEMPLATE = Path(__file__).parent / "template"
FILES = ("tools.py", "world.yaml", "suite.yaml", "policy.yaml", "tiers.yaml", "prices.yaml")


def init_domain(target: str | Path, *, force: bool = False) -> list[Path]:
    """Write the scaffold into ``target``; an existing scaffold file is kept unless ``force`` (nothing is written
    then). Returns the files written."""
    target = Path(target)
    clashes = [name for name in FILES if (target / name).exists()]
    if clashes and not force:
        raise InputError(str(target), "", f"already holds {', '.join(clashes)} (--force replaces them)")
    if target.exists() and not target.is_dir():
        raise InputError(str(target), "", "not a directory")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        shutil.copyfile(TEMPLATE / name, target / name)
        written.append(target / name)
    return written
