"""What an operator reads when the rules block messages: one ``sms.blocked`` line per message, whichever
way it travelled (submitted by an ESME, or delivered mobile-originated from the SMSC)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from gateway import logs
from gateway.config import EsmeAccount, RulesConfig
from protocols.smpp.constants import CommandStatus, DataCoding
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import eventually, gateway_port, make_config, running_gateway

ACCOUNTS = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10, mo_prefixes=("10690",)),)
FRAUD = (
    "【公安局】您涉嫌洗钱，请将资金转入安全账户配合调查",
    "您的案件已移交检察院，请立即将存款转入安全账户核查",
    "公安局通知：你的账户涉案，转到安全账户可解冻",
)
HAM = "您的验证码是 123456，五分钟内有效"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", "info", stream=stream)
    yield stream
    logs.configure("console", "warning")


def events(stream: io.StringIO, name: str) -> list[dict[str, object]]:
    return [e for e in map(json.loads, stream.getvalue().splitlines()) if e["event"] == name]


def ucs2(text: str, destination: str) -> SubmitSm:
    return SubmitSm(
        source_addr="10690",
        destination_addr=destination,
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


@pytest.mark.parametrize("blocked", [1, 2, 3])
async def test_each_submitted_message_the_rules_block_is_logged_once(smsc, log_lines, blocked: int) -> None:
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=RulesConfig(reload_interval=0))
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        statuses = []
        for n, text in enumerate(FRAUD[:blocked]):
            statuses.append((await esme.send(ucs2(HAM, f"861380000010{n}"))).command_status)
            statuses.append((await esme.send(ucs2(text, f"861380000020{n}"))).command_status)
        assert statuses == [CommandStatus.ESME_ROK, CommandStatus.ESME_RSUBMITFAIL] * blocked
        await esme.unbind()
    lines = events(log_lines, "sms.blocked")
    assert len(lines) == blocked, lines
    assert sorted(str(line["destination"]) for line in lines) == [f"861380000020{n}" for n in range(blocked)]
    assert all(line["system_id"] == "bank" and "police.safe-account" in line["rules"] for line in lines)  # type: ignore[operator]


@pytest.mark.parametrize(
    "body",
    [
        FRAUD[0] * 3,
        FRAUD[1] + HAM * 4,
        HAM * 3 + FRAUD[2] + HAM * 3,
        (FRAUD[0] + HAM) * 4,
    ],
    ids=["fraud-in-every-part", "fraud-then-ham", "ham-fraud-ham", "alternating"],
)
async def test_a_blocked_long_message_is_logged_once_not_once_per_part(smsc, log_lines, body: str) -> None:
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=RulesConfig(reload_interval=0))
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        resps = await esme.submit("10690", "8613800000051", body)
        await esme.unbind()
    assert len(resps) > 1
    assert CommandStatus.ESME_RSUBMITFAIL in [r.command_status for r in resps]
    assert len(events(log_lines, "sms.blocked")) == 1


async def test_a_blocked_mobile_originated_message_is_logged_once(smsc, log_lines) -> None:
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=RulesConfig(reload_interval=0))
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        await eventually(lambda: smsc.bound > 0)
        status = await smsc.inject_mo("8613800000051", "10690", FRAUD[0])
        assert status == CommandStatus.ESME_RX_P_APPN
        assert esme.delivered == []
        await esme.unbind()
    assert len(events(log_lines, "sms.blocked")) == 1


@pytest.mark.parametrize("sender", ["12381", "96110"])
async def test_a_refused_reserved_sender_is_logged_once(smsc, log_lines, sender: str) -> None:
    async with running_gateway(make_config(smsc.port, accounts=ACCOUNTS)) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        resp = await esme.send(replace(ucs2(HAM, "8613800000051"), source_addr=sender))
        assert resp.command_status != CommandStatus.ESME_ROK
        await esme.unbind()
    [line] = events(log_lines, "sms.reserved_refused")
    assert (line["system_id"], line["source"]) == ("bank", sender)
