"""RFC 3261 section 17 transactions as sans-IO state machines, and the transaction matching keys.

How a transaction is driven (the same for all four kinds):

- Every input is a method call that takes ``now`` (seconds, from the caller's clock) and returns the
  list of events for the transaction user (TU), in order: :class:`ResponseReceived`,
  :class:`AckReceived`, :class:`RequestRetransmitted`, :class:`TimedOut`, :class:`TransportError`,
  :class:`TransactionTerminated`.
- Messages for the transport are queued; drain them with :meth:`messages_to_send` after every call
  (first transmissions, retransmissions, the ACK of a non-2xx final response). The transport decides
  the destination: a client transaction sends to the address the TU resolved, a server transaction
  answers per RFC 3261 18.2.2 / RFC 3581.
- ``get_timer()`` is the earliest armed deadline (or None); call ``handle_timer(now)`` when it is
  reached. The deadlines are also visible as ``timer_a`` ... ``timer_k``.

With ``reliable=True`` (TCP, TLS, SCTP) the retransmission timers A, E and G are never armed, and
the wait timers D, I, J and K are zero: the transaction goes straight to TERMINATED instead of
arming a zero timer.

The state transitions are data: each class has a ``TRANSITIONS`` table ``{(state, Input): state}``.
An input that is not in the table for the current state is ignored when it comes from the network
(a late retransmission) and raises ``LocalProtocolError`` when it comes from the TU.

A 2xx to an INVITE ends the client and server INVITE transactions (TERMINATED), as in RFC 3261: the
TU sends the ACK for a 2xx and retransmits the 2xx itself, and a proxy forwards 2xx retransmissions
that match no transaction statelessly (16.7). RFC 6026 replaces this with an "Accepted" state that
absorbs those retransmissions inside the transaction; it is not implemented here.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, NamedTuple

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip.headers import first_element
from protocols.sip.message import Headers, Request, Response

__all__ = [
    "MAGIC_COOKIE",
    "AckReceived",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ClientTransactionKey",
    "Input",
    "LegacyServerTransactionKey",
    "RequestRetransmitted",
    "ResponseReceived",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "ServerTransactionKey",
    "TimedOut",
    "TimerSettings",
    "TransactionEvent",
    "TransactionState",
    "TransactionTerminated",
    "TransportError",
    "build_ack",
    "build_cancel",
    "cancel_target_key",
    "client_transaction_key",
    "is_rfc3261_branch",
    "new_branch",
    "server_transaction_key",
]

MAGIC_COOKIE = "z9hG4bK"


class TransactionState(enum.Enum):
    TRYING = "TRYING"
    CALLING = "CALLING"
    PROCEEDING = "PROCEEDING"
    COMPLETED = "COMPLETED"
    CONFIRMED = "CONFIRMED"
    TERMINATED = "TERMINATED"

    # Members are singletons, equal only to themselves: hashed by identity, in C, rather than by
    # Enum.__hash__, a Python function that ran twice for every lookup in a transition table.
    __hash__ = object.__hash__


S = TransactionState


class Input(enum.Enum):
    """What can happen to a transaction; the keys of the transition tables."""

    PROVISIONAL = "1xx"  # received (client) or sent by the TU (server)
    SUCCESS = "2xx"
    FAILURE = "300-699"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TRANSPORT_ERROR = "transport error"

    __hash__ = object.__hash__  # as TransactionState's


def _response_input(status: int) -> Input:
    if status < 200:
        return Input.PROVISIONAL
    if status < 300:
        return Input.SUCCESS
    return Input.FAILURE


# --- timers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1, T2, T4 (RFC 3261 17.1.1.1, table 4) and the timer durations derived from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timer_a(self) -> float:
        """Initial INVITE retransmit interval (doubles each time, unreliable transports only)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    @property
    def timer_e(self) -> float:
        return self.t1

    @property
    def timer_f(self) -> float:
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        return self.t1

    @property
    def timer_h(self) -> float:
        return 64 * self.t1

    def timer_i(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4


DEFAULT_TIMERS = TimerSettings()


# --- events ------------------------------------------------------------------------------------------


# The events are plain classes rather than frozen dataclasses: compiled with mypyc, a dataclass keeps
# the __init__ the dataclasses module writes, which runs as Python and sets its field through
# object.__setattr__, and a response passed up builds one. Immutable (Final), compared by value.


class ResponseReceived:
    """A response the client transaction passes up to the TU (retransmissions are absorbed)."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response: Final = response

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseReceived) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.response == other.response

    def __hash__(self) -> int:
        return hash((self.response,))  # raises, as a message is not hashable

    def __repr__(self) -> str:
        return f"ResponseReceived(response={self.response!r})"


class AckReceived:
    """The ACK for a non-2xx final response reached the INVITE server transaction."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request: Final = request

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AckReceived) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.request == other.request

    def __hash__(self) -> int:
        return hash((self.request,))  # raises, as a message is not hashable

    def __repr__(self) -> str:
        return f"AckReceived(request={self.request!r})"


