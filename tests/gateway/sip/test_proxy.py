"""The SIP proxy on loopback, driven by bare UDP/TCP peers that show exactly what crosses the wire.

The trunk peer binds 127.0.0.2 (a trusted peer in ``sip_config``); handsets bind 127.0.0.1.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from gateway import logs as gateway_logs
from gateway.config import SipListen
from gateway.inspection import Call, Decision
from gateway.sip.proxy import SipProxy
from protocols.sip import Request, Response, StreamParser, is_rfc3261_branch, parse_uri
from simulator.ports import free_udp_tcp_port
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, answer, register, request, running_proxy, sip_config


@pytest.fixture
async def peers():
    trunk = await UdpPeer.open(TRUNK_HOST)
    handset = await UdpPeer.open()
    yield trunk, handset
    trunk.close()
    handset.close()


async def invite_through(proxy, trunk: UdpPeer, handset: UdpPeer, user: str = "alice", **kw) -> tuple[Request, Request]:
    """Send an INVITE from the trunk to ``user``; return (what was sent, what the handset got)."""
    sent = request("INVITE", f"sip:{user}@127.0.0.1", trunk, **kw)
    trunk.send(sent, proxy.udp_port)
    got = await handset.request("INVITE", sent.call_id)
    return sent, got


async def test_invite_is_forwarded_with_our_via_record_route_and_decremented_max_forwards(peers):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        assert (await register(handset, proxy.udp_port, "alice")).status == 200
        sent, got = await invite_through(proxy, trunk, handset)
        trying = await trunk.response(sent.call_id, 100)
        assert trying.headers.get("To") == sent.headers.get("To")  # no tag on 100
        ours, theirs = got.vias[:2]
        assert (ours.host, ours.port) == ("127.0.0.1", proxy.udp_port)
        assert is_rfc3261_branch(ours.branch)
        assert ours.branch != sent.top_via.branch
        assert ours.rport_requested
        # The caller's Via, stamped with where the request really came from (RFC 3581).
        assert (theirs.received, theirs.rport) == (TRUNK_HOST, trunk.port)
        assert got.max_forwards == 69
        (rr,) = got.record_routes
        assert (rr.uri.host, rr.uri.port, rr.uri.lr) == ("127.0.0.1", proxy.udp_port, True)
        assert got.uri.port == handset.port  # the registered contact


async def test_max_forwards_zero_is_483_and_nothing_is_forwarded(peers):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent = request("OPTIONS", "sip:alice@127.0.0.1", trunk, max_forwards=0)
        trunk.send(sent, proxy.udp_port)
        assert (await trunk.response(sent.call_id)).status == 483
        sent_invite, _ = await invite_through(proxy, trunk, handset)  # later traffic is unaffected
        assert not [m for m in handset.received if m.headers.get("Call-ID") == sent.call_id]
        del sent_invite


async def test_unknown_user_is_404_and_known_but_unregistered_is_480(peers):
    trunk, _ = peers
    async with running_proxy(sip_config(users=(("bob", ""),))) as proxy:
        for user, status in (("nobody", 404), ("bob", 480)):
            sent = request("INVITE", f"sip:{user}@127.0.0.1", trunk)
            trunk.send(sent, proxy.udp_port)
            final = await trunk.response(sent.call_id)
            assert final.status == status
            assert final.to_tag is not None
            ack = request("ACK", f"sip:{user}@127.0.0.1", trunk, call_id=sent.call_id, to_tag=final.to_tag)
            trunk.send(ack, proxy.udp_port)


async def test_call_setup_ack_and_bye_without_route_follow_the_dialog(peers):
    """sipp's UAC sends ACK and BYE to the proxy with no Route; the dialog state routes them."""
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        handset.send(answer(got, 180), proxy.udp_port)
        ringing = await trunk.response(sent.call_id, 180)
        assert [v.host for v in ringing.vias] == [TRUNK_HOST]  # our Via removed
        handset.send(answer(got, 200, contact=handset), proxy.udp_port)
        ok = await trunk.response(sent.call_id, 200)
        assert ok.record_routes
        assert ok.record_routes[0].uri.port == proxy.udp_port
        tags = {"call_id": sent.call_id, "to_tag": ok.to_tag}
        trunk.send(request("ACK", "sip:alice@127.0.0.1", trunk, **tags), proxy.udp_port)
        ack = await handset.request("ACK", sent.call_id)
        assert ack.uri.port == handset.port  # rewritten to the callee's Contact
        bye = request("BYE", "sip:alice@127.0.0.1", trunk, cseq=2, **tags)
        trunk.send(bye, proxy.udp_port)
        got_bye = await handset.request("BYE", sent.call_id)
        handset.send(answer(got_bye, 200), proxy.udp_port)
        assert (await trunk.response(sent.call_id, 200)).cseq.method == "BYE"


