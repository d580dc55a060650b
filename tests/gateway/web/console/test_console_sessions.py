"""Console sessions kept in the store: every console on one Redis (the workers of ``afgw run --workers N``,
gateways behind a balancer) knows every login; the limits hold; a reload ends removed accounts' sessions."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.config import load
from gateway.store import MemoryStore
from gateway.store.redis_store import RedisStore
from tests.conftest import free_port
from tests.gateway.store.redis_server import start_redis
from tests.gateway.web.console.desk import CONFIG, CSRF, DAY0, PASSWORDS, Desk

COOKIE = "afgw_console"


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture
async def two_consoles(redis_port: int) -> AsyncIterator[tuple[Desk, Desk]]:
    """Two consoles on two handles on one Redis: two workers, or two gateways behind a balancer."""
    url = f"redis://127.0.0.1:{redis_port}/0"
    stores = [RedisStore(url, prefix="sessions"), RedisStore(url, prefix="sessions")]
    await stores[0].redis.flushdb()
    consoles = (Desk(stores[0]), Desk(stores[1]))
    for console in consoles:
        await console.start()
    yield consoles
    for console in consoles:
        await console.stop()
    for store in stores:
        await store.close()


def moved(http: aiohttp.ClientSession, to: Desk) -> aiohttp.ClientSession:
    """The same browser's cookies, sent to the other console (another port, or another machine)."""
    other = to.client()
    other.cookie_jar.update_cookies({c.key: c.value for c in http.cookie_jar})
    return other


async def test_a_login_on_one_console_is_a_login_on_the_other(two_consoles):
    first, second = two_consoles
    case_id = await first.high_risk_case()
    async with first.client() as http:
        assert (await first.login(http, "wang")).status == 303
        token = await first.csrf(http, f"/console/case/{case_id}")
        async with moved(http, second) as there:
            page = await there.get(second.url("/console/"), allow_redirects=False)
            assert page.status == 200
            assert "wang（坐席）" in await page.text()
            # A form the first console served, posted to the second: the CSRF token is the session's.
            claim = await there.post(
                second.url(f"/console/case/{case_id}/claim"), data={"csrf": token}, allow_redirects=False
            )
            assert claim.status == 303
            assert (await second.store.get_case(case_id)).transitions[-1].detail == "wang"
            # Logged out on the second, the session is over on the first too.
            logout = await there.post(second.url("/console/logout"), data={"csrf": token}, allow_redirects=False)
            assert logout.headers["Location"] == "/console/login"
        again = await http.get(first.url("/console/"), allow_redirects=False)
        assert (again.status, again.headers["Location"]) == (303, "/console/login")


async def test_redis_holds_the_hash_of_the_cookie_not_the_cookie(two_consoles):
    first, _ = two_consoles
    async with first.client() as http:
        answer = await first.login(http, "wang")
        cookie = answer.cookies[COOKIE].value
    keys = await first.store.redis.keys("sessions:session:*")  # type: ignore[attr-defined]
    assert keys == ["sessions:session:" + hashlib.sha256(cookie.encode()).hexdigest()]
    dumped = [await first.store.redis.hgetall(key) for key in keys]  # type: ignore[attr-defined]
    assert cookie not in repr(dumped)


async def test_an_account_removed_on_one_console_is_refused_on_both(two_consoles):
    first, second = two_consoles
    async with first.client() as http:
        assert (await first.login(http, "wang")).status == 303
        # The first console's configuration was reloaded without wang; the second's not yet.
        first.console.replace_accounts(a for a in CONFIG.accounts if a.name != "wang")
        refused = await http.get(first.url("/console/queue"), allow_redirects=False)
        assert (refused.status, refused.headers["Location"]) == (303, "/console/login")
        async with moved(http, second) as there:
            gone = await there.get(second.url("/console/queue"), allow_redirects=False)
            assert (gone.status, gone.headers["Location"]) == (303, "/console/login")
    # The admin reads on the audit page why wang was sent to the login page.
    await first.store.flush()  # type: ignore[attr-defined]
    ended = [r.fields for r in await first.store.audit_records(100) if r.kind == "console.session_ended"]
    assert [(f["operator"], f["why"]) for f in ended] == [("wang", "账号已删除或变更")]


