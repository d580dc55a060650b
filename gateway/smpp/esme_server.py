"""The SMPP server that ESMEs bind to: authentication, bind limits and the registry of live binds."""

from __future__ import annotations

import asyncio
import hmac
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.capture import PcapCapture
from gateway.config import EsmeAccount, SmppConfig
from gateway.limits import KeyedBuckets, TokenBucket
from gateway.logs import get_logger
from gateway.smpp.connection import RateLog, SmppConnection
from gateway.tls import TlsConfig, server_context
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.pdu import BindReceiver, BindTransceiver, BindTransmitter, Pdu, Unbind, response_to
from protocols.smpp.session import Role, SessionConfig, SmppSession, WireTap

log = get_logger("afgw.esme")

_BIND_TYPE = {
    CommandId.BIND_TRANSMITTER: "transmitter",
    CommandId.BIND_RECEIVER: "receiver",
    CommandId.BIND_TRANSCEIVER: "transceiver",
}
#: Built once: ``isinstance(x, A | B)`` builds the union on every call, which costs more than the test.
_BINDS = (BindTransmitter, BindReceiver, BindTransceiver)
#: Looked up once: an Enum member lookup costs more than the comparison it feeds, for every PDU.
_UNBIND = int(CommandId.UNBIND)
#: Compared against when the system_id is unknown, so that both failures take the same time.
_DUMMY_PASSWORD = b"\x00" * 8
GATEWAY_SYSTEM_ID = "afgw"
#: The context of a connection counted against the caps but not yet bound.
_COUNTED = "counted"


@dataclass
class EsmeBind:
    """What the gateway knows about one ESME connection once it has bound."""

    account: EsmeAccount
    bind_type: str
    bucket: TokenBucket

    @property
    def can_receive(self) -> bool:
        return self.bind_type in ("receiver", "transceiver")

    @property
    def can_transmit(self) -> bool:
        return self.bind_type in ("transmitter", "transceiver")


class EsmeRegistry:
    """Live binds per system_id; picks a receiving bind round-robin."""

    def __init__(self) -> None:
        self._binds: dict[str, list[SmppConnection]] = {}
        self._turn: dict[str, int] = {}
        #: Told whenever a bind comes or goes (gateways sharing a store advertise who receives where).
        self.on_change: Callable[[], None] | None = None

    def add(self, system_id: str, conn: SmppConnection) -> None:
        self._binds.setdefault(system_id, []).append(conn)
        if self.on_change is not None:
            self.on_change()

    def remove(self, system_id: str, conn: SmppConnection) -> None:
        conns = self._binds.get(system_id, [])
        if conn in conns:
            conns.remove(conn)
            if self.on_change is not None:
                self.on_change()

    def receiving(self) -> set[str]:
        """The system_ids with at least one open bind that may receive deliveries."""
        return {
            system_id
            for system_id, conns in self._binds.items()
            if any(isinstance(c.context, EsmeBind) and c.context.can_receive and c.is_open for c in conns)
        }

    def count(self, system_id: str) -> int:
        return len(self._binds.get(system_id, ()))

    def counts(self) -> dict[str, int]:
        """Live binds per system_id, for every account that has had one."""
        return {system_id: len(conns) for system_id, conns in self._binds.items()}

    def receiver(self, system_id: str) -> SmppConnection | None:
        """A bound connection of ``system_id`` that may receive and has room in its window."""
        conns = self._binds.get(system_id, [])
        n = len(conns)
        start = self._turn.get(system_id, 0)
        for i in range(n):
            conn = conns[(start + i) % n]
            ctx = conn.context
            if (
                isinstance(ctx, EsmeBind)
                and ctx.can_receive
                and conn.is_open
                and conn.session.bound
                and conn.session.window_available
            ):
                self._turn[system_id] = (start + i + 1) % n
                return conn
        return None