async def test_bye_from_the_handset_reaches_the_caller_by_its_source_address(peers):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        handset.send(answer(got, 200, contact=handset), proxy.udp_port)
        ok = await trunk.response(sent.call_id, 200)
        # The handset's BYE: From/To swapped, Route from the Record-Route, R-URI the caller's Contact.
        bye = request(
            "BYE",
            f"sip:caller@{trunk.host}:{trunk.port}",
            handset,
            from_user="alice",
            to_user="caller",
            from_tag=ok.to_tag or "",
            to_tag="ftag",
            call_id=sent.call_id,
            cseq=1,
            extra=(("Route", str(got.record_routes[0])),),
        )
        handset.send(bye, proxy.udp_port)
        got_bye = await trunk.request("BYE", sent.call_id)
        assert not got_bye.routes  # our Route consumed
        trunk.send(answer(got_bye, 200, to_tag="ftag"), proxy.udp_port)
        assert (await handset.response(sent.call_id, 200)).cseq.method == "BYE"


async def test_in_dialog_request_for_an_unknown_dialog_is_481(peers):
    trunk, _ = peers
    async with running_proxy(sip_config()) as proxy:
        bye = request("BYE", "sip:alice@127.0.0.1", trunk, to_tag="nosuch")
        trunk.send(bye, proxy.udp_port)
        assert (await trunk.response(bye.call_id)).status == 481


async def test_cancel_is_answered_and_forwarded_and_the_487_comes_back(peers):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        handset.send(answer(got, 180), proxy.udp_port)
        await trunk.response(sent.call_id, 180)
        cancel = request("CANCEL", "sip:alice@127.0.0.1", trunk, call_id=sent.call_id)
        cancel.headers.set("Via", sent.headers.get("Via") or "")
        trunk.send(cancel, proxy.udp_port)
        assert (await trunk.response(sent.call_id, 200)).cseq.method == "CANCEL"
        got_cancel = await handset.request("CANCEL", sent.call_id)
        assert got_cancel.top_via.branch == got.top_via.branch  # same branch as the INVITE it cancels
        handset.send(answer(got_cancel, 200), proxy.udp_port)
        handset.send(answer(got, 487), proxy.udp_port)
        terminated = await trunk.response(sent.call_id, 487)
        assert terminated.cseq.method == "INVITE"
        # The proxy's client transaction ACKs the 487 hop by hop.
        assert (await handset.request("ACK", sent.call_id)).top_via.branch == got.top_via.branch


async def test_cancel_for_nothing_is_481(peers):
    trunk, _ = peers
    async with running_proxy(sip_config()) as proxy:
        cancel = request("CANCEL", "sip:alice@127.0.0.1", trunk)
        trunk.send(cancel, proxy.udp_port)
        assert (await trunk.response(cancel.call_id)).status == 481


