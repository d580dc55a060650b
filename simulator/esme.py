"""A simulated ESME: binds to an SMPP server, submits messages, and records what is delivered to it.

It drives the same sans-IO session as the gateway, so it can push load with a full window, which a
blocking client cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field

from gateway.smpp.connection import ConnectionGone, ResponseTimeout, SmppConnection
from protocols.smpp import text
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    Pdu,
    SubmitSm,
    Tlv,
    Unbind,
    response_to,
)
from protocols.smpp.session import Role, SessionConfig, SmppSession

_BINDS = {"transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver}


class BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused with status {status:#04x}")
        self.status = status


@dataclass
class SimulatedEsme:
    host: str
    port: int
    system_id: str
    password: str
    bind_type: str = "transceiver"
    window: int = 10
    response_timeout: float = 10.0
    #: Set: the bind is made over TLS with this context (the server's name is ``tls_server_name``).
    tls: ssl.SSLContext | None = None
    tls_server_name: str | None = None
    #: Status to answer deliveries with (ESME_ROK unless a test wants otherwise).
    deliver_status: int = CommandStatus.ESME_ROK
    delivered: list[DeliverSm] = field(default_factory=list)
    #: Seconds between each request leaving and its response arriving.
    latencies: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn: SmppConnection | None = None
        self.delivery_arrived = asyncio.Event()
        self._room = asyncio.Semaphore(self.window)

    async def bind(self) -> None:
        loop = asyncio.get_running_loop()
        config = SessionConfig(
            window=self.window,
            inbound_window=self.window,
            response_timeout=self.response_timeout,
            enquire_link_interval=None,
        )

        def make() -> SmppConnection:
            return SmppConnection(SmppSession(Role.ESME, clock=loop.time, config=config), self, loop)

        if self.tls is None:
            _transport, self.conn = await loop.create_connection(make, self.host, self.port)
        else:
            _transport, self.conn = await loop.create_connection(
                make, self.host, self.port, ssl=self.tls, server_hostname=self.tls_server_name or self.host
            )
        resp = await self.conn.request(_BINDS[self.bind_type](system_id=self.system_id, password=self.password))
        if resp.command_status != CommandStatus.ESME_ROK:
            self.conn.close()
            raise BindRefused(resp.command_status)

    async def submit(
        self,
        source: str,
        destination: str,
        message: str,
        *,
        registered_delivery: int = 0,
        tlvs: tuple[Tlv, ...] = (),
    ) -> list[Pdu]:
        """Submit ``message`` (split into parts when long); returns the submit_sm_resp of each part."""
        data_coding, segments = text.split(message)
        pdus = [
            SubmitSm(
                source_addr=source,
                destination_addr=destination,
                esm_class=0x40 if seg.esm_class_udhi else 0,
                data_coding=data_coding,
                registered_delivery=registered_delivery,
                short_message=seg.short_message,
                tlvs=tuple(Tlv(t, v) for t, v in seg.tlvs) + tlvs,
            )
            for seg in segments
        ]
        return [await self.send(pdu) for pdu in pdus]

    async def send(self, pdu: Pdu) -> Pdu:
        """Send one request and wait for its response (ConnectionGone or ResponseTimeout on failure)."""
        assert self.conn is not None, "bind first"
        async with self._room:  # never more requests in flight than the window allows
            start = time.perf_counter()  # the loop's clock ticks in milliseconds under uvloop
            resp = await self.conn.request(pdu)
            self.latencies.append(time.perf_counter() - start)
            return resp

    @property
    def window_available(self) -> int:
        return self.conn.session.window_available if self.conn is not None and self.conn.is_open else 0

    async def unbind(self) -> None:
        if self.conn is None:
            return
        if self.conn.is_open and self.conn.session.bound:
            with contextlib.suppress(TimeoutError, ConnectionGone, ResponseTimeout):
                await asyncio.wait_for(self.conn.request(Unbind()), 2.0)
        self.conn.close()

    # --- Handler ------------------------------------------------------------------------------------

    def connected(self, conn: SmppConnection) -> None:
        pass

    def closed(self, conn: SmppConnection) -> None:
        pass

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm):
            self.delivered.append(pdu)
            conn.send(response_to(pdu, self.deliver_status))
            self.delivery_arrived.set()
        elif not pdu.is_response:
            conn.send(response_to(pdu, CommandStatus.ESME_RINVCMDID))
