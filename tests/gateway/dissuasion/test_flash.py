"""The dissuasion flash as the SMSC receives it, and which acknowledgements are matched back to it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dissuasion.flash import SmppFlashSender
from protocols.smpp import codec
from protocols.smpp.constants import CommandStatus, EsmClass, Tag
from protocols.smpp.pdu import DeliverSm, Pdu, SubmitSmResp, Tlv, response_to

VICTIM = "8613900000001"


class FakeSmsc:
    def __init__(self, status: int = 0) -> None:
        self.wire: list[bytes] = []
        self.status = status

    async def submit(self, pdu: Pdu) -> Pdu:
        self.wire.append(codec.encode(pdu, sequence_number=len(self.wire) + 1))
        if self.status:
            return response_to(pdu, self.status)
        return SubmitSmResp(message_id=format(0xBEEF00 + len(self.wire), "X"))


@pytest.mark.parametrize(
    "message",
    [
        "【公安反诈】您正遭遇刷单返利诈骗！请立即停止转账。咨询96110。",
        "Fraud warning: do not transfer money. 96110",  # GSM 7 could carry it; UCS2 all the same
        "表情😀也算两个单位",
    ],
)
async def test_one_part_flash_on_the_wire(message):
    smsc = FakeSmsc()
    sender = SmppFlashSender(smsc.submit)
    message_id = await sender.send_flash(VICTIM, message, "7")
    assert message_id == "BEEF01"
    [wire] = smsc.wire
    pdu = codec.decode(wire)
    assert pdu.source_addr == "12381"
    assert pdu.destination_addr == VICTIM
    assert pdu.data_coding == 0x18
    assert pdu.esm_class == 0
    assert pdu.registered_delivery == 0x09
    assert pdu.short_message == message.encode("utf-16-be")
    assert pdu.tlv(Tag.DEST_ADDR_SUBUNIT) == b"\x01"
    assert pdu.tlv(Tag.USER_MESSAGE_REFERENCE) == b"\x00\x01"
    # As octets: dest_addr_subunit (0x0005) = 1, user_message_reference (0x0204) = 1.
    assert wire.endswith(bytes.fromhex("0005 0001 01 0204 0002 0001"))


async def test_a_multi_part_flash_keeps_every_flag_on_every_part():
    smsc = FakeSmsc()
    sender = SmppFlashSender(smsc.submit)
    assert await sender.send_flash(VICTIM, "请勿转账" * 30, "7") == "BEEF01"
    parts = [codec.decode(w) for w in smsc.wire]
    assert len(parts) == 2
    for pdu in parts:
        assert (pdu.data_coding, pdu.registered_delivery, pdu.esm_class) == (0x18, 0x09, EsmClass.UDHI)
        assert pdu.tlv(Tag.DEST_ADDR_SUBUNIT) == b"\x01"


async def test_a_refused_flash_gives_no_id():
    sender = SmppFlashSender(FakeSmsc(CommandStatus.ESME_RTHROTTLED).submit)
    assert await sender.send_flash(VICTIM, "请勿转账", "7") is None


def _ack(esm_class: int, *tlvs: Tlv, source: str = VICTIM, text: bytes = b"") -> DeliverSm:
    return DeliverSm(source_addr=source, destination_addr="12381", esm_class=esm_class, short_message=text, tlvs=tlvs)


@given(st.integers(min_value=1, max_value=300))
async def test_acknowledgements_match_their_flash_by_id_or_by_reference(count):
    sender = SmppFlashSender(FakeSmsc().submit)
    ids = [await sender.send_flash(VICTIM, "请勿转账", str(i)) for i in range(count)]
    last = ids[-1]
    umr = (count % 0x10000).to_bytes(2, "big")
    assert sender.acknowledged_id(_ack(0x10, Tlv(Tag.RECEIPTED_MESSAGE_ID, last.encode() + b"\0"))) == last
    assert sender.acknowledged_id(_ack(0x10, text=f"id:{last} stat:ACCEPTD".encode())) == last
    assert sender.acknowledged_id(_ack(0x10, Tlv(Tag.USER_MESSAGE_REFERENCE, umr))) == last
    # Not an acknowledgement (a delivery receipt, a plain MO), or someone else's reference: no match.
    assert sender.acknowledged_id(_ack(0x04, Tlv(Tag.RECEIPTED_MESSAGE_ID, last.encode()))) is None
    assert sender.acknowledged_id(_ack(0x00, Tlv(Tag.USER_MESSAGE_REFERENCE, umr))) is None
    assert sender.acknowledged_id(_ack(0x10, Tlv(Tag.USER_MESSAGE_REFERENCE, umr), source="8613000000000")) is None
    assert sender.acknowledged_id(_ack(0x10, Tlv(Tag.USER_MESSAGE_REFERENCE, b"\x01"))) is None