async def test_a_changed_password_or_role_ends_the_sessions_opened_before():
    desk = Desk(MemoryStore())
    await desk.start()
    try:
        for changed in ("password", "role"):
            async with desk.client() as http:
                assert (await desk.login(http, "wang")).status == 303
                accounts = list(desk.console.config.accounts)
                wang = next(a for a in accounts if a.name == "wang")
                other = next(a for a in accounts if a.name == "zhao")
                if changed == "password":
                    edited = type(wang)(wang.name, wang.role, other.password_hash)
                else:
                    edited = type(wang)(wang.name, "viewer", wang.password_hash)
                desk.console.replace_accounts([edited, *(a for a in accounts if a.name != "wang")])
                page = await http.get(desk.url("/console/"), allow_redirects=False)
                assert (page.status, page.headers["Location"]) == (303, "/console/login")
                desk.console.replace_accounts(accounts)
                # Put back as it was, the account does not bring the ended session back.
                page = await http.get(desk.url("/console/"), allow_redirects=False)
                assert page.status == 303
    finally:
        await desk.stop()


async def test_a_session_ends_when_idle_and_at_its_end_whatever_the_use():
    desk = Desk(MemoryStore(), config=dataclasses.replace(CONFIG, session_minutes=480.0, idle_minutes=30.0))
    await desk.start()
    try:
        async with desk.client() as http:

            async def overview_at(minutes: float) -> int:
                desk.now = DAY0 + minutes * 60.0
                return (await http.get(desk.url("/console/"), allow_redirects=False)).status

            assert (await desk.login(http, "wang")).status == 303
            # Each use restarts the 30 idle minutes: 59.8 minutes after the login it is still on.
            assert [await overview_at(m) for m in (29.9, 59.8, 89.8)] == [200, 200, 303]
            assert (await desk.login(http, "wang")).status == 303  # at 89.8 minutes
            # Used every 20 minutes, it still ends 480 minutes after the login.
            assert [await overview_at(89.8 + m) for m in range(20, 480, 20)] == [200] * 23
            assert await overview_at(89.8 + 480) == 303
    finally:
        await desk.stop()


def gateway_config(tmp_path: Path, accounts: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""\
smpp:
  listen: {{port: 0}}
  smsc: {{port: {free_port()}, reconnect_initial: 5}}
store: {{backend: memory}}
dissuasion: {{}}
http:
  port: 0
  console:
    accounts:
{accounts}""",
        encoding="utf-8",
    )
    return path


def account_lines(*names: str) -> str:
    return "".join(
        f"      - {{name: {a.name}, role: {a.role}, password_hash: '{a.password_hash}'}}\n"
        for a in CONFIG.accounts
        if a.name in names
    )


async def login_over_http(http: aiohttp.ClientSession, base: str, name: str) -> int:
    form = await (await http.get(base + "/console/login")).text()
    token = CSRF.search(form)
    assert token is not None
    data = {"csrf": token.group(1), "name": name, "password": PASSWORDS[name]}
    return (await http.post(base + "/console/login", data=data, allow_redirects=False)).status


async def test_sighup_reload_without_an_account_ends_its_sessions(tmp_path):
    path = gateway_config(tmp_path, account_lines("wang", "zhao"))
    async with Gateway(load(path)) as gateway:
        assert gateway.web is not None
        base = f"http://127.0.0.1:{gateway.web.port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            assert await login_over_http(http, base, "zhao") == 303
            assert (await http.get(base + "/console/", allow_redirects=False)).status == 200
            path.write_text(path.read_text().replace(account_lines("zhao"), ""), encoding="utf-8")
            assert await gateway.reload()
            page = await http.get(base + "/console/", allow_redirects=False)
            assert (page.status, page.headers["Location"]) == (303, "/console/login")
            assert await login_over_http(http, base, "zhao") == 401
            assert await login_over_http(http, base, "wang") == 303


async def test_one_account_logging_in_again_and_again_ends_only_its_own_oldest_logins(two_consoles):
    first, second = two_consoles
    async with first.client() as zhao:
        assert (await first.login(zhao, "zhao")).status == 303
        browsers = [first.client() for _ in range(CONFIG.sessions_per_account + 2)]
        try:
            for i, browser in enumerate(browsers):  # wang, from ever more browsers, through both consoles
                first.now = second.now = DAY0 + i
                assert (await (first, second)[i % 2].login(browser, "wang")).status == 303
            seen = [(await b.get(first.url("/console/"), allow_redirects=False)).status for b in browsers]
            assert seen == [303, 303] + [200] * CONFIG.sessions_per_account
        finally:
            for browser in browsers:
                await browser.close()
        # Another operator's login outlives all of that.
        assert (await zhao.get(second.url("/console/"), allow_redirects=False)).status == 200
