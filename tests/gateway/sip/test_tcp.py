"""SIP over TCP on loopback: handsets' connections kept for their registration, a dead flow replaced
by the Contact or failed at once, and the limits that keep one address from taking every connection.

Deadlines are checked by calling the transport's sweep with a time past them (the loop's clock plus
the timeout), never by waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import pytest
from structlog.testing import capture_logs

from gateway.sip.transport import TcpTransport
from protocols.sip import Request, Response, StreamParser
from simulator.ports import free_udp_tcp_port
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, answer, request, running_proxy, sip_config

ATTACKER = "127.0.0.5"


class TcpPeer:
    """A bare TCP connection to the gateway that records the messages and bytes it gets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = StreamParser()
        self.host, self.port = writer.get_extra_info("sockname")[:2]

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> TcpPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
        return cls(reader, writer)

    def send(self, data: bytes | Request) -> None:
        self.writer.write(data if isinstance(data, bytes) else data.serialise())

    async def message(self, within: float = 5.0) -> Request | Response:
        async with asyncio.timeout(within):
            while True:
                found = self.parser.next_message()
                if found is not None and not (isinstance(found, Response) and found.status == 100):
                    return found
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the gateway")
                self.parser.receive_data(data)

    async def closed(self, within: float = 5.0) -> bool:
        """True when the gateway closes the connection within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while True:
                    if not await self.reader.read(65536):
                        return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()


def tcp_register(peer: TcpPeer, user: str, *, contact: str | None = None, expires: int = 3600, extra=()) -> Request:
    fake = UdpPeer()
    fake.host, fake.port = peer.host, peer.port
    req = request(
        "REGISTER", "sip:127.0.0.1", fake, from_user=user, to_user=user, extra=(("Expires", str(expires)), *extra)
    )
    req.headers.set("Via", f"SIP/2.0/TCP {peer.host}:{peer.port};branch=z9hG4bK{secrets.token_hex(6)};rport")
    req.headers.set("Contact", contact or f"<sip:{user}@{peer.host}:{peer.port};transport=tcp>")
    return req


async def registered(proxy, user: str, **kw) -> tuple[TcpPeer, Response]:
    peer = await TcpPeer.open(proxy.tcp_port)
    peer.send(tcp_register(peer, user, **kw))
    ok = await peer.message()
    assert isinstance(ok, Response)
    return peer, ok


async def gone(proxy, peer: TcpPeer) -> None:
    """Close ``peer`` and wait until the gateway has seen it go."""
    peer.close()
    async with asyncio.timeout(5):
        while proxy.transports.tcp.has(peer.host, peer.port):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def trunk_peer():
    trunk = await UdpPeer.open(TRUNK_HOST)
    try:
        yield trunk
    finally:
        trunk.close()


# --- item: registered flows stay open ----------------------------------------------------------------


@pytest.mark.parametrize(("expires", "idle"), [(3600, 600), (300, 60), (120, 100)])
async def test_a_registered_handsets_connection_outlives_the_idle_timeout_until_its_registration_ends(expires, idle):
    async with running_proxy(sip_config(tcp_idle_timeout=float(idle))) as proxy, trunk_peer() as trunk:
        handset, ok = await registered(proxy, "carol", expires=expires)
        assert ok.status == 200
        bystander = await TcpPeer.open(proxy.tcp_port)  # completes a message, registers nothing
        probe = request("OPTIONS", "sip:127.0.0.1", trunk)
        probe.headers.set("Via", f"SIP/2.0/TCP {bystander.host}:{bystander.port};branch=z9hG4bKprobe{idle}")
        bystander.send(probe)
        assert (await bystander.message()).status == 200
        now = asyncio.get_running_loop().time()
        proxy.transports.tcp.sweep(now + idle + 1)
        assert await bystander.closed()
        assert not await handset.closed(within=0.2)
        # The handset is still reachable on that connection, long after the idle timeout.
        sent = request("INVITE", "sip:carol@127.0.0.1", trunk)
        trunk.send(sent, proxy.udp_port)
        got = await handset.message()
        assert isinstance(got, Request)
        assert got.call_id == sent.call_id
        proxy.transports.tcp.sweep(now + expires + 1)  # the registration is over: so is the exemption
        assert await handset.closed()


@pytest.mark.parametrize(
    ("supported", "contact_params", "outbound"),
    [
        ("outbound", ';reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"', True),
        ("path, outbound", ';+sip.instance="<urn:uuid:1>";reg-id=2', True),
        (None, ';reg-id=1;+sip.instance="<urn:uuid:1>"', False),
        ("outbound", ";reg-id=1", False),
        ("outbound", "", False),
    ],
)
async def test_outbound_registration_is_confirmed_and_crlf_pings_are_answered(supported, contact_params, outbound):
    async with running_proxy(sip_config(tcp_idle_timeout=600.0)) as proxy:
        peer = await TcpPeer.open(proxy.tcp_port)
        extra = (("Supported", supported),) if supported else ()
        contact = f"<sip:dave@{peer.host}:{peer.port};transport=tcp;ob>{contact_params}"
        peer.send(tcp_register(peer, "dave", contact=contact, extra=extra))
        ok = await peer.message()
        assert ok.status == 200
        if outbound:
            assert ok.headers.get_list("Require") == ["outbound"]
            assert 0 < int(ok.headers.get("Flow-Timer") or "0") < 600
        else:
            assert ok.headers.get("Require") is None
        peer.send(b"\r\n\r\n")  # RFC 5626 3.5.1 ping
        assert await asyncio.wait_for(peer.reader.readexactly(2), 5) == b"\r\n"
        peer.close()


# --- item: a dead flow -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_user", [True, False])
async def test_when_the_registered_connection_is_gone_the_contact_is_dialled(with_user):
    arrived: asyncio.Queue[Request | Response] = asyncio.Queue()

    async def handset_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = StreamParser()
        while data := await reader.read(65536):
            parser.receive_data(data)
            while (message := parser.next_message()) is not None:
                await arrived.put(message)
        writer.close()

    listen_port = free_udp_tcp_port()
    server = await asyncio.start_server(handset_listener, "127.0.0.1", listen_port)
    try:
        async with running_proxy(sip_config()) as proxy, trunk_peer() as trunk:
            user = "erin@" if with_user else ""
            peer, ok = await registered(proxy, "erin", contact=f"<sip:{user}127.0.0.1:{listen_port};transport=tcp>")
            assert ok.status == 200
            await gone(proxy, peer)
            sent = request("INVITE", "sip:erin@127.0.0.1", trunk)
            trunk.send(sent, proxy.udp_port)
            got = await asyncio.wait_for(arrived.get(), 5)
            assert isinstance(got, Request)
            assert got.call_id == sent.call_id
            assert got.uri.port == listen_port
    finally:
        server.close()


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS"])
async def test_a_handset_that_cannot_be_connected_to_is_a_503_at_once(method):
    """Nothing listens where the Contact says: the caller hears 503 now, not after timer B (32 s)."""
    async with running_proxy(sip_config()) as proxy, trunk_peer() as trunk:
        nobody = free_udp_tcp_port()
        peer, _ = await registered(proxy, "frank", contact=f"<sip:frank@127.0.0.1:{nobody};transport=tcp>")
        await gone(proxy, peer)
        sent = request(method, "sip:frank@127.0.0.1", trunk)
        trunk.send(sent, proxy.udp_port)
        final = await trunk.response(sent.call_id, within=5.0)
        assert final.status == 503


# --- item: TCP under attack ------------------------------------------------------------------------


@pytest.mark.parametrize("stall", [b"", b"REG", b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n"])
async def test_one_address_holding_stalled_connections_does_not_lock_out_the_others(stall):
    config = sip_config(max_tcp_connections=12, max_tcp_per_source=4)
    async with running_proxy(config) as proxy, trunk_peer() as trunk:
        attack = [await TcpPeer.open(proxy.tcp_port, ATTACKER) for _ in range(16)]
        for conn in attack:
            conn.send(stall)
        closed = [await conn.closed(within=0.5) for conn in attack]
        assert closed.count(False) == 4  # the per-source cap: the rest were closed on accept
        handset, ok = await registered(proxy, "grace")  # another address still gets in
        assert ok.status == 200
        sent = request("INVITE", "sip:grace@127.0.0.1", trunk)  # and is called
        trunk.send(sent, proxy.udp_port)
        got = await handset.message()
        assert isinstance(got, Request)
        assert got.call_id == sent.call_id
        for conn in (*attack, handset):
            conn.close()


async def test_refused_connections_are_logged_as_a_count_not_one_line_each():
    config = sip_config(max_tcp_connections=100, max_tcp_per_source=2)
    async with running_proxy(config) as proxy:
        with capture_logs() as logs:
            conns = [await TcpPeer.open(proxy.tcp_port, ATTACKER) for _ in range(12)]
            assert [await c.closed(within=0.5) for c in conns].count(True) == 10
            proxy.transports.tcp.report_refusals()
        refused = [e for e in logs if e["event"] == "sip.tcp_refused"]
        assert len(refused) == 1
        assert (refused[0]["count"], refused[0]["sources"], refused[0]["top_source"]) == (10, 1, ATTACKER)
        for conn in conns:
            conn.close()


@pytest.mark.parametrize(
    "chunks",
    [
        [],  # connects and says nothing
        [b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"],
        [b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n", b"Via: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKslow\r\n"],
        [b"\r\n\r\nOPT"],  # a keep-alive ping is not a message begun, what follows it is
    ],
)
async def test_a_connection_that_does_not_complete_a_message_in_time_is_closed(chunks):
    timeout = 10.0
    async with running_proxy(sip_config(tcp_message_timeout=timeout, tcp_idle_timeout=600.0)) as proxy:
        slow = await TcpPeer.open(proxy.tcp_port, ATTACKER)
        for chunk in chunks:
            slow.send(chunk)
            await slow.writer.drain()
            await asyncio.sleep(0.05)  # separate segments, as a slowloris trickles them
        handset, ok = await registered(proxy, "heidi")
        assert ok.status == 200
        tcp = proxy.transports.tcp
        now = asyncio.get_running_loop().time()
        tcp.sweep(now + timeout / 2)
        assert not await slow.closed(within=0.2)
        tcp.sweep(now + timeout + 1)
        assert await slow.closed()
        assert not await handset.closed(within=0.2)  # it completed its message
        handset.close()


async def test_a_message_with_its_body_still_missing_is_incomplete():
    async with running_proxy(sip_config(tcp_message_timeout=5.0)) as proxy:
        slow = await TcpPeer.open(proxy.tcp_port, ATTACKER)
        slow.send(b"MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 500\r\n\r\nhello")
        await slow.writer.drain()
        await asyncio.sleep(0.05)
        proxy.transports.tcp.sweep(asyncio.get_running_loop().time() + 6.0)
        assert await slow.closed()


@pytest.mark.parametrize("how", ["same-contact", "expires-0", "wildcard"])
async def test_a_connection_no_registration_needs_any_more_is_idle_closed_again(how):
    """A handset that re-registers from a new connection (or unregisters) leaves the old one to the
    idle timeout: registering again and again must not pin connection after connection."""
    idle = 600.0
    async with running_proxy(sip_config(tcp_idle_timeout=idle)) as proxy:
        contact = "<sip:ivan@127.0.0.1:5999;transport=tcp>"
        old, ok = await registered(proxy, "ivan", contact=contact)
        assert ok.status == 200
        if how == "same-contact":
            new, ok = await registered(proxy, "ivan", contact=contact)
        else:
            new = await TcpPeer.open(proxy.tcp_port)
            reg = tcp_register(new, "ivan", contact="*" if how == "wildcard" else contact, expires=0)
            new.send(reg)
            ok = await new.message()
        assert ok.status == 200
        proxy.transports.tcp.sweep(asyncio.get_running_loop().time() + idle + 1)
        assert await old.closed()
        if how == "same-contact":
            assert not await new.closed(within=0.2)
        new.close()


@pytest.mark.parametrize("route", [True, False], ids=["route", "no-route"])
async def test_in_dialog_requests_reach_the_callees_contact_when_its_connection_is_gone(route):
    """The callee answered on the connection it registered on, then that connection closed: the ACK
    and the BYE go to the port its Contact names, on its address, not to the dead ephemeral port."""
    arrived: asyncio.Queue[Request | Response] = asyncio.Queue()

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = StreamParser()
        while data := await reader.read(65536):
            parser.receive_data(data)
            while (message := parser.next_message()) is not None:
                await arrived.put(message)
                if isinstance(message, Request) and message.method == "BYE":
                    writer.write(answer(message, 200).serialise())
        writer.close()

    listen_port = free_udp_tcp_port()
    server = await asyncio.start_server(listener, "127.0.0.1", listen_port)
    contact = f"<sip:judy@127.0.0.1:{listen_port};transport=tcp>"
    try:
        async with running_proxy(sip_config()) as proxy, trunk_peer() as trunk:
            peer, _ = await registered(proxy, "judy", contact=contact)
            sent = request("INVITE", "sip:judy@127.0.0.1", trunk)
            trunk.send(sent, proxy.udp_port)
            got = await peer.message()
            assert isinstance(got, Request)
            ok = answer(got, 200)
            ok.headers.add("Contact", contact)
            peer.send(ok)
            final = await trunk.response(sent.call_id, 200)
            await gone(proxy, peer)
            tags = {"call_id": sent.call_id, "to_tag": final.to_tag}
            routes = tuple(("Route", str(rr)) for rr in final.record_routes) if route else ()
            uri = str(final.contacts[0].uri) if route else "sip:judy@127.0.0.1"
            trunk.send(request("ACK", uri, trunk, extra=routes, **tags), proxy.udp_port)
            ack = await asyncio.wait_for(arrived.get(), 5)
            assert isinstance(ack, Request)
            assert ack.method == "ACK"
            trunk.send(request("BYE", uri, trunk, cseq=2, extra=routes, **tags), proxy.udp_port)
            bye = await asyncio.wait_for(arrived.get(), 5)
            assert isinstance(bye, Request)
            assert bye.method == "BYE"
            assert (await trunk.response(sent.call_id)).status == 200
    finally:
        server.close()


async def test_refusals_from_a_spread_flood_are_tallied_in_bounded_memory():
    tcp = TcpTransport(None, asyncio.get_running_loop(), max_connections=10, idle_timeout=600.0)  # type: ignore[arg-type]
    with capture_logs() as logs:
        for i in range(5000):
            tcp.refused(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "too many connections")
        assert len(tcp._refusals) <= 1025
        tcp.report_refusals()
    (line,) = [e for e in logs if e["event"] == "sip.tcp_refused"]
    assert line["count"] == 5000
    await tcp.stop()