async def test_responses_follow_the_via_chain_and_rport(peers):
    """A caller behind another proxy: the answer keeps every Via below ours and goes to the source
    address even though the top Via names another port."""
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent = request("INVITE", "sip:alice@127.0.0.1", trunk)
        sent.headers.set("Via", f"SIP/2.0/UDP {TRUNK_HOST}:5999;branch=z9hG4bKupstream1")
        sent.headers.add("Via", "SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKorigin;received=127.0.0.9")
        trunk.send(sent, proxy.udp_port)
        got = await handset.request("INVITE", sent.call_id)
        assert len(got.vias) == 3
        handset.send(answer(got, 486), proxy.udp_port)
        busy = await trunk.response(sent.call_id, 486)  # arrived at trunk.port, not 5999
        assert [v.host for v in busy.vias] == [TRUNK_HOST, "127.0.0.9"]
        assert busy.vias[0].rport == trunk.port


async def test_several_contacts_are_all_rung_and_the_first_2xx_cancels_the_rest():
    trunk = await UdpPeer.open(TRUNK_HOST)
    phone, tablet = await UdpPeer.open(), await UdpPeer.open()
    try:
        async with running_proxy(sip_config()) as proxy:
            for device in (phone, tablet):
                await register(device, proxy.udp_port, "alice")
            sent = request("INVITE", "sip:alice@127.0.0.1", trunk)
            trunk.send(sent, proxy.udp_port)
            on_phone = await phone.request("INVITE", sent.call_id)
            on_tablet = await tablet.request("INVITE", sent.call_id)
            tablet.send(answer(on_tablet, 180), proxy.udp_port)
            phone.send(answer(on_phone, 200, contact=phone), proxy.udp_port)
            assert (await trunk.response(sent.call_id, 200)).to_tag == "callee"
            assert (await tablet.request("CANCEL", sent.call_id)).top_via.branch == on_tablet.top_via.branch
    finally:
        for peer in (trunk, phone, tablet):
            peer.close()


async def test_options_to_the_gateway_itself_and_no_server_header(peers):
    trunk, _ = peers
    async with running_proxy(sip_config()) as proxy:
        ping = request("OPTIONS", "sip:127.0.0.1", trunk)
        trunk.send(ping, proxy.udp_port)
        pong = await trunk.response(ping.call_id)
        assert pong.status == 200
        assert "INVITE" in (pong.headers.get("Allow") or "")
        assert "Server" not in pong.headers
        assert "User-Agent" not in pong.headers


class Rejecting:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def inspect_call(self, call: Call) -> Decision:
        self.calls.append(call)
        return Decision.reject_call(608, "Suspected Fraud")


class SlowLabeller:
    async def inspect_call(self, call: Call) -> Decision:
        await asyncio.sleep(0)
        return Decision.label_call("境外来电")


async def test_a_rejecting_hook_gives_the_caller_its_code_and_the_handset_nothing(peers):
    trunk, handset = peers
    hook = Rejecting()
    async with running_proxy(sip_config(), inspector=hook) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent = request("INVITE", "sip:alice@127.0.0.1", trunk, from_user="+8613900000000")
        trunk.send(sent, proxy.udp_port)
        final = await trunk.response(sent.call_id)
        assert (final.status, final.reason) == (608, "Suspected Fraud")
        assert final.headers.get("Reason") == 'SIP;cause=608;text="Suspected Fraud"'
        (call,) = hook.calls
        assert (call.caller, call.callee, call.trusted) == ("+8613900000000", "alice", True)
        trunk.send(
            request("ACK", "sip:alice@127.0.0.1", trunk, call_id=sent.call_id, to_tag=final.to_tag), proxy.udp_port
        )
        # A call the proxy forwards would have reached the handset before the caller's answer.
        probe = request("OPTIONS", "sip:alice@127.0.0.1", trunk)
        trunk.send(probe, proxy.udp_port)
        await handset.request("OPTIONS", probe.call_id)
        assert not [m for m in handset.received if m.headers.get("Call-ID") == sent.call_id]
        assert proxy.stats["rejected_calls"] == 1


