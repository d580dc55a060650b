"""The SMPP 3.4 session: bind states, sequence numbers, windows and timers, with no I/O.

Feed received octets to ``receive_data``, drain ``next_event`` until it returns None, write out what
``send`` returns and what ``data_to_send`` holds, and call ``handle_timer`` when ``get_timer`` says.
Time comes from the ``clock`` given to the constructor, so a test can drive a day in a loop.

The session answers on its own what needs no application decision: enquire_link, unbind, a PDU not
allowed in the current state (ESME_RINVBNDSTS, or ESME_RALYBND for a second bind), an unknown command
(generic_nack ESME_RINVCMDID), a malformed body (its response with the status naming the fault) and a
peer that exceeds the inbound window (ESME_RTHROTTLED). Each such answer is reported as an
``ErrorAnswered`` event so that the application can log and count it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from protocols.errors import LocalProtocolError
from protocols.smpp.codec import InvalidPdu, PduFramer, decode, encode
from protocols.smpp.constants import (
    DEFAULT_MAX_PDU_SIZE,
    MAX_SEQUENCE_NUMBER,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
)
from protocols.smpp.pdu import (
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitMulti,
    SubmitSm,
    UnbindResp,
    response_for,
)


class State(Enum):
    OPEN = "OPEN"
    BOUND_TX = "BOUND_TX"
    BOUND_RX = "BOUND_RX"
    BOUND_TRX = "BOUND_TRX"
    UNBOUND = "UNBOUND"
    CLOSED = "CLOSED"


class Role(Enum):
    """Which end of the session this object plays."""

    ESME = "ESME"  # the client: binds, submits
    SMSC = "SMSC"  # the server: accepts binds, delivers


_C = CommandId
_BOUND = (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)
_ESME_TX = frozenset({_C.SUBMIT_SM, _C.SUBMIT_MULTI, _C.DATA_SM, _C.QUERY_SM, _C.CANCEL_SM, _C.REPLACE_SM})
_SMSC_RX = frozenset({_C.DELIVER_SM, _C.DATA_SM, _C.ALERT_NOTIFICATION})
_LINK = frozenset({_C.ENQUIRE_LINK, _C.UNBIND})

#: The requests each role may send in each state (SMPP 3.4 section 2.3). Anything else received from the
#: peer is answered ESME_RINVBNDSTS. enquire_link is tolerated while OPEN, as SMPP 5.0 allows. UNBOUND
#: (our unbind awaits its response) still accepts the peer's unbind, so that unbinds crossing on the wire
#: close both sides instead of leaving each waiting for an unbind_resp that came back ESME_RINVBNDSTS.
ALLOWED_REQUESTS: dict[Role, dict[State, frozenset[int]]] = {
    Role.ESME: {
        State.OPEN: frozenset({_C.BIND_TRANSMITTER, _C.BIND_RECEIVER, _C.BIND_TRANSCEIVER, _C.ENQUIRE_LINK}),
        State.BOUND_TX: _ESME_TX | _LINK,
        State.BOUND_RX: _LINK,
        State.BOUND_TRX: _ESME_TX | _LINK,
        State.UNBOUND: frozenset({_C.UNBIND}),
        State.CLOSED: frozenset(),
    },
    Role.SMSC: {
        State.OPEN: frozenset({_C.OUTBIND, _C.ENQUIRE_LINK}),
        State.BOUND_TX: _LINK,
        State.BOUND_RX: _SMSC_RX | _LINK,
        State.BOUND_TRX: _SMSC_RX | _LINK,
        State.UNBOUND: frozenset({_C.UNBIND}),
        State.CLOSED: frozenset(),
    },
}

#: The state a successful bind response leads to.
BIND_STATES: dict[int, State] = {
    _C.BIND_TRANSMITTER_RESP: State.BOUND_TX,
    _C.BIND_RECEIVER_RESP: State.BOUND_RX,
    _C.BIND_TRANSCEIVER_RESP: State.BOUND_TRX,
}
_BINDS = frozenset({_C.BIND_TRANSMITTER, _C.BIND_RECEIVER, _C.BIND_TRANSCEIVER})


# --- events -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorAnswered:
    """The session answered a peer's PDU with an error status on its own."""

    command_id: int
    sequence_number: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResponseTimedOut:
    """No response came for a request we sent within the response timeout."""

    request: Pdu
    #: The number the request went out with: a relayed request carries the one it arrived with.
    sequence_number: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SessionInitTimedOut:
    """The peer connected but did not bind in time; the session is closed."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (end of stream)."""


