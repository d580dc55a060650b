"""UDP and TCP transports for the SIP proxy: bytes on sockets in, parsed messages out, and back.

The transport knows nothing of SIP routing. It parses what arrives (``parse_message`` per datagram,
``StreamParser`` per TCP connection), hands each message or parse failure to the ``Sink`` together
with the ``Flow`` it came on, and sends bytes on a flow when asked. A flow is the transport plus the
peer's address as seen on the socket: answers go back there (symmetric response routing), and the
proxy decides whether a flow may be sent to at all.

Bounds: a datagram or a stream message is at most ``ParseLimits.max_message_size``; at most
``max_connections`` TCP connections exist at once (more are closed on accept); a connection idle for
``idle_timeout`` seconds, or whose peer does not read what we write, is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from gateway.logs import get_logger
from protocols.sip import Request, Response, SipParseError, StreamParser, is_keepalive, parse_message

log = get_logger("afgw.sip.transport")

#: A peer that lets this much of our output pile up is not reading: drop it.
_TCP_HIGH_WATER = 1 << 20
_UDP_BUFFER = 4 << 20


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from, or goes to: ``transport`` is "UDP" or "TCP"."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"


class Sink(Protocol):
    def message_received(self, message: Request | Response, flow: Flow) -> None: ...
    def bad_message(self, error: SipParseError, flow: Flow) -> None: ...


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        flow = Flow("UDP", str(addr[0]), int(addr[1]))
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
            self.transport.sendto(data, (host, port))


class TcpConnection(asyncio.Protocol):
    """One TCP connection; messages framed by Content-Length, writes coalesced once per loop turn."""

    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner
        self.parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        self.last_active = owner.loop.time()
        self._out: list[bytes] = []
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.flow = Flow("TCP", str(peer[0]), int(peer[1]))
        if not self.owner.register(self):
            log.warning("sip.tcp_refused", peer=str(self.flow), reason="too many connections")
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        assert self.flow is not None
        self.last_active = self.owner.loop.time()
        self.parser.receive_data(data)
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
            self.owner.sink.message_received(message, self.flow)
        pings = self.parser.keepalive_pings
        if pings:
            self.parser.keepalive_pings = 0
            self.write(b"\r\n" * pings)  # RFC 5626 3.5.1 pong

    def connection_lost(self, exc: Exception | None) -> None:
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
    """The TCP listener and every connection, inbound or outbound, keyed by the peer's address."""

    def __init__(
        self,
        sink: Sink,
        loop: asyncio.AbstractEventLoop,
        *,
        max_connections: int,
        idle_timeout: float,
    ) -> None:
        self.sink = sink
        self.loop = loop
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.connections: dict[tuple[str, int], TcpConnection] = {}
        self._connecting: dict[tuple[str, int], list[bytes]] = {}
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await self.loop.create_server(lambda: TcpConnection(self), host, port, reuse_address=True)
        self._sweeper = self.loop.call_later(min(10.0, self.idle_timeout), self._sweep)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    def register(self, conn: TcpConnection) -> bool:
        assert conn.flow is not None
        if len(self.connections) >= self.max_connections:
            return False
        self.connections[(conn.flow.host, conn.flow.port)] = conn
        return True

    def unregister(self, conn: TcpConnection) -> None:
        if conn.flow is not None and self.connections.get((conn.flow.host, conn.flow.port)) is conn:
            del self.connections[(conn.flow.host, conn.flow.port)]

    def send(self, data: bytes, host: str, port: int) -> None:
        """Send on the connection to ``host:port``, opening one if there is none (the proxy only
        asks for flows it may reach: a registered contact's, or a request's source)."""
        conn = self.connections.get((host, port))
        if conn is not None:
            conn.write(data)
            return
        pending = self._connecting.get((host, port))
        if pending is not None:
            if sum(map(len, pending)) < _TCP_HIGH_WATER:
                pending.append(data)
            return
        if len(self.connections) + len(self._connecting) >= self.max_connections:
            log.warning("sip.tcp_refused", peer=f"{host}:{port}", reason="too many connections")
            return
        self._connecting[(host, port)] = [data]
        self.loop.create_task(self._connect(host, port))

    async def _connect(self, host: str, port: int) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: TcpConnection(self), host, port), timeout=5.0
            )
        except (OSError, TimeoutError) as exc:
            log.info("sip.tcp_connect_failed", peer=f"{host}:{port}", error=str(exc))
            self._connecting.pop((host, port), None)
            return
        for data in self._connecting.pop((host, port), []):
            conn.write(data)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections.values()):
            if now - conn.last_active > self.idle_timeout:
                conn.close()
        self._sweeper = self.loop.call_later(min(10.0, self.idle_timeout), self._sweep)


class Transports:
    """The UDP endpoint and the TCP transport of one listening address."""

    def __init__(self, sink: Sink, loop: asyncio.AbstractEventLoop, *, max_connections: int, idle_timeout: float):
        self.loop = loop
        self.udp = UdpEndpoint(sink)
        self.tcp = TcpTransport(sink, loop, max_connections=max_connections, idle_timeout=idle_timeout)
        self.host = "127.0.0.1"
        self.udp_port = 0
        self.tcp_port = 0

    async def start(self, host: str, udp_port: int, tcp_port: int) -> None:
        self.host = host
        transport, _ = await self.loop.create_datagram_endpoint(lambda: self.udp, local_addr=(host, udp_port))
        self.udp_port = int(transport.get_extra_info("sockname")[1])
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A burst of calls arrives faster than one loop turn drains it: the kernel's default
            # buffer (~200 KB, a few hundred INVITEs) would drop the excess and turn it into
            # retransmissions. The kernel caps this at net.core.rmem_max / wmem_max.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, _UDP_BUFFER)
        self.tcp_port = await self.tcp.start(host, tcp_port)

    async def stop(self) -> None:
        if self.udp.transport is not None:
            self.udp.transport.close()
        await self.tcp.stop()

    def port(self, transport: str) -> int:
        return self.tcp_port if transport == "TCP" else self.udp_port

    def send(self, flow: Flow, data: bytes) -> None:
        if flow.transport == "TCP":
            self.tcp.send(data, flow.host, flow.port)
        else:
            self.udp.send(data, flow.host, flow.port)


SendFunction = Callable[[Flow, bytes], None]