async def test_a_rejected_call_is_logged_once_with_its_call_id(peers):
    trunk, handset = peers
    gateway_logs.configure("console", "info")
    try:
        async with running_proxy(sip_config(), inspector=Rejecting()) as proxy:
            await register(handset, proxy.udp_port, "alice")
            with capture_logs() as logs:
                sent = request("INVITE", "sip:alice@127.0.0.1", trunk, from_user="+8613900000000")
                trunk.send(sent, proxy.udp_port)
                assert (await trunk.response(sent.call_id)).status == 608
    finally:
        gateway_logs.configure("console", "warning")
    (line,) = [e for e in logs if e["event"] == "sip.call_rejected"]
    assert (line["call_id"], line["status"], line["reason"]) == (sent.call_id, 608, "Suspected Fraud")


async def test_an_awaitable_label_decision_reaches_the_handset_as_asserted_display_name(peers):
    trunk, handset = peers
    async with running_proxy(sip_config(), inspector=SlowLabeller()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        _, got = await invite_through(proxy, trunk, handset, from_user="+12025550100")
        (asserted,) = got.headers.get_list("P-Asserted-Identity")
        assert asserted.startswith('"境外来电" <sip:+12025550100@')


async def test_invite_retransmission_is_absorbed_not_forwarded_twice(peers):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        trunk.send(sent, proxy.udp_port)  # the same INVITE again
        assert (await trunk.response(sent.call_id, 100)).status == 100  # the last response, re-sent
        handset.send(answer(got, 200, contact=handset), proxy.udp_port)
        await trunk.response(sent.call_id, 200)
        trunk.send(sent, proxy.udp_port)  # after the 2xx
        probe = request("OPTIONS", "sip:alice@127.0.0.1", trunk)
        trunk.send(probe, proxy.udp_port)
        await handset.request("OPTIONS", probe.call_id)
        assert not [m for m in handset.received if isinstance(m, Request) and m.method == "INVITE"]


async def tcp_exchange(port: int, message: Request) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Response]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message.serialise())
    parser = StreamParser()
    while True:
        parser.receive_data(await reader.read(65536))
        found = parser.next_message()
        if isinstance(found, Response) and found.status != 100:
            return reader, writer, found


async def test_a_handset_registered_over_tcp_is_called_over_that_connection(peers):
    trunk, _ = peers
    async with running_proxy(sip_config()) as proxy:
        fake = await UdpPeer.open()  # only lends its address to the request builder
        reg = request("REGISTER", "sip:127.0.0.1", fake, from_user="carol", to_user="carol")
        reg.headers.set("Via", "SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKtcpreg")
        reg.headers.set("Contact", "<sip:carol@127.0.0.1:1;transport=tcp>")
        reader, writer, ok = await tcp_exchange(proxy.tcp_port, reg)
        assert ok.status == 200
        sent = request("INVITE", "sip:carol@127.0.0.1", trunk)
        trunk.send(sent, proxy.udp_port)
        parser = StreamParser()
        got = None
        while got is None:
            parser.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            got = parser.next_message()
        assert isinstance(got, Request)
        assert got.top_via.transport == "TCP"
        # Double Record-Route (RFC 5658): the TCP side's on top, the UDP side's below.
        assert [r.uri.transport for r in got.record_routes] == ["tcp", None]
        writer.close()
        fake.close()


