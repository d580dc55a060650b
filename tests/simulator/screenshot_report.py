"""Take a screenshot of an HTML report with Debian's chromium (Selenium and chromium-driver), as
the README's picture of the demo report was taken:

    .venv/bin/afgw demo --html /tmp/report.html
    .venv/bin/python -m tests.simulator.screenshot_report /tmp/report.html docs/demo-report.png
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.simulator.test_report_browser import CHROMIUM_FLAGS


def screenshot(page: Path, out: Path, *, width: int = 1280, height: int = 1700) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
