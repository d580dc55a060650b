"""The robot call: the dissuasion engine's call from the anti-fraud number, placed through the gateway.

The robot is a SIP UAC on loopback. It binds an address of the trunk side (``sip.trusted_peers``)
and sends its INVITE into the gateway's own SIP listener, signed with the centre's key like any call
the centre places (PASSporT, attestation A, rcd ``nam`` = the registered label). So the robot gets no
short cut: the gateway verifies its Identity header and labels it exactly as it would the centre's
own trunk, and a robot call that would not pass as genuine does not ring either.

One call:

- rings for ``ring_timeout`` seconds, then is CANCELled (not answered); a final error response
  (486, 480, 603, a refusal by the gateway) ends it too;
- answered (200 OK): ACK, the warning plays for ``message_time`` seconds, then BYE; the engine hears
  of it at once through ``call_answered(case_id, now, confirmed=False)``;
- ``confirm`` (high risk): the robot waits up to ``confirm_timeout`` seconds in the dialog for the
  key press, a SIP INFO with ``application/dtmf-relay`` ``Signal=<confirm_key>``, and then reports
  ``confirmed=True``; without it the answer is reported unconfirmed when the robot hangs up.

The first 180 or 183 the handset sends (through the gateway) is the call ringing: reported once per
call, however many provisional responses follow, as a ``case.robot_ringing`` event and to the
engine's ``call_ringing`` (the case's timeline). Every call ends with a ``case.robot_call`` event
naming its ``outcome`` (answered, confirmed, unconfirmed, no_answer, busy, declined, rejected, failed)
and the final ``status``, and goes to the engine's ``call_ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.events.memory import EventSink
from gateway.logs import get_logger
from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Dialog,
    Headers,
    Request,
    Response,
    ResponseReceived,
    ServerNonInviteTransaction,
    SipParseError,
    TimedOut,
    TransactionEvent,
    TransportError,
    build_cancel,
    client_transaction_key,
    create_response,
    new_branch,
    parse_message,
    parse_uri,
    server_transaction_key,
    validate_request,
    validate_response,
)
from protocols.stir import Label, Signer

log = get_logger("afgw.dissuasion.robot")

_SDP = (
    b"v=0\r\no=afgw-robot 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
)
_OUTCOMES = {486: "busy", 600: "busy", 603: "declined", 480: "no_answer", 408: "no_answer", 487: "no_answer"}


@dataclass(frozen=True, slots=True)
class RobotCallConfig:
    """``dissuasion.robot_call``: who the robot calls as and how long it waits."""

    number: str = "96110"
    #: Loopback address the robot sends from: it must be one of ``sip.trusted_peers``.
    bind: str = "127.0.0.2"
    ring_timeout: float = 30.0
    message_time: float = 15.0
    confirm_timeout: float = 30.0
    confirm_key: str = "1"


class AnswerSink(Protocol):
    async def call_answered(self, case_id: str, now: float, *, confirmed: bool) -> bool: ...


ClientTxn = ClientInviteTransaction | ClientNonInviteTransaction


@dataclass(slots=True)
class _Call:
    case_id: str
    invite: Request
    confirm: bool
    dialog: Dialog | None = None
    ack: Request | None = None
    rang: bool = False
    key_pressed: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)


class SipRobotCaller(asyncio.DatagramProtocol):
    """Implements the engine's ``RobotCaller``; ``answers`` is the engine (set after both exist)."""

    def __init__(
        self,
        gateway: tuple[str, int],
        signer: Signer,
        label: Label | None,
        config: RobotCallConfig,
        *,
        domain: str,
        events: EventSink,
        clock: Callable[[], float],
        answers: AnswerSink | None = None,
    ) -> None:
        self.gateway = gateway
        self.signer = signer
        self.label = label
        self.config = config
        self.domain = domain
        self.events = events
        self.clock = clock
        self.answers = answers
        self._notes: set[asyncio.Future[None]] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.host, self.port = config.bind, 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[Any, tuple[ClientTxn, asyncio.Future[Response], list[Response]]] = {}
        self._servers: dict[Any, ServerNonInviteTransaction] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Call-IDs whose INVITE got no answer from the gateway at all (timeout, unreachable).
        self._lost: set[str] = set()

    @property
    def in_progress(self) -> int:
        """Calls placed and not yet over (ringing, or in the dialog)."""
        return len(self._tasks)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Connected to the gateway's listener: only it is heard, and an ICMP "unreachable" comes back
        # to error_received instead of being lost.
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.config.bind, 0), remote_addr=self.gateway
        )
        self.transport = transport
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for handle in self._timers.values():
            handle.cancel()
        if self.transport is not None:
            self.transport.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise LocalProtocolError("the robot caller is not started")
        return self._loop

    # --- RobotCaller ---------------------------------------------------------------------------------

    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        invite = self.build_invite(callee)
        call = _Call(case_id, invite, confirm)
        answer = self._send_request(invite)
        task = self.loop.create_task(self._run(call, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def build_invite(self, callee: str) -> Request:
        number = self.config.number
        identity = self.signer.sign(orig=number, dest=callee, iat=int(self.clock()), label=self.label)
        headers = Headers(
            [
                ("Max-Forwards", "70"),
                ("From", f"<sip:{number}@{self.domain}>;tag={secrets.token_hex(5)}"),
                ("To", f"<sip:{callee}@{self.domain}>"),
                ("Call-ID", f"robot-{secrets.token_hex(10)}"),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:{number}@{self.host}:{self.port}>"),
                ("Identity", identity.serialise()),
                ("Content-Type", "application/sdp"),
            ]
        )
        return Request("INVITE", parse_uri(f"sip:{callee}@{self.domain}"), headers, _SDP)

    async def _run(self, call: _Call, answer: asyncio.Future[Response]) -> None:
        call_id = call.invite.call_id
        # Known before any answer to the INVITE is read: this task runs before the next datagram is.
        self._calls[call_id] = call
        try:
            try:
                final = await asyncio.wait_for(asyncio.shield(answer), self.config.ring_timeout)
            except TimeoutError:
                # Nobody picked up: CANCEL; the 487 (or a 200 that crossed it) is the final answer.
                self._send_request(build_cancel(call.invite))
                final = await answer
            if call_id in self._lost:
                # Not even the gateway answered: the call was never placed, no one was asked.
                self._report(call, "failed", 0)
                return
            if not final.is_success:
                self._report(call, _OUTCOMES.get(final.status, "rejected"), final.status)
                return
            await self._answered(call, final)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("robot.call_failed", case_id=call.case_id, call_id=call_id, error=repr(exc))
            self._report(call, "failed", 0)
        finally:
            self._calls.pop(call_id, None)
            self._lost.discard(call_id)

    async def _answered(self, call: _Call, ok: Response) -> None:
        dialog = call.dialog = Dialog.from_uac(call.invite, ok)
        ack = dialog.create_request("ACK", cseq=call.invite.cseq.number)
        ack.headers.insert("Via", self._via())
        call.ack = ack
        self._send(ack)
        confirmed = False
        if call.confirm:
            waits = [asyncio.ensure_future(call.key_pressed.wait()), asyncio.ensure_future(call.hung_up.wait())]
            _, pending = await asyncio.wait(waits, timeout=self.config.confirm_timeout, return_when="FIRST_COMPLETED")
            for waiting in pending:
                waiting.cancel()
            confirmed = call.key_pressed.is_set()
        else:
            # The person answered: that is what handles a low or medium case, whatever comes next.
            await self._tell_engine(call, confirmed=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.hung_up.wait(), self.config.message_time)
        if call.confirm:
            await self._tell_engine(call, confirmed=confirmed)
        if not call.hung_up.is_set():
            await self._send_request(dialog.create_request("BYE"))
        outcome = "answered" if not call.confirm else ("confirmed" if confirmed else "unconfirmed")
        self._report(call, outcome, ok.status)

    async def _tell_engine(self, call: _Call, *, confirmed: bool) -> None:
        if self.answers is not None:
            await self.answers.call_answered(call.case_id, self.clock(), confirmed=confirmed)

    def _ringing(self, call: _Call, status: int) -> None:
        if call.rang:
            return  # a 180 repeated, or a 183 after it: the handset was already ringing
        call.rang = True
        self._tell(getattr(self.answers, "call_ringing", None), call.case_id, self.clock(), status)
        self.events.emit(
            "case.robot_ringing",
            at=self.clock(),
            case_id=call.case_id,
            call_id=call.invite.call_id,
            callee=call.invite.uri.user,
            status=status,
        )

    def _tell(self, report: Callable[..., Awaitable[None]] | None, *args: Any) -> None:
        """Put what the call did on the case's timeline, through the engine, without waiting for the store."""
        if report is not None:
            task = asyncio.ensure_future(report(*args))
            self._notes.add(task)  # kept referenced until written
            task.add_done_callback(self._notes.discard)

    def _report(self, call: _Call, outcome: str, status: int) -> None:
        self._tell(getattr(self.answers, "call_ended", None), call.case_id, self.clock(), outcome, status)
        self.events.emit(
            "case.robot_call",
            at=self.clock(),
            case_id=call.case_id,
            call_id=call.invite.call_id,
            callee=call.invite.uri.user,
            outcome=outcome,
            status=status,
        )

    # --- in-dialog requests from the handset ---------------------------------------------------------

    def _on_request(self, request: Request, txn: ServerNonInviteTransaction | None) -> None:
        call = self._calls.get(request.call_id)
        if txn is None:
            return  # an ACK: the robot never answers an INVITE
        if call is None or call.dialog is None or request.from_tag != call.dialog.id.remote_tag:
            self._respond(txn, create_response(request, 481))
            return
        if request.method == "INFO":
            key = _dtmf_signal(request)
            if key is None:
                self._respond(txn, create_response(request, 415))
                return
            self._respond(txn, create_response(request, 200))
            if key == self.config.confirm_key:
                call.key_pressed.set()
        elif request.method == "BYE":
            self._respond(txn, create_response(request, 200))
            call.hung_up.set()
        else:
            self._respond(txn, create_response(request, 405 if request.method != "OPTIONS" else 200))

    # --- the socket and the transactions --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                validate_request(message, forwarding=False)
                self._request_received(message)
            else:
                validate_response(message)
                self._response_received(message)
        except (SipParseError, RemoteProtocolError) as exc:
            log.debug("robot.discarded", error=str(exc))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: nothing listens where the gateway should. Every request in flight
        # is lost, and saying so now beats waiting out timer B (32 s) per call.
        log.warning("robot.unreachable", gateway=f"{self.gateway[0]}:{self.gateway[1]}", error=repr(exc))
        now = self.loop.time()
        for txn, _, _ in list(self._clients.values()):
            self._client_events(txn, txn.transport_failed(now, str(exc)))

    def _send(self, message: Request | Response) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(message.serialise())

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()};rport"

    def _send_request(self, request: Request) -> asyncio.Future[Response]:
        if request.method != "CANCEL":  # a CANCEL carries its INVITE's Via (build_cancel)
            request.headers.insert("Via", self._via())
        txn: ClientTxn
        txn = ClientInviteTransaction(request) if request.method == "INVITE" else ClientNonInviteTransaction(request)
        future: asyncio.Future[Response] = self.loop.create_future()
        self._clients[txn.key] = (txn, future, [])
        self._client_events(txn, txn.send_request(self.loop.time()))
        return future

    def _response_received(self, response: Response) -> None:
        entry = self._clients.get(client_transaction_key(response))
        if entry is None:
            # A 2xx retransmitted because our ACK was lost (RFC 3261 13.2.2.4): ACK again.
            call = self._calls.get(response.call_id)
            if call is not None and call.ack is not None and response.is_success:
                self._send(call.ack)
            return
        self._client_events(entry[0], entry[0].receive_response(response, self.loop.time()))

    def _client_events(self, txn: ClientTxn, events: list[TransactionEvent]) -> None:
        entry = self._clients.get(txn.key)
        for event in events:
            if entry is None:
                break
            future = entry[1]
            if isinstance(event, ResponseReceived) and event.response.is_final and not future.done():
                future.set_result(event.response)
            elif isinstance(event, ResponseReceived) and event.response.status in (180, 183):
                if (call := self._calls.get(txn.request.call_id)) is not None and txn.request.method == "INVITE":
                    self._ringing(call, event.response.status)
            elif isinstance(event, TimedOut | TransportError) and not future.done():
                if txn.request.method == "INVITE":
                    self._lost.add(txn.request.call_id)
                future.set_result(create_response(txn.request, 408))
        for message in txn.messages_to_send():
            self._send(message)
        if txn.terminated:
            self._clients.pop(txn.key, None)
        self._arm(txn, lambda now: self._client_events(txn, txn.handle_timer(now)))

    def _request_received(self, request: Request) -> None:
        key = server_transaction_key(request)
        txn = self._servers.get(key)
        if txn is not None:
            self._drive(txn, txn.receive_request(request, self.loop.time()))
            return
        if request.method == "ACK":
            self._on_request(request, None)
            return
        if request.method == "INVITE":
            return  # the robot only calls out; a stray INVITE gets nothing
        server = self._servers[key] = ServerNonInviteTransaction(request)
        self._on_request(request, server)

    def _respond(self, txn: ServerNonInviteTransaction, response: Response) -> None:
        with contextlib.suppress(LocalProtocolError):
            self._drive(txn, txn.send_response(response, self.loop.time()))

    def _drive(self, txn: ServerNonInviteTransaction, events: list[TransactionEvent]) -> None:
        for message in txn.messages_to_send():
            self._send(message)
        if txn.terminated:
            self._servers.pop(txn.key, None)
        self._arm(txn, lambda now: self._drive(txn, txn.handle_timer(now)))

    def _arm(self, txn: ClientTxn | ServerNonInviteTransaction, fire: Callable[[float], None]) -> None:
        handle = self._timers.pop(id(txn), None)
        if handle is not None:
            handle.cancel()
        when = None if txn.terminated else txn.get_timer()
        if when is None:
            return

        def run() -> None:
            self._timers.pop(id(txn), None)
            fire(self.loop.time())

        self._timers[id(txn)] = self.loop.call_at(when, run)


def _dtmf_signal(request: Request) -> str | None:
    """The key of an ``application/dtmf-relay`` INFO body (``Signal=1``); None for any other body."""
    kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind != "application/dtmf-relay":
        return None
    for line in request.body.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() == "signal":
            return value.strip()
    return None