@pytest.mark.parametrize("retry_after", [1, 7, 120])
async def test_the_transaction_table_is_bounded_and_overflow_is_503(peers, retry_after):
    trunk, handset = peers
    async with running_proxy(sip_config(max_transactions=2, overload_retry_after=retry_after)) as proxy:
        await register(handset, proxy.udp_port, "alice")  # its transaction lingers (timer J)
        first = request("MESSAGE", "sip:alice@127.0.0.1", trunk)
        trunk.send(first, proxy.udp_port)
        await handset.request("MESSAGE", first.call_id)  # pending: the handset never answers
        second = request("INVITE", "sip:alice@127.0.0.1", trunk)
        trunk.send(second, proxy.udp_port)
        refused = await trunk.response(second.call_id)
        assert refused.status == 503
        assert refused.headers.get("Retry-After") == str(retry_after)
        # Stateless: no 100 Trying before it, no transaction behind it, and a retransmission is
        # answered the same way (same To tag) without being forwarded.
        assert len(proxy._server) == 2
        trunk.send(second, proxy.udp_port)
        again = await trunk.response(second.call_id)
        assert (again.status, again.to_tag) == (503, refused.to_tag)
        statuses = [m.status for m in trunk.received if isinstance(m, Response)]
        assert 100 not in statuses
        assert len(proxy._server) == 2


