"""The HTML report opened in a real headless Chromium: the charts and the phone screens render, the page
fetches nothing but itself, and a screenshot is kept (in tmp_path, and in $AFGW_ARTEFACTS when set)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator import report_html
from simulator.report import Report
from tests.conftest import require_peer
from tests.simulator.sample_report import sample_report

#: Debian's chromium, kept from phoning home: no background networking, component updates, sync.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_peer("chromium")
    chromedriver = require_peer("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, Report]:
    report = sample_report()
    path = tmp_path / "report.html"
    path.write_text(report_html.render(report), "utf-8")
    return path, report


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_report_renders_its_charts_and_phone_screens(browser: Any, page: tuple[Path, Report]) -> None:
    from selenium.webdriver.common.by import By

    path, report = page
    browser.get(path.as_uri())

    # Interceptions over time: one bar per category and bucket with any, adding up to the report's total.
    bars = browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart="interceptions"] rect[data-count]')
    cells = sum(1 for series in report.interceptions.by_category.values() for n in series if n)
    assert len(bars) == cells
    assert sum(int(bar.get_attribute("data-count")) for bar in bars) == report.interceptions.total
    assert all(bar.rect["height"] > 0 and bar.rect["width"] > 0 for bar in bars)
    shown = {bar.get_attribute("data-category") for bar in bars}
    assert shown == set(report.interceptions.by_category)

    # The funnel narrows as the cases do.
    stages = browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart="funnel"] rect[data-stage]')
    assert [(s.get_attribute("data-stage"), int(s.get_attribute("data-count"))) for s in stages] == [
        (stage, n) for stage, n in report.dissuasion.funnel
    ]
    widths = [s.rect["width"] for s in stages]
    assert widths == sorted(widths, reverse=True)
    assert widths[0] > widths[-1] > 0

    for chart, series in (("latency-smpp", report.smpp_latency), ("latency-invite", report.invite_latency)):
        histogram = browser.find_elements(By.CSS_SELECTOR, f'svg[data-chart="{chart}"] rect[data-count]')
        assert sum(int(r.get_attribute("data-count")) for r in histogram) == len(series.samples_ms)

    # Each sampled handset is a phone screen listing what the person saw, in order.
    phones = browser.find_elements(By.CSS_SELECTOR, ".phone[data-subscriber]")
    assert [p.get_attribute("data-subscriber") for p in phones] == [t.subscriber for t in report.timelines]
    for phone, timeline in zip(phones, report.timelines, strict=True):
        kinds = [e.get_attribute("data-kind") for e in phone.find_elements(By.CSS_SELECTOR, ".entry[data-kind]")]
        assert kinds == [e.kind for e in timeline.entries]
        assert phone.rect["height"] > 300
    ringing = phones[0].find_element(By.CSS_SELECTOR, ".entry.call_ringing")
    assert "公安反诈专号" in ringing.text
    assert ringing.find_element(By.CSS_SELECTOR, ".verified").is_displayed()
    flash = phones[0].find_element(By.CSS_SELECTOR, ".entry.flash")
    assert "公检法不会要求转账到安全账户" in flash.text
    assert "<b>" in phones[1].find_element(By.CSS_SELECTOR, ".entry.sms_tagged").text  # shown as text, not markup

    # Nothing but the file itself was requested, and nothing complained (a CSP violation would).
    assert _requests(browser) == [path.as_uri()]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, height)
    screenshot = path.with_name("report.png")
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if artefacts := os.environ.get("AFGW_ARTEFACTS"):
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(artefacts) / "report.png")
        shutil.copy(path, Path(artefacts) / "report.html")
