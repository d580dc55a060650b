"""`make demo` (``afgw demo``) plays the default scenario in full through the real gateway: it exits 0
when the expectations hold, writes the JSON keys DESIGN.md promises and the HTML page, prints the
report the README shows, and takes under a minute of real time on an idle two-core machine (the time
is printed here, not asserted: the suite's machine is shared)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.report import design_keys
from tests.simulator.demo_counts import planned_sms
from tests.simulator.test_report_browser import browser

__all__ = ["browser"]  # the fixture, shared with the sample report's browser test

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, object]
    html: str
    seconds: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    tmp = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--json", str(tmp / "r.json"), "--html", str(tmp / "r.html")],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    seconds = time.monotonic() - started
    print(f"afgw demo took {seconds:.1f} s")
    report = json.loads((tmp / "r.json").read_text()) if (tmp / "r.json").exists() else {}
    html = (tmp / "r.html").read_text() if (tmp / "r.html").exists() else ""
    return DemoRun(proc.returncode, proc.stdout, proc.stderr, report, html, seconds)


@pytest.mark.timeout(450)
def test_the_demo_meets_the_default_scenarios_expectations_and_writes_the_promised_keys(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr[-3000:]
    for section, keys in design_keys().items():
        assert set(keys) <= set(demo.report[section]), section  # type: ignore[arg-type]
    sms, calls = demo.report["sms"], demo.report["calls"]
    assert isinstance(sms, dict)
    assert isinstance(calls, dict)
    assert (sms["submitted"], sms["fraud_total"]) == planned_sms()
    assert sms["passed"] + sms["tagged"] + sms["warned"] + sms["blocked"] == sms["submitted"]
    assert calls["spoof_rejected"] == calls["spoof_attempts"] == 10
    assert "not measured" not in demo.stdout
    assert "<svg" in demo.html
    assert "Expectations" in demo.stdout
    assert "6 of 6 held" in demo.stdout


def label(line: str) -> str:
    """What a report line says, without its figures: the words before the first number."""
    return re.split(r"[\d#]", line.strip(), maxsplit=1)[0].strip()


def readme_demo_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- demo output -->")
    block = text[start:].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip() and line.strip() != "..."]


@pytest.mark.timeout(450)
def test_the_readmes_demo_output_has_the_labels_of_a_real_run(demo: DemoRun) -> None:
    real = {label(line) for line in demo.stdout.splitlines()}
    shown = [line for line in readme_demo_lines() if label(line)]
    assert len(shown) >= 20
    missing = [line for line in shown if label(line) not in real]
    assert missing == []


@pytest.mark.timeout(450)
def test_the_demos_page_draws_its_charts_and_handsets_in_chromium(demo: DemoRun, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "demo.html"
    page.write_text(demo.html, "utf-8")
    browser.get(page.as_uri())
    bars = browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart="interceptions"] rect[data-count]')
    sms, calls = demo.report["sms"], demo.report["calls"]
    assert isinstance(sms, dict)
    assert isinstance(calls, dict)
    caught = sms["tagged"] + sms["warned"] + sms["blocked"] + calls["warned"] + calls["blocked"]
    assert sum(int(bar.get_attribute("data-count")) for bar in bars) == caught > 0
    phones = browser.find_elements(By.CSS_SELECTOR, ".phone[data-subscriber]")
    timelines = demo.report["timelines"]
    assert isinstance(timelines, list)
    assert [p.get_attribute("data-subscriber") for p in phones] == [t["subscriber"] for t in timelines]
    assert all(p.rect["height"] > 300 for p in phones)
    verified = browser.find_elements(By.CSS_SELECTOR, ".entry.call_ringing .verified")
    assert verified
    assert all(v.is_displayed() for v in verified)
    browser.set_window_size(1280, browser.execute_script("return document.documentElement.scrollHeight"))
    shot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(shot))
    if artefacts := os.environ.get("AFGW_ARTEFACTS"):
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artefacts) / "demo-report.png")
