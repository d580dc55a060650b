"""The HTTP endpoint of a running gateway, read the way an operator's Prometheus and probes read it.

A gateway between a simulated ESME and SMSC, a trunk, the anti-fraud centre, a spoofer and a handset:
after a blocked fraud SMS, a passed one, a verified label call, a labelled international call and a
spoof, the counters on /metrics moved by exactly what crossed the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.config import (
    EsmeAccount,
    EventsConfig,
    GatewayConfig,
    HttpConfig,
    Listen,
    MqttEventsConfig,
    RulesConfig,
    SmppConfig,
    SmscPeer,
    StoreConfig,
)
from protocols.sip import Request, parse_message
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import SubmitSm
from simulator.antifraud_centre import AntiFraudCentre
from simulator.esme import SimulatedEsme
from simulator.handset import Handset
from simulator.sip_ua import UserAgent
from simulator.smsc import SimulatedSmsc
from simulator.spoofer import Spoofer
from simulator.trunk import TrunkCaller
from tests.conftest import free_port
from tests.e2e.labels_harness import LabelsPki, make_labels_pki
from tests.e2e.sip_harness import TRUNK_HOST, sip_config
from tests.e2e.smpp_harness import eventually
from tests.gateway.web.scrape import Scrape, delta, moved, scrape

VICTIM = "8613800000001"
HAM_TO = "8613800000002"
FRAUD = "【公安局】您的身份信息涉嫌一起洗钱案件，请立即将名下资金转入安全账户配合调查，否则将冻结您的银行卡。"
HAM = "【某银行】您的信用卡本期账单300元，还款日为本月25日。"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("labels"))


def gateway_config(smsc_port: int, **overrides: Any) -> GatewayConfig:
    config = GatewayConfig(
        smpp=SmppConfig(
            listen=Listen("127.0.0.1", 0),
            accounts=(
                EsmeAccount(system_id="bank", password="bankpw"),
                EsmeAccount(system_id="bulk", password="bulkpw"),
            ),
            smsc=SmscPeer(
                port=smsc_port, system_id="afgw", password="secret", binds=1, reconnect_initial=0.05, reconnect_max=0.1
            ),
        ),
        http=HttpConfig("127.0.0.1", 0),
    )
    return replace(config, **overrides)


@contextlib.asynccontextmanager
async def started(config: GatewayConfig) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, int]]:
    async with Gateway(config) as gw, aiohttp.ClientSession() as http:
        assert gw.web is not None
        yield gw, http, gw.web.port


async def get_json(http: aiohttp.ClientSession, port: int, path: str) -> tuple[int, Any]:
    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.json()


class Wire:
    """Every SIP message the simulated parties sent to the gateway and got from it, read off their sockets."""

    def __init__(self) -> None:
        self.to_gateway: Counter[tuple[str, str]] = Counter()
        self.from_gateway: Counter[tuple[str, str]] = Counter()

    def watch(self, ua: UserAgent) -> None:
        received, send = ua.datagram_received, ua.send

        def datagram_received(data: bytes, addr: Any) -> None:
            self.from_gateway[_kind(parse_message(data))] += 1
            received(data, addr)

        def sending(message: Any) -> None:
            self.to_gateway[_kind(message)] += 1
            send(message)

        ua.datagram_received = datagram_received  # type: ignore[method-assign]
        ua.send = sending  # type: ignore[method-assign]


def _kind(message: Any) -> tuple[str, str]:
    return ("request", message.method) if isinstance(message, Request) else ("response", str(message.status))


def sip_moved(before: Scrape, after: Scrape, direction: str) -> Counter[tuple[str, str]]:
    """What moved on /metrics in one direction, as (request, method) and (response, code) counts."""
    found: Counter[tuple[str, str]] = Counter()
    for key, family, label in (
        ("request", "afgw_sip_requests_total", "method"),
        ("response", "afgw_sip_responses_total", "code"),
    ):
        for value in after.by(family, label):
            n = delta(before, after, family, direction=direction, **{label: value})
            if n:
                found[(key, value)] = int(n)
    return found


@dataclass
class Parties:
    esme_bank: SimulatedEsme
    esme_bulk: SimulatedEsme
    handset: Handset
    centre: AntiFraudCentre
    spoofer: Spoofer
    trunk: TrunkCaller
    wire: Wire


@contextlib.asynccontextmanager
async def parties(gw: Gateway, pki: LabelsPki) -> AsyncIterator[Parties]:
    assert gw.smpp is not None
    assert gw.sip is not None
    await asyncio.wait_for(gw.smpp.pool.up.wait(), 10)
    port = gw.smpp.server.port
    bank = SimulatedEsme("127.0.0.1", port, "bank", "bankpw")
    bulk = SimulatedEsme("127.0.0.1", port, "bulk", "bulkpw")
    sip = ("127.0.0.1", gw.sip.udp_port)
    handset = Handset(VICTIM, sip)
    centre = AntiFraudCentre(sip, pki.centre, pki.registry)
    spoofer = Spoofer(sip)
    trunk = TrunkCaller(sip)
    wire = Wire()
    for ua in (handset, centre, spoofer, trunk):
        wire.watch(ua)
    await bank.bind()
    await bulk.bind()
    await handset.start()
    await centre.start(TRUNK_HOST)
    await spoofer.start(TRUNK_HOST)
    await trunk.start(TRUNK_HOST)
    try:
        assert (await handset.register(120)).status == 200
        yield Parties(bank, bulk, handset, centre, spoofer, trunk, wire)
    finally:
        for ua in (handset, centre, spoofer, trunk):
            await ua.stop()
        await bank.unbind()
        await bulk.unbind()


async def test_metrics_move_by_what_crossed_the_sockets(smsc: SimulatedSmsc, pki: LabelsPki) -> None:
    sip = replace(sip_config(), labels=pki.labels)
    config = gateway_config(smsc.port, sip=sip, rules=RulesConfig(reload_interval=0))
    async with started(config) as (gw, http, port), parties(gw, pki) as p:
        before = await scrape(http, port)
        assert before.value("afgw_esme_binds", system_id="bank") == 1
        assert before.value("afgw_esme_binds", system_id="bulk") == 1
        assert before.value("afgw_smsc_binds") == 1
        assert before.value("afgw_sip_registrations") == 1
        submits_before = sum(isinstance(pdu, SubmitSm) for pdu in smsc.received)

        # --- SMS: one blocked (the recipient gets a flash warning instead), one passed ------------------
        (refused,) = await p.esme_bulk.submit("17012345678", VICTIM, FRAUD)
        (accepted,) = await p.esme_bank.submit("10690", HAM_TO, HAM)
        assert refused.command_status == CommandStatus.ESME_RSUBMITFAIL
        assert accepted.command_status == CommandStatus.ESME_ROK
        await eventually(lambda: bool(smsc.inbox(VICTIM)) and bool(smsc.inbox(HAM_TO)))
        (flash,) = smsc.inbox(VICTIM)
        assert flash.flash
        relayed = sum(isinstance(pdu, SubmitSm) for pdu in smsc.received) - submits_before
        assert relayed >= 2  # the passed message and the warning (in as many parts as its text needs)

        after = await scrape(http, port)
        pdus = "afgw_smpp_pdus_total"
        esme = {"peer": "esme"}
        assert delta(before, after, pdus, **esme, direction="received", command="submit_sm") == 2
        assert delta(before, after, pdus, **esme, direction="sent", command="submit_sm_resp", status="ESME_ROK") == 1
        assert (
            delta(before, after, pdus, **esme, direction="sent", command="submit_sm_resp", status="ESME_RSUBMITFAIL")
            == 1
        )
        assert delta(before, after, pdus, peer="smsc", direction="sent", command="submit_sm") == relayed
        assert (
            delta(before, after, pdus, peer="smsc", direction="received", command="submit_sm_resp", status="ESME_ROK")
            == relayed
        )
        assert moved(before, after, pdus, "command") == {"submit_sm": 2 + relayed, "submit_sm_resp": 2 + relayed}
        decisions = "afgw_rule_decisions_total"
        assert delta(before, after, decisions, channel="sms", action="block", category="police_impersonation") == 1
        assert delta(before, after, decisions, channel="sms", action="pass", category="none") == 1
        assert moved(before, after, decisions, "channel") == {"sms": 2}
        assert delta(before, after, "afgw_rule_matches_total", rule="police.safe-account", action="block") == 1
        assert delta(before, after, "afgw_flash_warnings_total", purpose="rules") == 1
        assert delta(before, after, "afgw_events_total", event="sms.blocked") == 1
        # Only the relayed message went to the SMSC and back: the refusal is no relay latency.
        assert delta(before, after, "afgw_smpp_submit_seconds_count") == 1

        # --- calls: the centre's verified label, a spoof of it, an international call labelled -------------
        wire_before = (Counter(p.wire.to_gateway), Counter(p.wire.from_gateway))
        verified = await p.centre.place(VICTIM, hold=0.01)
        spoof = await p.spoofer.call(VICTIM, "13700000000", display="公安反诈专号")
        abroad = await p.trunk.call(VICTIM, "+85261234567", display="Mr Chan", hold=0.01)
        assert (verified.status, spoof.status, abroad.status) == (200, 428, 200)
        shown = p.handset.screen.find(abroad.call_id)
        assert shown is not None
        assert shown.display_name == "境外来电"
        assert not p.handset.screen.rang(spoof.call_id)

        def sip_matches(now: Scrape) -> bool:
            sent = p.wire.to_gateway - wire_before[0]
            got = p.wire.from_gateway - wire_before[1]
            return sip_moved(after, now, "received") == sent and sip_moved(after, now, "sent") == got

        calls = await _scrape_until(http, port, sip_matches)
        assert sip_moved(after, calls, "received")[("request", "INVITE")] == 3
        assert sip_moved(after, calls, "sent")[("response", "428")] == 1
        assert moved(after, calls, "afgw_label_verifications_total", "result") == {"verified": 1, "rejected": 1}
        assert delta(after, calls, "afgw_label_verifications_total", result="rejected", cause="428") == 1
        assert delta(after, calls, decisions, channel="call", action="label", category="international") == 1
        assert delta(after, calls, decisions, channel="call", action="pass") == 1  # the centre's own call
        assert delta(after, calls, "afgw_sip_invite_first_response_seconds_count") == 3
        assert delta(after, calls, "afgw_events_total", event="call.label_rejected") == 1
        assert delta(after, calls, "afgw_events_total", event="call.label_verified") == 1


async def _scrape_until(http: aiohttp.ClientSession, port: int, matches: Any, within: float = 10.0) -> Scrape:
    """Scrape until ``matches`` holds (the last ACK, or a store write retried each second, may still be
    on its way), or fail with the last scrape."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        now = await scrape(http, port)
        if matches(now):
            return now
        if loop.time() > deadline:
            raise AssertionError(f"/metrics never showed what was expected:\n{now.text}")
        await asyncio.sleep(0.02)


