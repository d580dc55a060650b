"""A simulated handset: registers with the gateway, rings, answers or refuses by behaviour, hangs up,
and a screen model that records what the person holding it saw for each incoming call.

The screen shows the caller's number and display name the way a handset does: from the
P-Asserted-Identity when the network asserted one (its display name is where the gateway puts a
label), else from From. The verified badge shows when that identity carries
``verstat=TN-Validation-Passed`` (3GPP TS 24.229: a parameter of the tel URI, or of the user part of
a SIP URI with user=phone): a handset believes whatever arrives from the network, so it is the
gateway's job to remove whatever a caller wrote there. The 反诈名片 is the display name of such a verified
identity; Call-Info (RFC 9796) adds the jCard name, the call reason and an icon.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
from dataclasses import dataclass, field
from urllib.parse import unquote

from protocols.errors import RemoteProtocolError
from protocols.sip import (
    Dialog,
    Headers,
    NameAddr,
    Request,
    Response,
    ServerInviteTransaction,
    create_response,
    parse_name_addr,
    parse_uri,
)
from simulator.behaviour import Person
from simulator.clock import Timer
from simulator.sip_ua import ServerTxn, UserAgent, new_tag

VERIFIED = "TN-Validation-Passed"
_SDP = (
    b"v=0\r\no=handset 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Behaviour(enum.Enum):
    ANSWER = "answer"  # 180, then 200 after answer_delay
    BUSY = "busy"  # 486 Busy Here
    DECLINE = "decline"  # 603 Decline
    IGNORE = "ignore"  # rings until the caller gives up


@dataclass(slots=True)
class IncomingCall:
    """One line of the screen's call log."""

    call_id: str
    caller_number: str
    display_name: str | None
    verified: bool  # the network asserted verstat=TN-Validation-Passed
    answered: bool = False
    #: The caller's ACK came: the call is set up (the screen's call timer runs).
    connected: bool = False
    ended: bool = False
    verstat: str | None = None
    card_name: str | None = None  # the jCard's fn, from Call-Info purpose=jcard
    call_reason: str | None = None  # Call-Info call-reason (RFC 9796)
    icon: str | None = None  # Call-Info purpose=icon
    #: The header fields as they arrived: what the gateway asserted (P-Asserted-Identity, Call-Info).
    asserted: str | None = None
    call_info: tuple[str, ...] = ()

    @property
    def label(self) -> str | None:
        """The 反诈名片 on the screen: the display name of a verified identity, and nothing else."""
        return self.display_name if self.verified else None

    @property
    def badge(self) -> bool:
        """Whether the screen shows the verified-label badge."""
        return self.label is not None


@dataclass
class Screen:
    calls: list[IncomingCall] = field(default_factory=list)
    #: A phone that reads only From (baresip, Linphone and many SIP phones): it shows the From display
    #: name and number and ignores P-Asserted-Identity (its ``display_name`` is what the person sees).
    from_only: bool = False

    @property
    def last(self) -> IncomingCall | None:
        return self.calls[-1] if self.calls else None

    def show(self, invite: Request) -> IncomingCall:
        identity = (None if self.from_only else _asserted_identity(invite)) or invite.from_addr
        # Like many handsets, it also believes a verstat in From (TS 24.229 lets the network put it
        # there): only the gateway's stripping keeps a caller's own verstat off the screen.
        number, verstat = _number_and_verstat(identity)
        call = IncomingCall(
            invite.call_id,
            number,
            identity.display,
            verstat == VERIFIED,
            verstat=verstat,
            asserted=invite.headers.get("P-Asserted-Identity"),
            call_info=tuple(invite.headers.get_all("Call-Info")),
        )
        _read_call_info(invite, call)
        self.calls.append(call)
        return call

    def find(self, call_id: str) -> IncomingCall | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def rang(self, call_id: str) -> bool:
        return self.find(call_id) is not None


def _asserted_identity(invite: Request) -> NameAddr | None:
    values = invite.headers.get_list("P-Asserted-Identity")
    for value in values:
        try:
            identity = parse_name_addr(value)
        except RemoteProtocolError:
            continue
        if identity.uri.is_sip or identity.uri.scheme == "tel":
            return identity
    return None


def _number_and_verstat(identity: NameAddr) -> tuple[str, str | None]:
    """The number (a tel URI's, or a SIP URI's user part) and verstat wherever 3GPP and vendors put it."""
    uri = identity.uri
    number, *user_params = (uri.user or "").split(";")
    verstat = None
    for param in user_params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "verstat":
            verstat = value.strip()
    return number, verstat or uri.param("verstat") or identity.param("verstat")


def _read_call_info(invite: Request, call: IncomingCall) -> None:
    try:
        values = invite.headers.get_list("Call-Info")
    except RemoteProtocolError:
        return
    for value in values:
        try:
            info = parse_name_addr(value)
        except RemoteProtocolError:
            continue
        purpose = (info.param("purpose") or "").lower()
        if purpose == "icon":
            call.icon = str(info.uri)
        elif purpose == "jcard":
            call.card_name = _jcard_name(str(info.uri))
            reason = info.param("call-reason")
            if reason is not None:
                call.call_reason = reason[1:-1] if reason.startswith('"') else reason


