"""The registrar (RFC 3261 10.3): REGISTER adds, refreshes, lists and removes a user's contacts.

The proxy authenticates the request first (when digest authentication is on) and hands over the
authenticated user name; the registrar checks that it is the user being registered. Every contact of
a REGISTER is checked before any is applied, so a request is applied whole or not at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import SipConfig
from gateway.sip.location import Binding, LocationFull, LocationService
from gateway.sip.transport import Flow
from protocols.errors import RemoteProtocolError
from protocols.sip import Request, Response, SipUri, create_response, unsupported_extensions


@dataclass(frozen=True, slots=True)
class _Change:
    contact: SipUri
    expires: int
    q: float
    instance: str = ""


class Registrar:
    def __init__(
        self,
        config: SipConfig,
        location: LocationService,
        is_ours: Callable[[str], bool],
        *,
        keep_flow: Callable[[Flow, float], None] | None = None,
    ) -> None:
        self.config = config
        self.registrar = config.registrar
        self.location = location
        self.is_ours = is_ours
        #: Told, after each REGISTER on a connection, until when a binding needs that connection.
        self.keep_flow = keep_flow
        self.users = frozenset(u.user for u in config.registrar.users)

    def aor_user(self, request: Request) -> str | None:
        """The user whose bindings the REGISTER is about (the To URI's user in our domain)."""
        uri = request.to_addr.uri
        if not uri.is_sip or not uri.user or not self.is_ours(uri.host):
            return None
        if self.users and uri.user not in self.users:
            return None
        return uri.user

    def handle(self, request: Request, flow: Flow, now: float, auth_user: str | None, to_tag: str) -> Response:
        try:
            return self._handle(request, flow, now, auth_user, to_tag)
        except RemoteProtocolError as exc:
            return create_response(request, exc.answer or 400, str(exc), to_tag=to_tag)

    def _handle(self, request: Request, flow: Flow, now: float, auth_user: str | None, to_tag: str) -> Response:
        unsupported = unsupported_extensions(request, (), header="Require")
        if unsupported:
            response = create_response(request, 420, to_tag=to_tag)
            response.headers.add("Unsupported", ", ".join(unsupported))
            return response
        user = self.aor_user(request)
        if user is None:
            return create_response(request, 404, to_tag=to_tag)
        if self.registrar.auth and auth_user != user:
            return create_response(request, 403, "Not Your Address", to_tag=to_tag)
        if request.contact_is_wildcard:
            expires_header = request.headers.get("Expires")
            if expires_header is None or expires_header.strip() != "0" or request.headers.count("Contact") != 1:
                return create_response(request, 400, "Wildcard Contact Needs Expires 0", to_tag=to_tag)
            before = {b.flow for b in self.location.lookup(user, now)}
            self.location.remove_all(user)
            self._release(user, before, now)
            return self._ok(request, user, now, to_tag)
        changes = self._changes(request)
        for change in changes:
            if 0 < change.expires < self.registrar.min_expires:
                response = create_response(request, 423, to_tag=to_tag)
                response.headers.add("Min-Expires", str(self.registrar.min_expires))
                return response
        call_id, cseq = request.call_id, request.cseq.number
        for change in changes:
            existing = self.location.find(user, change.contact)
            if existing is not None and existing.call_id == call_id and existing.cseq >= cseq:
                return create_response(request, 500, "Out Of Order", to_tag=to_tag)
        before = {b.flow for b in self.location.lookup(user, now)}
        try:
            for change in changes:
                if change.expires == 0:
                    self.location.remove(user, change.contact)
                    continue
                expires = min(change.expires, self.registrar.max_expires)
                target = contact_flow(change.contact, flow)
                binding = Binding(change.contact, target, now + expires, call_id, cseq, change.q, change.instance)
                self.location.update(user, binding)
        except LocationFull as exc:
            response = create_response(request, 503, str(exc), to_tag=to_tag)
            response.headers.add("Retry-After", "60")
            return response
        self._release(user, before, now)
        response = self._ok(request, user, now, to_tag)
        if flow.reliable:
            # The handset can only be reached on this connection (behind a NAT, from an ephemeral
            # port): it must outlive the idle timeout for as long as a binding needs it.
            until = max((b.expires_at for b in self.location.lookup(user, now) if b.flow == flow), default=now)
            if self.keep_flow is not None:
                self.keep_flow(flow, until)
            if until > now and _asks_for_outbound(request):
                # RFC 5626 6: the flow is the route to the handset; it keeps it alive with CRLF pings
                # (answered by the transport) at about this interval, well inside our idle timeout.
                response.headers.add("Require", "outbound")
                response.headers.add("Flow-Timer", str(self.flow_timer))
        return response

    def _release(self, user: str, flows: set[Flow], now: float) -> None:
        """Connections no binding of ``user`` needs any more (moved to a new connection, removed) go
        back under the idle timeout: otherwise re-registering from new connections would pin old ones."""
        if self.keep_flow is None:
            return
        needed = {b.flow for b in self.location.lookup(user, now)}
        for old in flows - needed:
            if old.reliable:
                self.keep_flow(old, now)

    @property
    def flow_timer(self) -> int:
        return max(10, min(120, int(self.config.tcp_idle_timeout // 2)))

    def _changes(self, request: Request) -> list[_Change]:
        default = self.registrar.default_expires
        header = request.headers.get("Expires")
        if header is not None:
            default = _seconds(header)
        changes: list[_Change] = []
        for contact in request.contacts:
            uri = contact.uri
            if not uri.is_sip:
                raise RemoteProtocolError("Contact must be a sip or sips URI", answer=400)
            if uri.headers:
                raise RemoteProtocolError("Contact URI headers are not stored", answer=400)
            param = contact.param("expires")
            expires = _seconds(param) if param is not None else default
            q = 1.0
            if (q_text := contact.param("q")) is not None:
                try:
                    q = float(q_text)
                except ValueError:
                    raise RemoteProtocolError("Malformed q", answer=400) from None
                if not 0.0 <= q <= 1.0:
                    raise RemoteProtocolError("q out of range", answer=400)
            changes.append(_Change(uri, expires, q, contact.param("+sip.instance") or ""))
        return changes

    def _ok(self, request: Request, user: str, now: float, to_tag: str) -> Response:
        response = create_response(request, 200, to_tag=to_tag)
        for binding in self.location.lookup(user, now):
            response.headers.add("Contact", f"<{binding.contact}>;expires={binding.expires_in(now)}")
        return response


def _asks_for_outbound(request: Request) -> bool:
    """RFC 5626 5.2: a UA asks for outbound with ``+sip.instance`` and ``reg-id`` on its Contact
    (and "outbound" in Supported)."""
    supported = {item.strip().lower() for item in request.headers.get_list("Supported")}
    if "outbound" not in supported:
        return False
    return any(c.has_param("reg-id") and c.has_param("+sip.instance") for c in request.contacts)


def contact_flow(contact: SipUri, source: Flow) -> Flow:
    """Where requests for a registered contact are sent.

    Over TCP or TLS: the connection the REGISTER came on (handsets keep it open for that). Over UDP: the
    contact's own address when it is an IP literal (a contact registered on another's behalf, such
    as a test rig or a PBX registering its extensions, is reached where it says), except when it is a
    private address and the REGISTER came from a public one (the handset is behind a NAT; the
    source is the mapping that works). A host name is never resolved: the source is used.
    """
    if source.reliable:
        return source
    try:
        address = ipaddress.ip_address(contact.host_unbracketed)
        origin = ipaddress.ip_address(source.host)
    except ValueError:
        return source
    if address.is_private and not origin.is_private:
        return source
    return Flow("UDP", str(address), contact.port or 5060)


def _seconds(text: str) -> int:
    text = text.strip(" \t")
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise RemoteProtocolError("Malformed expires value", answer=400)
    return min(int(text), 2**32 - 1)
