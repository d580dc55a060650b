"""A console on an engine with fake flash and robot call, on an injected clock, served over HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import ConsoleAccountConfig, ConsoleConfig
from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig, DissuasionEngine
from gateway.dissuasion.triggers import Trigger
from gateway.events import MemoryEvents
from gateway.events.memory import EventSink
from gateway.store.base import StateStore
from gateway.web.console import Console
from gateway.web.console.auth import hash_password

TEMPLATES = templates.load(templates.DEFAULT_PATH)
DAY0 = 1_796_515_200.0  # 08:00 in China
VICTIM = "8613800000001"
PASSWORDS = {"wang": "agent-pass-1", "zhao": "viewer-pass-1", "root": "admin-pass-1"}
ROLES = {"wang": "agent", "zhao": "viewer", "root": "admin"}
# Small scrypt parameters: the tests check logins, not the cost of a guess.
CONFIG = ConsoleConfig(
    accounts=tuple(ConsoleAccountConfig(n, ROLES[n], hash_password(p, n=1 << 10)) for n, p in PASSWORDS.items()),
    max_failed_logins=3,
    throttle_window=300.0,
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class FakeFlash:
    sent: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        self.sent.append(recipient)
        self.ids.append(format(0xB000 + len(self.sent), "X"))
        return self.ids[-1]


@dataclass
class FakeCaller:
    calls: list[str] = field(default_factory=list)

    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        self.calls.append(callee)


class Desk:
    def __init__(self, store: StateStore, events: EventSink | None = None, config: ConsoleConfig = CONFIG) -> None:
        self.now = DAY0
        self.store = store
        self.events: Any = events or MemoryEvents(clock=lambda: self.now)
        self.flash, self.caller = FakeFlash(), FakeCaller()
        self.engine = DissuasionEngine(
            store, self.events, self.flash, self.caller, TEMPLATES, DissuasionConfig(interval=300.0, max_attempts=2)
        )
        self.console = Console(config, store, self.events, lambda: self.now, desk=self.engine.desk)
        self.app = web.Application()
        self.console.install(self.app)
        self.server = TestServer(self.app, host="127.0.0.1")

    async def start(self) -> None:
        await self.server.start_server()

    async def stop(self) -> None:
        await self.server.close()

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def high_risk_case(self, subscriber: str = VICTIM) -> str:
        await self.engine.trigger(Trigger(subscriber, "high", "police_impersonation", "centre"), self.now)
        await self.engine.tick(self.now)
        case = await self.store.open_case_of(subscriber)
        assert case is not None
        return case.id

    def client(self) -> aiohttp.ClientSession:
        # The default jar keeps no cookies for an IP address; this one does.
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(
        self, http: aiohttp.ClientSession, name: str, password: str | None = None
    ) -> aiohttp.ClientResponse:
        page = await (await http.get(self.url("/console/login"))).text()
        token = CSRF.search(page)
        assert token is not None
        form = {"csrf": token.group(1), "name": name, "password": PASSWORDS[name] if password is None else password}
        return await http.post(self.url("/console/login"), data=form, allow_redirects=False)

    async def csrf(self, http: aiohttp.ClientSession, path: str) -> str:
        page = await (await http.get(self.url(path))).text()
        token = CSRF.search(page)
        assert token is not None, page
        return token.group(1)
