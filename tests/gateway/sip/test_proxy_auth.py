"""Handsets' credentials at the proxy: 407 for calls, 401 for REGISTER, challenges sent statelessly,
the gateway's own credentials removed before forwarding, and the transaction cap answered statelessly.

Handsets bind 127.0.0.1; strangers and callers bind other loopback addresses (127.0.0.2 is the
trusted trunk in ``sip_config``).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

import pytest

from protocols.sip import Request, Response, parse_message
from protocols.sip.digest import authorization, parse_challenge, parse_credentials
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, register_digest, request, running_proxy, sip_config

USERS = (("alice", "alice-pw"), ("bob", "bob-pw"))
FOREIGN_AUTHORIZATION = (
    'Digest username="bob", realm="callee.example", nonce="abc", uri="sip:alice@127.0.0.1", '
    'response="0123456789abcdef0123456789abcdef"'
)
FOREIGN_PROXY_AUTHORIZATION = (
    'Digest username="bob", realm="next-hop.example", nonce="def", uri="sip:alice@127.0.0.1", '
    'response="fedcba9876543210fedcba9876543210"'
)


def responses(peer: UdpPeer, call_id: str) -> list[Response]:
    """Every response for ``call_id`` that reached ``peer``, from the raw datagrams."""
    out = []
    for data in peer.raw:
        message = parse_message(data)
        if isinstance(message, Response) and message.call_id == call_id:
            out.append(message)
    return out


def transactions_for(proxy, call_id: str) -> list[object]:
    return [entry for entry in proxy._server.values() if entry.txn.request.call_id == call_id]


def answered(invite: Request, challenge: Response, *, offered: int, user: str, password: str) -> Request:
    """``invite`` again (next CSeq, new branch) with Proxy-Authorization for ``challenge``."""
    value = challenge.headers.get_all("Proxy-Authenticate")[offered]
    again = parse_message(invite.serialise())
    assert isinstance(again, Request)
    again.headers.set("CSeq", f"{invite.cseq.number + 1} INVITE")
    via = invite.headers.get("Via") or ""
    again.headers.set("Via", via.split(";branch=")[0] + f";branch=z9hG4bK{secrets.token_hex(6)};rport")
    again.headers.add(
        "Proxy-Authorization",
        authorization(
            parse_challenge(value),
            username=user,
            password=password,
            method="INVITE",
            uri=str(invite.uri),
            cnonce=secrets.token_hex(4),
        ),
    )
    return again


@pytest.fixture
async def gateway():
    config = sip_config(auth=True, users=USERS, t1=0.01)
    config = replace(config, registrar=replace(config.registrar, digest_algorithms=("SHA-256", "MD5")))
    async with running_proxy(config) as proxy:
        alice = await UdpPeer.open()
        assert (await register_digest(alice, proxy.udp_port, "alice", "alice-pw")).status == 200
        bob = await UdpPeer.open("127.0.0.3")
        yield proxy, alice, bob
        alice.close()
        bob.close()


@pytest.mark.parametrize("offered", [0, 1], ids=["SHA-256", "MD5"])
async def test_a_call_is_challenged_407_and_the_callee_never_sees_the_callers_digest(gateway, offered):
    proxy, alice, bob = gateway
    invite = request(
        "INVITE",
        "sip:alice@127.0.0.1",
        bob,
        from_user="bob",
        extra=(("Authorization", FOREIGN_AUTHORIZATION), ("Proxy-Authorization", FOREIGN_PROXY_AUTHORIZATION)),
    )
    bob.send(invite, proxy.udp_port)
    challenge = await bob.response(invite.call_id)
    assert challenge.status == 407
    assert not challenge.headers.get_all("WWW-Authenticate")
    offers = [parse_challenge(v) for v in challenge.headers.get_all("Proxy-Authenticate")]
    assert [c.algorithm for c in offers] == ["SHA-256", "MD5"]

    again = answered(invite, challenge, offered=offered, user="bob", password="bob-pw")
    ours = next(v for v in again.headers.get_all("Proxy-Authorization") if 'realm="afgw.test"' in v)
    bob.send(again, proxy.udp_port)
    got = await alice.request("INVITE", invite.call_id)
    raw = next(d for d in alice.raw if invite.call_id.encode() in d and d.startswith(b"INVITE"))
    assert parse_credentials(ours).response.encode() not in raw
    assert parse_credentials(ours).nonce.encode() not in raw
    # Credentials for other realms are not the gateway's: they pass as they came.
    assert got.headers.get_all("Authorization") == [FOREIGN_AUTHORIZATION]
    assert got.headers.get_all("Proxy-Authorization") == [FOREIGN_PROXY_AUTHORIZATION]


async def test_a_call_answered_with_registrar_credentials_is_challenged_again(gateway):
    proxy, alice, bob = gateway
    invite = request("INVITE", "sip:alice@127.0.0.1", bob, from_user="bob")
    bob.send(invite, proxy.udp_port)
    challenge = await bob.response(invite.call_id)
    again = answered(invite, challenge, offered=0, user="bob", password="bob-pw")
    value = again.headers.get("Proxy-Authorization") or ""
    again.headers.remove("Proxy-Authorization")
    again.headers.add("Authorization", value)  # 22.3: a proxy reads Proxy-Authorization only
    bob.send(again, proxy.udp_port)
    assert (await bob.response(invite.call_id)).status == 407
    wrong = answered(invite, challenge, offered=1, user="bob", password="guess")
    bob.send(wrong, proxy.udp_port)
    assert (await bob.response(invite.call_id)).status == 407
    assert not [m for m in alice.received if isinstance(m, Request) and m.method == "INVITE"]


@pytest.mark.parametrize(
    ("method", "uri", "status"),
    [
        ("INVITE", "sip:alice@127.0.0.1", 407),
        ("MESSAGE", "sip:alice@127.0.0.1", 407),
        ("SUBSCRIBE", "sip:alice@127.0.0.1", 407),
        ("OPTIONS", "sip:alice@127.0.0.1", 407),
        ("OPTIONS", "sip:127.0.0.1", 401),  # the gateway itself is the UAS (RFC 3261 22.2)
        ("REGISTER", "sip:127.0.0.1", 401),
    ],
)
async def test_a_spoofed_request_draws_one_stateless_challenge_and_costs_no_transaction(gateway, method, uri, status):
    proxy, _, _ = gateway
    spoofer = await UdpPeer.open("127.0.0.4")
    probe = request(method, uri, spoofer, from_user="alice", to_user="alice")
    spoofer.send(probe, proxy.udp_port)
    first = await spoofer.response(probe.call_id)
    assert first.status == status
    challenge = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    assert [parse_challenge(v).algorithm for v in first.headers.get_all(challenge)] == ["SHA-256", "MD5"]
    assert transactions_for(proxy, probe.call_id) == []
    # With T1 at 10 ms a server transaction would have retransmitted its answer several times by now.
    await asyncio.sleep(0.3)
    assert [r.status for r in responses(spoofer, probe.call_id)] == [first.status]  # no 100 Trying either
    # A retransmission is simply challenged again, with the same To tag (RFC 3261 8.2.7).
    spoofer.send(probe, proxy.udp_port)
    second = await spoofer.response(probe.call_id)
    assert (second.status, second.to_tag) == (first.status, first.to_tag)
    assert transactions_for(proxy, probe.call_id) == []
    spoofer.close()


async def test_the_ack_of_a_stateless_407_is_absorbed(gateway):
    proxy, alice, _ = gateway
    spoofer = await UdpPeer.open("127.0.0.4")
    # Aimed straight at the handset's registered contact, where an unmatched ACK would be relayed.
    contact = f"sip:alice@127.0.0.1:{alice.port}"
    invite = request("INVITE", contact, spoofer, from_user="alice", to_user="alice")
    spoofer.send(invite, proxy.udp_port)
    challenge = await spoofer.response(invite.call_id)
    assert challenge.status == 407
    ack = parse_message(invite.serialise())
    assert isinstance(ack, Request)
    ack.method = "ACK"
    ack.headers.set("CSeq", f"{invite.cseq.number} ACK")
    ack.headers.set("To", challenge.headers.get("To") or "")
    spoofer.send(ack, proxy.udp_port)
    # A datagram the trunk sends after the ACK reaches the handset after anything the ACK caused.
    trunk = await UdpPeer.open(TRUNK_HOST)
    marker = request("MESSAGE", "sip:alice@127.0.0.1", trunk)
    trunk.send(marker, proxy.udp_port)
    await alice.request("MESSAGE", marker.call_id)
    assert not [d for d in alice.raw if invite.call_id.encode() in d]
    assert len(responses(spoofer, invite.call_id)) == 1
    trunk.close()
    spoofer.close()
