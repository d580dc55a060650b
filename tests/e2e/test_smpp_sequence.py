"""Sequence numbers, text fields and the end of a session, as a raw ESME sees them through the gateway.

Every message that reaches the SMSC has its reply to the ESME, or a warning naming its message_id.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from gateway.inspection import Action, Decision, SmsMessage
from protocols.smpp.pdu import SubmitSm
from tests.e2e.smpp_harness import (
    LOCALHOST,
    HeldSmsc,
    RawPeer,
    encode_tlvs,
    eventually,
    gateway_port,
    make_config,
    raw_bind,
    raw_pdu,
    raw_submit,
    running_gateway,
)

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
ENQUIRE_LINK, UNBIND, UNBIND_RESP = 0x00000015, 0x00000006, 0x80000006
ESME_RSUBMITFAIL, ESME_RINVPARLEN, ESME_RUNKNOWNERR = 0x45, 0xC2, 0xFF
MESSAGE_PAYLOAD = 0x0424


@pytest.fixture
async def held() -> AsyncIterator[HeldSmsc]:
    smsc = HeldSmsc(system_id="afgw", password="secret")
    await smsc.start(LOCALHOST, 0)
    yield smsc
    await smsc.stop()


def submits(smsc: HeldSmsc) -> list[SubmitSm]:
    return [p for p in smsc.received if isinstance(p, SubmitSm)]


async def bound_peer(port: int) -> RawPeer:
    peer = await RawPeer.connect(port)
    await peer.send(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
    assert (await peer.read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, 0)
    return peer


@pytest.mark.parametrize("repeats", [1, 9, 120])  # 120: far past the account's window of 50
async def test_a_reused_sequence_number_is_refused_and_never_relayed(held, repeats):
    async with running_gateway(make_config(held.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        held.holding = True
        await peer.send(raw_submit(5, "10690", "8613800000051", b"first"))
        await eventually(lambda: len(held.held) == 1)
        await peer.send(
            b"".join(raw_submit(5, "10690", "8613800000051", f"again {i}".encode()) for i in range(repeats))
        )
        for _ in range(repeats):
            assert await peer.read_pdu() == (SUBMIT_SM_RESP, ESME_RUNKNOWNERR, 5, b"")
        held.release()
        command_id, status, seq, body = await peer.read_pdu()
        assert (command_id, status, seq) == (SUBMIT_SM_RESP, 0, 5)
        assert held.by_id[body.rstrip(b"\0").decode()].text == "first"
        assert [p.short_message for p in submits(held)] == [b"first"]
        # The number is free again once answered.
        await peer.send(raw_submit(5, "10690", "8613800000051", b"reused"))
        assert (await peer.read_pdu())[:3] == (SUBMIT_SM_RESP, 0, 5)
        peer.close()


@pytest.mark.parametrize("seq", [0, 0x80000000, 0x80000001, 0xFFFFFFFF])
@pytest.mark.parametrize("bound", [False, True], ids=["open", "bound"])
async def test_a_sequence_number_out_of_range_is_nacked(held, seq, bound):
    async with running_gateway(make_config(held.port)) as gw:
        port = gateway_port(gw)
        peer = await (bound_peer(port) if bound else RawPeer.connect(port))
        pdu = raw_submit(seq, "10690", "8613800000052", b"bad number")
        if not bound:
            pdu = raw_bind(BIND_TRANSCEIVER, seq, "bank", "bankpw")
        await peer.send(pdu + raw_pdu(ENQUIRE_LINK, 77))
        assert await peer.read_pdu() == (GENERIC_NACK, ESME_RUNKNOWNERR, seq, b"")
        assert (await peer.read_pdu())[:3] == (0x80000015, 0, 77)  # the session goes on
        assert submits(held) == []
        peer.close()


def submit_with_payload(seq: int, short: bytes, payload: bytes, data_coding: int = 0) -> bytes:
    pdu = raw_submit(seq, "10690", "8613800000053", short, data_coding)
    tlv = encode_tlvs([(MESSAGE_PAYLOAD, payload)])
    return struct.pack(">I", len(pdu) + len(tlv)) + pdu[4:] + tlv


class BlockWord:
    """Blocks any message whose text contains ``word``."""

    def __init__(self, word: str) -> None:
        self.word = word

    def inspect_sms(self, message: SmsMessage) -> Decision:
        if self.word in message.text:
            return Decision(Action.BLOCK, rules=("word",), reason="word")
        return Decision()


@pytest.mark.parametrize(
    ("short", "payload"),
    [(b"hello", "请转账到安全账户".encode()), (b"\x00", b"x"), (b"a" * 140, b"b" * 1000)],
)
async def test_short_message_and_message_payload_together_are_refused(held, short, payload):
    async with running_gateway(make_config(held.port), inspector=BlockWord("安全账户")) as gw:
        peer = await bound_peer(gateway_port(gw))
        await peer.send(submit_with_payload(3, short, payload))
        assert await peer.read_pdu() == (SUBMIT_SM_RESP, ESME_RINVPARLEN, 3, b"")
        assert submits(held) == []
        peer.close()


@pytest.mark.parametrize("text", ["请转账到安全账户", "安全账户" + "x" * 400])
async def test_text_in_message_payload_alone_is_inspected(held, text):
    async with running_gateway(make_config(held.port), inspector=BlockWord("安全账户")) as gw:
        peer = await bound_peer(gateway_port(gw))
        await peer.send(submit_with_payload(3, b"", text.encode("utf-16-be"), 0x08))
        assert await peer.read_pdu() == (SUBMIT_SM_RESP, ESME_RSUBMITFAIL, 3, b"")
        await peer.send(submit_with_payload(4, b"", b"harmless"))
        assert (await peer.read_pdu())[:3] == (SUBMIT_SM_RESP, 0, 4)
        assert [p.payload for p in submits(held)] == [b"harmless"]
        peer.close()


@pytest.mark.parametrize("outstanding", [1, 4, 20])
async def test_unbind_is_answered_after_the_outstanding_submits(held, outstanding):
    async with running_gateway(make_config(held.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        held.holding = True
        await peer.send(
            b"".join(raw_submit(10 + i, "10690", "8613800000054", f"m{i}".encode()) for i in range(outstanding))
        )
        await eventually(lambda: len(held.held) == outstanding)
        await peer.send(raw_pdu(UNBIND, 99))
        await asyncio.sleep(0.2)
        held.release()
        answers = [await peer.read_pdu() for _ in range(outstanding + 1)]
        assert sorted(a[:3] for a in answers[:-1]) == [(SUBMIT_SM_RESP, 0, 10 + i) for i in range(outstanding)]
        assert answers[-1] == (UNBIND_RESP, 0, 99, b"")
        assert await peer.closed_by_peer()
        assert len(submits(held)) == outstanding
        peer.close()


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("outstanding", [1, 5])
async def test_an_accepted_message_whose_reply_is_lost_is_logged_with_its_id(held, how, outstanding):
    async with running_gateway(make_config(held.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        held.holding = True
        await peer.send(
            b"".join(raw_submit(10 + i, "10690", "8613800000055", f"m{i}".encode()) for i in range(outstanding))
        )
        await eventually(lambda: len(held.held) == outstanding)
        if how == "reset":
            sock = peer.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        await asyncio.sleep(0.2)
        with capture_logs() as logs:
            held.release()
            await eventually(lambda: sum(e["event"] == "sms.reply_undelivered" for e in logs) == outstanding)
        lost = [e for e in logs if e["event"] == "sms.reply_undelivered"]
        assert {e["log_level"] for e in lost} == {"warning"}
        assert sorted(e["message_id"] for e in lost) == sorted(held.by_id)
