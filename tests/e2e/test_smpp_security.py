"""Bad input from the ESME side, written byte by byte on raw sockets, and the handling of credentials."""

from __future__ import annotations

import io
import json
import struct
from ipaddress import ip_network

import pytest

from gateway import logs
from gateway.config import EsmeAccount
from protocols.smpp.pdu import SubmitSm
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import (
    RawPeer,
    gateway_port,
    make_config,
    raw_bind,
    raw_pdu,
    raw_submit,
    running_gateway,
)

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM_RESP = 0x80000004
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
ESME_RINVMSGLEN, ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVBNDSTS = 0x01, 0x02, 0x03, 0x04
ESME_RINVSRCADR, ESME_RINVDSTADR, ESME_RBINDFAIL, ESME_RINVPASWD = 0x0A, 0x0B, 0x0D, 0x0E


async def bound_peer(port: int) -> RawPeer:
    peer = await RawPeer.connect(port)
    await peer.send(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
    assert await peer.read_pdu() == (BIND_TRANSCEIVER_RESP, 0, 1, b"afgw\x00")
    return peer


def submits(smsc: SimulatedSmsc) -> list[SubmitSm]:
    return [p for p in smsc.received if isinstance(p, SubmitSm)]


@pytest.mark.parametrize(
    "header",
    [
        # command_length 8 (under the 16-octet header), the rest of a header after it.
        struct.pack(">IIII", 8, 0x00000004, 0, 7),
        struct.pack(">IIII", 15, 0x00000015, 0, 7),
        struct.pack(">IIII", 7425, 0x00000004, 0, 7),  # one over max_pdu_size
        struct.pack(">IIII", 0x7FFFFFFF, 0x00000004, 0, 7),
    ],
    ids=["len8", "len15", "len7425", "len2G"],
)
@pytest.mark.parametrize("bound", [False, True], ids=["open", "bound"])
async def test_command_length_out_of_range_closes_the_connection(smsc, header, bound):
    async with running_gateway(make_config(smsc.port)) as gw:
        peer = await (bound_peer(gateway_port(gw)) if bound else RawPeer.connect(gateway_port(gw)))
        await peer.send(header)
        command_id, status, seq, _ = await peer.read_pdu()
        assert (command_id, status, seq) == (GENERIC_NACK, ESME_RINVCMDLEN, 7)
        assert await peer.closed_by_peer()
        peer.close()


async def test_unknown_command_id_is_nacked_and_the_session_goes_on(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        await peer.send(raw_pdu(0x00000077, 5, b"\x01\x02\x03"))
        assert await peer.read_pdu() == (GENERIC_NACK, ESME_RINVCMDID, 5, b"")
        await peer.send(raw_pdu(0x000000FF, 6))
        assert await peer.read_pdu() == (GENERIC_NACK, ESME_RINVCMDID, 6, b"")

        await peer.send(raw_submit(8, "10690", "8613800000041", "验证码 5566".encode("utf-16-be"), 0x08))
        command_id, status, seq, body = await peer.read_pdu()
        assert (command_id, status, seq) == (SUBMIT_SM_RESP, 0, 8)
        message_id = body.rstrip(b"\x00").decode()
        assert smsc.by_id[message_id].text == "验证码 5566"
        peer.close()


def malformed_submits() -> list[tuple[bytes, int]]:
    good = raw_submit(9, "10690", "8613800000042", b"hello")
    long_source = raw_submit(9, "1" * 30, "8613800000042", b"hello")
    long_destination = raw_submit(9, "10690", "8" * 25, b"hello")
    # sm_length says 200 octets, 5 follow.
    body = good[16:]
    short = struct.pack(">IIII", 16 + len(body), 0x00000004, 0, 9) + body[:-6] + bytes((200,)) + b"hello"
    return [(long_source, ESME_RINVSRCADR), (long_destination, ESME_RINVDSTADR), (short, ESME_RINVMSGLEN)]


@pytest.mark.parametrize(("pdu", "status"), malformed_submits(), ids=["source", "destination", "sm_length"])
async def test_malformed_body_gets_the_status_naming_the_fault(smsc, pdu, status):
    async with running_gateway(make_config(smsc.port)) as gw:
        peer = await bound_peer(gateway_port(gw))
        await peer.send(pdu)
        assert await peer.read_pdu() == (SUBMIT_SM_RESP, status, 9, b"")
        assert submits(smsc) == []
        # Still bound, still relaying.
        await peer.send(raw_submit(10, "10690", "8613800000042", b"fine"))
        assert (await peer.read_pdu())[:3] == (SUBMIT_SM_RESP, 0, 10)
        assert [p.short_message for p in submits(smsc)] == [b"fine"]
        peer.close()


async def test_submit_before_bind_is_refused(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        peer = await RawPeer.connect(gateway_port(gw))
        await peer.send(raw_submit(3, "10690", "8613800000043", b"sneaky"))
        assert await peer.read_pdu() == (SUBMIT_SM_RESP, ESME_RINVBNDSTS, 3, b"")
        # The connection may still bind and then submit.
        await peer.send(raw_bind(BIND_TRANSCEIVER, 4, "bank", "bankpw"))
        assert (await peer.read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, 0)
        await peer.send(raw_submit(5, "10690", "8613800000043", b"now"))
        assert (await peer.read_pdu())[:3] == (SUBMIT_SM_RESP, 0, 5)
        assert [p.short_message for p in submits(smsc)] == [b"now"]
        peer.close()


async def test_wrong_password_and_unknown_system_id_get_the_same_answer(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        answers = []
        for system_id, password in (("bank", "guess"), ("mallory", "guess")):
            peer = await RawPeer.connect(gateway_port(gw))
            await peer.send(raw_bind(BIND_TRANSCEIVER, 1, system_id, password))
            answers.append(await peer.read_pdu())
            assert await peer.closed_by_peer()
            peer.close()
        assert answers[0] == answers[1] == (BIND_TRANSCEIVER_RESP, ESME_RINVPASWD, 1, b"afgw\x00")


@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_passwords_never_reach_the_log(fmt):
    secrets = {"smsc": "Sm5c#Pw9", "bank": "Bk#pw123", "guess": "Wr0ng#pw", "mallory": "Ma11#pw"}
    out = io.StringIO()
    logs.configure(fmt, "debug", stream=out)
    smsc = SimulatedSmsc(system_id="afgw", password=secrets["smsc"])
    await smsc.start("127.0.0.1", 0)
    try:
        accounts = (EsmeAccount(system_id="bank", password=secrets["bank"], mo_prefixes=("10690",)),)
        config = make_config(smsc.port, accounts=accounts, smsc_peer={"password": secrets["smsc"]})
        async with running_gateway(config) as gw:
            port = gateway_port(gw)
            for system_id, password in (("bank", secrets["guess"]), ("mallory", secrets["mallory"])):
                peer = await RawPeer.connect(port)
                await peer.send(raw_bind(BIND_TRANSCEIVER, 1, system_id, password))
                assert (await peer.read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, ESME_RINVPASWD)
                peer.close()
            peer = await RawPeer.connect(port)
            await peer.send(raw_bind(BIND_TRANSCEIVER, 1, "bank", secrets["bank"]))
            assert (await peer.read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, 0)
            await peer.send(raw_submit(2, "10690", "8613800000045", b"logged"))
            assert (await peer.read_pdu())[:2] == (SUBMIT_SM_RESP, 0)
            peer.close()
    finally:
        await smsc.stop()
        logs.configure("console", "warning")
    text = out.getvalue()
    # The log did see the binds, refused and accepted...
    assert "esme.bind_refused" in text
    assert "esme.bound" in text
    assert "smsc.bound" in text
    if fmt == "json":
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert any(e["event"] == "esme.bound" and e.get("system_id") == "bank" for e in events)
        assert any(e["event"] == "esme.bind_refused" and e.get("system_id") == "mallory" for e in events)
    # ...and no password, in any form.
    for secret in secrets.values():
        assert secret not in text
        assert secret.encode().hex() not in text


@pytest.mark.parametrize(
    ("account", "binds_before"),
    [
        (EsmeAccount(system_id="bank", password="bankpw", max_binds=2), 2),
        (EsmeAccount(system_id="bank", password="bankpw", allowed_networks=(ip_network("10.0.0.0/8"),)), 0),
        (EsmeAccount(system_id="bank", password="bankpw", bind_types=frozenset({"transmitter"})), 0),
    ],
    ids=["max_binds", "allowed_networks", "bind_types"],
)
async def test_bind_limits_of_an_account(smsc, account, binds_before):
    async with running_gateway(make_config(smsc.port, accounts=(account,))) as gw:
        peers = []
        for seq in range(1, binds_before + 1):
            peers.append(peer := await RawPeer.connect(gateway_port(gw)))
            await peer.send(raw_bind(BIND_TRANSCEIVER, seq, "bank", "bankpw"))
            assert (await peer.read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, 0)
        peer = await RawPeer.connect(gateway_port(gw))
        await peer.send(raw_bind(BIND_TRANSCEIVER, 9, "bank", "bankpw"))
        assert await peer.read_pdu() == (BIND_TRANSCEIVER_RESP, ESME_RBINDFAIL, 9, b"afgw\x00")
        assert await peer.closed_by_peer()
        for p in [*peers, peer]:
            p.close()


async def test_a_connection_that_never_binds_is_closed(smsc):
    async with running_gateway(make_config(smsc.port, session_init_timeout=0.2)) as gw:
        peer = await RawPeer.connect(gateway_port(gw))
        assert await peer.closed_by_peer(within=10)
        peer.close()