class RequestRetransmitted:
    """A server transaction absorbed a retransmitted request (re-sending its last response, if any)."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request: Final = request

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RequestRetransmitted) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.request == other.request

    def __hash__(self) -> int:
        return hash((self.request,))  # raises, as a message is not hashable

    def __repr__(self) -> str:
        return f"RequestRetransmitted(request={self.request!r})"


class TimedOut:
    """Timer B or F (no final response) or H (no ACK) fired: RFC 3261 treats it as a 408 / failure."""

    __slots__ = ("timer",)

    def __init__(self, timer: str) -> None:
        self.timer: Final = timer

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimedOut) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.timer == other.timer

    def __hash__(self) -> int:
        return hash((self.timer,))

    def __repr__(self) -> str:
        return f"TimedOut(timer={self.timer!r})"


class TransportError:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason: Final = reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TransportError) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.reason == other.reason

    def __hash__(self) -> int:
        return hash((self.reason,))

    def __repr__(self) -> str:
        return f"TransportError(reason={self.reason!r})"


class TransactionTerminated:
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TransactionTerminated) or other.__class__ is not self.__class__:
            return NotImplemented
        return True

    def __hash__(self) -> int:
        return hash(())

    def __repr__(self) -> str:
        return "TransactionTerminated()"


TransactionEvent = (
    ResponseReceived | AckReceived | RequestRetransmitted | TimedOut | TransportError | TransactionTerminated
)


# --- matching keys -----------------------------------------------------------------------------------
#
# Named tuples rather than dataclasses: every message is looked up by one, and a tuple hashes and
# compares in C. Keys of different kinds never meet in one table (and differ in length anyway).


class ClientTransactionKey(NamedTuple):
    """RFC 3261 17.1.3: the top Via branch and the CSeq method."""

    branch: str
    method: str


class ServerTransactionKey(NamedTuple):
    """RFC 3261 17.2.3 for requests whose branch carries the magic cookie."""

    branch: str
    sent_by: tuple[str, int | None]
    method: str


class LegacyServerTransactionKey(NamedTuple):
    """RFC 2543 matching (no magic cookie, or nothing after it: RFC 4475 3.2.1).

    The To tag is left out, so that the ACK of a non-2xx response (whose To carries the tag the
    server added) matches the INVITE; 17.2.3 compares it with the tag of the response sent instead.
    """

    request_uri: str
    from_tag: str | None
    call_id: str
    cseq: int
    method: str
    top_via: str


def is_rfc3261_branch(branch: str | None) -> bool:
    """True when ``branch`` starts with the magic cookie and has an identifier after it."""
    return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def new_branch() -> str:
    """A fresh RFC 3261 branch parameter (magic cookie plus 64 random bits)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def client_transaction_key(response: Response) -> ClientTransactionKey:
    """The key a response is matched with against client transactions (17.1.3)."""
    via = response.top_via
    return ClientTransactionKey(via.branch or "", response.cseq.method)


