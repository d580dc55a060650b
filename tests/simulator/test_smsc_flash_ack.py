"""The simulated SMSC shows each flash to the person holding the handset; one who reads it presses OK,
and the handset's manual/user acknowledgement comes back as a phone sends it, matched by the
gateway's own flash sender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from gateway.dissuasion.flash import SmppFlashSender
from gateway.smpp.connection import SmppConnection
from protocols.smpp.constants import CommandStatus, EsmClass, Tag
from protocols.smpp.pdu import DeliverSm, Pdu, response_to
from simulator.behaviour import FlashHabit, Population, Profile
from simulator.clock import ManualClock
from simulator.esme import SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import eventually

T0 = 1_796_558_400.0
READER, IGNORER, STRANGER = "8613800000001", "8613800000002", "8613800000003"
WARNING = "【反诈提醒】公检法机关不会电话办案，不存在安全账户，请勿转账。"


class Line:
    """The gateway's side of one bind: an ESME sending the dissuasion flash as the gateway does."""

    def __init__(self, smsc: SimulatedSmsc) -> None:
        self.esme = SimulatedEsme("127.0.0.1", smsc.port, "afgw", "secret")
        self.sender = SmppFlashSender(self._submit)

    async def _submit(self, pdu: Pdu) -> Pdu:
        return await self.esme.send(pdu)

    def acks(self) -> list[DeliverSm]:
        return [d for d in self.esme.delivered if d.esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_MANUAL_ACK]


@pytest.fixture
async def world() -> AsyncIterator[tuple[SimulatedSmsc, ManualClock, Line]]:
    clock = ManualClock(T0)
    people = Population(5, clock)
    people.add(READER, Profile("reader", flashes=FlashHabit(read=1.0, after=40.0)))
    people.add(IGNORER, Profile("ignorer", flashes=FlashHabit(read=0.0)))
    smsc = SimulatedSmsc(people=people)
    await smsc.start()
    line = Line(smsc)
    await line.esme.bind()
    try:
        yield smsc, clock, line
    finally:
        await line.esme.unbind()
        await smsc.stop()


async def test_a_read_flash_is_acknowledged_after_the_delay_on_the_clock(world) -> None:
    smsc, clock, line = world
    flash_id = await line.sender.send_flash(READER, WARNING, "case-1")
    assert flash_id is not None
    [shown] = smsc.inbox(READER)
    assert shown.flash
    assert shown.text == WARNING
    clock.advance(39.0)
    await eventually(lambda: smsc.stats.receipts_sent == 1)  # the SMSC's own delivery receipt
    assert line.acks() == []  # not read yet
    clock.advance(1.0)
    await eventually(lambda: bool(line.acks()))
    [ack] = line.acks()
    assert (ack.source_addr, ack.destination_addr, ack.esm_class) == (READER, "12381", 0x10)
    assert ack.tlv(Tag.RECEIPTED_MESSAGE_ID) == flash_id.encode() + b"\x00"
    assert ack.tlv(Tag.USER_MESSAGE_REFERENCE) == shown.tlvs[-1].value
    # What the gateway makes of it: the acknowledgement of exactly that flash.
    assert line.sender.acknowledged_id(ack) == flash_id
    [sent] = smsc.acknowledgements
    assert (sent.message_id, sent.handset, sent.at, sent.status) == (flash_id, READER, T0 + 40.0, 0)
    person = smsc.people.get(READER) if smsc.people else None
    assert person is not None
    assert [m.what for m in person.diary] == ["flash_shown", "flash_read"]


async def test_an_ignored_flash_a_stranger_and_a_plain_sms_get_no_acknowledgement(world) -> None:
    smsc, clock, line = world
    assert await line.sender.send_flash(IGNORER, WARNING, "case-2")
    assert await line.sender.send_flash(STRANGER, WARNING, "case-3")  # nobody holds that handset
    # A flash that asks for no acknowledgement gets none, whoever reads it.
    [flash] = line.sender.pdus(READER, WARNING, 9)
    assert (await line.esme.send(replace(flash, registered_delivery=0x01))).command_status == 0
    clock.advance(3600.0)
    await eventually(lambda: smsc.stats.receipts_sent == 3)
    assert line.acks() == []
    assert smsc.acknowledgements == []
    assert len(smsc.inbox(IGNORER)) == len(smsc.inbox(STRANGER)) == 1


async def test_an_acknowledgement_naming_only_the_reference_is_still_matched() -> None:
    clock = ManualClock(T0)
    people = Population(5, clock)
    people.add(READER, Profile("quick", flashes=FlashHabit(after=1.0)))
    smsc = SimulatedSmsc(people=people, ack_names="reference")
    await smsc.start()
    line = Line(smsc)
    await line.esme.bind()
    try:
        flash_id = await line.sender.send_flash(READER, WARNING, "case-4")
        clock.advance(1.0)
        await eventually(lambda: bool(line.acks()))
        [ack] = line.acks()
        assert ack.tlv(Tag.RECEIPTED_MESSAGE_ID) is None
        assert line.sender.acknowledged_id(ack) == flash_id
    finally:
        await line.esme.unbind()
        await smsc.stop()


def test_an_unknown_way_of_naming_the_flash_is_refused() -> None:
    with pytest.raises(ValueError, match="ack_names"):
        SimulatedSmsc(ack_names="guess")


class HoldingEsme(SimulatedEsme):
    """A gateway side that answers a handset's acknowledgement only when told to (a busy gateway)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.held: list[tuple[SmppConnection, DeliverSm]] = []

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm) and pdu.esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_MANUAL_ACK:
            self.held.append((conn, pdu))
            return
        super().event(conn, pdu)

    def answer(self) -> None:
        for conn, pdu in self.held:
            self.delivered.append(pdu)
            conn.send(response_to(pdu, CommandStatus.ESME_ROK))
        self.held.clear()


async def test_an_acknowledgement_is_on_its_way_until_the_gateway_answers_it() -> None:
    # The scenario runner holds the clock on this: the case hears of the OK when it was pressed.
    clock = ManualClock(T0)
    people = Population(5, clock)
    people.add(READER, Profile("reader", flashes=FlashHabit(read=1.0, after=40.0)))
    smsc = SimulatedSmsc(people=people)
    await smsc.start()
    line = Line(smsc)
    line.esme = HoldingEsme("127.0.0.1", smsc.port, "afgw", "secret")
    await line.esme.bind()
    try:
        flash_id = await line.sender.send_flash(READER, WARNING, "case-5")
        await eventually(lambda: smsc.stats.receipts_sent == 1 and smsc.sending == 0)
        clock.advance(40.0)
        esme = line.esme
        assert isinstance(esme, HoldingEsme)
        await eventually(lambda: bool(esme.held))
        assert smsc.sending == 1
        assert smsc.acknowledgements == []
        esme.answer()
        await eventually(lambda: smsc.sending == 0)
        [sent] = smsc.acknowledgements
        assert (sent.message_id, sent.at, sent.status) == (flash_id, T0 + 40.0, 0)
    finally:
        await line.esme.unbind()
        await smsc.stop()
