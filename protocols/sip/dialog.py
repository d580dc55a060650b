"""Dialogs (RFC 3261 section 12): identity, route set, remote target and CSeq tracking.

A :class:`Dialog` is what a UA (or a B2BUA leg of the gateway) keeps to send and accept in-dialog
requests. A record-routing proxy needs less: :func:`dialog_id_of` identifies the dialog a request
belongs to from either direction, and the in-dialog request carries its own route.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip.headers import NameAddr
from protocols.sip.message import Headers, Request, Response
from protocols.sip.uri import SipUri

__all__ = ["Dialog", "DialogId", "DialogState", "dialog_id_of"]

# Requests that refresh the remote target when they carry a Contact (RFC 3261 12.2, RFC 3311,
# RFC 6665).
_TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(enum.Enum):
    EARLY = "EARLY"
    CONFIRMED = "CONFIRMED"
    TERMINATED = "TERMINATED"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus the local and remote tags, as seen from one side (RFC 3261 12)."""

    call_id: str
    local_tag: str
    remote_tag: str

    def reversed(self) -> DialogId:
        """The same dialog as the peer names it."""
        return DialogId(self.call_id, self.remote_tag, self.local_tag)


def dialog_id_of(message: Request | Response, *, uac: bool) -> DialogId | None:
    """The dialog id of ``message`` from the UAC's side (local tag = From tag) or the UAS's side.

    None when either tag is missing (no dialog yet, or an RFC 2543 peer without tags).
    """
    from_tag = message.from_tag
    to_tag = message.to_tag
    if from_tag is None or to_tag is None:
        return None
    if uac:
        return DialogId(message.call_id, from_tag, to_tag)
    return DialogId(message.call_id, to_tag, from_tag)


def _contact_target(message: Request | Response) -> SipUri | None:
    contacts = message.contacts
    return contacts[0].uri if contacts else None


@dataclass(slots=True)
class Dialog:
    """One side of a dialog. Build it with :meth:`from_uac` or :meth:`from_uas`."""

    id: DialogId
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    local_cseq: int | None = None
    remote_cseq: int | None = None
    secure: bool = False
    state: DialogState = DialogState.EARLY

    # --- creation (RFC 3261 12.1) -------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The UAC's dialog, from the request it sent and a 101-299 response with a To tag (12.1.2).

        The route set is the response's Record-Route in reverse order; the remote target its Contact.
        """
        remote_tag = response.to_tag
        local_tag = request.from_tag
        if remote_tag is None or local_tag is None:
            raise RemoteProtocolError("No dialog without From and To tags", answer=None)
        target = _contact_target(response) or request.uri
        return cls(
            id=DialogId(request.call_id, local_tag, remote_tag),
            local_uri=request.from_addr,
            remote_uri=response.to_addr,
            remote_target=target,
            route_set=list(reversed(response.record_routes)),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            secure=request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    @classmethod
    def from_uas(cls, request: Request, response: Response) -> Dialog:
        """The UAS's dialog, from the request received and the response it sends with a To tag (12.1.1).

        The route set is the request's Record-Route in order; the remote target its Contact.
        """
        local_tag = response.to_tag
        remote_tag = request.from_tag
        if local_tag is None:
            raise LocalProtocolError("The response must carry a To tag to create a dialog")
        if remote_tag is None:
            raise RemoteProtocolError("No From tag", answer=400)
        target = _contact_target(request)
        if target is None:
            raise RemoteProtocolError("Missing Contact", answer=400)
        return cls(
            id=DialogId(request.call_id, local_tag, remote_tag),
            local_uri=response.to_addr,
            remote_uri=request.from_addr,
            remote_target=target,
            route_set=request.record_routes,
            local_cseq=None,
            remote_cseq=request.cseq.number,
            secure=request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    # --- updates -----------------------------------------------------------------------------------
    def receive_response(self, request: Request, response: Response) -> None:
        """A response to a request sent in this dialog (an early dialog confirmed by 2xx, a target
        refresh, or a failure that ends an early dialog)."""
        if response.is_success:
            if self.state is DialogState.EARLY and request.method == "INVITE":
                # 12.1.2: the 2xx's Record-Route is the final route set.
                self.route_set = list(reversed(response.record_routes))
                self.state = DialogState.CONFIRMED
            if request.method in _TARGET_REFRESH:
                target = _contact_target(response)
                if target is not None:
                    self.remote_target = target
        elif response.status >= 300 and self.state is DialogState.EARLY and request.method == "INVITE":
            self.state = DialogState.TERMINATED
        if response.status in (481, 408) and request.method != "INVITE":
            self.state = DialogState.TERMINATED  # 12.2.1.2

    def receive_request(self, request: Request) -> None:
        """Check and record a request that arrived in this dialog (12.2.2).

        Raises ``RemoteProtocolError(answer=500)`` for a CSeq lower than the last one (out of order).
        ACK and CANCEL reuse the CSeq of the request they belong to and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_cseq is not None and number <= self.remote_cseq:
            raise RemoteProtocolError("CSeq out of order", answer=500)
        self.remote_cseq = number
        if request.method in _TARGET_REFRESH:
            target = _contact_target(request)
            if target is not None:
                self.remote_target = target
        if request.method == "BYE":
            self.state = DialogState.TERMINATED

    # --- building requests (12.2.1.1) --------------------------------------------------------------
    def next_cseq(self) -> int:
        """The CSeq number for the next request (other than ACK and CANCEL), and count it."""
        self.local_cseq = 1 if self.local_cseq is None else self.local_cseq + 1
        return self.local_cseq

    def route(self) -> tuple[SipUri, list[str]]:
        """The Request-URI and Route values for the next request.

        Loose routing (first route has ``lr``): the Request-URI is the remote target and the Route
        is the route set. Strict routing: the first route becomes the Request-URI and the remote
        target is appended to the Route.
        """
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.lr:
            return self.remote_target, [str(r) for r in self.route_set]
        request_uri = first.uri.without_headers()
        routes = [str(r) for r in self.route_set[1:]]
        routes.append(f"<{self.remote_target}>")
        return request_uri, routes

    def create_request(self, method: str, *, cseq: int | None = None, body: bytes = b"") -> Request:
        """A request within the dialog, without Via (the transport layer adds it).

        ``cseq`` defaults to a new number; pass the INVITE's number for an ACK to a 2xx.
        """
        if method == "ACK" and cseq is None:
            raise LocalProtocolError("An ACK reuses the CSeq number of its INVITE")
        number = cseq if cseq is not None else self.next_cseq()
        request_uri, routes = self.route()
        headers = Headers()
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        headers.add("From", str(self.local_uri.with_param("tag", self.id.local_tag)))
        headers.add("To", str(self.remote_uri.with_param("tag", self.id.remote_tag)))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{number} {method}")
        return Request(method, request_uri, headers, body)
