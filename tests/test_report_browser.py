"""The report as a person sees it: opened in headless Chromium, not blank, every chart decoded."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from agentlab.analysis.report import write_report
from agentlab.faults.presets import transient
from agentlab.runs import RunOptions, run_suite

SUITE = str(Path(__file__).resolve().parents[1] / "fixtures/suites/support.yaml")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does this)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120, check=False
        )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    breaker_plan = transient(0.4)  # heavy enough that breakers trip: the timeline chart appears too
    for name, resilience in (("resilience-on", True), ("resilience-off", False)):
        run_suite(
            RunOptions(
                suite=SUITE,
                faults=breaker_plan,
                resilience=resilience,
                seed=1,
                epochs=2,
                out=str(root / name),
                progress=False,
            )
        )
    return write_report([root / "resilience-on", root / "resilience-off"], root / "report.html")


def test_every_chart_renders(report: Path) -> None:
    html = report.read_text()
    expected = html.count('src="data:image/png;base64,')
    # categories, pass^k, resilience on/off, costs, latency, faults, and at least one breaker timeline
    assert expected >= 7
    dom = chromium("--dump-dom", report.as_uri()).stdout
    found = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert found, "the page's image self-check did not run"
    assert (int(found.group(1)), int(found.group(2))) == (expected, expected)
    assert f"All {expected} charts rendered." in dom
    assert "Δ resilience-off − resilience-on" in dom
    for anchor in ("options", "pass-k", "resilience", "costs", "latency", "faults", "breakers", "worst"):
        assert f'id="{anchor}"' in dom, anchor


def test_the_page_is_not_blank(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium("--window-size=1280,2000", f"--screenshot={shot}", report.as_uri())
    image = Image.open(shot).convert("L")
    dark = sum(image.histogram()[:200])  # pixels darker than near-white
    assert dark / (image.width * image.height) > 0.02, "the screenshot is (nearly) blank"