def server_transaction_key(request: Request) -> ServerTransactionKey | LegacyServerTransactionKey:
    """The key a request is matched with against server transactions (17.2.3).

    An ACK gets the INVITE's key (it belongs to the INVITE transaction when the final response was
    not a 2xx); a CANCEL gets its own (see :func:`cancel_target_key` for the INVITE it cancels).
    """
    method = "INVITE" if request.method == "ACK" else request.method
    return _server_key(request, method)


def cancel_target_key(cancel: Request) -> ServerTransactionKey | LegacyServerTransactionKey:
    """The key of the INVITE server transaction a CANCEL refers to (RFC 3261 9.2)."""
    return _server_key(cancel, "INVITE")


def _server_key(request: Request, method: str) -> ServerTransactionKey | LegacyServerTransactionKey:
    via = request.top_via
    branch = via.branch
    if branch is not None and is_rfc3261_branch(branch):
        return ServerTransactionKey(branch, via.sent_by, method)
    return LegacyServerTransactionKey(
        request_uri=str(request.uri),
        from_tag=request.from_tag,
        call_id=request.call_id,
        cseq=request.cseq.number,
        method=method,
        top_via=str(via),
    )


# --- requests the transaction layer builds ---------------------------------------------------------------


def _top_via_value(request: Request) -> str:
    first = request.headers.get("Via")
    if first is None:
        raise LocalProtocolError("Request has no Via")
    return first_element(first)


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3), sent by the client transaction."""
    headers = Headers()
    headers.add("Via", _top_via_value(invite))
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    headers.add("Content-Length", "0")
    return Request("ACK", invite.uri, headers)


def build_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (RFC 3261 9.1): same Request-URI, top Via, Call-ID, To, From, CSeq number."""
    headers = Headers()
    headers.add("Via", _top_via_value(invite))
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    headers.add("Content-Length", "0")
    return Request("CANCEL", invite.uri, headers)


def _own_branch(request: Request) -> str:
    """The branch of a request we are about to send; ours, so a problem is a local bug."""
    try:
        branch = request.top_via.branch
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"Request to send has no usable Via: {exc}") from exc
    if not is_rfc3261_branch(branch):
        raise LocalProtocolError("Requests we send need an RFC 3261 branch (see new_branch())")
    return branch or ""


# --- the machines --------------------------------------------------------------------------------------

_TIMER_INPUTS = {
    "a": Input.TIMER_A,
    "b": Input.TIMER_B,
    "d": Input.TIMER_D,
    "e": Input.TIMER_E,
    "f": Input.TIMER_F,
    "g": Input.TIMER_G,
    "h": Input.TIMER_H,
    "i": Input.TIMER_I,
    "j": Input.TIMER_J,
    "k": Input.TIMER_K,
}


