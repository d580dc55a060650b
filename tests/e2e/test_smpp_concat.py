"""Long messages through the SMPP proxy: parts reach the SMSC in the ESME's order, and are inspected whole
before any of them goes."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import EsmeAccount
from gateway.inspection import Action, Decision, SmsMessage
from gateway.smpp.connection import SmppConnection
from protocols.smpp import text
from protocols.smpp.constants import CommandStatus, EsmClass
from protocols.smpp.pdu import Pdu, SubmitSm, Tlv
from simulator.esme import SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import eventually, gateway_port, make_config, running_gateway

METHODS = list(text.ConcatMethod)
S = CommandStatus
FILLER = "您好，今天下午三点的会议改到明天上午，请大家相互转告，谢谢。"
FRAUD = "请立即把钱转到安全账户配合调查"
ACCOUNTS = tuple(
    EsmeAccount(system_id=name, password=name + "pw", throughput=100000, window=50, max_binds=4)
    for name in ("bank", "shop")
)


class Keywords:
    """Blocks a text containing FRAUD, tags one containing 中奖: a decision on the text alone."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def inspect_sms(self, message: SmsMessage) -> Decision:
        self.seen.append(message.text)
        if FRAUD in message.text:
            return Decision(action=Action.BLOCK, rules=("test.fraud",), reason="fraud")
        if "中奖" in message.text:
            return Decision(action=Action.TAG, rules=("test.tag",), label="【疑似诈骗】")
        return Decision()


def long_message(parts: int, *, n: int = 0, fraud_in: int | None = None) -> str:
    """A UCS2 text of exactly ``parts`` parts (every method fits 66 characters a part)."""
    chunks = [(f"{n}#{i}" + FILLER * 3)[:66] for i in range(parts)]
    if fraud_in is not None:
        chunks[fraud_in] = (FRAUD + chunks[fraud_in])[:66]
    return "".join(chunks)


def submits(message: str, method: text.ConcatMethod, ref: int, *, source: str, dest: str, rd: int = 0) -> list[Pdu]:
    data_coding, segments = text.split(message, method=method, ref=ref)
    return [
        SubmitSm(
            source_addr=source,
            destination_addr=dest,
            esm_class=EsmClass.UDHI if seg.esm_class_udhi else 0,
            data_coding=data_coding,
            registered_delivery=rd,
            short_message=seg.short_message,
            tlvs=tuple(Tlv(t, v) for t, v in seg.tlvs),
        )
        for seg in segments
    ]


async def all_at_once(esme: SimulatedEsme, pdus: list[Pdu]) -> list[int]:
    """Every part written before any answer is read, as Kannel sends them."""
    assert esme.conn is not None
    futures = [esme.conn.request(p) for p in pdus]
    return [r.command_status for r in await asyncio.gather(*futures)]


async def one_by_one(esme: SimulatedEsme, pdus: list[Pdu]) -> list[int]:
    """Each part only after the answer to the one before."""
    return [(await esme.send(p)).command_status for p in pdus]


def ordinary(smsc: SimulatedSmsc, number: str) -> list[str]:
    return [sms.text for sms in smsc.inbox(number) if not sms.flash and sms.parts]


# --- 1. in order, on one bind --------------------------------------------------------------------


@pytest.mark.parametrize("binds", [2, 4])
@pytest.mark.parametrize("method", METHODS)
async def test_several_esmes_sending_long_messages_at_once_reach_the_smsc_in_order(smsc, binds, method):
    config = make_config(smsc.port, accounts=ACCOUNTS, binds=binds)
    async with running_gateway(config) as gw:
        await eventually(lambda: gw.smpp is not None and gw.smpp.pool.bound_count == binds)
        port = gateway_port(gw)
        esmes = [SimulatedEsme("127.0.0.1", port, name, name + "pw", window=50) for name in ("bank", "shop") * 2]
        for esme in esmes:
            await esme.bind()
        sent: dict[tuple[str, str, int], str] = {}
        jobs = []
        for e, esme in enumerate(esmes):
            for m in range(3):
                ref, dest = 10 * e + m + 1, f"86138000001{e}{m}"
                message = long_message(4 + m, n=e)
                sent[(f"1069{e}", dest, ref)] = message
                jobs.append(all_at_once(esme, submits(message, method, ref, source=f"1069{e}", dest=dest)))
        answers = await asyncio.gather(*jobs)
        assert {s for statuses in answers for s in statuses} == {S.ESME_ROK}
        for (source, dest, ref), message in sent.items():
            arrived = smsc.arrived(source, dest, ref)
            assert [a.seq for a in arrived] == list(range(1, len(arrived) + 1)) == list(range(1, arrived[0].total + 1))
            assert len({a.bind for a in arrived}) == 1, "the parts of one message went out on several binds"
            assert ordinary(smsc, dest) == [message]
        # The sessions were spread over the binds, not all put on one.
        assert len({a.bind for a in smsc.arrivals}) == min(binds, len(esmes))
        for esme in esmes:
            await esme.unbind()