async def test_readyz_says_not_ready_until_the_smsc_is_bound_and_healthz_answers_throughout() -> None:
    smsc_port = free_port()
    async with started(gateway_config(smsc_port)) as (gw, http, port):
        assert await get_json(http, port, "/healthz") == (200, {"alive": True})
        status, body = await get_json(http, port, "/readyz")
        assert status == 503
        assert body["ready"] is False
        assert list(body["not_ready"]) == ["smsc"]
        assert body["not_ready"]["smsc"] == f"0 of 1 binds to 127.0.0.1:{smsc_port} are up"
        smsc = SimulatedSmsc(system_id="afgw", password="secret")
        await smsc.start("127.0.0.1", smsc_port)
        try:
            assert gw.smpp is not None
            await asyncio.wait_for(gw.smpp.pool.up.wait(), 10)
            assert await get_json(http, port, "/readyz") == (200, {"ready": True})
            assert await get_json(http, port, "/healthz") == (200, {"alive": True})
        finally:
            await smsc.stop()


async def test_readyz_names_an_unreachable_store_and_broker(smsc: SimulatedSmsc) -> None:
    nobody = free_port()  # nothing listens there
    config = gateway_config(
        smsc.port,
        store=StoreConfig(backend="redis", redis_url=f"redis://127.0.0.1:{nobody}/0"),
        events=EventsConfig(mqtt=MqttEventsConfig(port=nobody, backoff_initial=0.05, backoff_max=0.1)),
    )
    async with started(config) as (gw, http, port):
        assert gw.smpp is not None
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 10)
        status, body = await get_json(http, port, "/readyz")
        assert status == 503
        assert sorted(body["not_ready"]) == ["broker", "store"]
        assert body["not_ready"]["broker"] == f"not connected to the MQTT broker at 127.0.0.1:{nobody}"
        assert "Connect" in body["not_ready"]["store"]  # redis-py's ConnectionError, with its reason
        # A relayed message's receipt route cannot be written: a store error, counted; the broker's
        # failed connections are counted too, and it reads as down.
        esme = SimulatedEsme("127.0.0.1", gw.smpp.server.port, "bank", "bankpw")
        await esme.bind()
        (resp,) = await esme.submit("10690", HAM_TO, HAM)
        assert resp.command_status == CommandStatus.ESME_ROK
        await esme.unbind()

        def failures_counted(now: Scrape) -> bool:
            return now.value("afgw_store_errors_total", operation="write") >= 1

        metrics = await _scrape_until(http, port, failures_counted)
        assert metrics.value("afgw_broker_connected") == 0
        assert metrics.value("afgw_broker_errors_total") >= 1