class _Transaction:
    """What all four transaction kinds share: state, timers, the outgoing queue."""

    TRANSITIONS: ClassVar[Mapping[tuple[TransactionState, Input], TransactionState]] = {}
    INITIAL_STATE: ClassVar[TransactionState] = TransactionState.TERMINATED

    def __init__(self, request: Request, *, reliable: bool, timers: TimerSettings) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = self.INITIAL_STATE
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._outgoing: list[Request | Response] = []

    # --- timers -----------------------------------------------------------------------------------
    def _arm(self, name: str, now: float, duration: float) -> None:
        self._deadlines[name] = now + duration
        self._intervals[name] = duration

    def _disarm(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _deadline(self, name: str) -> float | None:
        return self._deadlines.get(name)

    @property
    def timer_a(self) -> float | None:
        """Deadline of timer A (None when not armed); likewise for timer_b ... timer_k."""
        return self._deadline("a")

    @property
    def timer_b(self) -> float | None:
        return self._deadline("b")

    @property
    def timer_d(self) -> float | None:
        return self._deadline("d")

    @property
    def timer_e(self) -> float | None:
        return self._deadline("e")

    @property
    def timer_f(self) -> float | None:
        return self._deadline("f")

    @property
    def timer_g(self) -> float | None:
        return self._deadline("g")

    @property
    def timer_h(self) -> float | None:
        return self._deadline("h")

    @property
    def timer_i(self) -> float | None:
        return self._deadline("i")

    @property
    def timer_j(self) -> float | None:
        return self._deadline("j")

    @property
    def timer_k(self) -> float | None:
        return self._deadline("k")

    def get_timer(self) -> float | None:
        """The earliest armed deadline, or None when nothing is armed."""
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> list[TransactionEvent]:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        events: list[TransactionEvent] = []
        while self._deadlines:
            name = min(self._deadlines, key=self._deadlines.__getitem__)
            if self._deadlines[name] > now:
                break
            del self._deadlines[name]
            self._timer_fired(name, now, events)
        return events

    def _timer_fired(self, name: str, now: float, events: list[TransactionEvent]) -> None:
        raise NotImplementedError

    # --- plumbing ---------------------------------------------------------------------------------
    def messages_to_send(self) -> list[Request | Response]:
        """Drain the messages the transport must send (in order)."""
        out, self._outgoing = self._outgoing, []
        return out

    def _advance(self, event: Input) -> TransactionState | None:
        """Apply the transition table; None when ``event`` is not expected in this state."""
        new = self.TRANSITIONS.get((self.state, event))
        if new is None:
            return None
        old, self.state = self.state, new
        return old

    def _terminate(self, events: list[TransactionEvent]) -> None:
        self.state = TransactionState.TERMINATED
        self._deadlines.clear()
        events.append(TransactionTerminated())

    def transport_failed(self, now: float, reason: str = "transport error") -> list[TransactionEvent]:
        """The transport could not send (RFC 3261 17.1.4 / 17.2.4): report and terminate."""
        del now
        events: list[TransactionEvent] = []
        if self._advance(Input.TRANSPORT_ERROR) is not None:
            events.append(TransportError(reason))
            self._terminate(events)
        return events

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED


_LIVE_CLIENT_INVITE = (S.CALLING, S.PROCEEDING, S.COMPLETED)


class ClientInviteTransaction(_Transaction):
    """RFC 3261 17.1.1 (figure 5)."""

    INITIAL_STATE = S.CALLING
    TRANSITIONS: ClassVar[Mapping[tuple[TransactionState, Input], TransactionState]] = {
        (S.CALLING, Input.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, Input.PROVISIONAL): S.PROCEEDING,
        (S.CALLING, Input.SUCCESS): S.TERMINATED,
        (S.PROCEEDING, Input.SUCCESS): S.TERMINATED,
        (S.CALLING, Input.FAILURE): S.COMPLETED,
        (S.PROCEEDING, Input.FAILURE): S.COMPLETED,
        (S.COMPLETED, Input.FAILURE): S.COMPLETED,
        (S.CALLING, Input.TIMER_A): S.CALLING,
        (S.CALLING, Input.TIMER_B): S.TERMINATED,
        (S.COMPLETED, Input.TIMER_D): S.TERMINATED,
        **{(state, Input.TRANSPORT_ERROR): S.TERMINATED for state in _LIVE_CLIENT_INVITE},
    }

    def __init__(self, request: Request, *, reliable: bool = False, timers: TimerSettings = DEFAULT_TIMERS) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError("ClientInviteTransaction needs an INVITE")
        super().__init__(request, reliable=reliable, timers=timers)
        self._sent = False
        self._ack: Request | None = None
        self.key = ClientTransactionKey(_own_branch(request), "INVITE")

    def send_request(self, now: float) -> list[TransactionEvent]:
        """Send the INVITE and start timers A (unreliable only) and B."""
        if self._sent:
            raise LocalProtocolError("The INVITE was already sent")
        self._sent = True
        self._outgoing.append(self.request)
        if not self.reliable:
            self._arm("a", now, self.timers.timer_a)
        self._arm("b", now, self.timers.timer_b)
        return []

    def receive_response(self, response: Response, now: float) -> list[TransactionEvent]:
        events: list[TransactionEvent] = []
        event = _response_input(response.status)
        old = self._advance(event)
        if old is None:
            return events  # e.g. a 1xx or 2xx after a non-2xx final: ignore
        if event is Input.PROVISIONAL:
            self._disarm("a", "b")
            events.append(ResponseReceived(response))
        elif event is Input.SUCCESS:
            events.append(ResponseReceived(response))
            self._terminate(events)
        elif old is S.COMPLETED:
            # A retransmitted final response: re-send the ACK, tell the TU nothing.
            if self._ack is not None:
                self._outgoing.append(self._ack)
        else:
            self._disarm("a", "b")
            self._ack = build_ack(self.request, response)
            self._outgoing.append(self._ack)
            events.append(ResponseReceived(response))
            duration = self.timers.timer_d(self.reliable)
            if duration <= 0:
                self._terminate(events)
            else:
                self._arm("d", now, duration)
        return events

    def _timer_fired(self, name: str, now: float, events: list[TransactionEvent]) -> None:
        if self._advance(_TIMER_INPUTS[name]) is None:
            return
        if name == "a":
            self._outgoing.append(self.request)
            self._arm("a", now, 2 * self._intervals["a"])
        elif name == "b":
            events.append(TimedOut("B"))
            self._terminate(events)
        else:  # d
            self._terminate(events)


_LIVE_CLIENT_NON_INVITE = (S.TRYING, S.PROCEEDING, S.COMPLETED)


class ClientNonInviteTransaction(_Transaction):
    """RFC 3261 17.1.2 (figure 6)."""

    INITIAL_STATE = S.TRYING
    TRANSITIONS: ClassVar[Mapping[tuple[TransactionState, Input], TransactionState]] = {
        (S.TRYING, Input.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, Input.PROVISIONAL): S.PROCEEDING,
        (S.TRYING, Input.SUCCESS): S.COMPLETED,
        (S.TRYING, Input.FAILURE): S.COMPLETED,
        (S.PROCEEDING, Input.SUCCESS): S.COMPLETED,
        (S.PROCEEDING, Input.FAILURE): S.COMPLETED,
        (S.TRYING, Input.TIMER_E): S.TRYING,
        (S.PROCEEDING, Input.TIMER_E): S.PROCEEDING,
        (S.TRYING, Input.TIMER_F): S.TERMINATED,
        (S.PROCEEDING, Input.TIMER_F): S.TERMINATED,
        (S.COMPLETED, Input.TIMER_K): S.TERMINATED,
        **{(state, Input.TRANSPORT_ERROR): S.TERMINATED for state in _LIVE_CLIENT_NON_INVITE},
    }

    def __init__(self, request: Request, *, reliable: bool = False, timers: TimerSettings = DEFAULT_TIMERS) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"ClientNonInviteTransaction cannot carry {request.method}")
        super().__init__(request, reliable=reliable, timers=timers)
        self._sent = False
        self.key = ClientTransactionKey(_own_branch(request), request.method)

    def send_request(self, now: float) -> list[TransactionEvent]:
        """Send the request and start timers E (unreliable only) and F."""
        if self._sent:
            raise LocalProtocolError("The request was already sent")
        self._sent = True
        self._outgoing.append(self.request)
        if not self.reliable:
            self._arm("e", now, self.timers.timer_e)
        self._arm("f", now, self.timers.timer_f)
        return []

    def receive_response(self, response: Response, now: float) -> list[TransactionEvent]:
        events: list[TransactionEvent] = []
        event = _response_input(response.status)
        if self._advance(event) is None:
            return events  # retransmissions in COMPLETED are absorbed
        events.append(ResponseReceived(response))
        if event is Input.PROVISIONAL:
            return events
        self._disarm("e", "f")
        duration = self.timers.timer_k(self.reliable)
        if duration <= 0:
            self._terminate(events)
        else:
            self._arm("k", now, duration)
        return events

    def _timer_fired(self, name: str, now: float, events: list[TransactionEvent]) -> None:
        old = self._advance(_TIMER_INPUTS[name])
        if old is None:
            return
        if name == "e":
            self._outgoing.append(self.request)
            # In TRYING the interval doubles up to T2; in PROCEEDING it is T2.
            interval = min(2 * self._intervals["e"], self.timers.t2) if old is S.TRYING else self.timers.t2
            self._arm("e", now, interval)
        elif name == "f":
            events.append(TimedOut("F"))
            self._terminate(events)
        else:  # k
            self._terminate(events)


