"""The gateway's binds to the SMSC: N sessions kept up with back-off, requests spread over their windows.

Order: requests submitted with the same ``affinity`` (the proxy passes the ESME's connection) go out on
one bind, in the order they were submitted, so that the SMSC receives an ESME's messages, and the parts
of a long message, in the ESME's order; two TCP connections give no order between them. Sessions are
pinned to binds in turn as they first send; when the pinned bind is lost, the session is pinned to
another on its next request. A pinned request waits for its own bind's window rather than overtake on
another bind.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from gateway.capture import PcapCapture
from gateway.config import SmppConfig
from gateway.logs import get_logger
from gateway.smpp.connection import ConnectionGone, Reply, ResponseTimeout, SmppConnection
from gateway.tls import client_context
from protocols.smpp.constants import CommandId
from protocols.smpp.pdu import BindReceiver, BindTransceiver, BindTransmitter, Pdu, Unbind
from protocols.smpp.session import Role, SessionConfig, SmppSession, WireTap

log = get_logger("afgw.smsc")

_BIND_PDUS = {"transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver}


class SmscUnavailable(Exception):
    """No bind to the SMSC is up."""


class SmscBusy(Exception):
    """Every bind to the SMSC has a full window, and none freed up in time."""


DeliverHandler = Callable[[SmppConnection, Pdu], None]


@dataclass(eq=False)
class _Lane:
    """One session's way to the SMSC: its bind, and what waits for that bind's window, in order."""

    slot: int | None = None
    backlog: deque[tuple[Pdu, asyncio.Future[Pdu], float]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class SmscPool:
    def __init__(
        self,
        config: SmppConfig,
        on_request: DeliverHandler,
        loop: asyncio.AbstractEventLoop,
        tap: WireTap | None = None,
    ) -> None:
        self.config = config
        #: Counts every PDU of every bind.
        self.tap = tap
        self.peer = config.smsc
        self.loop = loop
        self._on_request = on_request
        self._binds: list[SmppConnection | None] = [None] * self.peer.binds
        self._tasks: list[asyncio.Task[None]] = []
        self._next = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Weak: a lane lives as long as the session it keeps in order, with no hook on its end.
        self._lanes: weakref.WeakKeyDictionary[object, _Lane] = weakref.WeakKeyDictionary()
        self._lane_waiters: list[asyncio.Future[None]] = []
        self._next_pin = 0
        self._stopping = False
        self.up = asyncio.Event()
        # Built once: the files were checked when the configuration was read.
        self._tls = client_context(self.peer.tls) if self.peer.tls is not None else None
        #: Where the binds' connections are recorded, when capture is on.
        self.capture: PcapCapture | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [self.loop.create_task(self._keep_bound(i)) for i in range(self.peer.binds)]

    async def stop(self) -> None:
        self._stopping = True
        # Every bind at once, and only with room in its window: an unbind that cannot be sent must not
        # abort the stop half-way (with a full window it used to raise, and the process then dropped
        # the SMSC's answers to messages it had accepted: the ESMEs, told nothing, sent them again).
        unbinds = [
            asyncio.wait_for(conn.request(Unbind()), 1.0)
            for conn in self._binds
            if conn is not None
            and conn.is_open
            and conn.session.can_send(CommandId.UNBIND)
            and conn.session.window_available > 0
        ]
        for result in await asyncio.gather(*unbinds, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(
                result, TimeoutError | ConnectionGone | ResponseTimeout
            ):
                log.warning("smsc.unbind_failed", error=str(result))
        for conn in self._binds:
            if conn is not None:
                conn.close()
        lanes = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in [*self._tasks, *lanes]:
            task.cancel()
        await asyncio.gather(*self._tasks, *lanes, return_exceptions=True)

    @property
    def window_in_use(self) -> int:
        """Requests sent on the binds and not answered yet."""
        return sum(c.session.outstanding for c in self._binds if c is not None)

    @property
    def queued(self) -> int:
        """Requests waiting for room in a bind's window."""
        return sum(len(lane.backlog) for lane in self._lanes.values()) + len(self._waiters)

    @property
    def bound_count(self) -> int:
        return sum(1 for c in self._binds if c is not None and c.session.bound)

    async def _keep_bound(self, slot: int) -> None:
        delay = self.peer.reconnect_initial
        slog = log.bind(smsc=f"{self.peer.host}:{self.peer.port}", bind=slot)
        while not self._stopping:
            conn: SmppConnection | None = None
            try:
                conn = await self._connect()
                bind_cls = _BIND_PDUS[self.peer.bind_type]
                resp = await asyncio.wait_for(
                    conn.request(
                        bind_cls(
                            system_id=self.peer.system_id,
                            password=self.peer.password,
                            system_type=self.peer.system_type,
                        )
                    ),
                    self.config.response_timeout,
                )
                if resp.command_status != 0:
                    slog.error("smsc.bind_refused", status=f"{resp.command_status:#04x}")
                elif self._stopping:
                    # stop() began as the bind completed; asyncio.wait_for (3.11) may have swallowed its
                    # cancel, and nobody would close this connection: waiting on it would hang stop().
                    return
                else:
                    slog.info("smsc.bound", bind_type=self.peer.bind_type)
                    delay = self.peer.reconnect_initial
                    self._binds[slot] = conn
                    self.up.set()
                    self._wake(len(self._waiters))
                    await conn.closed
                    if not self._stopping:
                        slog.warning("smsc.connection_lost")
            except (OSError, TimeoutError, ConnectionGone, ResponseTimeout) as exc:
                slog.warning("smsc.connect_failed", error=str(exc) or type(exc).__name__, retry_in=round(delay, 2))
            finally:
                self._binds[slot] = None
                if conn is not None:
                    conn.close()
                if self.bound_count == 0:
                    self.up.clear()
            if self._stopping:
                return
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.peer.reconnect_max)

    async def _connect(self) -> SmppConnection:
        cfg = self.config
        session_config = SessionConfig(
            enquire_link_interval=cfg.enquire_link_interval,
            response_timeout=cfg.response_timeout,
            window=self.peer.window,
            inbound_window=self.peer.window,
            max_pdu_size=cfg.max_pdu_size,
        )
        loop = self.loop

        def make() -> SmppConnection:
            session = SmppSession(Role.ESME, clock=loop.time, config=session_config)
            session.tap = self.tap
            return SmppConnection(session, self, loop, capture=self.capture)

        if self._tls is None:
            connecting = loop.create_connection(make, self.peer.host, self.peer.port)
        else:
            # The certificate must name server_name (or the configured host): a mismatch or an unknown
            # authority fails the handshake (ssl.SSLCertVerificationError, an OSError), and the bind is
            # retried with back-off like any failed connection, never made in the clear.
            assert self.peer.tls is not None
            connecting = loop.create_connection(
                make,
                self.peer.host,
                self.peer.port,
                ssl=self._tls,
                server_hostname=self.peer.tls.server_name or self.peer.host,
                ssl_handshake_timeout=cfg.response_timeout,
            )
        _transport, conn = await asyncio.wait_for(connecting, cfg.response_timeout)
        return conn

    # --- Handler: what the SMSC sends us ------------------------------------------------------------

    def connected(self, conn: SmppConnection) -> None:
        conn.log = conn.log.bind(side="smsc")

    def event(self, conn: SmppConnection, event: Pdu) -> None:
        if not event.is_response:
            self._on_request(conn, event)

    def closed(self, conn: SmppConnection) -> None:
        self._wake(len(self._waiters))

    # --- sending ------------------------------------------------------------------------------------

    def _pick(self) -> SmppConnection | None:
        binds = self._binds
        n = len(binds)
        for i in range(n):
            conn = binds[(self._next + i) % n]
            if conn is not None and conn.session.bound and conn.session.window_available > 0:
                self._next = (self._next + i + 1) % n
                return conn
        return None

    def _wake(self, count: int = 1) -> None:
        # A lane waits for one bind only, so a freed slot anywhere may be its own: wake every lane (few
        # wait at once: only sessions whose bind's window is full).
        lanes, self._lane_waiters = self._lane_waiters, []
        for fut in lanes:
            if not fut.done():
                fut.set_result(None)
        while count > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                count -= 1

    def _freed(self, _fut: asyncio.Future[Pdu]) -> None:
        if self._waiters or self._lane_waiters:
            self._wake()

    def submit(self, pdu: Pdu, affinity: object | None = None) -> asyncio.Future[Pdu]:
        """Send a request to the SMSC; the future resolves to its response.

        It fails with SmscUnavailable when no bind is up, SmscBusy when every window stays full for
        ``queue_timeout``, and ConnectionGone or ResponseTimeout when the SMSC did not answer. When a
        window has room, no task is created: the future is the connection's own. Requests with the same
        ``affinity`` (any object that can be weakly referenced) leave on one bind in submission order.
        """
        if affinity is not None:
            return self._submit_pinned(pdu, affinity)
        conn = self._pick()
        if conn is None:
            return self.loop.create_task(self._send_when_free(pdu))
        fut = conn.request(pdu)
        fut.add_done_callback(self._freed)
        return fut

    def submit_with(self, pdu: Pdu, affinity: object, reply: Reply) -> None:
        """``submit`` with ``affinity``, its outcome called back: ``reply(response, None)``, or
        ``reply(None, exception)`` with the exceptions ``submit``'s future would hold (a request
        cancelled before it left: SmscUnavailable). When the session's bind has room, the request goes
        out at once and ``reply`` is called from the bind's handling of the response: no future, no
        task, no callbacks run by the loop. ``reply`` is never called before this returns."""
        lane = self._lanes.get(affinity)
        if lane is not None and not lane.backlog:
            conn = self._pinned(lane)
            if conn is not None and conn.session.window_available > 0:
                conn.request_with(pdu, partial(self._replied, reply))
                return
        self._submit_pinned(pdu, affinity).add_done_callback(partial(_reply_from, reply))

    def _replied(self, reply: Reply, resp: Pdu | None, exc: Exception | None) -> None:
        if self._waiters or self._lane_waiters:
            self._wake()
        reply(resp, exc)

    async def send(self, pdu: Pdu) -> Pdu:
        return await self.submit(pdu)

    def pinned_slot(self, affinity: object) -> int | None:
        """The bind (its index) that ``affinity``'s requests go out on, if it has one."""
        lane = self._lanes.get(affinity)
        return lane.slot if lane is not None else None

    def _pinned(self, lane: _Lane) -> SmppConnection | None:
        """The lane's bind; a lane whose bind is gone is pinned to the next bound one in turn."""
        binds = self._binds
        if lane.slot is not None:
            conn = binds[lane.slot]
            if conn is not None and conn.session.bound:
                return conn
        n = len(binds)
        for i in range(n):
            slot = (self._next_pin + i) % n
            conn = binds[slot]
            if conn is not None and conn.session.bound:
                self._next_pin = (slot + 1) % n
                lane.slot = slot
                return conn
        lane.slot = None
        return None

    def _submit_pinned(self, pdu: Pdu, affinity: object) -> asyncio.Future[Pdu]:
        lane = self._lanes.get(affinity)
        if lane is None:
            lane = self._lanes[affinity] = _Lane()
        if not lane.backlog:
            conn = self._pinned(lane)
            if conn is not None and conn.session.window_available > 0:
                fut = conn.request(pdu)
                fut.add_done_callback(self._freed)
                return fut
        out: asyncio.Future[Pdu] = self.loop.create_future()
        lane.backlog.append((pdu, out, self.loop.time() + self.config.queue_timeout))
        if lane.task is None:
            lane.task = self.loop.create_task(self._drain_lane(lane))
        return out

    async def _drain_lane(self, lane: _Lane) -> None:
        try:
            while lane.backlog:
                pdu, out, deadline = lane.backlog[0]
                try:
                    conn = await self._wait_for_lane(lane, deadline)
                except (SmscUnavailable, SmscBusy) as exc:
                    lane.backlog.popleft()
                    if not out.done():
                        out.set_exception(exc)
                    continue
                lane.backlog.popleft()
                if out.done():  # cancelled by its caller: not sent
                    continue
                fut = conn.request(pdu)
                fut.add_done_callback(self._freed)
                fut.add_done_callback(partial(_pass_on, out))
        finally:
            lane.task = None
            for _pdu, out, _deadline in lane.backlog:
                if not out.done():
                    out.set_exception(SmscUnavailable("the gateway is stopping"))
            lane.backlog.clear()

    async def _wait_for_lane(self, lane: _Lane, deadline: float) -> SmppConnection:
        while True:
            conn = self._pinned(lane)
            if conn is None:
                raise SmscUnavailable("no bind to the SMSC is up")
            if conn.session.window_available > 0:
                return conn
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise SmscBusy("the session's bind to the SMSC has a full window")
            await self._woken(self._lane_waiters, remaining)

    async def _woken(self, waiters: list[asyncio.Future[None]] | deque[asyncio.Future[None]], remaining: float) -> None:
        """Wait until a slot may have freed (or ``remaining`` seconds pass); the caller looks again."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, remaining)
        except TimeoutError:
            pass
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _send_when_free(self, pdu: Pdu) -> Pdu:
        conn = await self._wait_for_slot()
        fut = conn.request(pdu)
        fut.add_done_callback(self._freed)
        return await fut

    async def _wait_for_slot(self) -> SmppConnection:
        deadline = self.loop.time() + self.config.queue_timeout
        while True:
            if self.bound_count == 0:
                raise SmscUnavailable("no bind to the SMSC is up")
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise SmscBusy("every bind to the SMSC has a full window")
            await self._woken(self._waiters, remaining)
            conn = self._pick()
            if conn is not None:
                return conn


def _reply_from(reply: Reply, fut: asyncio.Future[Pdu]) -> None:
    """A future's outcome told to a ``Reply``."""
    if fut.cancelled():
        reply(None, SmscUnavailable("cancelled"))
    elif (exc := fut.exception()) is not None:
        reply(None, exc if isinstance(exc, Exception) else SmscUnavailable(str(exc)))
    else:
        reply(fut.result(), None)


def _pass_on(out: asyncio.Future[Pdu], fut: asyncio.Future[Pdu]) -> None:
    if out.done():
        return
    if fut.cancelled():
        out.cancel()
    elif (exc := fut.exception()) is not None:
        out.set_exception(exc)
    else:
        out.set_result(fut.result())
