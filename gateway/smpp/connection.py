"""The asyncio glue around one ``SmppSession``: feed bytes, drain events, transmit, re-arm the timer.

A ``Handler`` receives the events. ``request`` sends a request and returns a future for its response,
so relays can await the far side's answer without holding any protocol state of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from gateway.logs import get_logger
from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.smpp.pdu import Pdu
from protocols.smpp.session import (
    ConnectionClosed,
    ErrorAnswered,
    Event,
    ResponseTimedOut,
    Role,
    SessionInitTimedOut,
    SmppSession,
    State,
)

if TYPE_CHECKING:
    from gateway.capture import PcapCapture, TcpFlow

log = get_logger("afgw.smpp")

# Looked up once: on CPython 3.11 an Enum member lookup costs more than the test it feeds, and these are
# tested for every PDU sent and every turn of a connection.
_OPEN = State.OPEN
_CLOSED = State.CLOSED

#: Stop reading from a peer whose responses we cannot write out fast enough.
_HIGH_WATER = 1 << 20
#: PDUs taken from one connection per turn of the event loop. Without a bound, one peer that streams
#: PDUs keeps the loop inside its data_received for as long as its socket has data, and every other
#: connection (and every timer) waits: about twenty such peers froze the gateway for half a minute.
_BATCH = 64


#: Told a request's outcome: ``(response, None)``, or ``(None, exception)`` when there is none
#: (ConnectionGone, ResponseTimeout).
Reply = Callable[[Pdu | None, Exception | None], None]


class Handler(Protocol):
    def connected(self, conn: SmppConnection) -> None: ...
    def event(self, conn: SmppConnection, event: Pdu) -> None: ...
    def closed(self, conn: SmppConnection) -> None: ...


class RateLog:
    """Logs a flood as a rate: the first event at once, then one line per interval with the count.

    One line per refused PDU would let the peer being refused decide how much the gateway writes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, event: str, interval: float, level: str = "warning") -> None:
        self.loop, self.event, self.interval, self.level = loop, event, interval, level
        self._counts: dict[tuple[tuple[str, Any], ...], tuple[int, Any]] = {}
        self._window_open = False

    def add(self, logger: Any, **fields: Any) -> None:
        if not self._window_open:
            self._window_open = True
            getattr(logger, self.level)(self.event, count=1, interval=self.interval, **fields)
            self.loop.call_later(self.interval, self._flush)
            return
        key = tuple(sorted(fields.items()))
        count, _ = self._counts.get(key, (0, logger))
        self._counts[key] = (count + 1, logger)

    def _flush(self) -> None:
        counts, self._counts = self._counts, {}
        if not counts:
            self._window_open = False
            return
        for key, (count, logger) in counts.items():
            getattr(logger, self.level)(self.event, count=count, interval=self.interval, **dict(key))
        self.loop.call_later(self.interval, self._flush)


class ResponseTimeout(Exception):
    """The peer did not answer a request in time."""


class ConnectionGone(Exception):
    """The connection closed before the peer answered."""