class _ServerTransaction(_Transaction):
    def __init__(self, request: Request, *, reliable: bool, timers: TimerSettings) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self._last_response: Response | None = None
        self.key = server_transaction_key(request)

    def _check_send(self, response: Response) -> Input | None:
        """The table input for a TU response, None to discard it; raises if the TU is wrong."""
        event = _response_input(response.status)
        if self.state is S.TERMINATED:
            raise LocalProtocolError("The server transaction is terminated; send through the transport")
        if (self.state, event) not in self.TRANSITIONS:
            # RFC 3261 17.2.1/17.2.2: further responses from the TU are discarded once completed.
            return None
        return event


_LIVE_SERVER_INVITE = (S.PROCEEDING, S.COMPLETED, S.CONFIRMED)


class ServerInviteTransaction(_ServerTransaction):
    """RFC 3261 17.2.1 (figure 7). Created when an INVITE arrives; starts in PROCEEDING.

    RFC 3261 asks for a 100 Trying within 200 ms unless the TU answers sooner; the TU sends it with
    :meth:`send_response` like any other response.
    """

    INITIAL_STATE = S.PROCEEDING
    TRANSITIONS: ClassVar[Mapping[tuple[TransactionState, Input], TransactionState]] = {
        (S.PROCEEDING, Input.REQUEST): S.PROCEEDING,
        (S.PROCEEDING, Input.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, Input.SUCCESS): S.TERMINATED,
        (S.PROCEEDING, Input.FAILURE): S.COMPLETED,
        (S.COMPLETED, Input.REQUEST): S.COMPLETED,
        (S.COMPLETED, Input.ACK): S.CONFIRMED,
        (S.COMPLETED, Input.TIMER_G): S.COMPLETED,
        (S.COMPLETED, Input.TIMER_H): S.TERMINATED,
        (S.CONFIRMED, Input.ACK): S.CONFIRMED,
        (S.CONFIRMED, Input.TIMER_I): S.TERMINATED,
        **{(state, Input.TRANSPORT_ERROR): S.TERMINATED for state in _LIVE_SERVER_INVITE},
    }

    def __init__(self, request: Request, *, reliable: bool = False, timers: TimerSettings = DEFAULT_TIMERS) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError("ServerInviteTransaction needs an INVITE")
        super().__init__(request, reliable=reliable, timers=timers)

    def receive_request(self, request: Request, now: float) -> list[TransactionEvent]:
        """A retransmitted INVITE or the ACK for a non-2xx response, matched to this transaction."""
        events: list[TransactionEvent] = []
        is_ack = request.method == "ACK"
        old = self._advance(Input.ACK if is_ack else Input.REQUEST)
        if old is None:
            return events
        if is_ack:
            if old is S.COMPLETED:
                self._disarm("g", "h")
                events.append(AckReceived(request))
                duration = self.timers.timer_i(self.reliable)
                if duration <= 0:
                    self._terminate(events)
                else:
                    self._arm("i", now, duration)
            return events  # ACKs in CONFIRMED are absorbed
        if self._last_response is not None:
            self._outgoing.append(self._last_response)
        events.append(RequestRetransmitted(request))
        return events

    def send_response(self, response: Response, now: float) -> list[TransactionEvent]:
        events: list[TransactionEvent] = []
        event = self._check_send(response)
        if event is None:
            return events
        self._advance(event)
        self._last_response = response
        self._outgoing.append(response)
        if event is Input.SUCCESS:
            self._terminate(events)
        elif event is Input.FAILURE:
            if not self.reliable:
                self._arm("g", now, self.timers.timer_g)
            self._arm("h", now, self.timers.timer_h)
        return events

    def _timer_fired(self, name: str, now: float, events: list[TransactionEvent]) -> None:
        if self._advance(_TIMER_INPUTS[name]) is None:
            return
        if name == "g":
            if self._last_response is not None:
                self._outgoing.append(self._last_response)
            self._arm("g", now, min(2 * self._intervals["g"], self.timers.t2))
        elif name == "h":
            events.append(TimedOut("H"))
            self._terminate(events)
        else:  # i
            self._terminate(events)


