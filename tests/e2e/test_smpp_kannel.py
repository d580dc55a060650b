"""Kannel 1.4.5 (bearerbox + smsbox) as an ESME through the gateway: long messages from sendsms, whole.

Kannel splits a long text itself (8-bit UDH) and writes every part before it reads any answer, so it is
the ESME that shows whether the gateway inspects a long message whole before any part goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

from gateway.config import EsmeAccount, RulesConfig
from tests.conftest import free_port, require_peer
from tests.e2e.smpp_harness import LOCALHOST, eventually, gateway_port, make_config, running_gateway

LEGIT = (
    "【某银行】尊敬的客户：您本月的账单已出，请在还款日前还款。"
    + "请妥善保管您的银行卡和密码，不要向任何人透露验证码。" * 6
)
FRAUD = "您好，这里是市公安局，请核对您的身份信息。" * 5 + "【公安局】您涉嫌洗钱，请将资金转入安全账户配合调查"
LEGIT_TO, FRAUD_TO = "8613800000061", "8613800000062"


def kannel_config(gateway: int, admin: int, box: int, sendsms: int, dlr: int) -> str:
    return f"""
group = core
admin-port = {admin}
admin-password = adminpw
admin-interface = {LOCALHOST}
smsbox-port = {box}
smsbox-interface = {LOCALHOST}
box-allow-ip = {LOCALHOST}
log-level = 1
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = afgw
host = {LOCALHOST}
port = {gateway}
transceiver-mode = true
smsc-username = bank
smsc-password = bankpw
system-type = ""
interface-version = 34
msg-id-type = 0x03
max-pending-submits = 10
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = {LOCALHOST}
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = {LOCALHOST}
global-sender = 10690
log-level = 1

group = sendsms-user
username = tester
password = testerpw
concatenation = true
max-messages = 10
user-allow-ip = {LOCALHOST}

group = sms-service
keyword = default
text = "ok"
catch-all = true
"""


class DlrSink:
    """Kannel's dlr-url callbacks: (which message, dlr type) as they come (1 = delivered)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, LOCALHOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            line = (await reader.readline()).decode("latin-1")
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(line.split(" ")[1]).query)
            self.calls.append((query["m"][0], int(query["type"][0])))
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    def types(self, message: str) -> list[int]:
        return [t for m, t in self.calls if m == message]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def sendsms(port: int, to: str, message: str, dlr_port: int, name: str) -> tuple[int, str]:
    dlr_url = f"http://{LOCALHOST}:{dlr_port}/dlr?m={name}&type=%d"
    query = urllib.parse.urlencode(
        {
            "username": "tester",
            "password": "testerpw",
            "to": to,
            "text": message,
            "charset": "UTF-8",
            "coding": "2",
            "dlr-mask": "31",
            "dlr-url": dlr_url,
        }
    )
    url = f"http://{LOCALHOST}:{port}/cgi-bin/sendsms?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def log_file(path: Path) -> IO[bytes]:
    return path.open("wb")


def start(program: str, conf: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LANG": "C.UTF-8"}
    return subprocess.Popen([program, str(conf)], cwd=conf.parent, stdout=log, stderr=log, env=env)


async def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        for _ in range(100):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        proc.kill()
    proc.wait(5)


async def test_kannel_long_messages_arrive_whole_and_in_order_and_fraud_not_at_all(smsc, tmp_path: Path):
    bearerbox = require_peer("bearerbox")
    smsbox = require_peer("smsbox")
    accounts = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10, mo_prefixes=("10690",)),)
    config = make_config(
        smsc.port, accounts=accounts, rules=RulesConfig(reload_interval=0, warning_interval=300), concat_hold=5.0
    )
    dlr = DlrSink()
    await dlr.start()
    procs: list[subprocess.Popen[bytes]] = []
    logs = [log_file(tmp_path / f"{n}.log") for n in ("bearerbox", "smsbox")]
    try:
        async with running_gateway(config) as gw:
            assert gw.smpp is not None
            admin, box, send = free_port(), free_port(), free_port()
            conf = tmp_path / "kannel.conf"
            conf.write_text(kannel_config(gateway_port(gw), admin, box, send, dlr.port), encoding="utf-8")
            procs.append(start(bearerbox, conf, logs[0]))
            await eventually(lambda: gw.smpp.registry.count("bank") > 0, within=20)  # type: ignore[union-attr]
            procs.append(start(smsbox, conf, logs[1]))

            async def sendsms_up() -> None:
                for _ in range(200):
                    with contextlib.suppress(OSError):
                        _r, w = await asyncio.open_connection(LOCALHOST, send)
                        w.close()
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError("smsbox never listened")

            await sendsms_up()
            status, body = await in_thread(sendsms, send, LEGIT_TO, LEGIT, dlr.port, "legit")
            assert status == 202, body
            status, body = await in_thread(sendsms, send, FRAUD_TO, FRAUD, dlr.port, "fraud")
            assert status == 202, body

            # The legitimate message arrives whole, its parts in Kannel's order on one bind, and Kannel
            # hears that it was delivered.
            await eventually(lambda: [s for s in smsc.inbox(LEGIT_TO) if s.parts], within=20)
            assert [s.text for s in smsc.inbox(LEGIT_TO) if s.parts and not s.flash] == [LEGIT]
            arrived = [a for a in smsc.arrivals if (a.source, a.destination) == ("10690", LEGIT_TO)]
            assert len(arrived) > 1
            assert [a.seq for a in arrived] == list(range(1, len(arrived) + 1))
            assert len({a.bind for a in arrived}) == 1
            await eventually(lambda: 1 in dlr.types("legit"), within=20)

            # The fraud: refused, no part of it at the SMSC, and no "delivered" for it, ever.
            await eventually(lambda: bool(dlr.types("fraud")), within=20)
            await asyncio.sleep(1.0)  # time for any receipt that would (wrongly) follow
            assert 1 not in dlr.types("fraud")
            assert [a for a in smsc.arrivals if (a.source, a.destination) == ("10690", FRAUD_TO)] == []
            assert [s for s in smsc.inbox(FRAUD_TO) if not s.flash] == []
            assert [a for a in smsc.arrivals if a.source == "10690"] == arrived  # Kannel's, nothing more
            blocked = [r for r in gw.smpp.store.audit_log if r.kind == "sms.blocked"]  # type: ignore[attr-defined]
            assert [r.fields["text"] for r in blocked] == [FRAUD]
    finally:
        for proc in reversed(procs):
            await stop_process(proc)
        for log in logs:
            log.close()
        await dlr.stop()