Event = Pdu | ErrorAnswered | ResponseTimedOut | SessionInitTimedOut | ConnectionClosed


@dataclass(frozen=True, slots=True)
class SessionConfig:
    #: Seconds of silence from the peer after which we probe with enquire_link; None disables it.
    enquire_link_interval: float | None = 30.0
    #: Seconds to wait for the response to any request we sent.
    response_timeout: float = 10.0
    #: Seconds a server waits for the first bind after the connection opens (SMSC role only).
    session_init_timeout: float = 10.0
    #: Requests of ours that may await a response at once.
    window: int = 10
    #: Requests of the peer's that may await our response at once; more are answered ESME_RTHROTTLED.
    inbound_window: int = 10
    max_pdu_size: int = DEFAULT_MAX_PDU_SIZE


@dataclass(slots=True)
class _Outstanding:
    request: Pdu
    deadline: float


# Hot-path constants: on CPython 3.11 an Enum member lookup (State.CLOSED, CommandId.UNBIND) costs more
# than the comparison it feeds, and the session makes several per PDU.
_OPEN, _UNBOUND, _CLOSED = State.OPEN, State.UNBOUND, State.CLOSED
_ROK = int(CommandStatus.ESME_ROK)
_ENQUIRE_LINK, _UNBIND, _UNBIND_RESP = int(_C.ENQUIRE_LINK), int(_C.UNBIND), int(_C.UNBIND_RESP)
_OUTBIND, _ALERT_NOTIFICATION, _GENERIC_NACK = int(_C.OUTBIND), int(_C.ALERT_NOTIFICATION), int(_C.GENERIC_NACK)
_MESSAGE_PAYLOAD = 0x0424
#: Built once: ``isinstance(x, A | B)`` builds the union on every call, which costs more than the test.
_SHORT_MESSAGE_SUBMITS = (SubmitSm, SubmitMulti)
#: command_id and command_status, read from a PDU's header before it is decoded.
_ID_AND_STATUS = struct.Struct(">II")


class WireTap(Protocol):
    """Told the command_id and command_status of every PDU taken off the wire and every PDU put on it,
    those the session answers on its own included (the application counts them)."""

    def pdu_received(self, command_id: int, command_status: int) -> None: ...
    def pdu_sent(self, command_id: int, command_status: int) -> None: ...


