"""A simulated SIP trunk: places calls into the gateway as the network side would, one INVITE each.

``call`` sends an INVITE (with the caller's number, display name and, if given, a
P-Asserted-Identity, Identity headers and any other header fields), ACKs the final response, hangs
up answered calls after ``hold`` seconds, and reports what happened: the final status, the Reason the
gateway gave, and how long the answer took.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.sip import Dialog, Headers, Request, Response, create_response, parse_uri
from simulator.sip_ua import ServerTxn, UserAgent, new_tag

_SDP = (
    b"v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@dataclass(slots=True)
class CallResult:
    call_id: str
    status: int
    reason: str | None  # the Reason header of the final response, if any
    provisional: tuple[int, ...]
    setup_time: float  # seconds from INVITE to the final response
    bye_status: int | None = None
    reason_phrase: str = ""


class TrunkCaller(UserAgent):
    def __init__(self, proxy: tuple[str, int], *, domain: str = "127.0.0.1") -> None:
        super().__init__(proxy, user="trunk")
        self.domain = domain
        self._acks: dict[str, Request] = {}
        #: Calls the far end hung up (its BYE reached us).
        self.hung_up: set[str] = set()
        self.remote_hangup = asyncio.Event()

    def _invite(
        self,
        callee: str,
        caller: str,
        display: str | None,
        asserted: str | None,
        *,
        from_uri: str | None = None,
        call_id: str | None = None,
        identity: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> Request:
        from_value = f"<{from_uri or f'sip:{caller}@{self.domain}'}>;tag={new_tag()}"
        if display is not None:
            from_value = f'"{display}" ' + from_value
        fields = Headers(
            [
                ("Max-Forwards", "70"),
                ("From", from_value),
                ("To", f"<sip:{callee}@{self.domain}>"),
                ("Call-ID", call_id or secrets.token_hex(10)),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:{caller}@{self.host}:{self.port}>"),
                ("Content-Type", "application/sdp"),
            ]
        )
        if asserted is not None:
            fields.add("P-Asserted-Identity", asserted)
        for value in identity:
            fields.add("Identity", value)
        for name, value in headers:
            fields.add(name, value)
        return Request("INVITE", parse_uri(f"sip:{callee}@{self.domain}"), fields, _SDP)

    async def call(
        self,
        callee: str,
        caller: str,
        *,
        display: str | None = None,
        asserted: str | None = None,
        hold: float = 0.0,
        from_uri: str | None = None,
        call_id: str | None = None,
        identity: str | Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> CallResult:
        """Call ``callee`` as ``caller``. ``from_uri`` replaces the From URI (to write parameters into
        it), ``identity`` gives Identity header values, ``headers`` any further header fields."""
        identities = (identity,) if isinstance(identity, str) else tuple(identity)
        invite = self._invite(
            callee,
            caller,
            display,
            asserted,
            from_uri=from_uri,
            call_id=call_id,
            identity=identities,
            headers=headers,
        )
        provisional: list[Response] = []
        started = self.loop.time()
        final = await self.send_request(invite, provisional=provisional)
        result = CallResult(
            call_id=invite.call_id,
            status=final.status,
            reason=final.headers.get("Reason"),
            provisional=tuple(r.status for r in provisional),
            setup_time=self.loop.time() - started,
            reason_phrase=final.reason,
        )
        if not final.is_success:
            return result  # the transaction ACKed it
        dialog = Dialog.from_uac(invite, final)
        ack = dialog.create_request("ACK", cseq=invite.cseq.number)
        ack.headers.insert("Via", self.via())
        self._acks[invite.call_id] = ack
        self.send(ack)
        if hold > 0:
            await asyncio.sleep(hold)
        if invite.call_id not in self.hung_up:
            bye = await self.send_request(dialog.create_request("BYE"))
            result.bye_status = bye.status
        self._acks.pop(invite.call_id, None)
        return result

    def on_request(self, request: Request, txn: ServerTxn | None) -> None:
        if request.method == "BYE" and txn is not None:
            known = request.call_id in self._acks
            if known:
                self.hung_up.add(request.call_id)
                self.remote_hangup.set()
            self.respond(txn, create_response(request, 200 if known else 481, to_tag=new_tag()))
            return
        super().on_request(request, txn)

    def stray_response(self, response: Response) -> None:
        # A retransmitted 2xx means our ACK was lost: send it again (RFC 3261 13.2.2.4).
        ack = self._acks.get(response.call_id)
        if ack is not None and response.is_success and response.cseq.method == "INVITE":
            self.send(ack)
