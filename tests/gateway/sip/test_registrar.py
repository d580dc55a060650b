"""The registrar over loopback: expires, refresh, removal, several contacts, digest authentication."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from protocols.sip import Response
from protocols.sip.digest import authorization, parse_challenge
from tests.e2e.sip_harness import UdpPeer, register, request, running_proxy, sip_config


def contacts(response: Response) -> dict[int | None, int]:
    """{contact port: granted expires}"""
    return {c.uri.port: int(c.param("expires") or -1) for c in response.contacts}


async def test_expires_is_granted_capped_and_refused_below_the_minimum():
    peer = await UdpPeer.open()
    async with running_proxy(sip_config()) as proxy:
        assert contacts(await register(peer, proxy.udp_port, "alice", expires=120)) == {peer.port: 120}
        capped = await register(peer, proxy.udp_port, "alice", expires=999_999)
        assert contacts(capped) == {peer.port: proxy.config.registrar.max_expires}
        brief = await register(peer, proxy.udp_port, "alice", expires=3)
        assert brief.status == 423
        assert brief.headers.get("Min-Expires") == str(proxy.config.registrar.min_expires)
    peer.close()


async def test_a_refresh_keeps_one_binding_and_an_old_cseq_is_refused():
    peer = await UdpPeer.open()
    async with running_proxy(sip_config()) as proxy:
        first = request("REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice", cseq=5)
        peer.send(first, proxy.udp_port)
        assert (await peer.response(first.call_id)).status == 200
        refresh = request(
            "REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice", cseq=6, call_id=first.call_id
        )
        peer.send(refresh, proxy.udp_port)
        assert len((await peer.response(first.call_id)).contacts) == 1
        stale = request(
            "REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice", cseq=4, call_id=first.call_id
        )
        peer.send(stale, proxy.udp_port)
        assert (await peer.response(first.call_id)).status == 500
    peer.close()


async def test_several_contacts_then_removal_of_one_then_of_all():
    peer = await UdpPeer.open()
    async with running_proxy(sip_config()) as proxy:
        both = "<sip:alice@127.0.0.1:7001>, <sip:alice@127.0.0.1:7002>;expires=60"
        ok = await register(peer, proxy.udp_port, "alice", contact=both)
        assert contacts(ok) == {7001: 300, 7002: 60}
        gone = await register(peer, proxy.udp_port, "alice", contact="<sip:alice@127.0.0.1:7001>;expires=0")
        assert contacts(gone) == {7002: 60}
        bad = await register(peer, proxy.udp_port, "alice", contact="*")  # '*' needs Expires: 0
        assert bad.status == 400
        cleared = await register(peer, proxy.udp_port, "alice", contact="*", expires=0)
        assert cleared.status == 200
        assert cleared.contacts == []
        # Nothing left to call.
        trunk = await UdpPeer.open("127.0.0.2")
        invite = request("INVITE", "sip:alice@127.0.0.1", trunk)
        trunk.send(invite, proxy.udp_port)
        assert (await trunk.response(invite.call_id)).status == 404
        trunk.close()
    peer.close()


async def test_a_register_for_a_foreign_domain_or_user_is_404():
    peer = await UdpPeer.open()
    async with running_proxy(sip_config(users=(("alice", ""),))) as proxy:
        assert (await register(peer, proxy.udp_port, "mallory")).status == 404
        foreign = request("REGISTER", "sip:example.com", peer, from_user="alice", to_user="alice")
        peer.send(foreign, proxy.udp_port)
        assert (await peer.response(foreign.call_id)).status == 404
    peer.close()


def with_credentials(
    peer: UdpPeer, user: str, password: str, challenge: Response, *, call_id: str, cseq: int = 2, offered: int = 0
) -> bytes:
    req = request("REGISTER", "sip:127.0.0.1", peer, from_user=user, to_user=user, call_id=call_id, cseq=cseq)
    value = challenge.headers.get_all("WWW-Authenticate")[offered]
    req.headers.add(
        "Authorization",
        authorization(
            parse_challenge(value),
            username=user,
            password=password,
            method="REGISTER",
            uri="sip:127.0.0.1",
            cnonce=secrets.token_hex(4),
        ),
    )
    return req.serialise()


@pytest.mark.parametrize("offered", [0, 1], ids=["SHA-256", "MD5"])
async def test_digest_success_and_failure(offered):
    """Both algorithms offered (RFC 8760), SHA-256 first; either answer registers."""
    peer = await UdpPeer.open()
    config = sip_config(auth=True, users=(("alice", "wonderland"),))
    config = replace(config, registrar=replace(config.registrar, digest_algorithms=("SHA-256", "MD5")))
    async with running_proxy(config) as proxy:
        first = request("REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice")
        peer.send(first, proxy.udp_port)
        challenge = await peer.response(first.call_id)
        assert challenge.status == 401
        parsed = [parse_challenge(v) for v in challenge.headers.get_all("WWW-Authenticate")]
        assert [(c.realm, c.qop, c.algorithm, c.stale) for c in parsed] == [
            ("afgw.test", ("auth",), "SHA-256", False),
            ("afgw.test", ("auth",), "MD5", False),
        ]
        assert not challenge.headers.get_all("Proxy-Authenticate")  # a registrar's challenge

        wrong = with_credentials(peer, "alice", "wrong", challenge, call_id=first.call_id, offered=offered)
        peer.send(wrong, proxy.udp_port)
        assert (await peer.response(first.call_id)).status == 401

        peer.send(
            with_credentials(peer, "alice", "wonderland", challenge, call_id=first.call_id, cseq=3, offered=offered),
            proxy.udp_port,
        )
        ok = await peer.response(first.call_id)
        assert ok.status == 200
        assert contacts(ok) == {peer.port: 3600}

        # The same nonce and nc again is a replay: challenged.
        replay = with_credentials(
            peer, "alice", "wonderland", challenge, call_id=first.call_id, cseq=4, offered=offered
        )
        peer.send(replay, proxy.udp_port)
        assert (await peer.response(first.call_id)).status == 401
    peer.close()


async def test_credentials_for_one_user_do_not_register_another():
    peer = await UdpPeer.open()
    config = sip_config(auth=True, users=(("alice", "a"), ("bob", "b")))
    async with running_proxy(config) as proxy:
        first = request("REGISTER", "sip:127.0.0.1", peer, from_user="bob", to_user="bob")
        peer.send(first, proxy.udp_port)
        challenge = await peer.response(first.call_id)
        forged = request(
            "REGISTER", "sip:127.0.0.1", peer, from_user="bob", to_user="bob", call_id=first.call_id, cseq=2
        )
        forged.headers.add(
            "Authorization",
            authorization(
                parse_challenge(challenge.headers.get("WWW-Authenticate") or ""),
                username="alice",
                password="a",
                method="REGISTER",
                uri="sip:127.0.0.1",
                cnonce="x",
            ),
        )
        peer.send(forged, proxy.udp_port)
        assert (await peer.response(first.call_id)).status == 403
    peer.close()


async def test_md5_alone_is_offered_by_default():
    peer = await UdpPeer.open()
    async with running_proxy(sip_config(auth=True, users=(("alice", "a"),))) as proxy:
        first = request("REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice")
        peer.send(first, proxy.udp_port)
        challenge = await peer.response(first.call_id)
        assert [parse_challenge(v).algorithm for v in challenge.headers.get_all("WWW-Authenticate")] == ["MD5"]
    peer.close()