def _jcard_name(uri: str) -> str | None:
    """The fn of a jCard (RFC 7095) carried inline as a data: URI; None for anything else."""
    if not uri.startswith("data:"):
        return None
    meta, _, payload = uri[5:].partition(",")
    try:
        raw = base64.b64decode(payload) if meta.endswith(";base64") else unquote(payload).encode()
        card = json.loads(raw)
        for prop in card[1]:
            if prop[0] == "fn":
                return str(prop[3])
    except (binascii.Error, ValueError, TypeError, IndexError, KeyError):
        return None
    return None


@dataclass(slots=True)
class _Call:
    invite: Request
    txn: ServerInviteTransaction
    tag: str
    dialog: Dialog | None = None
    ok: Response | None = None
    acked: bool = False
    answer_timer: Timer | None = None


class Handset(UserAgent):
    def __init__(
        self,
        user: str,
        proxy: tuple[str, int],
        *,
        password: str | None = None,
        domain: str = "127.0.0.1",
        behaviour: Behaviour = Behaviour.ANSWER,
        answer_delay: float = 0.05,
        hangup_after: float | None = None,
        press: str | None = None,
        person: Person | None = None,
    ) -> None:
        super().__init__(proxy, user=user, password=password)
        self.domain = domain
        self.behaviour = behaviour
        self.answer_delay = answer_delay
        self.hangup_after = hangup_after
        #: A key the person presses once the call is set up (sent as SIP INFO, application/dtmf-relay).
        self.press = press
        #: The person holding the handset: with one, their profile decides whether and when to pick
        #: up, which key to press and when to hang up (on their clock), instead of the fields above.
        self.person = person
        #: The answers to the key presses sent, in order.
        self.key_answers: list[Response] = []
        self.screen = Screen()
        self.registered = False
        self._calls: dict[str, _Call] = {}
        self._cseq = 0
        self._call_id = new_tag() + new_tag()
        self._refresh: asyncio.TimerHandle | None = None

    @property
    def live_calls(self) -> tuple[str, ...]:
        """Call-IDs of the calls ringing or set up on this handset now."""
        return tuple(self._calls)

    async def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        for call in self._calls.values():
            if call.answer_timer is not None:
                call.answer_timer.cancel()
        await super().stop()

    # --- registration ----------------------------------------------------------------------------------

    def _register_request(self, expires: int) -> Request:
        self._cseq += 1
        aor = f"sip:{self.user}@{self.domain}"
        headers = Headers(
            [
                ("Max-Forwards", "70"),
                ("From", f"<{aor}>;tag={new_tag()}"),
                ("To", f"<{aor}>"),
                ("Call-ID", self._call_id),
                ("CSeq", f"{self._cseq} REGISTER"),
                ("Contact", self.contact),
                ("Expires", str(expires)),
            ]
        )
        return Request("REGISTER", parse_uri(f"sip:{self.domain}"), headers)

    async def register(self, expires: int = 300) -> Response:
        """REGISTER (answering a digest challenge if one comes); refreshes itself before it expires."""
        response = await self.send_authenticated(lambda: self._register_request(expires))
        self.registered = response.is_success and expires > 0
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self.registered:
            granted = expires
            for contact in response.contacts:
                if contact.uri.port == self.port and (value := contact.param("expires")) is not None:
                    granted = int(value)
            self._refresh = self.loop.call_later(max(1.0, granted * 0.8), self._refresh_now, expires)
        return response

    def _refresh_now(self, expires: int) -> None:
        self.loop.create_task(self.register(expires))

    async def unregister(self) -> Response:
        return await self.register(0)

    # --- incoming calls --------------------------------------------------------------------------------

    def on_request(self, request: Request, txn: ServerTxn | None) -> None:
        method = request.method
        if method == "INVITE" and isinstance(txn, ServerInviteTransaction):
            self._incoming(request, txn)
        elif method == "ACK":
            call = self._calls.get(request.call_id)
            if call is not None:
                first, call.acked = not call.acked, True
                if (entry := self.screen.find(request.call_id)) is not None:
                    entry.connected = True
                if self.person is not None:
                    if first:  # an ACK again (our 200 was re-sent) is not a second call set-up
                        self._in_call(call, self.person)
                    return
                if self.press is not None:
                    key, pressed_in = self.press, call.invite.call_id
                    self.loop.call_later(0.02, lambda: self.loop.create_task(self._press(pressed_in, key)))
                if self.hangup_after is not None:
                    call_id = call.invite.call_id
                    self.loop.call_later(self.hangup_after, lambda: self.loop.create_task(self.hang_up(call_id)))
        elif method == "CANCEL" and txn is not None:
            self._cancelled(request, txn)
        elif method == "BYE" and txn is not None:
            call = self._calls.pop(request.call_id, None)
            self.respond(txn, create_response(request, 200 if call else 481, to_tag=new_tag()))
            if call is not None and (entry := self.screen.find(request.call_id)) is not None:
                entry.ended = True
        elif txn is not None:
            super().on_request(request, txn)

    def _incoming(self, invite: Request, txn: ServerInviteTransaction) -> None:
        tag = new_tag()
        call = _Call(invite, txn, tag)
        self._calls[invite.call_id] = call
        shown = self.screen.show(invite)
        if self.person is not None:
            self._ring_for(call, shown, self.person)
            return
        if self.behaviour is Behaviour.BUSY:
            self._final(call, 486)
            return
        if self.behaviour is Behaviour.DECLINE:
            self._final(call, 603)
            return
        ringing = create_response(invite, 180, to_tag=tag)
        ringing.headers.add("Contact", self.contact)
        self.respond(txn, ringing)
        if self.behaviour is Behaviour.ANSWER:
            call.answer_timer = self.loop.call_later(self.answer_delay, self._answer, call)

    def _ring_for(self, call: _Call, shown: IncomingCall, person: Person) -> None:
        ringing = create_response(call.invite, 180, to_tag=call.tag)
        ringing.headers.add("Contact", self.contact)
        self.respond(call.txn, ringing)
        what = f"{shown.caller_number} {shown.label or shown.display_name or ''}".strip()
        delay = person.pick_up(what + (" (verified)" if shown.badge else ""), verified=shown.badge)
        if delay is not None:
            # Picked up on the person's clock; a CANCEL before then stops it (``_cancelled``).
            call.answer_timer = person.clock.call_later(delay, lambda: self._answer(call))

    def _in_call(self, call: _Call, person: Person) -> None:
        """The call is set up: the person presses their key and hangs up when their habit says."""
        habit, call_id = person.profile.calls, call.invite.call_id
        if habit.key is not None:
            key = habit.key

            def press() -> None:
                person.note("key_pressed", key)
                self.loop.create_task(self._press(call_id, key))

            person.clock.call_later(habit.key_after, press)
        if habit.hang_up_after is not None:

            def hang_up() -> None:
                self.loop.create_task(self.hang_up(call_id))

            person.clock.call_later(habit.hang_up_after, hang_up)

    def _final(self, call: _Call, status: int) -> None:
        self._calls.pop(call.invite.call_id, None)
        self.respond(call.txn, create_response(call.invite, status, to_tag=call.tag))

    def _answer(self, call: _Call) -> None:
        if call.invite.call_id not in self._calls:
            return
        ok = create_response(call.invite, 200, to_tag=call.tag)
        for rr in call.invite.headers.get_all("Record-Route"):
            ok.headers.add("Record-Route", rr)
        ok.headers.add("Contact", self.contact)
        ok.headers.add("Content-Type", "application/sdp")
        ok.body = _SDP
        call.ok = ok
        call.dialog = Dialog.from_uas(call.invite, ok)
        if (entry := self.screen.find(call.invite.call_id)) is not None:
            entry.answered = True
        if self.person is not None:
            self.person.note("answered", call.invite.call_id)
        self.respond(call.txn, ok)
        self._retransmit_ok(call, self.loop.time(), 0.5)

    def _retransmit_ok(self, call: _Call, started: float, interval: float) -> None:
        # RFC 3261 13.3.1.4: the UAS core re-sends the 2xx until the ACK comes, for 64*T1.
        def again() -> None:
            if call.acked or call.invite.call_id not in self._calls or self.loop.time() - started > 32:
                return
            assert call.ok is not None
            self.send(call.ok)
            self._retransmit_ok(call, started, min(interval * 2, 4.0))

        self.loop.call_later(interval, again)

    def _cancelled(self, cancel: Request, txn: ServerTxn) -> None:
        call = self._calls.get(cancel.call_id)
        self.respond(txn, create_response(cancel, 200 if call else 481, to_tag=new_tag()))
        if call is not None and call.ok is None:
            if call.answer_timer is not None:
                call.answer_timer.cancel()
            self._final(call, 487)

    # --- the keypad ---------------------------------------------------------------------------------------

    async def press_key(self, call_id: str, key: str) -> Response | None:
        """Press ``key`` in an answered call: an INFO with ``Signal=<key>`` (application/dtmf-relay, the
        form SIP phones send out of band); None when there is no such call."""
        call = self._calls.get(call_id)
        if call is None or call.dialog is None:
            return None
        info = call.dialog.create_request("INFO", body=f"Signal={key}\r\nDuration=160\r\n".encode())
        info.headers.add("Content-Type", "application/dtmf-relay")
        response = await self.send_request(info)
        self.key_answers.append(response)
        return response

    async def _press(self, call_id: str, key: str) -> None:
        await self.press_key(call_id, key)

    # --- hanging up ------------------------------------------------------------------------------------

    async def hang_up(self, call_id: str) -> Response | None:
        """Send BYE in an answered call; None when there is no such call."""
        call = self._calls.pop(call_id, None)
        if call is None or call.dialog is None:
            return None
        if (entry := self.screen.find(call_id)) is not None:
            entry.ended = True
        bye = call.dialog.create_request("BYE")
        return await self.send_request(bye)