async def test_tcp_connections_are_bounded():
    async with running_proxy(sip_config(max_tcp_connections=1)) as proxy:
        _, first = await asyncio.open_connection("127.0.0.1", proxy.tcp_port)
        reader, second = await asyncio.open_connection("127.0.0.1", proxy.tcp_port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the gateway at once
        first.close()
        second.close()


async def established_call(proxy, trunk: UdpPeer, handset: UdpPeer, *, callee_contact: str | None = None):
    """A call from the trunk to alice, answered and ACKed: (INVITE sent, INVITE got, 200 at the caller)."""
    await register(handset, proxy.udp_port, "alice", contact=callee_contact)
    sent, got = await invite_through(proxy, trunk, handset)
    ok = answer(got, 200)
    ok.headers.add("Contact", callee_contact or f"<sip:callee@{handset.host}:{handset.port}>")
    handset.send(ok, proxy.udp_port)
    final = await trunk.response(sent.call_id, 200)
    tags = {"call_id": sent.call_id, "to_tag": final.to_tag}
    trunk.send(request("ACK", str(final.contacts[0].uri), trunk, **tags), proxy.udp_port)
    await handset.request("ACK", sent.call_id)
    return sent, got, final


def callee_request(method: str, got: Request, final: Response, trunk: UdpPeer, handset: UdpPeer, cseq: int) -> Request:
    """An in-dialog request from the callee: tags swapped, Route from the Record-Route, R-URI the caller's Contact."""
    return request(
        method,
        f"sip:caller@{trunk.host}:{trunk.port}",
        handset,
        from_user="alice",
        to_user="caller",
        from_tag=final.to_tag or "",
        to_tag="ftag",
        call_id=got.call_id,
        cseq=cseq,
        extra=tuple(("Route", str(rr)) for rr in reversed(got.record_routes)),
    )


@pytest.mark.parametrize("with_route", [True, False], ids=["route", "no-route"])
@pytest.mark.parametrize("method", ["INVITE", "BYE"])
async def test_after_a_reinvite_from_the_callee_the_callers_requests_still_reach_the_callee(peers, with_route, method):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        sent, got, final = await established_call(proxy, trunk, handset)
        # The callee puts the call on hold: a re-INVITE that the caller answers. Its Contact is the
        # callee's target from now on (RFC 3261 12.2.2: a target refresh).
        hold = callee_request("INVITE", got, final, trunk, handset, cseq=1)
        hold.headers.set("Contact", f"<sip:held@{handset.host}:{handset.port}>")
        callee_contact = hold.contacts[0].uri
        handset.send(hold, proxy.udp_port)
        hold_at_caller = await trunk.request("INVITE", sent.call_id)
        assert hold_at_caller.uri.port == trunk.port
        trunk.send(answer(hold_at_caller, 200, to_tag="ftag", contact=trunk), proxy.udp_port)
        hold_ok = await handset.response(sent.call_id, 200)
        handset.send(
            request(
                "ACK",
                str(hold_ok.contacts[0].uri),
                handset,
                from_user="alice",
                from_tag=final.to_tag or "",
                to_tag="ftag",
                call_id=sent.call_id,
                cseq=1,
                extra=tuple(("Route", str(rr)) for rr in reversed(got.record_routes)),
            ),
            proxy.udp_port,
        )
        await trunk.request("ACK", sent.call_id)
        # Now the caller resumes (or hangs up): it must reach the callee, at the callee's Contact.
        routes = tuple(("Route", str(rr)) for rr in final.record_routes) if with_route else ()
        uri = str(callee_contact) if with_route else "sip:alice@127.0.0.1"
        mine = request(method, uri, trunk, cseq=2, extra=routes, **{"call_id": sent.call_id, "to_tag": final.to_tag})
        trunk.send(mine, proxy.udp_port)
        at_callee = await handset.request(method, sent.call_id)
        assert at_callee.uri == callee_contact
        assert not [m for m in trunk.received if isinstance(m, Request) and m.method == method]
        handset.send(answer(at_callee, 200), proxy.udp_port)
        assert (await trunk.response(sent.call_id, 200)).cseq.method == method


@pytest.mark.parametrize("with_route", [True, False], ids=["route", "no-route-echoed"])
@pytest.mark.parametrize(
    "contact", ["<sip:{host}:{port}>", "<sip:{host}:{port};transport=udp>", "<sip:alice@{host}:{port}>"]
)
async def test_a_bye_to_a_contact_on_the_gateways_host_is_routed_by_the_dialog(peers, with_route, contact):
    """A softphone on the gateway's host answers with a Contact that has no user part: the BYE to it
    is for that softphone, not for the gateway (which listens on other ports)."""
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        contact = contact.format(host=handset.host, port=handset.port)
        sent, _, final = await established_call(proxy, trunk, handset, callee_contact=contact)
        routes = tuple(("Route", str(rr)) for rr in final.record_routes) if with_route else ()
        bye = request(
            "BYE",
            str(final.contacts[0].uri),
            trunk,
            cseq=2,
            extra=routes,
            **{"call_id": sent.call_id, "to_tag": final.to_tag},
        )
        trunk.send(bye, proxy.udp_port)
        at_callee = await handset.request("BYE", sent.call_id)
        assert at_callee.uri == final.contacts[0].uri
        handset.send(answer(at_callee, 200), proxy.udp_port)
        assert (await trunk.response(sent.call_id)).status == 200


@pytest.mark.parametrize(
    ("uri", "ours"),
    [
        ("sip:127.0.0.1:{udp}", True),
        ("sip:127.0.0.1:{tcp};transport=tcp", True),
        ("sip:127.0.0.1:{udp};transport=tcp", False),
        ("sip:127.0.0.1:{tcp};transport=udp", False),
        ("sip:127.0.0.1", True),  # the domain
        ("sip:alice@127.0.0.1", True),
        ("sip:127.0.0.1:{other}", False),
        ("sip:alice@127.0.0.1:{other}", False),
        ("sip:127.0.0.3:{udp}", False),
        ("tel:+8613900000000", False),
    ],
)
async def test_a_uri_is_the_gateways_own_only_by_host_and_port_and_transport(uri, ours):
    other = await UdpPeer.open()
    try:
        async with running_proxy(sip_config(listen=SipListen("127.0.0.1", 0, 0))) as proxy:
            text = uri.format(udp=proxy.udp_port, tcp=proxy.tcp_port, other=other.port)
            assert proxy.is_our_uri(parse_uri(text)) is ours
    finally:
        other.close()


@pytest.mark.parametrize("rang_first", [True, False], ids=["ringing", "not-yet-ringing"])
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (200, 'SIP;cause=200;text="Call completed elsewhere"'),
        (603, 'SIP;cause=603;text="Decline"'),
        (600, 'SIP;cause=600;text="Busy Everywhere"'),
    ],
)
async def test_the_losing_branches_of_a_fork_are_cancelled_with_the_reason(rang_first, status, reason):
    """RFC 3326: a handset whose ringing stops because another answered does not log a missed call."""
    trunk = await UdpPeer.open(TRUNK_HOST)
    phone, tablet = await UdpPeer.open(), await UdpPeer.open()
    try:
        async with running_proxy(sip_config()) as proxy:
            for device in (phone, tablet):
                await register(device, proxy.udp_port, "alice")
            sent = request("INVITE", "sip:alice@127.0.0.1", trunk)
            trunk.send(sent, proxy.udp_port)
            on_phone = await phone.request("INVITE", sent.call_id)
            on_tablet = await tablet.request("INVITE", sent.call_id)
            if rang_first:
                tablet.send(answer(on_tablet, 180), proxy.udp_port)
                await trunk.response(sent.call_id, 180)
            phone.send(answer(on_phone, status, contact=phone), proxy.udp_port)
            if status < 300:
                await trunk.response(sent.call_id, status)
            if not rang_first:  # a CANCEL waits for a provisional response (RFC 3261 9.1)
                tablet.send(answer(on_tablet, 180), proxy.udp_port)
            cancel = await tablet.request("CANCEL", sent.call_id)
            assert cancel.headers.get_all("Reason") == [reason]
            if status >= 600:  # the 6xx goes to the caller once every branch has ended
                tablet.send(answer(on_tablet, 487), proxy.udp_port)
                await trunk.response(sent.call_id, status)
    finally:
        for peer in (trunk, phone, tablet):
            peer.close()


