"""The console's routes under ``/console/``.

- ``GET/POST /console/login``, ``POST /console/logout``
- ``GET /console/`` the overview, kept live by ``GET /console/stream`` (server-sent events)
- ``GET /console/queue`` the escalation queue; ``GET /console/case/{id}`` a case's whole timeline
- ``POST /console/case/{id}/claim|note|close`` a person's step, through the same engine call as every
  other way of working a case (:func:`gateway.dissuasion.engine.desk_step`)
- ``GET /console/lookup?number=`` a subscriber's cases and the interceptions aimed at them
- ``GET /console/audit?operator=`` the operators' own audit records (admins only)

Every form carries the session's CSRF token (the login form a token of its own, in a cookie), and a
POST without the right one is refused. Viewers may look, with numbers masked and no message texts;
agents and admins may act; only admins read the audit log of the desk (an agent is refused, 403).
Logins, refused logins, refusals and every step are written to the audit log with the operator's name.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import ConsoleAccountConfig, ConsoleConfig
from gateway.dissuasion.engine import desk_step
from gateway.events.memory import EventSink
from gateway.logs import get_logger
from gateway.metrics import GatewayMetrics
from gateway.store.base import CLOSED, DESK_CLAIM, DESK_NOTE, AuditRecord, Case, StateStore, UnknownCase
from gateway.web.console import pages
from gateway.web.console.auth import (
    Account,
    Session,
    Sessions,
    Throttle,
    account_unchanged,
    hash_password,
    same_token,
    verify_password,
)
from gateway.web.console.overview import Overview, queue_order

log = get_logger("afgw.console")

SESSION_COOKIE, LOGIN_COOKIE = "afgw_console", "afgw_console_login"
STATIC = Path(__file__).parent / "static"
NUMBER = re.compile(r"\+?[0-9]{3,20}")
#: Lookups and the audit page read this many of the newest audit records.
LOOKUP_RECORDS = 2000
#: The audit page shows at most this many of the desk's records.
AUDIT_SHOWN = 500
MAX_NOTE = 500
#: Checked when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("-", n=1 << 14)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Desk = Callable[[str, str, float, str, str], Awaitable[Case]]


class Console:
    def __init__(
        self,
        config: ConsoleConfig,
        store: StateStore,
        events: EventSink,
        clock: Callable[[], float],
        *,
        metrics: GatewayMetrics | None = None,
        desk: Desk | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config, self.store, self.events, self.clock, self.sleep = config, store, events, clock, sleep
        self.accounts: dict[str, Account] = {}
        self.replace_accounts(config.accounts)
        self.sessions = Sessions(
            store,
            config.session_minutes * 60.0,
            config.idle_minutes * 60.0,
            per_account=config.sessions_per_account,
        )
        self.throttle = Throttle(store, config.max_failed_logins, config.throttle_window)
        self.overview = Overview(metrics, clock)
        self._streams: set[asyncio.Task[Any]] = set()
        # The engine's own call when the gateway runs one; the same function on the store otherwise.
        self.desk: Desk = desk or (
            lambda case_id, action, now, operator, detail: desk_step(
                store, events, case_id, action, now, operator, detail
            )
        )

    def replace_accounts(self, accounts: Iterable[ConsoleAccountConfig]) -> None:
        """The accounts as configured now (SIGHUP): a session whose account went or changed (role,
        password) ends at its next request, on whichever worker or instance it comes to."""
        self.accounts = {a.name: Account(a.name, a.role, a.password_hash) for a in accounts}

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/console", self.to_overview)
        r.add_get("/console/", self.overview_page)
        r.add_get("/console/login", self.login_form)
        r.add_post("/console/login", self.login)
        r.add_post("/console/logout", self.logout)
        r.add_get("/console/stream", self.stream)
        r.add_get("/console/queue", self.queue_page)
        r.add_get("/console/case/{id}", self.case_page)
        r.add_post("/console/case/{id}/{step}", self.case_step)
        r.add_get("/console/lookup", self.lookup_page)
        r.add_get("/console/audit", self.audit_page)
        r.add_static("/console/static", STATIC)
        app.on_shutdown.append(self._end_streams)

    async def _end_streams(self, app: web.Application) -> None:
        # An open overview would otherwise hold the endpoint's shutdown until its timeout.
        for task in list(self._streams):
            task.cancel()

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)

    @staticmethod
    def _redirect(to: str) -> web.Response:
        return web.Response(status=303, headers={"Location": to, **HEADERS})

    async def _session(self, request: web.Request, *, touch: bool = True) -> Session | None:
        session = await self.sessions.get(request.cookies.get(SESSION_COOKIE), self.clock(), touch=touch)
        if session is None or account_unchanged(session, self.accounts):
            return session
        # The account was removed or changed by a reload since the login: the session ends here, and so
        # for every worker and instance on the store.
        await self.sessions.close(session.token)
        self._audit("console.session_ended", session.operator, request, why="账号已删除或变更")
        return None

    def _audit(self, kind: str, operator: str, request: web.Request, **fields: Any) -> None:
        self.store.audit(
            AuditRecord(kind, self.clock(), {"operator": operator, "source": request.remote or "", **fields})
        )

    def _refused(
        self, request: web.Request, session: Session | None, status: int, said: str, **fields: Any
    ) -> web.Response:
        self._audit(
            "console.refused", session.operator if session else "", request, path=request.path, why=said, **fields
        )
        return self._html(pages.refusal_page("操作被拒绝", said, session), status)

    async def to_overview(self, request: web.Request) -> web.Response:
        return self._redirect("/console/")

    # --- login -------------------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_form(request, "")

    def _login_form(self, request: web.Request, error: str, status: int = 200) -> web.Response:
        token = secrets.token_urlsafe(32)
        response = self._html(pages.login_page(token, error), status)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/console/login"
        )
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not same_token(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")):
            return self._refused(request, None, 403, "表单已失效（CSRF 校验失败），请刷新后重试")
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:256]
        now = self.clock()
        keys = (f"account:{name}", f"address:{request.remote or ''}")
        # Every attempt counts as a failure until the password checks out (then both are cleared).
        if not all([await self.throttle.attempt(key, now) for key in keys]):
            self._audit("console.login_throttled", name, request)
            return self._login_form(request, "登录失败次数过多，请稍后再试", 429)
        account = self.accounts.get(name)
        hashed = account.password_hash if account else _DUMMY_HASH
        # scrypt takes tens of milliseconds on purpose: off the event loop.
        good = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, hashed)
        if account is None or not good:
            self._audit("console.login_failed", name, request)
            return self._login_form(request, "用户名或密码错误", 401)
        for key in keys:
            await self.throttle.cleared(key)
        session = await self.sessions.open(account, now)
        self._audit("console.login", name, request, role=account.role)
        response = self._redirect("/console/")
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/console",
            max_age=int(self.sessions.lifetime),
        )
        response.del_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is not None:
            form = await request.post()
            if not same_token(str(form.get("csrf", "")), session.csrf):
                return self._refused(request, session, 403, "表单已失效（CSRF 校验失败），请刷新后重试")
            await self.sessions.close(session.token)
            self._audit("console.logout", session.operator, request)
        response = self._redirect("/console/login")
        response.del_cookie(SESSION_COOKIE, path="/console")
        return response

    # --- pages -------------------------------------------------------------------------------------

    async def _snapshot(self) -> dict[str, Any]:
        return await self.overview.snapshot(await self.store.all_cases())

    async def overview_page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._redirect("/console/login")
        return self._html(pages.overview_page(session, await self._snapshot()))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        if session is None:
            return web.Response(status=401, headers=HEADERS)
        response = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            # Refreshing the overview is no use of the session: it does not keep an idle one alive.
            while await self._session(request, touch=False) is not None:
                doc = await self._snapshot()
                await response.write(f"data: {json.dumps(doc, ensure_ascii=False)}\n\n".encode())
                await self.sleep(self.config.refresh_seconds)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the page was closed, or the endpoint is stopping
        finally:
            if task is not None:
                self._streams.discard(task)
        return response

    async def queue_page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._redirect("/console/login")
        cases = queue_order(await self.store.all_cases())
        return self._html(pages.queue_page(session, cases, self.clock()))

    async def case_page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._redirect("/console/login")
        try:
            case = await self.store.get_case(request.match_info["id"])
        except UnknownCase:
            return self._html(pages.refusal_page("没有这个案件", request.match_info["id"], session), 404)
        return self._html(pages.case_page(session, case))

    async def lookup_page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._redirect("/console/login")
        wanted = request.query.get("number", "").strip()[:32]
        if not wanted:
            return self._html(pages.lookup_page(session, "", [], []))
        if not NUMBER.fullmatch(wanted):
            return self._html(pages.lookup_page(session, wanted, [], [], "请输入号码（数字，可带 +）"), 400)
        cases = sorted((c for c in await self.store.all_cases() if c.subscriber == wanted), key=lambda c: -c.opened_at)
        records = [r for r in await self.store.audit_records(LOOKUP_RECORDS) if _aimed_at(r, wanted)]
        self._audit("console.lookup", session.operator, request, number=wanted)
        return self._html(pages.lookup_page(session, wanted, cases, list(reversed(records))[:100]))

    async def audit_page(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._redirect("/console/login")
        if not session.may_audit():
            return self._refused(request, session, 403, "只有管理员可以查看操作审计")
        operator = request.query.get("operator", "").strip()[:64]
        records = [
            r
            for r in reversed(await self.store.audit_records(LOOKUP_RECORDS))
            if r.kind.startswith("console.") and (not operator or r.fields.get("operator") == operator)
        ]
        return self._html(pages.audit_page(session, records[:AUDIT_SHOWN], operator))

    # --- a person's steps ----------------------------------------------------------------------------

    async def case_step(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if session is None:
            return self._refused(request, None, 401, "请先登录")
        form = await request.post()
        if not same_token(str(form.get("csrf", "")), session.csrf):
            return self._refused(request, session, 403, "表单已失效（CSRF 校验失败），请刷新后重试")
        if not session.may_act():
            return self._refused(request, session, 403, "只读账号不能处置案件")
        case_id, step = request.match_info["id"], request.match_info["step"]
        note = " ".join(str(form.get("note", "")).split())[:MAX_NOTE]
        if step == "claim":
            action, detail = DESK_CLAIM, ""
        elif step == "note" and note:
            action, detail = DESK_NOTE, note
        elif step == "close" and (outcome := str(form.get("outcome", ""))) in pages.OUTCOMES:
            action, detail = CLOSED, f"{outcome} {note}".strip()
        else:
            return self._html(pages.refusal_page("无法处理", "缺少备注或处置结果", session), 400)
        try:
            await self.desk(case_id, action, self.clock(), session.operator, detail)
        except UnknownCase:
            return self._html(pages.refusal_page("没有这个案件", case_id, session), 404)
        except ValueError as exc:
            return self._html(pages.refusal_page("无法处理", str(exc), session), 409)
        self._audit(f"console.case_{step}", session.operator, request, case_id=case_id, detail=detail)
        return self._redirect(f"/console/case/{case_id}")


def _aimed_at(record: AuditRecord, wanted: str) -> bool:
    """An interception whose recipient is ``wanted`` (console records are the desk's own, not these)."""
    if record.kind.startswith("console."):
        return False
    for key in ("destinations", "destination", "to", "callee", "recipient"):
        value = record.fields.get(key)
        if value == wanted or (isinstance(value, list) and wanted in value):
            return True
    return False