_LIVE_SERVER_NON_INVITE = (S.TRYING, S.PROCEEDING, S.COMPLETED)


class ServerNonInviteTransaction(_ServerTransaction):
    """RFC 3261 17.2.2 (figure 8). Created when a non-INVITE request arrives; starts in TRYING."""

    INITIAL_STATE = S.TRYING
    TRANSITIONS: ClassVar[Mapping[tuple[TransactionState, Input], TransactionState]] = {
        (S.TRYING, Input.REQUEST): S.TRYING,
        (S.TRYING, Input.PROVISIONAL): S.PROCEEDING,
        (S.TRYING, Input.SUCCESS): S.COMPLETED,
        (S.TRYING, Input.FAILURE): S.COMPLETED,
        (S.PROCEEDING, Input.REQUEST): S.PROCEEDING,
        (S.PROCEEDING, Input.PROVISIONAL): S.PROCEEDING,
        (S.PROCEEDING, Input.SUCCESS): S.COMPLETED,
        (S.PROCEEDING, Input.FAILURE): S.COMPLETED,
        (S.COMPLETED, Input.REQUEST): S.COMPLETED,
        (S.COMPLETED, Input.TIMER_J): S.TERMINATED,
        **{(state, Input.TRANSPORT_ERROR): S.TERMINATED for state in _LIVE_SERVER_NON_INVITE},
    }

    def __init__(self, request: Request, *, reliable: bool = False, timers: TimerSettings = DEFAULT_TIMERS) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"ServerNonInviteTransaction cannot carry {request.method}")
        super().__init__(request, reliable=reliable, timers=timers)

    def receive_request(self, request: Request, now: float) -> list[TransactionEvent]:
        """A retransmission of the request: re-send the last response, if there is one."""
        del now
        events: list[TransactionEvent] = []
        if self._advance(Input.REQUEST) is None:
            return events
        if self._last_response is not None:
            self._outgoing.append(self._last_response)
        events.append(RequestRetransmitted(request))
        return events

    def send_response(self, response: Response, now: float) -> list[TransactionEvent]:
        events: list[TransactionEvent] = []
        event = self._check_send(response)
        if event is None:
            return events
        self._advance(event)
        self._last_response = response
        self._outgoing.append(response)
        if event is not Input.PROVISIONAL:
            duration = self.timers.timer_j(self.reliable)
            if duration <= 0:
                self._terminate(events)
            else:
                self._arm("j", now, duration)
        return events

    def _timer_fired(self, name: str, now: float, events: list[TransactionEvent]) -> None:
        if self._advance(_TIMER_INPUTS[name]) is not None:  # only J is ever armed
            self._terminate(events)