@pytest.mark.parametrize("reason", [None, 'SIP;cause=200;text="Call completed elsewhere"', "Q.850;cause=16"])
async def test_a_callers_cancel_passes_its_reason_on_and_adds_none(peers, reason):
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        handset.send(answer(got, 180), proxy.udp_port)
        await trunk.response(sent.call_id, 180)
        cancel = request("CANCEL", "sip:alice@127.0.0.1", trunk, call_id=sent.call_id)
        cancel.headers.set("Via", sent.headers.get("Via") or "")
        if reason is not None:
            cancel.headers.add("Reason", reason)
        trunk.send(cancel, proxy.udp_port)
        got_cancel = await handset.request("CANCEL", sent.call_id)
        assert got_cancel.headers.get_all("Reason") == ([reason] if reason else [])


async def test_a_worker_names_its_own_port_for_a_call_that_arrives_while_it_is_still_starting(peers):
    """A worker (reuse_port) takes datagrams from the moment it joins the shared port: a call it relays
    before it has finished starting must already name its own port in Via and Record-Route, or the
    callee's answers and the dialog's requests reach whichever sibling the kernel's hash picks."""
    trunk, handset = peers
    proxy = SipProxy(sip_config(), loop=asyncio.get_running_loop(), reuse_port=True)
    open_tcp = proxy.transports.tcp.start
    calls: list[tuple[Request, Request]] = []

    async def a_call_arrives_first(host: str, port: int, *, reuse_port: bool = False) -> int:
        await register(handset, proxy.udp_port, "alice")
        calls.append(await invite_through(proxy, trunk, handset))
        return await open_tcp(host, port, reuse_port=reuse_port)

    proxy.transports.tcp.start = a_call_arrives_first  # type: ignore[method-assign]
    await proxy.start()
    try:
        [(sent, got)] = calls
        own = proxy.transports.own_udp_port
        assert own not in (0, proxy.udp_port)
        assert got.top_via.port == own
        (rr,) = got.record_routes
        assert rr.uri.port == own
        handset.send(answer(got, 180), own)
        handset.send(answer(got, 200, contact=handset), own)
        assert (await trunk.response(sent.call_id, 180)).status == 180
        assert (await trunk.response(sent.call_id, 200)).status == 200
    finally:
        await proxy.stop()


