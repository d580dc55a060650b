"""Who may do what on the anti-fraud desk: logins, throttling, CSRF, roles, masking, the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.dissuasion.triggers import Trigger
from gateway.store import MemoryStore
from tests.gateway.web.console.desk import CSRF, DAY0, VICTIM, Desk


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    rig = Desk(MemoryStore())
    await rig.start()
    yield rig
    await rig.stop()


async def audit_kinds(desk: Desk) -> list[tuple[str, str]]:
    return [(r.kind, r.fields.get("operator", "")) for r in await desk.store.audit_records(100)]


async def test_a_wrong_password_is_refused_and_audited(desk):
    async with desk.client() as http:
        answer = await desk.login(http, "wang", "not-the-password")
        assert answer.status == 401
        assert "用户名或密码错误" in await answer.text()
        assert "afgw_console" not in {c.key for c in http.cookie_jar}
        overview = await http.get(desk.url("/console/"), allow_redirects=False)
        assert overview.status == 303
        assert overview.headers["Location"] == "/console/login"
    assert ("console.login_failed", "wang") in await audit_kinds(desk)


async def test_login_sets_a_strict_http_only_cookie_and_opens_the_overview(desk):
    async with desk.client() as http:
        answer = await desk.login(http, "wang")
        assert answer.status == 303
        cookie = answer.cookies["afgw_console"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert not cookie["secure"]  # plain HTTP here; under TLS the flag is set
        page = await (await http.get(desk.url("/console/"))).text()
        assert "总览" in page
        assert "wang（坐席）" in page
    assert ("console.login", "wang") in await audit_kinds(desk)


async def test_logins_are_throttled_per_account_until_the_window_passes(desk):
    async with desk.client() as http:
        for _ in range(3):
            assert (await desk.login(http, "wang", "guess")).status == 401
        throttled = await desk.login(http, "wang")  # the right password, too late
        assert throttled.status == 429
        assert "登录失败次数过多" in await throttled.text()
        desk.now = DAY0 + 301.0
        assert (await desk.login(http, "wang")).status == 303


async def test_guesses_sent_all_at_once_get_no_more_tries_than_the_limit(desk):
    """The password check takes a while (scrypt, off the loop): guesses posted together must not all
    pass the limit before the first of them is counted."""
    async with desk.client() as http:
        forms = []
        for _ in range(12):
            page = await (await http.get(desk.url("/console/login"))).text()
            forms.append({"csrf": CSRF.search(page).group(1), "name": "wang", "password": "guess"})
        # One login cookie per client: the last page's token is the one the cookie holds.
        forms = [{**form, "csrf": forms[-1]["csrf"]} for form in forms]
        answers = await asyncio.gather(
            *(http.post(desk.url("/console/login"), data=form, allow_redirects=False) for form in forms)
        )
        statuses = sorted(answer.status for answer in answers)
    assert statuses == [401] * 3 + [429] * 9


async def test_a_login_without_its_csrf_token_is_refused(desk):
    async with desk.client() as http:
        await http.get(desk.url("/console/login"))
        answer = await http.post(desk.url("/console/login"), data={"name": "wang", "password": "agent-pass-1"})
        assert answer.status == 403
        assert "afgw_console" not in {c.key for c in http.cookie_jar}


async def test_a_step_without_the_csrf_token_is_refused_and_changes_nothing(desk):
    case_id = await desk.high_risk_case()
    async with desk.client() as http:
        await desk.login(http, "wang")
        for form in ({}, {"csrf": "forged"}):
            answer = await http.post(desk.url(f"/console/case/{case_id}/claim"), data=form, allow_redirects=False)
            assert answer.status == 403
            assert "CSRF" in await answer.text()
    case = await desk.store.get_case(case_id)
    assert "desk_claim" not in [t.event for t in case.transitions]
    assert desk.events.named("case.claimed") == []


async def test_a_viewer_sees_masked_numbers_and_may_not_act(desk):
    case_id = await desk.high_risk_case()
    async with desk.client() as http:
        await desk.login(http, "zhao")
        queue = await (await http.get(desk.url("/console/queue"))).text()
        assert "86138****0001" in queue
        assert VICTIM not in queue
        assert "认领</button>" not in queue
        token = await desk.csrf(http, f"/console/case/{case_id}")
        page = await (await http.get(desk.url(f"/console/case/{case_id}"))).text()
        assert VICTIM not in page
        answer = await http.post(
            desk.url(f"/console/case/{case_id}/close"), data={"csrf": token, "outcome": "false_alarm"}
        )
        assert answer.status == 403
        assert "只读账号不能处置案件" in await answer.text()
    assert (await desk.store.get_case(case_id)).state == "open"
    assert desk.events.named("case.closed") == []
    assert ("console.refused", "zhao") in await audit_kinds(desk)


async def test_an_agent_claims_notes_and_closes_through_the_engine(desk):
    case_id = await desk.high_risk_case()
    assert desk.caller.calls == [VICTIM]
    async with desk.client() as http:
        await desk.login(http, "wang")
        queue = await (await http.get(desk.url("/console/queue"))).text()
        assert VICTIM in queue
        assert case_id in queue
        path = f"/console/case/{case_id}"
        token = await desk.csrf(http, path)
        assert (await http.post(desk.url(path + "/claim"), data={"csrf": token})).status == 200
        await http.post(desk.url(path + "/note"), data={"csrf": token, "note": "已联系家属，正在赶往"})
        desk.now += 60.0
        closed = await http.post(
            desk.url(path + "/close"), data={"csrf": token, "outcome": "visited_in_person", "note": "未转账"}
        )
        page = await closed.text()
        assert "已结案" in page
        assert "上门见到本人" in page
        assert "已联系家属，正在赶往" in page
    case = await desk.store.get_case(case_id)
    assert case.state == "closed"
    assert [(t.event, t.detail) for t in case.transitions if t.event.startswith("desk") or t.event == "closed"] == [
        ("desk_claim", "wang"),
        ("desk_note", "wang 已联系家属，正在赶往"),
        ("closed", "wang visited_in_person 未转账"),
    ]
    (event,) = desk.events.named("case.closed")
    assert event.fields["outcome"] == "visited_in_person 未转账"
    assert event.fields["operator"] == "wang"
    # The robot loop stopped: past the next due time, no further call.
    desk.now += 3600.0
    await desk.engine.tick(desk.now)
    assert desk.caller.calls == [VICTIM]
    kinds = await audit_kinds(desk)
    for step in ("claim", "note", "close"):
        assert (f"console.case_{step}", "wang") in kinds


async def test_a_second_operator_cannot_take_a_claimed_case(desk):
    case_id = await desk.high_risk_case()
    async with desk.client() as wang, desk.client() as root:
        await desk.login(wang, "wang")
        await desk.login(root, "root")
        path = f"/console/case/{case_id}"
        await wang.post(desk.url(path + "/claim"), data={"csrf": await desk.csrf(wang, path)})
        answer = await root.post(desk.url(path + "/claim"), data={"csrf": await desk.csrf(root, path)})
        assert answer.status == 409
        assert "claimed by wang" in await answer.text()


async def test_lookup_shows_cases_and_interceptions_texts_only_to_agents(desk):
    from gateway.store import AuditRecord

    await desk.high_risk_case()
    fraud = "请立即将资金转入安全账户"
    desk.store.audit(
        AuditRecord(
            "sms.blocked", DAY0, {"source": "10690001", "destinations": [VICTIM], "text": fraud, "rules": ["r1"]}
        )
    )
    desk.store.audit(
        AuditRecord("sms.blocked", DAY0, {"destinations": ["8613999999999"], "text": "别人的", "rules": []})
    )
    async with desk.client() as agent, desk.client() as viewer:
        await desk.login(agent, "wang")
        await desk.login(viewer, "zhao")
        page = await (await agent.get(desk.url("/console/lookup"), params={"number": VICTIM})).text()
        assert fraud in page
        assert "别人的" not in page
        assert "police_impersonation" in page
        hidden = await (await viewer.get(desk.url("/console/lookup"), params={"number": VICTIM})).text()
        assert fraud not in hidden
        assert "（已隐藏）" in hidden
        bad = await agent.get(desk.url("/console/lookup"), params={"number": "<script>"})
        assert bad.status == 400


async def test_logins_are_throttled_per_source_address_across_accounts(desk):
    async with desk.client() as http:
        for name in ("wang", "zhao", "root"):
            assert (await desk.login(http, name, "guess")).status == 401
        assert (await desk.login(http, "nobody", "guess")).status == 429
        assert (await desk.login(http, "root")).status == 429  # an untried account, the same address
    assert ("console.login_throttled", "root") in await audit_kinds(desk)


async def test_the_queue_puts_high_risk_first_then_the_longest_waiting(desk):
    # Exhausted medium cases (the robot ran out of attempts) and a high-risk one, escalated later.
    first = await desk.engine.store.open_or_update_case("8613800000011", "medium", "loan", DAY0, due_at=DAY0)
    second = await desk.engine.store.open_or_update_case("8613800000012", "medium", "loan", DAY0, due_at=DAY0)
    await desk.store.transition(second[0].id, "escalated", DAY0 + 10.0, detail="no_response")
    await desk.store.transition(first[0].id, "escalated", DAY0 + 20.0, detail="no_response")
    desk.now = DAY0 + 30.0
    high = await desk.high_risk_case()
    await desk.engine.store.open_or_update_case("8613800000013", "low", "loan", DAY0, due_at=DAY0 + 999.0)
    async with desk.client() as http:
        await desk.login(http, "wang")
        page = await (await http.get(desk.url("/console/queue"))).text()
    order = [m for m in re.findall(r'data-case="([^"]+)"', page)]
    assert order == [high, second[0].id, first[0].id]
    assert "人工处置队列（3）" in page


async def test_the_overview_streams_counts_from_the_gateway(desk):
    from gateway.metrics import GatewayMetrics
    from gateway.web.console.overview import Overview

    metrics = GatewayMetrics()
    desk.console.overview = Overview(metrics, lambda: desk.now)
    await desk.high_risk_case()
    metrics.decided("sms", "block", "police_impersonation", ("r1",))
    metrics.decided("sms", "block", "police_impersonation", ("r1",))
    metrics.decided("sms", "pass", None, ())
    metrics.label_verified()
    metrics.label_rejected('SIP ;cause=438 ;text="Invalid Identity Header"')
    async with desk.client() as http:
        await desk.login(http, "zhao")
        async with http.get(desk.url("/console/stream")) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            line = await stream.content.readline()
    snapshot = json.loads(line.decode().removeprefix("data: "))
    assert snapshot["interceptions"] == [{"category": "police_impersonation", "action": "block", "count": 2}]
    assert snapshot["interceptions_total"] == 2
    assert snapshot["open_by_tier"] == {"low": 0, "medium": 0, "high": 1}
    assert snapshot["queue"] == 1
    assert {"result": "verified", "cause": "", "count": 1} in snapshot["labels"]
    assert [x["cause"] for x in snapshot["labels"] if x["result"] == "rejected"] == ["438"]
    # A minute later the rate has fallen back to nothing; the counters themselves never do.
    desk.now += 61.0
    desk.console.overview.per_minute()
    desk.now += 1.0
    assert desk.console.overview.per_minute() == {}


async def test_the_stream_needs_a_login(desk):
    async with desk.client() as http:
        assert (await http.get(desk.url("/console/stream"))).status == 401


async def test_an_open_overview_does_not_hold_the_endpoint_from_stopping():
    rig = Desk(MemoryStore())
    await rig.start()
    async with rig.client() as http:
        await rig.login(http, "zhao")
        async with http.get(rig.url("/console/stream")) as stream:
            await stream.content.readline()
            # aiohttp would wait up to a minute for the handler; the console ends its streams.
            await asyncio.wait_for(rig.stop(), 10.0)


async def test_lookup_finds_refused_calls_to_the_number(desk):
    from gateway.store import AuditRecord

    desk.store.audit(
        AuditRecord(
            "call.label_rejected",
            DAY0,
            {"caller": "8657100000000", "callee": VICTIM, "reason": 'SIP ;cause=438 ;text="Invalid Identity Header"'},
        )
    )
    async with desk.client() as http:
        await desk.login(http, "zhao")
        page = await (await http.get(desk.url("/console/lookup"), params={"number": VICTIM})).text()
    assert "call.label_rejected" in page
    assert "86571****0000" in page
    assert "cause=438" in page


def test_console_passwd_prints_a_hash_that_checks(capsys, monkeypatch):
    import io

    from gateway.cli import main
    from gateway.web.console.auth import verify_password

    monkeypatch.setattr("sys.stdin", io.StringIO("a-good-long-password\n"))
    assert main(["console", "passwd", "--stdin"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("scrypt$16384$8$1$")
    assert verify_password("a-good-long-password", hashed)
    assert not verify_password("a-good-long-passwore", hashed)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["console", "passwd", "--stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err


async def test_under_tls_the_session_cookie_is_secure(tmp_path):
    import datetime
    import ssl

    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    rig = Desk(MemoryStore())
    app = web.Application()
    rig.console.install(app)
    server = TestServer(app, host="127.0.0.1", scheme="https")
    await server.start_server(ssl=context)
    try:
        connector = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(server.make_url("/console/login"))).text()
            token = CSRF.search(page)
            assert token is not None
            form = {"csrf": token.group(1), "name": "wang", "password": "agent-pass-1"}
            answer = await http.post(server.make_url("/console/login"), data=form, allow_redirects=False)
            assert answer.status == 303
            cookie = answer.cookies["afgw_console"]
            assert cookie["secure"]
            assert cookie["httponly"]
    finally:
        await server.close()


async def test_an_escalated_case_shows_the_call_ringing_and_the_flash_read_after_the_escalation(desk):
    await desk.engine.trigger(Trigger(VICTIM, "medium", "police_impersonation", "centre"), desk.now)
    for step in range(3):  # two attempts, then the escalation one interval after the last
        desk.now = DAY0 + 300.0 * step
        await desk.engine.tick(desk.now)
    [case] = await desk.store.all_cases()
    assert case.state == "escalated"
    flash_id = desk.flash.ids[-1]
    # The last attempt's call rang and its flash was delivered and read, all after the escalation.
    await desk.engine.call_ringing(case.id, DAY0 + 605.0, 180)
    await desk.engine.flash_receipt(flash_id, "dissuasion:" + case.id, DAY0 + 606.0)
    assert not await desk.engine.flash_acknowledged(flash_id, DAY0 + 620.0)
    async with desk.client() as http:
        await desk.login(http, "wang")
        queue = await (await http.get(desk.url("/console/queue"))).text()
        page = await (await http.get(desk.url(f"/console/case/{case.id}"))).text()
    [row] = re.findall(r'<tr data-case="[^"]+">.*?</tr>', queue)
    assert "已转人工" in row
    assert "已确认</span>" in row
    timeline = re.findall(r'<tr class="event-([a-z_]+)"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>', page)
    assert timeline[-3:] == [
        ("robot_ringing", "机器人外呼振铃", "180"),
        ("flash_delivered", "闪信已送达", flash_id),
        ("flash_acknowledged", "闪信已确认", flash_id),
    ]
    state = re.search(r'<dd id="state">(.*?)</dd>', page)
    assert state is not None
    assert "已转人工" in state.group(1)
    assert "已确认" in state.group(1)
    assert (await desk.store.get_case(case.id)).state == "escalated"


async def test_only_an_admin_reads_the_audit_log_of_the_desk(desk):
    case_id = await desk.high_risk_case()
    path = f"/console/case/{case_id}"
    async with desk.client() as wang, desk.client() as zhao, desk.client() as root:
        assert (await desk.login(zhao, "zhao", "a-wrong-guess")).status == 401
        await desk.login(zhao, "zhao")
        await desk.login(wang, "wang")
        token = await desk.csrf(wang, path)
        await wang.post(desk.url(path + "/claim"), data={"csrf": token})
        await wang.post(desk.url(path + "/close"), data={"csrf": token, "outcome": "false_alarm"})
        for http in (wang, zhao):
            page = await (await http.get(desk.url("/console/"))).text()
            assert "/console/audit" not in page
            refused = await http.get(desk.url("/console/audit"))
            assert refused.status == 403
            text = await refused.text()
            assert "只有管理员可以查看操作审计" in text
            assert "登录失败" not in text
        await desk.login(root, "root")
        assert "/console/audit" in await (await root.get(desk.url("/console/"))).text()
        answer = await root.get(desk.url("/console/audit"))
        assert answer.status == 200
        page = await answer.text()
        everyone = await (await root.get(desk.url("/console/audit?operator=zhao"))).text()
    rows = re.findall(r'<tr class="audit-([a-z_]+)"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>(.*?)</td>', page)
    # Newest first: the admin's own login, the two refusals, the agent's steps, the logins before them.
    assert [(kind, who, said) for kind, who, said, _ in rows] == [
        ("login", "root", "登录"),
        ("refused", "zhao", "操作被拒绝"),
        ("refused", "wang", "操作被拒绝"),
        ("case_close", "wang", "结案"),
        ("case_claim", "wang", "认领案件"),
        ("login", "wang", "登录"),
        ("login", "zhao", "登录"),
        ("login_failed", "zhao", "登录失败"),
    ]
    assert f'href="/console/case/{case_id}"' in rows[3][3]
    assert "false_alarm" in rows[3][3]
    assert "/console/audit" in rows[1][3]
    only_zhao = re.findall(r'<tr class="audit-[a-z_]+"><td>[^<]*</td><td>([^<]*)</td>', everyone)
    assert only_zhao == ["zhao", "zhao", "zhao"]


async def _two_workers_share_the_login_throttle(stores: tuple[Any, Any]) -> None:
    """Two consoles on one store, as ``afgw run --workers 2`` serves them: the guesses made at one
    count at the other, so two workers do not give a guesser twice the tries."""
    workers = [Desk(stores[0]), Desk(stores[1])]
    for worker in workers:
        await worker.start()
    try:
        async with workers[0].client() as first, workers[1].client() as second:
            assert (await workers[0].login(first, "wang", "guess-1")).status == 401
            assert (await workers[1].login(second, "wang", "guess-2")).status == 401
            assert (await workers[0].login(first, "wang", "guess-3")).status == 401
            throttled = await workers[1].login(second, "wang")  # the right password, on the other worker
            assert throttled.status == 429
            assert (await workers[0].login(first, "wang")).status == 429
            for worker in workers:
                worker.now = DAY0 + 301.0
            assert (await workers[1].login(second, "wang")).status == 303
    finally:
        for worker in workers:
            await worker.stop()


async def test_workers_on_one_memory_store_share_the_login_throttle():
    store = MemoryStore()
    await _two_workers_share_the_login_throttle((store, store))


async def test_workers_on_redis_share_the_login_throttle(tmp_path):
    from gateway.store.redis_store import RedisStore
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    stores = (
        RedisStore(f"redis://127.0.0.1:{port}/0", prefix="console-w"),
        RedisStore(f"redis://127.0.0.1:{port}/0", prefix="console-w"),
    )
    try:
        await _two_workers_share_the_login_throttle(stores)
    finally:
        for store in stores:
            await store.close()
        proc.kill()
        proc.wait()