async def test_two_gateways_in_one_process_count_apart(smsc: SimulatedSmsc) -> None:
    async with (
        started(gateway_config(smsc.port)) as (one, http, one_port),
        started(gateway_config(smsc.port)) as (_other, _, other_port),
    ):
        assert one.smpp is not None
        await asyncio.wait_for(one.smpp.pool.up.wait(), 10)
        esme = SimulatedEsme("127.0.0.1", one.smpp.server.port, "bank", "bankpw")
        await esme.bind()
        (resp,) = await esme.submit("10690", HAM_TO, HAM)
        assert resp.command_status == CommandStatus.ESME_ROK
        await esme.unbind()
        counted = await scrape(http, one_port)
        untouched = await scrape(http, other_port)
        received = {"peer": "esme", "direction": "received", "command": "submit_sm"}
        assert counted.total("afgw_smpp_pdus_total", **received) == 1
        assert untouched.total("afgw_smpp_pdus_total", **received) == 0


async def test_the_endpoint_closes_with_the_gateway(smsc: SimulatedSmsc) -> None:
    async with started(gateway_config(smsc.port)) as (_gw, http, port):
        assert (await get_json(http, port, "/healthz"))[0] == 200
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await get_json(http, port, "/healthz")


def test_no_http_section_no_endpoint() -> None:
    assert GatewayConfig().http is None
    assert Gateway(GatewayConfig()).web is None