class SmppConnection(asyncio.Protocol):
    def __init__(
        self,
        session: SmppSession,
        handler: Handler,
        loop: asyncio.AbstractEventLoop,
        *,
        unbound_pdus: int | None = None,
        high_water: int = _HIGH_WATER,
        output_deadline: float = 10.0,
        log_interval: float = 10.0,
        capture: PcapCapture | None = None,
    ) -> None:
        self.session = session
        #: PDUs a peer may send before it has bound; past them the connection is closed (None: no limit).
        self.unbound_pdus = unbound_pdus
        #: Octets of unsent output past which we stop reading from the peer...
        self.high_water = high_water
        #: ...and seconds the output may stay that high (or unsent after close) before the connection is
        #: aborted: a peer that never reads must not keep its socket and its replies for ever.
        self.output_deadline = output_deadline
        #: Errors the session answered on its own, logged as a rate: a peer decides how many there are.
        self.errors_log: RateLog | None = None
        self.log_interval = log_interval
        self.handler = handler
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("?", 0)
        self.log: Any = log
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        #: Requests sent with ``request_with``: the callback told their response.
        self._replies: dict[int, Reply] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._paused_input = False  # the per-turn quota is spent: the rest waits for the next turn
        self._paused_output = False  # the peer does not read its replies
        self._stalled_since: float | None = None
        self._drain_scheduled = False
        self.closed = loop.create_future()
        #: Application state attached by the handler (the account, the bind's role, ...).
        self.context: Any = None
        self._capture = capture
        #: What this connection carries, recorded when capture is on.
        self._tap: TcpFlow | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        if self._capture is not None:
            # An ESME always opens the connection (SMPP 3.4 2.2; outbind is not used).
            self._tap = self._capture.tcp(transport, opened_locally=self.session.role is Role.ESME)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))
        self.log = log.bind(peer=f"{self.peer[0]}:{self.peer[1]}")
        self.handler.connected(self)
        self._schedule_flush()

    def data_received(self, data: bytes) -> None:
        if self._tap is not None:
            self._tap.received(data)
        self.session.receive_data(data)
        self._drain()

    def eof_received(self) -> bool:
        if self._tap is not None:
            self._tap.remote_finished()
        self.session.receive_data(b"")
        self._drain()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tap is not None:
            self._tap.close(error=exc is not None)
        self.session.connection_lost()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionGone("connection closed before the response"))
        replies, self._replies = self._replies, {}
        for reply in replies.values():
            self._reply(reply, None, ConnectionGone("connection closed before the response"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.handler.closed(self)

    # --- sending ------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and self.session.state is not _CLOSED

    def send(self, pdu: Pdu, *, sequence_number: int | None = None) -> bool:
        """Send a response (or a request whose answer nobody awaits); False when it could not go."""
        if not self.is_open:
            return False
        try:
            self._queue(self.session.send(pdu, sequence_number=sequence_number))
        except LocalProtocolError as exc:
            self.log.warning("smpp.send_refused", error=str(exc), command=type(pdu).__name__)
            return False
        return True

    def request(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Send a request with a fresh sequence number; the future resolves to the response PDU."""
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        if not self.is_open:
            fut.set_exception(ConnectionGone("connection is not open"))
            return fut
        seq = self.session.next_sequence_number()
        self._queue(self.session.send(pdu, sequence_number=seq))
        self._pending[seq] = fut
        return fut

    def request_with(self, pdu: Pdu, reply: Reply) -> None:
        """``request`` for a caller that wants its outcome called back rather than a future to await.

        A relay at full window sends tens of thousands of requests a second; a future each, with its
        done-callbacks and the loop turns that run them, cost more than the session's own work on the
        request. ``reply`` is called once, from this connection's handling of the response, its
        timeout or its loss, and never before this returns."""
        if not self.is_open:
            self.loop.call_soon(reply, None, ConnectionGone("connection is not open"))
            return
        session = self.session
        seq = session.next_sequence_number()
        self._queue(session.send(pdu, sequence_number=seq))
        self._replies[seq] = reply

    def _reply(self, reply: Reply, resp: Pdu | None, exc: Exception | None) -> None:
        # A callback's error stays its own, as a done-callback's does: it must not break this connection.
        try:
            reply(resp, exc)
        except Exception as error:
            self.loop.call_exception_handler(
                {"message": "SMPP reply callback failed", "exception": error, "protocol": self}
            )

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self._write_out()
            transport.close()
            if transport.get_write_buffer_size():
                # close() waits for the output to drain, which a peer that never reads never allows.
                self.loop.call_later(self.output_deadline, self._abort_unsent, transport)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _abort_unsent(self, transport: asyncio.Transport) -> None:
        if not self.closed.done():
            self.log.warning("smpp.output_abandoned", unsent=transport.get_write_buffer_size())
            transport.abort()

    # --- internals ----------------------------------------------------------------------------------

    def _drain(self) -> None:
        session = self.session
        unbound = self.unbound_pdus is not None and session.state is _OPEN
        quota = _BATCH
        if unbound:
            assert self.unbound_pdus is not None
            quota = max(0, min(quota, self.unbound_pdus - session.pdus_received))
        session.set_quota(quota)
        while True:
            try:
                event = session.next_event()
            except RemoteProtocolError as exc:
                self.log.warning("smpp.stream_broken", error=str(exc))
                self.close()
                return
            if event is None:
                break
            self._dispatch(event)
        if session.quota_exhausted:
            if unbound and session.state is _OPEN:
                # Before bind a peer may send a bind and a few enquire_links, nothing more: a
                # connection that streams without binding is not an ESME.
                self.log.warning("smpp.unbound_flood", pdus=session.pdus_received)
                self.abort()
                return
            if not self._paused_input:
                self._paused_input = True
                self._update_reading()
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self.loop.call_soon(self._drain_again)
        elif self._paused_input:
            self._paused_input = False
            self._update_reading()
        self._schedule_flush()

    def _drain_again(self) -> None:
        self._drain_scheduled = False
        if self.transport is not None and not self.transport.is_closing():
            self._drain()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._paused_input or self._paused_output:
            if transport.is_reading():
                transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Pdu):
            if event.is_response:
                reply = self._replies.pop(event.sequence_number, None)
                if reply is not None:
                    self._reply(reply, event, None)
                    return
                fut = self._pending.pop(event.sequence_number, None)
                if fut is not None:
                    if not fut.done():
                        fut.set_result(event)
                    return
            self.handler.event(self, event)
        elif isinstance(event, ResponseTimedOut):
            timeout = ResponseTimeout(f"no response to {type(event.request).__name__}")
            reply = self._replies.pop(event.sequence_number, None)
            if reply is not None:
                self._reply(reply, None, timeout)
            fut = self._pending.pop(event.sequence_number, None)
            if fut is not None and not fut.done():
                fut.set_exception(timeout)
            if self.session.state is _CLOSED:
                self.log.warning("smpp.link_timeout")
        elif isinstance(event, ErrorAnswered):
            if self.errors_log is None:
                self.errors_log = RateLog(self.loop, "smpp.error_answered", self.log_interval)
            # Per command and status, not per sequence number or reason text, so that a flood is counted.
            self.errors_log.add(self.log, command_id=f"{event.command_id:#010x}", status=f"{event.status:#04x}")
        elif isinstance(event, SessionInitTimedOut):
            self.log.info("smpp.bind_timeout")
        elif isinstance(event, ConnectionClosed):
            pass

    # Output is gathered and written once per event-loop turn: one syscall carries every PDU that the
    # turn produced, instead of one per PDU, which is where a relay at full window spends its time.

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write_out()
        if self.session.state is _CLOSED:
            self.close()
            return
        transport = self.transport
        if (
            not self._paused_output
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() > self.high_water
        ):
            self._paused_output = True
            self._stalled_since = self.loop.time()
            self._update_reading()
            self.loop.call_later(0.01, self._maybe_resume)
        self._rearm()

    def _write_out(self) -> None:
        auto = self.session.data_to_send()
        if auto:
            self._out.append(auto)
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        if self.transport is not None and not self.transport.is_closing():
            if self._tap is not None:
                self._tap.sent(data)
            self.transport.write(data)

    def _maybe_resume(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self.high_water // 2:
            stalled = self.loop.time() - (self._stalled_since or 0.0)
            if stalled >= self.output_deadline:
                self.log.warning(
                    "smpp.peer_not_reading", unsent=transport.get_write_buffer_size(), seconds=round(stalled, 1)
                )
                transport.abort()
                return
            self.loop.call_later(0.05, self._maybe_resume)
        else:
            self._paused_output = False
            self._stalled_since = None
            self._update_reading()

    def _rearm(self) -> None:
        # A timer that fires early is harmless (handle_timer acts only on what is due, then we re-arm),
        # so a later deadline never costs a cancel: the enquire_link deadline moves with every read.
        when = self.session.get_timer()
        if when is None or (self._timer_at is not None and self._timer_at <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.session.handle_timer(self.loop.time())
        self._drain()
