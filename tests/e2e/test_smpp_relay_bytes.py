"""The octets a submit_sm and its response cross the gateway with: only the sequence number changes.

The relay sends a request on from the octets it received (its sequence number patched) and answers the
ESME with the SMSC's response likewise; these pin that down against hand-built PDUs, with every field
set and optional parameters, against what the codec would encode from the decoded fields, and for the
answers of the SMSC's the relay now gets called back with (a response with a parameter, a body-less
refusal, no answer at all).
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections.abc import AsyncIterator

import pytest

from gateway.smpp.connection import SmppConnection
from protocols.smpp.codec import decode, encode
from protocols.smpp.pdu import Pdu, SubmitSm, SubmitSmResp, Tlv
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import RawPeer, cstr, encode_tlvs, gateway_port, make_config, raw_bind, raw_pdu
from tests.e2e.smpp_harness import running_gateway as gateway_running

BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
ESME_RMSGQFUL, ESME_RSYSERR = 0x14, 0x08


def unusual_submit(seq: int, text: bytes, tlvs: tuple[tuple[int, bytes], ...]) -> bytes:
    """A submit_sm with no field at its default: every octet of it has to arrive as it left."""
    body = (
        cstr("CMT")  # service_type
        + bytes((5, 9))  # source ton, npi
        + cstr("ALPHA-SNDR")
        + bytes((1, 1))
        + cstr("8613800138000")
        + bytes((0x03, 0x7F, 3))  # esm_class (store and forward, no UDHI), protocol_id, priority_flag
        + cstr("261231235959000+")  # schedule_delivery_time
        + cstr("000002000000000R")  # validity_period, relative
        + bytes((0x10, 1, 8, 7, len(text)))  # registered_delivery (no receipt), replace_if_present, data_coding, id
        + text
        + encode_tlvs(tlvs)
    )
    return raw_pdu(SUBMIT_SM, seq, body)


TLVS = (
    (0x1400, b"vendor"),
    (0x0204, b"\x12\x34"),  # user_message_reference
    (0x1400, bytes(range(256))),  # the vendor tag again, after a standard one
    (0x1501, b""),  # empty value
)


class ScriptedSmsc(SimulatedSmsc):
    """Keeps every submit_sm as received and answers it with ``answer`` (None: the simulator's own)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.wires: list[bytes] = []
        self.answer: Pdu | None = None
        self.silent = False

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm):
            assert pdu.wire is not None
            self.wires.append(pdu.wire)
            if self.silent:
                return
            if self.answer is not None:
                conn.send(self.answer, sequence_number=pdu.sequence_number)
                return
        super().event(conn, pdu)


@pytest.fixture
async def smsc() -> AsyncIterator[ScriptedSmsc]:
    sim = ScriptedSmsc(system_id="afgw", password="secret")
    await sim.start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        await sim.stop()


async def bound_peer(port: int) -> RawPeer:
    peer = await RawPeer.connect(port)
    await peer.send(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
    command_id, status, _seq, _body = await peer.read_pdu()
    assert (command_id, status) == (BIND_TRANSCEIVER_RESP, 0)
    return peer


def without_sequence(pdu: bytes) -> bytes:
    return pdu[:12] + pdu[16:]


async def test_submit_sm_arrives_as_sent_and_as_its_fields_encode(smsc: ScriptedSmsc) -> None:
    text = "您的验证码是 123456".encode("utf-16-be")
    sent = [unusual_submit(seq, text, TLVS) for seq in (7, 8)]  # the second decoded by the known command's path
    async with gateway_running(make_config(smsc.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        try:
            for pdu in sent:
                await peer.send(pdu)
                command_id, status, seq, _body = await peer.read_pdu()
                assert (command_id, status, seq) == (SUBMIT_SM_RESP, 0, struct.unpack_from(">I", pdu, 12)[0])
        finally:
            peer.close()
    assert [without_sequence(w) for w in smsc.wires] == [without_sequence(p) for p in sent]
    for wire in smsc.wires:
        # Relayed from its octets, it equals what the codec writes from its decoded fields.
        decoded = decode(wire)
        assert encode(dataclasses.replace(decoded)) == wire
        assert decoded.tlvs == tuple(Tlv(tag, value) for tag, value in TLVS)


async def test_the_smscs_response_reaches_the_esme_as_sent(smsc: ScriptedSmsc) -> None:
    smsc.answer = SubmitSmResp(message_id="MSG-0042", tlvs=(Tlv(0x1600, b"\x00\x01extra"),))
    async with gateway_running(make_config(smsc.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        try:
            await peer.send(unusual_submit(1234, b"hello", TLVS))
            command_id, status, seq, body = await peer.read_pdu()
        finally:
            peer.close()
    assert (command_id, status, seq) == (SUBMIT_SM_RESP, 0, 1234)
    assert raw_pdu(command_id, seq, body, status) == encode(smsc.answer, 1234)


async def test_a_bodyless_refusal_reaches_the_esme_as_sent(smsc: ScriptedSmsc) -> None:
    smsc.answer = SubmitSmResp(command_status=ESME_RSYSERR)
    async with gateway_running(make_config(smsc.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        try:
            await peer.send(unusual_submit(99, b"hello", TLVS))
            answer = await peer.read_pdu()
        finally:
            peer.close()
    assert answer == (SUBMIT_SM_RESP, ESME_RSYSERR, 99, b"")


async def test_no_answer_from_the_smsc_is_a_retry_for_the_esme(smsc: ScriptedSmsc) -> None:
    smsc.silent = True
    async with gateway_running(make_config(smsc.port, response_timeout=0.3)) as gw:
        peer = await bound_peer(gateway_port(gw))
        try:
            await peer.send(unusual_submit(5, b"hello", TLVS))
            answer = await asyncio.wait_for(peer.read_pdu(), 5)
        finally:
            peer.close()
    assert answer == (SUBMIT_SM_RESP, ESME_RMSGQFUL, 5, b"")
