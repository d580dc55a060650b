"""The gateway as configured: refusals reach the SQLite audit trail, the local event log and the broker;
receipt routes outlive a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.config import EsmeAccount, EventsConfig, JsonlEventsConfig, MqttEventsConfig, StoreConfig
from gateway.inspection import Action, Decision, SmsMessage
from gateway.store import MemoryStore, SqliteStore
from protocols.smpp.constants import CommandStatus, DataCoding, EsmClass, Tag
from protocols.smpp.pdu import CancelSm, DeliverSm, QuerySm, SubmitSm, Tlv
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import gateway_port, make_config, running_gateway
from tests.gateway.events.mqtt_broker import Broker

_README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
README_EVENT = json.loads(_README.split("```json\n", 1)[1].split("\n", 1)[0])

BANK = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10),)
BANK_MO = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10, mo_prefixes=("10690",)),)


def ucs2(source: str, text: str) -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr="8613800000001",
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


async def test_refusal_is_audited_logged_and_published(smsc, tmp_path):
    broker = Broker(tmp_path)
    await broker.start()
    try:
        config = replace(
            make_config(smsc.port, accounts=BANK),
            store=StoreConfig(backend="sqlite", data_dir=str(tmp_path / "data")),
            events=EventsConfig(
                jsonl=JsonlEventsConfig(path=str(tmp_path / "events.jsonl")),
                mqtt=MqttEventsConfig(port=broker.port, client_id="gw-test", topic_prefix="afgw/v1/events"),
            ),
        )
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            await centre.subscribe("afgw/v1/events/#", qos=1)
            async with running_gateway(config) as gw:
                bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
                await bank.bind()
                refused = await bank.send(ucs2("+8612381", "您的账户涉嫌洗钱，请配合调查"))
                accepted = await bank.send(ucs2("10690", "【某银行】您的验证码是 1234"))
                await bank.unbind()
                message = await asyncio.wait_for(anext(centre.messages), 10)
        assert refused.command_status == CommandStatus.ESME_RINVSRCADR
        assert accepted.command_status == CommandStatus.ESME_ROK
    finally:
        await broker.stop()

    assert str(message.topic) == "afgw/v1/events/sms.reserved_refused"
    published = json.loads(message.payload)
    assert (published["schema"], published["instance"]) == (1, "gw-test")
    assert published["fields"]["system_id"] == "bank"
    # The README shows the same shape.
    example = README_EVENT
    assert example["fields"] == published["fields"] | {"status": example["fields"]["status"]}
    assert set(example) == set(published)
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [e["event"] for e in logged] == ["sms.reserved_refused"]
    assert logged[0]["fields"] == published["fields"]

    # After the gateway stopped: the refusal is in the file, and so is the accepted message's route.
    store = SqliteStore(tmp_path / "data" / "afgw.db")
    [record] = await store.audit_records()
    assert record.kind == "sms.reserved_refused"
    assert record.fields["status"] == CommandStatus.ESME_RINVSRCADR
    assert store.owner_of(accepted.message_id, now=record.at + 1) == "bank"
    await store.close()


class WallClock:
    """The wall clock a test sets; the loop's clock (timers) runs on untouched."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def receipt_for(message_id: str) -> DeliverSm:
    text = f"id:{message_id} sub:001 dlvrd:001 submit date:2607010000 done date:2607010000 stat:DELIVRD err:000"
    return DeliverSm(
        source_addr="8613800000001",
        destination_addr="10690",
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        short_message=text.encode("ascii"),
        tlvs=(Tlv(Tag.RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\x00"),),
    )


@contextlib.asynccontextmanager
async def gateway_at(config, clock) -> AsyncIterator[Gateway]:
    gw = Gateway(config, clock=clock)
    await gw.start()
    assert gw.smpp is not None
    try:
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 5)
        yield gw
    finally:
        await gw.stop()


@contextlib.contextmanager
def store_config(backend: str, tmp_path: Path) -> Iterator[StoreConfig]:
    if backend == "sqlite":
        yield StoreConfig(backend="sqlite", path=str(tmp_path / "s.db"))
        return
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    try:
        yield StoreConfig(backend="redis", redis_url=f"redis://127.0.0.1:{port}/0")
    finally:
        proc.kill()
        proc.wait()


TTL = 72 * 3600.0


# A route is stamped with the wall clock: the SMSC's receipt hours later, across a restart (and a
# reboot, which restarts a monotonic clock), finds the ESME until the receipt ttl has passed.
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize(("later", "routed"), [(60.0, True), (TTL - 60, True), (TTL + 60, False)])
async def test_receipt_routes_survive_a_restart_and_expire_by_epoch_time(smsc, tmp_path, later, routed, backend):
    clock = WallClock(1_800_000_000.0)
    with store_config(backend, tmp_path) as store:
        config = replace(make_config(smsc.port, accounts=BANK, receipt_ttl=TTL), store=store)
        await _receipt_after_restart(smsc, config, clock, later, routed)


async def _receipt_after_restart(smsc, config, clock, later, routed):
    async with gateway_at(config, clock) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await bank.bind()
        answer = await bank.send(ucs2("10690", "【某银行】您的验证码是 1234"))
        await bank.unbind()
    assert answer.command_status == CommandStatus.ESME_ROK
    clock.now += later
    async with gateway_at(config, clock) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await bank.bind()
        upstream = smsc._receiver()
        assert upstream is not None
        # Quoted in upper case, as some SMSCs do: the stored id is matched in any case.
        resp = await upstream.request(receipt_for(answer.message_id.upper()))
        if routed:
            await asyncio.wait_for(bank.delivery_arrived.wait(), 5)
        await bank.unbind()
    if routed:
        assert resp.command_status == CommandStatus.ESME_ROK
        quoted = answer.message_id.upper().encode("ascii") + b"\x00"
        assert [d.tlv(Tag.RECEIPTED_MESSAGE_ID) for d in bank.delivered] == [quoted]
    else:
        assert resp.command_status == CommandStatus.ESME_RX_P_APPN
        assert bank.delivered == []


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_only_the_submitter_may_query_or_cancel_its_message_after_a_restart(smsc, tmp_path, backend):
    accounts = (*BANK, EsmeAccount(system_id="shop", password="shoppw", throughput=1000, window=10))
    clock = WallClock(1_800_000_000.0)
    with store_config(backend, tmp_path) as store:
        config = replace(make_config(smsc.port, accounts=accounts), store=store)
        async with gateway_at(config, clock) as gw:
            bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
            await bank.bind()
            answer = await bank.send(ucs2("10690", "【某银行】您的验证码是 1234"))
            await bank.unbind()
        clock.now += 3600
        async with gateway_at(config, clock) as gw:
            bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
            shop = SimulatedEsme("127.0.0.1", gateway_port(gw), "shop", "shoppw")
            await bank.bind()
            await shop.bind()
            mid = answer.message_id
            foreign = await shop.send(QuerySm(message_id=mid, source_addr="10690"))
            own = await bank.send(QuerySm(message_id=mid, source_addr="10690"))
            cancelled = await bank.send(CancelSm(message_id=mid, source_addr="10690"))
            await bank.unbind()
            await shop.unbind()
    assert foreign.command_status == CommandStatus.ESME_RQUERYFAIL
    assert (own.command_status, own.message_id) == (CommandStatus.ESME_ROK, mid)
    assert cancelled.command_status == CommandStatus.ESME_ROK


class Blocker:
    def inspect_sms(self, message: SmsMessage) -> Decision:
        return Decision(action=Action.BLOCK, rules=("test.block",), reason="test")


@pytest.mark.parametrize("kind", ["reserved", "submit", "mo"])
async def test_audit_records_carry_the_wall_clock_time(smsc, kind):
    store = MemoryStore()
    inspector = Blocker() if kind != "reserved" else None
    async with running_gateway(make_config(smsc.port, accounts=BANK_MO), store=store, inspector=inspector) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await bank.bind()
        before = time.time()
        if kind == "reserved":
            resp = await bank.send(ucs2("+8612381", "您的账户涉嫌洗钱"))
            assert resp.command_status == CommandStatus.ESME_RINVSRCADR
        elif kind == "submit":
            resp = await bank.send(ucs2("10690", "hello"))
            assert resp.command_status == CommandStatus.ESME_RSUBMITFAIL
        else:
            status = await smsc.inject_mo("8613800000001", "10690", "hello")
            assert status == CommandStatus.ESME_RX_P_APPN
        after = time.time()
        await bank.unbind()
    [record] = await store.audit_records()
    assert before <= record.at <= after


async def test_velocity_counts_survive_a_restart(tmp_path):
    """The third international call to one subscriber within 10 minutes is warned about, even when
    the gateway restarted between the second and the third (shipped rule intl.call-targeted)."""
    from gateway.config import GatewayConfig, RulesConfig
    from rules import Message

    config = GatewayConfig(
        rules=RulesConfig(reload_interval=0), store=StoreConfig(backend="sqlite", data_dir=str(tmp_path))
    )

    def call(n: int) -> Message:
        return Message(
            channel="call", src=f"+4477009001{n:02d}", dst="13800000066", origin="international", now=1000.0 + n
        )

    first = Gateway(config)
    engine = first._load_rules(config.rules)
    verdicts = [engine.engine.evaluate(call(n)) for n in (1, 2)]
    await first.stop()
    second = Gateway(config)
    after = second._load_rules(config.rules).engine.evaluate(call(3))
    await second.stop()
    assert [v.action.value for v in verdicts] == ["label", "label"]
    assert after.action.value == "warn"
    assert "intl.call-targeted" in after.rules


async def test_with_redis_two_gateways_share_the_audit_trail_and_routes(smsc, tmp_path):
    from gateway.store.redis_store import RedisStore
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        config = replace(make_config(smsc.port, accounts=BANK), store=StoreConfig(backend="redis", redis_url=url))
        async with running_gateway(config) as gw:
            bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
            await bank.bind()
            refused = await bank.send(ucs2("+8612381", "您的账户涉嫌洗钱"))
            accepted = await bank.send(ucs2("10690", "【某银行】您的验证码是 1234"))
            await bank.unbind()
        assert refused.command_status == CommandStatus.ESME_RINVSRCADR
        other = RedisStore(url)
        [record] = await other.audit_records()
        assert (record.kind, record.fields["system_id"]) == ("sms.reserved_refused", "bank")
        assert await other.route_owner(accepted.message_id, now=record.at + 1) == "bank"
        await other.close()
    finally:
        proc.kill()
        proc.wait()