class SmppSession:
    def __init__(
        self,
        role: Role,
        *,
        clock: Callable[[], float],
        config: SessionConfig | None = None,
    ) -> None:
        self.role = role
        self.peer_role = Role.SMSC if role is Role.ESME else Role.ESME
        self.config = config or SessionConfig()
        self._state = _OPEN
        # The requests each side may send now, kept in step with the state: looking them up by State on
        # every PDU would hash an Enum in Python code each time.
        self._may_send = ALLOWED_REQUESTS[role][_OPEN]
        self._peer_may_send = ALLOWED_REQUESTS[self.peer_role][_OPEN]
        self._clock = clock
        self._framer = PduFramer(self.config.max_pdu_size)
        self._events: list[Event] = []
        self._out = bytearray()
        self._next_seq = 1
        # Ours, awaiting the peer's response; insertion order is deadline order (one timeout for all).
        self._outstanding: dict[int, _Outstanding] = {}
        # The peer's, awaiting our response.
        self._inbound: set[int] = set()
        self._probe: _Outstanding | None = None
        now = clock()
        self._last_heard = now
        self._init_deadline: float | None = now + self.config.session_init_timeout if role is Role.SMSC else None
        self._eof = False
        # The peer's unbind, held until its earlier requests are answered.
        self._unbind_pending: int | None = None
        self._unbind_deadline: float | None = None
        #: PDUs taken off the wire so far (enquire_links answered on their own included).
        self.pdus_received = 0
        self._quota: int | None = None
        #: None: nobody counts.
        self.tap: WireTap | None = None

    # --- bookkeeping the application can read --------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        self._state = state
        self._may_send = ALLOWED_REQUESTS[self.role][state]
        self._peer_may_send = ALLOWED_REQUESTS[self.peer_role][state]

    @property
    def bound(self) -> bool:
        return self._state in _BOUND

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    @property
    def window_available(self) -> int:
        return max(0, self.config.window - len(self._outstanding))

    @property
    def awaiting_our_response(self) -> int:
        return len(self._inbound)

    def can_send(self, command_id: int) -> bool:
        return command_id in self._may_send

    def next_sequence_number(self) -> int:
        seq = self._next_seq
        self._next_seq = 1 if seq >= MAX_SEQUENCE_NUMBER else seq + 1
        return seq

    # --- input ----------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Octets from the peer; b"" means the peer closed its side."""
        if self._state is _CLOSED:
            return
        if not data:
            self._eof = True
            return
        self._framer.feed(data)
        self._last_heard = self._clock()

    def set_quota(self, pdus: int | None) -> None:
        """Take at most ``pdus`` more PDUs off the wire (None: no limit) until the next call.

        The session answers some PDUs on its own (enquire_link) without an event, so a caller that
        counted events could not bound the work one ``next_event`` does; the quota can.
        """
        self._quota = pdus

    @property
    def quota_exhausted(self) -> bool:
        """The quota is spent while received octets wait: more work is there for the next turn."""
        return self._quota is not None and self._quota <= 0 and self._framer.buffered > 0

    def next_event(self) -> Event | None:
        """The next event, or None when more data is needed.

        Raises ``InvalidPdu`` with ``close=True`` when the stream is beyond repair (a command_length out
        of range); the generic_nack to send first is already in ``data_to_send``.
        """
        while True:
            if self._events:
                return self._events.pop(0)
            if self._state is _CLOSED:
                return None
            if self._quota is not None and self._quota <= 0:
                return None
            try:
                raw = self._framer.next_pdu()
            except InvalidPdu as exc:
                self._queue(GenericNack(sequence_number=exc.sequence_number, command_status=exc.answer or 0))
                self.state = _CLOSED
                raise
            if raw is None:
                if self._eof:
                    self.state = _CLOSED
                    return ConnectionClosed()
                return None
            self.pdus_received += 1
            if self._quota is not None:
                self._quota -= 1
            event = self._process(raw)
            if event is not None:
                return event

    def _process(self, raw: bytes) -> Event | None:
        if self.tap is not None:
            self.tap.pdu_received(*_ID_AND_STATUS.unpack_from(raw, 4))
        try:
            pdu = decode(raw)
        except InvalidPdu as exc:
            if exc.close:
                raise
            return self._answer_error(exc.command_id, exc.sequence_number, exc.answer or 0, str(exc))
        if pdu.command_id & RESPONSE_BIT:
            return self._process_response(pdu)
        return self._process_request(pdu)

    def _process_response(self, pdu: Pdu) -> Event | None:
        seq = pdu.sequence_number
        probe = self._probe
        if probe is not None and probe.request.sequence_number == seq:
            self._probe = None
            return None
        pending = self._outstanding.pop(seq, None)
        if pending is not None and pdu.command_status == _ROK:
            bound = BIND_STATES.get(pdu.command_id)
            if bound is not None and self.state is _OPEN:
                self.state = bound
            elif pdu.command_id == _UNBIND_RESP:
                self.state = _CLOSED
        return pdu

    def _process_request(self, pdu: Pdu) -> Event | None:
        cid = pdu.command_id
        seq = pdu.sequence_number
        if cid not in self._peer_may_send:
            if cid in _BINDS and self.state in _BOUND:
                return self._answer_error(cid, seq, CommandStatus.ESME_RALYBND, "already bound")
            return self._answer_error(
                cid, seq, CommandStatus.ESME_RINVBNDSTS, f"{_name(cid)} not allowed in {self.state.value}"
            )
        if seq == 0 or seq > MAX_SEQUENCE_NUMBER:
            # SMPP 3.4 section 5.1.4 allows 0x00000001..0x7FFFFFFF only. A header field out of range
            # makes the PDU one the receiver cannot act on, which section 4.3 answers with generic_nack
            # (as for a bad command_length or command_id); 3.4 has no status naming a bad sequence
            # number, so the catch-all ESME_RUNKNOWNERR.
            self._queue(GenericNack(sequence_number=seq, command_status=CommandStatus.ESME_RUNKNOWNERR))
            return ErrorAnswered(cid, seq, CommandStatus.ESME_RUNKNOWNERR, f"sequence_number {seq} out of range")
        if seq in self._inbound:
            # Relaying it would leave two requests behind one number: the ESME can match only one of
            # the two answers, so one message would reach the SMSC with no reply. The request's own
            # response, since the header is valid; 3.4 has no status for a reused number, hence
            # ESME_RUNKNOWNERR. The earlier request with this number is still answered when it is due.
            return self._answer_error(
                cid, seq, CommandStatus.ESME_RUNKNOWNERR, f"sequence_number {seq} already awaits a response"
            )
        if cid == _ENQUIRE_LINK:
            self._queue(EnquireLinkResp(sequence_number=seq))
            return None
        if cid == _UNBIND:
            if self._unbind_pending is not None:
                return self._answer_error(cid, seq, CommandStatus.ESME_RINVBNDSTS, "an unbind is already pending")
            if self._inbound:
                # Every request accepted before the unbind is answered before unbind_resp: the
                # response of an accepted message must not be lost behind the end of the session.
                self._unbind_pending = seq
                self._unbind_deadline = self._clock() + self.config.response_timeout
                self.state = _UNBOUND
                return pdu
            self._queue(UnbindResp(sequence_number=seq))
            self.state = _CLOSED
            return pdu
        if len(self._inbound) >= self.config.inbound_window:
            return self._answer_error(
                cid, seq, CommandStatus.ESME_RTHROTTLED, f"more than {self.config.inbound_window} unanswered"
            )
        if isinstance(pdu, _SHORT_MESSAGE_SUBMITS) and pdu.short_message and pdu.tlv(_MESSAGE_PAYLOAD) is not None:
            # SMPP 3.4 section 5.3.2.32: short_message and message_payload are exclusive (sm_length
            # must be 0 when message_payload is used). Relaying both would let the SMSC deliver a text
            # other than the one inspected, so the PDU is refused with the status 3.4 gives an
            # optional parameter whose length does not fit the PDU.
            return self._answer_error(cid, seq, CommandStatus.ESME_RINVPARLEN, "both short_message and message_payload")
        if cid != _OUTBIND and cid != _ALERT_NOTIFICATION:
            self._inbound.add(seq)
        return pdu

    def _answer_error(self, command_id: int, seq: int, status: int, reason: str) -> ErrorAnswered:
        # A response, or a request without one of its own, can only be answered by generic_nack.
        answer = response_for(0 if command_id & RESPONSE_BIT else command_id, seq, status)
        self._queue(answer)
        return ErrorAnswered(command_id, seq, status, reason)

    # --- output ---------------------------------------------------------------------------------------

    def send(self, pdu: Pdu, *, sequence_number: int | None = None) -> bytes:
        """The octets of ``pdu``, after checking that the protocol allows it now."""
        seq = pdu.sequence_number if sequence_number is None else sequence_number
        cid = pdu.command_id
        data = encode(pdu, seq)  # first: a PDU that cannot be encoded must leave no trace in the books
        if self.tap is not None:
            self.tap.pdu_sent(cid, pdu.command_status)
        if cid & RESPONSE_BIT:
            self._sent_response(pdu, seq)
        else:
            if cid not in self._may_send:
                raise LocalProtocolError(f"cannot send {_name(cid)} in {self.state.value}")
            if seq == 0 or seq in self._outstanding:
                raise LocalProtocolError(f"sequence_number {seq} is zero or already awaiting a response")
            if cid != _OUTBIND and cid != _ALERT_NOTIFICATION:
                if len(self._outstanding) >= self.config.window:
                    raise LocalProtocolError(f"window of {self.config.window} requests is full")
                self._outstanding[seq] = _Outstanding(pdu, self._clock() + self.config.response_timeout)
            if cid == _UNBIND:
                self.state = _UNBOUND
        return data

    def _sent_response(self, pdu: Pdu, seq: int) -> None:
        if seq not in self._inbound and pdu.command_id != _GENERIC_NACK:
            raise LocalProtocolError(f"no request {seq} awaits a response")
        self._inbound.discard(seq)
        if self._unbind_pending is not None and not self._inbound:
            self._finish_unbind()
        bound = BIND_STATES.get(pdu.command_id)
        if bound is not None and pdu.command_status == _ROK:
            self.state = bound
            self._init_deadline = None

    def _queue(self, pdu: Pdu) -> None:
        """A PDU the session sends on its own (an answer, enquire_link), out with ``data_to_send``."""
        self._out += encode(pdu)
        if self.tap is not None:
            self.tap.pdu_sent(pdu.command_id, pdu.command_status)

    def data_to_send(self) -> bytes:
        """Octets the session produced on its own (answers, enquire_link); empties the buffer."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _finish_unbind(self) -> None:
        seq, self._unbind_pending, self._unbind_deadline = self._unbind_pending, None, None
        assert seq is not None
        self._queue(UnbindResp(sequence_number=seq))
        self.state = _CLOSED

    def connection_lost(self) -> None:
        self.state = _CLOSED
        self._outstanding.clear()
        self._inbound.clear()
        self._probe = None

    # --- timers ---------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state is _CLOSED:
            return None
        deadlines: list[float] = []
        if self._outstanding:
            deadlines.append(next(iter(self._outstanding.values())).deadline)
        if self._probe is not None:
            deadlines.append(self._probe.deadline)
        elif self.bound and self.config.enquire_link_interval is not None:
            deadlines.append(self._last_heard + self.config.enquire_link_interval)
        if self._init_deadline is not None and self.state is _OPEN:
            deadlines.append(self._init_deadline)
        if self._unbind_deadline is not None:
            deadlines.append(self._unbind_deadline)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float | None = None) -> None:
        if self.state is _CLOSED:
            return
        if now is None:
            now = self._clock()
        while self._outstanding:
            seq, pending = next(iter(self._outstanding.items()))
            if pending.deadline > now:
                break
            del self._outstanding[seq]
            self._events.append(ResponseTimedOut(pending.request, seq))
        if self._probe is not None:
            if self._probe.deadline <= now:
                self._events.append(ResponseTimedOut(self._probe.request, self._probe.request.sequence_number))
                self._probe = None
                self.state = _CLOSED
        elif (
            self.bound
            and self.config.enquire_link_interval is not None
            and now >= self._last_heard + self.config.enquire_link_interval
        ):
            probe = EnquireLink(sequence_number=self.next_sequence_number())
            self._probe = _Outstanding(probe, now + self.config.response_timeout)
            self._queue(probe)
        if self._init_deadline is not None and self.state is _OPEN and now >= self._init_deadline:
            self._init_deadline = None
            self.state = _CLOSED
            self._events.append(SessionInitTimedOut())
        if self._unbind_deadline is not None and now >= self._unbind_deadline:
            self._finish_unbind()


def _name(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"command {command_id:#010x}"