class EsmeServer:
    """Accepts ESME connections, authenticates binds, and hands bound traffic to ``on_request``."""

    def __init__(
        self,
        config: SmppConfig,
        registry: EsmeRegistry,
        on_request: Callable[[SmppConnection, Pdu], None],
        loop: asyncio.AbstractEventLoop,
        tap: WireTap | None = None,
    ) -> None:
        self.config = config
        #: Counts every PDU of every ESME session.
        self.tap = tap
        self.accounts = {a.system_id: a for a in config.accounts}
        self.registry = registry
        self.loop = loop
        self._on_request = on_request
        # Attempts are counted when they arrive, answered or not, so that parallel guesses count too;
        # an address's guesses do not slow down another address (unless they name the same system_id).
        self.bind_per_address = KeyedBuckets(config.bind_rate, config.bind_burst)
        self.bind_per_system_id = KeyedBuckets(config.bind_rate_per_system_id, config.bind_burst_per_system_id)
        interval = config.refusal_log_interval
        self._throttled_log = RateLog(loop, "esme.bind_throttled", interval)
        self._cap_log = RateLog(loop, "esme.connection_refused", interval)
        self._connections: dict[str, int] = {}
        self._total = 0
        self._buckets: dict[str, TokenBucket] = {}
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        #: Where the ESMEs' connections are recorded, when capture is on (set before ``start``).
        self.capture: PcapCapture | None = None
        #: Every connection accepted and not yet closed, bound or not (what a drain has to end).
        self.connections: set[SmppConnection] = set()
        self._session_config = SessionConfig(
            enquire_link_interval=config.enquire_link_interval,
            response_timeout=config.response_timeout,
            session_init_timeout=config.session_init_timeout,
            max_pdu_size=config.max_pdu_size,
            window=10,
            inbound_window=10,
        )

    def replace_accounts(self, accounts: tuple[EsmeAccount, ...]) -> None:
        """The accounts the next bind is checked against (a reload); binds up now are left alone."""
        self.accounts = {a.system_id: a for a in accounts}
        self.config = replace(self.config, accounts=accounts)
        # A changed throughput applies to the account's next bind once none of the old ones is left.
        for system_id in list(self._buckets):
            if self.registry.count(system_id) == 0:
                del self._buckets[system_id]

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        self._server = await self._listen(host, port, None, reuse_port=reuse_port)

    async def start_tls(self, host: str, port: int, tls: TlsConfig) -> None:
        """A second listener, over TLS: the same accounts, limits and caps as the plain one."""
        self._tls_server = await self._listen(host, port, server_context(tls))

    async def _listen(
        self, host: str, port: int, context: ssl.SSLContext | None, *, reuse_port: bool = False
    ) -> asyncio.Server:
        loop = self.loop

        def make() -> SmppConnection:
            session = SmppSession(Role.SMSC, clock=loop.time, config=self._session_config)
            session.tap = self.tap
            cfg = self.config
            return SmppConnection(
                session,
                self,
                loop,
                unbound_pdus=cfg.unbound_pdus,
                high_water=cfg.output_buffer,
                output_deadline=cfg.output_deadline,
                log_interval=cfg.refusal_log_interval,
                capture=self.capture,
            )

        if context is None:
            return await loop.create_server(make, host, port, reuse_address=True, reuse_port=reuse_port or None)
        # A handshake is held no longer than a bind may take: a peer that opens and says nothing (or
        # speaks plain SMPP to this port) is dropped by the TLS layer before the SMPP layer sees it.
        return await loop.create_server(
            make, host, port, reuse_address=True, ssl=context, ssl_handshake_timeout=self.config.session_init_timeout
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def tls_port(self) -> int:
        assert self._tls_server is not None
        return int(self._tls_server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        """Accept no more connections; those open stay as they are."""
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()

    async def unbind_all(self, grace: float) -> None:
        """Send every bound ESME an unbind and wait (up to ``grace`` seconds) for its unbind_resp, then close
        every connection. Sent only once nothing is owed to the ESME: the answers to its requests go
        before the unbind, so that an ESME never has to guess whether a message it sent was taken."""
        waits = []
        for conn in list(self.connections):
            if conn.is_open and conn.session.bound and conn.session.window_available > 0:
                waits.append(conn.request(Unbind()))
            else:
                conn.close()
        if waits:
            done, pending = await asyncio.wait(waits, timeout=grace)
            for fut in done:
                fut.exception()  # a connection gone meanwhile is as good as unbound
            if pending:
                log.warning("esme.unbind_unanswered", binds=len(pending))
            for fut in pending:
                fut.cancel()
        for conn in list(self.connections):
            conn.close()

    async def stop(self) -> None:
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        for conn in list(self.connections):
            conn.close()

    # --- Handler ------------------------------------------------------------------------------------

    def connected(self, conn: SmppConnection) -> None:
        conn.log = conn.log.bind(side="esme")
        address = conn.peer[0]
        per_address = self._connections.get(address, 0)
        if self._total >= self.config.max_connections:
            self._refuse_connection(conn, "max_connections", self.config.max_connections)
            return
        if per_address >= self.config.max_connections_per_address:
            self._refuse_connection(conn, "max_connections_per_address", self.config.max_connections_per_address)
            return
        self._connections[address] = per_address + 1
        self._total += 1
        self.connections.add(conn)
        conn.context = _COUNTED
        conn.log.debug("esme.connected")

    def _refuse_connection(self, conn: SmppConnection, limit: str, value: int) -> None:
        # Closed before a single PDU is read: past the cap a connection costs a file descriptor for
        # one turn of the loop, however many the peer opens.
        self._cap_log.add(log, address=conn.peer[0], limit=limit, value=value)
        conn.abort()

    def closed(self, conn: SmppConnection) -> None:
        ctx = conn.context
        self.connections.discard(conn)
        if ctx is None:
            return  # refused by a cap, never counted
        address = conn.peer[0]
        left = self._connections.get(address, 1) - 1
        if left > 0:
            self._connections[address] = left
        else:
            self._connections.pop(address, None)
        self._total -= 1
        if isinstance(ctx, EsmeBind):
            self.registry.remove(ctx.account.system_id, conn)
            conn.log.info("esme.unbound")

    def event(self, conn: SmppConnection, event: Pdu) -> None:
        if isinstance(event, _BINDS):
            now = self.loop.time()
            # Both buckets are charged, so that an attempt counts against its address and its name.
            by_address = self.bind_per_address.take(conn.peer[0], now)
            by_name = self.bind_per_system_id.take(event.system_id, now)
            if not (by_address and by_name):
                # Answered at once rather than held: a held bind keeps a connection, and a delay
                # longer than the ESME's own timeout reads as no answer at all.
                conn.send(response_to(event, CommandStatus.ESME_RBINDFAIL, system_id=GATEWAY_SYSTEM_ID))
                self._throttled_log.add(log, address=conn.peer[0], limit="address" if not by_address else "system_id")
                conn.close()
                return
            if self._bind(conn, event):
                # An honest bind does not use up the attempts of its address or its name (ESMEs that
                # rebind often stay welcome); it gives back one token only, so guesses between correct
                # binds still drain the buckets.
                self.bind_per_address.give_back(conn.peer[0])
                self.bind_per_system_id.give_back(event.system_id)
        elif not event.is_response and event.command_id != _UNBIND:  # the session answers unbind
            self._on_request(conn, event)

    # --- binding ------------------------------------------------------------------------------------

    def _bind(self, conn: SmppConnection, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> bool:
        if not conn.is_open:
            return False
        source = conn.peer[0]
        bind_type = _BIND_TYPE[pdu.command_id]
        status, why = self._authorise(pdu, source, bind_type)
        blog = conn.log.bind(system_id=pdu.system_id, bind_type=bind_type)
        conn.send(response_to(pdu, status, system_id=GATEWAY_SYSTEM_ID))
        if status != CommandStatus.ESME_ROK:
            blog.warning("esme.bind_refused", status=CommandStatus(status).name, reason=why)
            conn.close()
            return False
        account = self.accounts[pdu.system_id]
        bucket = self._buckets.get(account.system_id)
        if bucket is None:
            bucket = self._buckets[account.system_id] = TokenBucket(account.throughput, now=self.loop.time())
        conn.context = EsmeBind(account, bind_type, bucket)
        conn.log = blog
        conn.session.config = replace(conn.session.config, window=account.window, inbound_window=account.window)
        self.registry.add(account.system_id, conn)
        blog.info("esme.bound")
        return True

    def _authorise(
        self, pdu: BindTransmitter | BindReceiver | BindTransceiver, source: str, bind_type: str
    ) -> tuple[int, str]:
        account = self.accounts.get(pdu.system_id)
        expected = account.password.encode("latin-1", "replace") if account else _DUMMY_PASSWORD
        password_ok = hmac.compare_digest(expected, pdu.password.encode("latin-1", "replace"))
        if account is None or not password_ok:
            # The same answer for an unknown system_id as for a wrong password: probes learn nothing.
            return CommandStatus.ESME_RINVPASWD, "bad credentials"
        if not account.allows(source):
            return CommandStatus.ESME_RBINDFAIL, "source address not allowed"
        if bind_type not in account.bind_types:
            return CommandStatus.ESME_RBINDFAIL, f"bind type {bind_type} not allowed"
        if self.registry.count(account.system_id) >= account.max_binds:
            return CommandStatus.ESME_RBINDFAIL, f"already {account.max_binds} binds"
        return CommandStatus.ESME_ROK, ""