async def test_a_worker_relays_from_the_own_port_its_configuration_gives_and_logs_it(peers):
    """``sip.listen.worker_udp_port``: the port a firewall in front of the workers must let through is
    the one configured, named in Via and Record-Route, and said in ``sip.listening``."""
    trunk, handset = peers
    own = free_udp_tcp_port()
    config = sip_config(listen=SipListen("127.0.0.1", 0, 0, worker_udp_port=own))
    proxy = SipProxy(config, loop=asyncio.get_running_loop(), reuse_port=True)
    gateway_logs.configure("console", "info")
    try:
        with capture_logs() as logs:
            await proxy.start()
        assert proxy.transports.own_udp_port == own
        (listening,) = [e for e in logs if e["event"] == "sip.listening"]
        assert listening["worker_udp_port"] == own
        await register(handset, proxy.udp_port, "alice")
        _sent, got = await invite_through(proxy, trunk, handset)
        assert got.top_via.port == own
        (rr,) = got.record_routes
        assert rr.uri.port == own
    finally:
        gateway_logs.configure("console", "warning")
        await proxy.stop()


async def test_a_single_process_opens_no_port_of_its_own(peers):
    """``worker_udp_port`` is for workers: a gateway alone relays from its listening port."""
    own = free_udp_tcp_port()
    gateway_logs.configure("console", "info")
    try:
        with capture_logs() as logs:
            async with running_proxy(sip_config(listen=SipListen("127.0.0.1", 0, 0, worker_udp_port=own))) as proxy:
                assert proxy.transports.own_udp is None
                assert proxy.transports.port("UDP") == proxy.udp_port
    finally:
        gateway_logs.configure("console", "warning")
    (listening,) = [e for e in logs if e["event"] == "sip.listening"]
    assert listening["worker_udp_port"] is None


async def test_a_ringing_that_arrives_after_the_answer_is_not_relayed_to_the_caller(peers):
    """UDP may deliver the callee's 180 after its 200: the caller, already answered, must not hear it
    (sipp's UAC fails such a call). Retransmissions of the 200 still reach the caller."""
    trunk, handset = peers
    async with running_proxy(sip_config()) as proxy:
        await register(handset, proxy.udp_port, "alice")
        sent, got = await invite_through(proxy, trunk, handset)
        handset.send(answer(got, 200, contact=handset), proxy.udp_port)
        await trunk.response(sent.call_id, 200)
        handset.send(answer(got, 180), proxy.udp_port)  # overtaken by the 200 on its way
        handset.send(answer(got, 200, contact=handset), proxy.udp_port)  # the 200 again: no ACK yet
        await trunk.response(sent.call_id, 200)
        statuses = [m.status for m in trunk.received if isinstance(m, Response) and m.call_id == sent.call_id]
        assert 180 not in statuses


async def test_a_burst_of_answers_to_a_workers_own_port_is_kept_as_on_the_shared_port(peers):
    """A worker's own port receives every answer to what it relays: a burst that arrives while the
    worker is busy is buffered there as it is on the shared port, not dropped by a smaller buffer."""
    _, handset = peers
    proxy = SipProxy(sip_config(), loop=asyncio.get_running_loop(), reuse_port=True)
    await proxy.start()
    try:
        kept = {}
        for port in (proxy.udp_port, proxy.transports.own_udp_port):
            before = proxy.stats["responses"]
            for n in range(2000):  # sent without yielding: the proxy reads none until the burst is over
                got = request("INVITE", "sip:alice@127.0.0.1", handset, call_id=f"burst{n}")
                got.headers.set("Via", f"SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKelsewhere{n}")
                handset.send(answer(got, 180), port)
            await asyncio.sleep(0.5)
            kept[port] = proxy.stats["responses"] - before
        assert kept[proxy.transports.own_udp_port] >= kept[proxy.udp_port] > 1000
    finally:
        await proxy.stop()
