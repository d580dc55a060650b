"""UDP and TCP transports for the SIP proxy: bytes on sockets in, parsed messages out, and back.

The transport knows nothing of SIP routing. It parses what arrives (``parse_message`` per datagram,
``StreamParser`` per TCP connection), hands each message or parse failure to the ``Sink`` together
with the ``Flow`` it came on, and sends bytes on a flow when asked. A flow is the transport plus the
peer's address as seen on the socket: answers go back there (symmetric response routing), and the
proxy decides whether a flow may be sent to at all.

Bounds: a datagram or a stream message is at most ``ParseLimits.max_message_size``; at most
``max_connections`` TCP connections exist at once, and at most ``max_per_source`` from one address
(more are closed on accept, and counted: refusals are logged as a number per interval, never one line
per connection, which a flood would turn into a flood of logs); a connection that has not completed a
message within ``message_timeout`` seconds of opening or of starting one is closed (a slowloris peer
trickling bytes must not hold a slot), as is one idle for ``idle_timeout`` seconds or whose peer does
not read what we write.

A connection a handset registered on is kept open for as long as its registration (``keep_open``):
requests for the handset can only reach it there when it is behind a NAT, and RFC 5626 outbound
handsets keep it alive with CRLF pings, answered here with a CRLF pong. When the connection is gone
anyway, :meth:`Transports.reachable` dials the address its Contact names on the same host, and a
connection that cannot be opened is reported to the sender at once (``on_failure``), so that a
transaction ends with 503 instead of waiting for its timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from gateway.capture import PcapCapture, TcpFlow, UdpTap
from gateway.logs import get_logger
from gateway.metrics import SipTally
from protocols.sip import Request, Response, SipParseError, SipUri, StreamParser, is_keepalive, parse_message

log = get_logger("afgw.sip.transport")

#: A peer that lets this much of our output pile up is not reading: drop it.
_TCP_HIGH_WATER = 1 << 20
_UDP_BUFFER = 4 << 20
#: Seconds between two log lines about refused connections, and the addresses counted one by one.
_REFUSAL_REPORT_INTERVAL = 10.0
_REFUSAL_SOURCES_KEPT = 1024
#: Source addresses whose Flow is kept for the next datagram (all are forgotten past this many).
_FLOWS_KEPT = 4096

#: Called when bytes could not be sent: the connection could not be opened, or was refused.
FailureCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from, or goes to: ``transport`` is "UDP", "TCP" or "TLS"."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """A connection (TCP or TLS): no retransmissions, and the connection itself is the route."""
        return self.transport != "UDP"

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"


class Sink(Protocol):
    def message_received(self, message: Request | Response, flow: Flow) -> None: ...
    def bad_message(self, error: SipParseError, flow: Flow) -> None: ...


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None
        #: Set before the socket opens when capture is on; the socket's tap records every datagram.
        self.capture: PcapCapture | None = None
        self._tap: UdpTap | None = None
        #: The flows of recent sources: the same few peers send every datagram (a Flow is immutable).
        self._flows: dict[tuple[Any, ...], Flow] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        if self.capture is not None:
            self._tap = self.capture.udp(transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._tap is not None:
            self._tap.received(data, addr)
        flows = self._flows
        flow = flows.get(addr)
        if flow is None:
            if len(flows) >= _FLOWS_KEPT:
                flows.clear()
            flow = flows[addr] = Flow("UDP", str(addr[0]), int(addr[1]))
        if is_keepalive(data):
            return
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.sink.bad_message(exc, flow)
            return
        self.sink.message_received(message, flow)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction's timers deal with the silence.
        log.debug("sip.udp_error", error=str(exc))

    def send(self, data: bytes, host: str, port: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self._tap is not None:
                self._tap.sent(data, host, port)
            self.transport.sendto(data, (host, port))


class TcpConnection(asyncio.Protocol):
    """One TCP connection; messages framed by Content-Length, writes coalesced once per loop turn."""

    def __init__(self, owner: TcpTransport, *, inbound: bool = True) -> None:
        self.owner = owner
        self.parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        now = owner.loop.time()
        self.last_active = now
        #: Since when a message is due and not complete: an accepted connection owes its first one at
        #: once; a connection we opened owes nothing until its peer starts writing.
        self.incomplete_since: float | None = now if inbound else None
        #: Until when the connection is kept open however idle (a handset's registration on it).
        self.keep_until = 0.0
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._inbound = inbound
        self._tap: TcpFlow | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.owner.capture is not None:
            self._tap = self.owner.capture.tcp(transport, opened_locally=not self._inbound)
        peer = transport.get_extra_info("peername")
        self.flow = Flow(self.owner.name, str(peer[0]), int(peer[1]))
        refusal = self.owner.register(self)
        if refusal is not None:
            self.owner.refused(self.flow.host, refusal)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        assert self.flow is not None
        if self._tap is not None:
            self._tap.received(data)
        now = self.owner.loop.time()
        self.last_active = now
        self.parser.receive_data(data)
        completed = False
        while True:
            try:
                message = self.parser.next_message()
            except SipParseError as exc:
                self.owner.sink.bad_message(exc, self.flow)
                if exc.close:
                    self.close()
                    return
                continue
            if message is None:
                break
            completed = True
            self.owner.sink.message_received(message, self.flow)
        if self.parser.partial:
            if completed or self.incomplete_since is None:
                self.incomplete_since = now
        else:
            self.incomplete_since = None
        pings = self.parser.keepalive_pings
        if pings:
            self.parser.keepalive_pings = 0
            self.write(b"\r\n" * pings)  # RFC 5626 3.5.1 pong

    def eof_received(self) -> None:
        if self._tap is not None:
            self._tap.remote_finished()
        # None: the transport closes the connection, as it does without this method.

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tap is not None:
            self._tap.close(error=exc is not None)
        self.owner.unregister(self)

    def write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.owner.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing() or not self._out:
            self._out.clear()
            return
        data = b"".join(self._out)
        self._out.clear()
        if self._tap is not None:
            self._tap.sent(data)
        transport.write(data)
        self.last_active = self.owner.loop.time()
        if transport.get_write_buffer_size() > _TCP_HIGH_WATER:
            log.warning("sip.tcp_stalled", peer=str(self.flow))
            transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.close()


class TcpTransport:
    """The TCP (or TLS) listener and every connection, inbound or outbound, keyed by the peer's address.

    Over TLS (``server_tls`` given) the same bounds hold once the handshake is done; the handshake
    itself must end within ``message_timeout``. Outbound TLS connections (to a handset whose
    connection is gone) verify the peer's certificate for its address with ``client_tls``.
    """

    def __init__(
        self,
        sink: Sink,
        loop: asyncio.AbstractEventLoop,
        *,
        max_connections: int,
        idle_timeout: float,
        max_per_source: int | None = None,
        message_timeout: float = 10.0,
        name: str = "TCP",
        server_tls: ssl.SSLContext | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.server_tls = server_tls
        self.client_tls = client_tls
        self.sink = sink
        self.loop = loop
        self.max_connections = max_connections
        self.max_per_source = max_per_source if max_per_source is not None else max_connections
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.connections: dict[tuple[str, int], TcpConnection] = {}
        self._per_source: dict[str, int] = {}
        self._connecting: dict[tuple[str, int], list[bytes]] = {}
        self._failure_callbacks: dict[tuple[str, int], list[FailureCallback]] = {}
        self._refusals: dict[tuple[str, str], int] = {}
        self._refusal_report: asyncio.TimerHandle | None = None
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        #: Where every connection is recorded, when capture is on.
        self.capture: PcapCapture | None = None

    @property
    def sweep_interval(self) -> float:
        return min(10.0, self.idle_timeout, self.message_timeout / 2)

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        if self.server_tls is None:
            self._server = await self.loop.create_server(
                lambda: TcpConnection(self), host, port, reuse_address=True, reuse_port=reuse_port or None
            )
        else:
            self._server = await self.loop.create_server(
                lambda: TcpConnection(self),
                host,
                port,
                reuse_address=True,
                ssl=self.server_tls,
                ssl_handshake_timeout=self.message_timeout,
            )
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._refusal_report is not None:
            self._refusal_report.cancel()
            self.report_refusals()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    def register(self, conn: TcpConnection) -> str | None:
        """Admit a connection; the reason it is refused, if it is."""
        assert conn.flow is not None
        if len(self.connections) >= self.max_connections:
            return "too many connections"
        host = conn.flow.host
        held = self._per_source.get(host, 0)
        if held >= self.max_per_source:
            return "too many connections from one address"
        self._per_source[host] = held + 1
        self.connections[(host, conn.flow.port)] = conn
        return None

    def unregister(self, conn: TcpConnection) -> None:
        flow = conn.flow
        if flow is not None and self.connections.get((flow.host, flow.port)) is conn:
            del self.connections[(flow.host, flow.port)]
            held = self._per_source.pop(flow.host, 1) - 1
            if held > 0:
                self._per_source[flow.host] = held

    def refused(self, host: str, reason: str) -> None:
        """Count a refused connection; the counts are logged once per interval."""
        key = (reason, host)
        if key not in self._refusals and len(self._refusals) >= _REFUSAL_SOURCES_KEPT:
            key = (reason, "others")  # a flood from many addresses must not grow the tally without bound
        self._refusals[key] = self._refusals.get(key, 0) + 1
        if self._refusal_report is None:
            self._refusal_report = self.loop.call_later(_REFUSAL_REPORT_INTERVAL, self.report_refusals)

    def report_refusals(self) -> None:
        """One log line per reason: how many connections were refused, from how many addresses, and
        the address refused most (the one to look at)."""
        self._refusal_report = None
        refusals, self._refusals = self._refusals, {}
        by_reason: dict[str, dict[str, int]] = {}
        for (reason, host), count in refusals.items():
            by_reason.setdefault(reason, {})[host] = count
        for reason, hosts in by_reason.items():
            top = max(hosts, key=lambda h: hosts[h])
            log.warning(
                "sip.tcp_refused",
                reason=reason,
                count=sum(hosts.values()),
                sources=len(hosts),
                top_source=top,
                top_count=hosts[top],
                interval=_REFUSAL_REPORT_INTERVAL,
            )

    def has(self, host: str, port: int) -> bool:
        return (host, port) in self.connections or (host, port) in self._connecting

    def keep_open(self, host: str, port: int, until: float) -> None:
        """Exempt the connection to ``host:port`` from the idle timeout until ``until`` (loop time)."""
        conn = self.connections.get((host, port))
        if conn is not None:
            conn.keep_until = until

    def send(self, data: bytes, host: str, port: int, on_failure: FailureCallback | None = None) -> None:
        """Send on the connection to ``host:port``, opening one if there is none (the proxy only
        asks for flows it may reach: a registered contact's, or a request's source). ``on_failure``
        hears at once when the connection cannot be opened."""
        conn = self.connections.get((host, port))
        if conn is not None:
            conn.write(data)
            return
        pending = self._connecting.get((host, port))
        if pending is not None:
            if sum(map(len, pending)) < _TCP_HIGH_WATER:
                pending.append(data)
            if on_failure is not None:
                self._failure_callbacks.setdefault((host, port), []).append(on_failure)
            return
        if len(self.connections) + len(self._connecting) >= self.max_connections:
            self.refused(host, "too many connections (outgoing)")
            if on_failure is not None:
                self.loop.call_soon(on_failure, "too many connections")
            return
        self._connecting[(host, port)] = [data]
        if on_failure is not None:
            self._failure_callbacks[(host, port)] = [on_failure]
        self.loop.create_task(self._connect(host, port))

    async def _connect(self, host: str, port: int) -> None:
        try:
            if self.client_tls is None:
                connecting = self.loop.create_connection(lambda: TcpConnection(self, inbound=False), host, port)
            else:
                connecting = self.loop.create_connection(
                    lambda: TcpConnection(self, inbound=False), host, port, ssl=self.client_tls, server_hostname=host
                )
            _, conn = await asyncio.wait_for(connecting, timeout=5.0)
        except (OSError, TimeoutError) as exc:
            log.info("sip.tcp_connect_failed", peer=f"{host}:{port}", error=str(exc))
            self._connecting.pop((host, port), None)
            for callback in self._failure_callbacks.pop((host, port), []):
                callback(f"cannot connect: {exc}")
            return
        self._failure_callbacks.pop((host, port), None)
        for data in self._connecting.pop((host, port), []):
            conn.write(data)

    def sweep(self, now: float) -> None:
        """Close connections past their deadlines (``now`` on the loop's clock)."""
        for conn in list(self.connections.values()):
            stalled = conn.incomplete_since is not None and now - conn.incomplete_since > self.message_timeout
            idle = now - conn.last_active > self.idle_timeout and now >= conn.keep_until
            if stalled or idle:
                conn.close()

    def _sweep(self) -> None:
        self.sweep(self.loop.time())
        self._sweeper = self.loop.call_later(self.sweep_interval, self._sweep)


def _enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    """A burst of calls arrives faster than one loop turn drains it: the kernel's default buffer
    (~200 KB, a few hundred INVITEs) would drop the excess and turn it into retransmissions. The
    kernel caps this at net.core.rmem_max / wmem_max."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, _UDP_BUFFER)


class Transports:
    """The UDP endpoint, the TCP transport and (when configured) the TLS one of one listening address."""

    def __init__(
        self,
        sink: Sink,
        loop: asyncio.AbstractEventLoop,
        *,
        max_connections: int,
        idle_timeout: float,
        max_per_source: int | None = None,
        message_timeout: float = 10.0,
        tally: SipTally | None = None,
        tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    ):
        self.loop = loop
        #: Counts every message sent, by method or status code.
        self.tally = tally or SipTally()
        self.udp = UdpEndpoint(sink)
        self.tcp = TcpTransport(
            sink,
            loop,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            max_per_source=max_per_source,
            message_timeout=message_timeout,
        )
        #: Over TLS: (the listener's context, the context of connections we open).
        self.tls: TcpTransport | None = None
        if tls is not None:
            self.tls = TcpTransport(
                sink,
                loop,
                max_connections=max_connections,
                idle_timeout=idle_timeout,
                max_per_source=max_per_source,
                message_timeout=message_timeout,
                name="TLS",
                server_tls=tls[0],
                client_tls=tls[1],
            )
        self.host = "127.0.0.1"
        self.udp_port = 0
        self.tcp_port = 0
        self.tls_port = 0
        #: With sibling workers on the shared port: this worker's own UDP socket. Requests it sends leave
        #: from it and name it in Via and Record-Route, so that their responses and the dialog's
        #: later requests come back to this worker, not to whichever the kernel's hash would pick.
        self.own_udp: UdpEndpoint | None = None
        self.own_udp_port = 0

    async def start(
        self,
        host: str,
        udp_port: int,
        tcp_port: int,
        tls_port: int | None = None,
        *,
        reuse_port: bool = False,
        own_udp_port: int = 0,
    ) -> None:
        """Listen; with ``reuse_port`` the ports are shared with sibling worker processes (SO_REUSEPORT:
        the kernel spreads datagrams and connections over them by a hash of the peer's address), and this
        worker also has a UDP port of its own, ``own_udp_port`` (0: one the system picks)."""
        self.host = host
        if reuse_port:
            # Opened before the shared port: from the first datagram the kernel hands this worker on
            # the shared port, what it sends leaves from here and its Via names this port, so the
            # answers come back to this worker and not to whichever sibling the kernel's hash picks.
            own = self.own_udp = UdpEndpoint(self.udp.sink)
            own.capture = self.udp.capture
            opened, _ = await self.loop.create_datagram_endpoint(lambda: own, local_addr=(host, own_udp_port))
            self.own_udp_port = int(opened.get_extra_info("sockname")[1])
            # Every answer to what this worker relays arrives here: as large a buffer as the shared port's.
            _enlarge_buffers(opened)
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: self.udp, local_addr=(host, udp_port), reuse_port=reuse_port or None
        )
        self.udp_port = int(transport.get_extra_info("sockname")[1])
        _enlarge_buffers(transport)
        self.tcp_port = await self.tcp.start(host, tcp_port, reuse_port=reuse_port)
        if self.tls is not None:
            self.tls_port = await self.tls.start(host, tls_port or 0, reuse_port=reuse_port)

    async def stop(self) -> None:
        for endpoint in (self.udp, self.own_udp):
            if endpoint is not None and endpoint.transport is not None:
                endpoint.transport.close()
        await self.tcp.stop()
        if self.tls is not None:
            await self.tls.stop()

    def capture_to(self, capture: PcapCapture | None) -> None:
        """Record every datagram and connection from now on (call before ``start``)."""
        self.udp.capture = self.tcp.capture = capture

    def port(self, transport: str) -> int:
        if transport == "TCP":
            return self.tcp_port
        if transport == "TLS":
            return self.tls_port
        return self.own_udp_port or self.udp_port

    def stream(self, transport: str) -> TcpTransport | None:
        """The connection-oriented transport of that name (None for UDP, or TLS when not configured)."""
        return self.tcp if transport == "TCP" else self.tls if transport == "TLS" else None

    def peer_names(self, flow: Flow) -> frozenset[str]:
        """The names of the verified client certificate on a TLS flow: its subject's common name and
        DNS subjectAltNames (empty when there is no such connection, or no verified certificate)."""
        conn = self.tls.connections.get((flow.host, flow.port)) if self.tls is not None else None
        if conn is None or conn.transport is None:
            return frozenset()
        cert = conn.transport.get_extra_info("peercert") or {}
        names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
        names.update(value for key, value in cert.get("subjectAltName", ()) if key == "DNS")
        return frozenset(names)

    def keep_open(self, flow: Flow, until: float) -> None:
        stream = self.stream(flow.transport)
        if stream is not None:
            stream.keep_open(flow.host, flow.port, until)

    def send(self, flow: Flow, data: bytes, on_failure: FailureCallback | None = None) -> None:
        self.tally.message_sent(data)
        stream = self.stream(flow.transport)
        if stream is not None:
            stream.send(data, flow.host, flow.port, on_failure)
        elif flow.transport == "TLS":
            # Never downgraded: a TLS flow with no TLS transport is not sent to at all.
            if on_failure is not None:
                self.loop.call_soon(on_failure, "TLS is not configured")
        else:
            (self.own_udp or self.udp).send(data, flow.host, flow.port)

    def reachable(self, flow: Flow, contact: SipUri) -> Flow:
        """Where to send a request for ``contact``, registered or remembered on ``flow``.

        A TCP flow is the handset's connection, from an ephemeral port: once that connection is gone,
        dialling the same port reaches nobody. The Contact then names where the handset listens; it is
        used only on the flow's own host (the gateway never sends to a host merely named in a message)."""
        stream = self.stream(flow.transport)
        if stream is None or stream.has(flow.host, flow.port):
            return flow
        if not contact.is_sip or contact.host_unbracketed != flow.host:
            return flow
        if flow.transport == "TLS":
            # What came over TLS stays on TLS (RFC 3261 26.2): the handset's listener, over TLS.
            return Flow("TLS", flow.host, contact.port if contact.port is not None else 5061)
        transport = "UDP" if (contact.transport or "").lower() == "udp" else "TCP"
        port = contact.port if contact.port is not None else (5061 if contact.scheme == "sips" else 5060)
        return Flow(transport, flow.host, port)


SendFunction = Callable[[Flow, bytes], None]
