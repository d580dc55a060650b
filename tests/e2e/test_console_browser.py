"""The anti-fraud desk in a real headless Chromium, on a running gateway.

One gateway (SMPP between a simulated ESME and SMSC, rules, SIP with a registered handset that never
answers, the robot caller, SQLite, events on a mosquitto of the test's own, the console on its HTTP
endpoint), its wall clock injected. An agent logs in, watches the overview's interception count
rise while fraud SMS go through, claims the escalated high-risk case and closes it; then the store,
the MQTT event and the robot (no further call once the next attempt would be due) say it is over.
A viewer forging a claim and a form without its CSRF token are refused in the same browser.
The screenshots of the queue and the case page are kept in tmp_path (and refreshed under
docs/console/ with AFGW_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConsoleAccountConfig, ConsoleConfig, HttpConfig, RulesConfig
from gateway.dissuasion.triggers import Trigger
from gateway.store.base import desk_holder
from gateway.web.console.auth import hash_password
from protocols.smpp.constants import CommandStatus
from simulator.behaviour import UNREACHABLE
from simulator.esme import SimulatedEsme
from tests.e2e.dissuasion_world import ROBOT, world
from tests.e2e.labels_harness import LabelsPki, make_labels_pki
from tests.simulator.test_report_browser import browser  # noqa: F401  (the Chromium fixture)

VICTIM = "8613800000001"
#: Posts a form to arguments[0] carrying the page's own CSRF token, as a forged click would.
POST_WITH_TOKEN = """
const form = document.createElement("form");
form.method = "post";
form.action = arguments[0];
const token = document.createElement("input");
token.type = "hidden";
token.name = "csrf";
token.value = document.querySelector("input[name=csrf]").value;
form.appendChild(token);
document.body.appendChild(form);
form.submit();
"""
#: What a page whose forms lost their CSRF token would send.
DROP_TOKENS = 'document.querySelectorAll("input[name=csrf]").forEach((input) => input.remove())'
FRAUD = "【公安局】您的身份信息涉嫌一起洗钱案件，请立即将名下资金转入安全账户配合调查，否则将冻结您的银行卡。"
ACCOUNTS = {"duty-agent": ("agent", "demo-agent-2026"), "duty-viewer": ("viewer", "demo-viewer-2026")}
CONSOLE = ConsoleConfig(
    accounts=tuple(ConsoleAccountConfig(n, role, hash_password(pw, n=1 << 10)) for n, (role, pw) in ACCOUNTS.items()),
    refresh_seconds=0.2,
)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("console-labels"))


class Page:
    """Selenium's blocking calls, each in a thread: the gateway serving the page runs on this loop."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver, self.base = driver, base

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(fn)

    async def open(self, path: str) -> None:
        await self.run(lambda: self.driver.get(self.base + path))

    async def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return str(await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text))

    async def fill(self, css: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).send_keys(value))

    async def click(self, css: str, *, loads: bool = True) -> None:
        """Click; with ``loads``, return once the next page has replaced this one."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def click() -> None:
            old = self.driver.find_element(By.TAG_NAME, "html")
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            if not loads:
                return

            def replaced(driver: Any) -> bool:
                try:
                    old.tag_name  # noqa: B018  (asks the browser whether the old page is still there)
                except WebDriverException:  # stale, or its node no longer in the document
                    return driver.execute_script("return document.readyState") == "complete"
                return False

            WebDriverWait(self.driver, 10, poll_frequency=0.05).until(replaced)

        await self.run(click)

    async def until_text(self, css: str, holds: Callable[[str], bool], within: float = 10.0) -> str:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def wait() -> str:
            def seen(driver: Any) -> str | bool:
                text = str(driver.find_element(By.CSS_SELECTOR, css).text)
                return text if holds(text) else False

            return str(WebDriverWait(self.driver, within, poll_frequency=0.05).until(seen))

        return str(await self.run(wait))

    async def screenshot(self, path: Path) -> None:
        def shoot() -> None:
            self.driver.execute_script("window.scrollTo(0, 0)")
            self.driver.save_screenshot(str(path))

        await self.run(shoot)


async def login(page: Page, name: str, password: str) -> None:
    await page.open("/console/login")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#login")


def keep(shot: Path) -> None:
    if os.environ.get("AFGW_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS / shot.name)


async def test_an_agent_watches_claims_and_closes_a_case_in_the_browser(
    browser: Any,  # noqa: F811
    pki: LabelsPki,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    http = HttpConfig("127.0.0.1", 0, console=CONSOLE)
    async with world(
        pki, tmp_path, {VICTIM: UNREACHABLE}, robot=replace(ROBOT, ring_timeout=0.5), http=http, rules=RulesConfig()
    ) as w:
        assert w.gw.web is not None
        assert w.gw.smpp is not None
        page = Page(browser, f"http://127.0.0.1:{w.gw.web.port}")

        # A wrong password first: refused, still on the login page.
        await login(page, "duty-agent", "demo-agent-2025")
        assert "用户名或密码错误" in await page.text("#error")

        await login(page, "duty-agent", "demo-agent-2026")
        assert await page.text("#interceptions_total") == "0"

        # Fraud SMS through the gateway: the live count rises without a reload.
        esme = SimulatedEsme("127.0.0.1", w.gw.smpp.server.port, "bank", "bankpw")
        await esme.bind()
        try:
            for _ in range(3):
                (answer,) = await esme.submit("10690123", VICTIM, FRAUD)
                assert answer.command_status == CommandStatus.ESME_RSUBMITFAIL
        finally:
            await esme.unbind()
        assert await page.until_text("#interceptions_total", lambda t: t == "3") == "3"

        # A high-risk case: the robot calls at once, and people are called in.
        assert w.gw.dissuasion is not None
        await w.gw.dissuasion.trigger(Trigger(VICTIM, "high", "police_impersonation", "centre"), w.clock())
        case = await w.case_of(VICTIM)
        await w.until_case(VICTIM, lambda c: c.attempts >= 1)
        attempts = (await w.case_of(VICTIM)).attempts

        # A viewer, in the same browser: the number masked, no button to act, and a claim forged with
        # the viewer's own valid form token is refused; the case is untouched.
        await page.run(page.driver.delete_all_cookies)
        await login(page, "duty-viewer", "demo-viewer-2026")
        await page.open(f"/console/case/{case.id}")
        shown = await page.run(lambda: page.driver.page_source)
        assert VICTIM not in shown
        assert "86138****0001" in shown
        assert not await page.run(lambda: page.driver.find_elements(By.CSS_SELECTOR, "#claim"))
        await page.run(lambda: page.driver.execute_script(POST_WITH_TOKEN, f"/console/case/{case.id}/claim"))
        assert "只读账号不能处置案件" in await page.until_text("#error", bool)
        await page.run(page.driver.delete_all_cookies)
        await login(page, "duty-agent", "demo-agent-2026")

        # A form that lost its CSRF token is refused by the server, and changes nothing.
        await page.open(f"/console/case/{case.id}")
        await page.run(lambda: page.driver.execute_script(DROP_TOKENS))
        await page.click("#claim")
        assert "CSRF" in await page.text("#error")
        assert desk_holder(await w.case_of(VICTIM)) == ""

        await page.open("/console/queue")
        assert case.id in await page.text("#queue")
        await page.screenshot(tmp_path / "queue.png")
        keep(tmp_path / "queue.png")

        await page.open(f"/console/case/{case.id}")
        await page.click("#claim")
        assert await page.text("#holder") == "duty-agent"
        await page.fill("#note", "已联系派出所民警上门")
        await page.click("#add-note")
        await page.fill("#close-note", "本人未转账")
        await page.click("#outcome option[value='visited_in_person']", loads=False)
        await page.screenshot(tmp_path / "case.png")
        keep(tmp_path / "case.png")
        await page.click("#close")
        assert await page.text("#state") == "已结案"
        assert "上门见到本人" in await page.text("#timeline")

        closed = await w.case_of(VICTIM)
        assert closed.state == "closed"
        assert closed.transitions[-1].detail == "duty-agent visited_in_person 本人未转账"
        view = await w.until(lambda v: bool(v.named("case.closed")))
        (event,) = view.named("case.closed")
        assert event["fields"]["outcome"] == "visited_in_person 本人未转账"
        assert event["fields"]["operator"] == "duty-agent"

        # Past the next due time: nothing is driven, no further call.
        await w.step(3 * 300.0)
        assert await w.gw.dissuasion.tick(w.clock()) == 0
        assert (await w.case_of(VICTIM)).attempts == attempts
        audit = [(r.kind, r.fields.get("operator")) for r in await w.store.audit_records(200)]
        assert ("console.case_close", "duty-agent") in audit