class DropsOnce(SimulatedSmsc):
    """Closes the connection a chosen part arrives on, leaving that part and any after it unanswered."""

    def __init__(self, *, part: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.part = part
        self.dropped: list[int] = []

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if not conn.is_open:  # what was read with the lost part, behind it
            return
        udh = isinstance(pdu, SubmitSm) and pdu.esm_class & EsmClass.UDHI
        if not self.dropped and udh and pdu.short_message[5] == self.part:  # type: ignore[union-attr]
            self.dropped.append(self._conn_numbers[conn])
            conn.close()  # the answers already given still go out
            return
        super().event(conn, pdu)


@pytest.mark.parametrize("binds", [2, 4])
@pytest.mark.parametrize("lost_at", [2, 4])
async def test_a_bind_lost_mid_message_moves_the_session_to_another_bind_in_order(binds, lost_at):
    smsc = DropsOnce(part=lost_at, system_id="afgw", password="secret")
    await smsc.start("127.0.0.1", 0)
    config = make_config(smsc.port, accounts=ACCOUNTS, binds=binds, smsc_peer={"reconnect_initial": 5.0})
    try:
        async with running_gateway(config) as gw:
            await eventually(lambda: gw.smpp is not None and gw.smpp.pool.bound_count == binds)
            esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
            await esme.bind()
            message = long_message(5)
            pdus = submits(message, text.ConcatMethod.UDH8, 9, source="10690", dest="8613800000077")
            statuses = await all_at_once(esme, pdus)
            assert smsc.dropped
            # The parts before the lost one were accepted; the lost one and those behind it on the same
            # connection were not, and the ESME is told to retry them (never told yes and dropped).
            assert statuses[: lost_at - 1] == [S.ESME_ROK] * (lost_at - 1)
            assert set(statuses[lost_at - 1 :]) == {S.ESME_RMSGQFUL}
            retried = await all_at_once(esme, pdus[lost_at - 1 :])
            assert retried == [S.ESME_ROK] * len(retried)
            arrived = smsc.arrived("10690", "8613800000077", 9)
            assert [a.seq for a in arrived] == [1, 2, 3, 4, 5]
            # The retried parts left on one surviving bind, not the lost one.
            assert len({a.bind for a in arrived[lost_at - 1 :]}) == 1
            assert arrived[-1].bind != smsc.dropped[0]
            assert ordinary(smsc, "8613800000077") == [message]
            # And the session's next message keeps to its new bind.
            after = submits(long_message(3, n=1), text.ConcatMethod.UDH8, 10, source="10690", dest="8613800000078")
            assert await all_at_once(esme, after) == [S.ESME_ROK] * 3
            assert {a.bind for a in smsc.arrived("10690", "8613800000078", 10)} == {arrived[-1].bind}
            await esme.unbind()
    finally:
        await smsc.stop()


# --- 2. inspected whole before any part goes -------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fraud_in", [0, 2, 4])
async def test_fraud_anywhere_in_a_message_sent_at_once_blocks_every_part_and_relays_none(smsc, method, fraud_in):
    inspector = Keywords()
    config = make_config(smsc.port, accounts=ACCOUNTS, concat_hold=5.0)
    async with running_gateway(config, inspector=inspector) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
        await esme.bind()
        message = long_message(5, fraud_in=fraud_in)
        pdus = submits(message, method, 33, source="10690", dest="8613800000090", rd=1)
        statuses = await all_at_once(esme, pdus)
        assert statuses == [S.ESME_RSUBMITFAIL] * 5
        assert inspector.seen == [message]  # decided once, on the whole text

        # A legitimate message right after it goes through, with its receipt: the receipts would
        # have come by now for anything relayed.
        ok = submits(long_message(3), method, 34, source="10690", dest="8613800000091", rd=1)
        assert await all_at_once(esme, ok) == [S.ESME_ROK] * 3
        await eventually(lambda: len(esme.delivered) == 3)
        assert smsc.arrived("10690", "8613800000090", 33) == []
        assert ordinary(smsc, "8613800000090") == []
        assert smsc.stats.submitted == 3
        assert gw.smpp is not None
        blocked = [r for r in gw.smpp.store.audit_log if r.kind == "sms.blocked"]  # type: ignore[attr-defined]
        assert [r.fields["text"] for r in blocked] == [message]
        await esme.unbind()


@pytest.mark.parametrize("method", METHODS)
async def test_a_tagged_message_sent_at_once_goes_whole_in_order_with_the_tag_on_its_first_part(smsc, method):
    config = make_config(smsc.port, accounts=ACCOUNTS, concat_hold=5.0)
    async with running_gateway(config, inspector=Keywords()) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
        await esme.bind()
        message = long_message(4)[:-10] + "恭喜您中奖了"
        pdus = submits(message, method, 5, source="10690", dest="8613800000095")
        assert await all_at_once(esme, pdus) == [S.ESME_ROK] * 4
        await eventually(lambda: ordinary(smsc, "8613800000095"))
        assert ordinary(smsc, "8613800000095") == ["【疑似诈骗】" + message]
        assert [a.seq for a in smsc.arrived("10690", "8613800000095", 5)] == [1, 2, 3, 4]
        await esme.unbind()


@pytest.mark.parametrize("method", METHODS)
async def test_an_esme_waiting_for_each_answer_is_held_once_for_the_deadline_then_goes_part_by_part(smsc, method):
    hold = 0.3
    inspector = Keywords()
    config = make_config(smsc.port, accounts=ACCOUNTS, concat_hold=hold)
    async with running_gateway(config, inspector=inspector) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
        await esme.bind()
        loop = asyncio.get_running_loop()
        message = long_message(4)
        pdus = submits(message, method, 21, source="10690", dest="8613800000096")
        start = loop.time()
        answered = []
        for pdu in pdus:
            assert (await esme.send(pdu)).command_status == S.ESME_ROK
            answered.append(loop.time() - start)
        # The first answer waited for the deadline (not for the ESME's response timeout); the others
        # were not held again.
        assert hold <= answered[0] < config.smpp.response_timeout
        assert answered[-1] - answered[0] < hold * len(pdus)
        await eventually(lambda: ordinary(smsc, "8613800000096"))
        assert ordinary(smsc, "8613800000096") == [message]
        # Each part decided on the text of every part so far.
        seen = inspector.seen
        assert len(seen) == 4
        assert seen[-1] == message
        assert all(message.startswith(t) for t in seen)
        assert sorted(seen, key=len) == seen

        # Fraud in a later part of such a message: that part and the rest are refused.
        fraud = long_message(4, n=1, fraud_in=2)
        statuses = await one_by_one(esme, submits(fraud, method, 22, source="10690", dest="8613800000097"))
        assert statuses == [S.ESME_ROK, S.ESME_ROK, S.ESME_RSUBMITFAIL, S.ESME_RSUBMITFAIL]
        await esme.unbind()


async def test_held_parts_are_bounded_and_the_excess_is_throttled(smsc):
    config = make_config(smsc.port, accounts=ACCOUNTS, concat_hold=5.0, concat_max_held_per_account=2)
    async with running_gateway(config, inspector=Keywords()) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
        await esme.bind()
        assert esme.conn is not None
        firsts = [
            submits(long_message(2), text.ConcatMethod.UDH8, ref, source="10690", dest="86138")[0] for ref in (1, 2, 3)
        ]
        futures = [esme.conn.request(p) for p in firsts]
        third = await asyncio.wait_for(futures[2], 2.0)  # answered at once, not held
        assert third.command_status == S.ESME_RTHROTTLED
        assert not any(f.done() for f in futures[:2])
        for fut in futures[:2]:
            fut.cancel()
        await esme.unbind()


async def test_parts_held_for_an_esme_that_left_are_not_relayed(smsc):
    config = make_config(smsc.port, accounts=ACCOUNTS, concat_hold=0.2)
    async with running_gateway(config, inspector=Keywords()) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw", window=50)
        await esme.bind()
        assert esme.conn is not None
        pdus = submits(long_message(3), text.ConcatMethod.UDH8, 44, source="10690", dest="8613800000098")
        for pdu in pdus[:2]:
            esme.conn.request(pdu)
        await asyncio.sleep(0.05)
        esme.conn.close()  # unanswered: it will send them again when it is back
        assert gw.smpp is not None
        concat = gw.smpp.concat
        await eventually(lambda: concat.held_parts == 0)  # the deadline passed
        await asyncio.sleep(0.2)  # time for anything relayed to reach the SMSC
        assert smsc.arrived("10690", "8613800000098", 44) == []
