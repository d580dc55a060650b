"""Building the messages a proxy sends: stamped Vias, forwarded requests and responses, own answers.

Nothing here names the software: no Server or User-Agent header is ever added, and forwarded
messages keep the ones they arrived with untouched (they describe the peers, not us).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from gateway.sip.transport import Flow
from protocols.sip import (
    MAGIC_COOKIE,
    Headers,
    Request,
    Response,
    SipUri,
    Via,
    create_response,
    first_element,
    parse_name_addr,
)

#: What this proxy answers OPTIONS with, and lists in 405 answers.
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, INFO, MESSAGE, REFER, NOTIFY, SUBSCRIBE"
ALLOW_METHODS = frozenset(ALLOW.split(", "))

# A random prefix per process marks the branches of our own Vias (for loop detection and for
# recognising our Via on a response), without naming the product the way a fixed prefix would.
BRANCH_PREFIX = MAGIC_COOKIE + secrets.token_hex(3)


class _RandomHex:
    """Hex digits from the operating system's CSPRNG (what secrets.token_hex reads), fetched 4 KiB
    at a time: every request forwarded needs a branch and every transaction a tag, and one read per
    value cost a system call each. Digits are never handed out twice, and a forked child starts
    afresh rather than repeat its parent's."""

    _FETCH = 4096

    def __init__(self) -> None:
        self._digits = ""
        self._next = 0

    def take(self, nbytes: int) -> str:
        """``2 * nbytes`` hex digits, as random as ``secrets.token_hex(nbytes)``."""
        start = self._next
        end = start + 2 * nbytes
        if end > len(self._digits):
            self._digits = secrets.token_hex(max(self._FETCH, nbytes))
            start, end = 0, 2 * nbytes
        self._next = end
        return self._digits[start:end]

    def forget(self) -> None:
        self._digits = ""
        self._next = 0


_random_hex = _RandomHex()
os.register_at_fork(after_in_child=_random_hex.forget)


def new_branch() -> str:
    return BRANCH_PREFIX + _random_hex.take(8)


def new_tag() -> str:
    return _random_hex.take(6)


def stamp_received(request: Request, flow: Flow) -> None:
    """Record the request's source on its top Via: ``received`` and ``rport`` (RFC 3261 18.2.1,
    RFC 3581), always, so that any response can be routed back to where the request came from
    without trusting the sent-by the peer wrote."""
    request.replace_top_via(request.top_via.with_params(("received", flow.host), ("rport", str(flow.port))))


def response_flow(response: Response) -> Flow | None:
    """Where a response goes once our Via is removed: the source its request came from, as stamped
    by :func:`stamp_received` (None when the next Via carries no such stamp: not ours to route)."""
    via = response.top_via
    received, rport = via.received, via.rport
    if received is None or rport is None:
        return None
    transport = via.transport.upper()
    return Flow(transport if transport in ("TCP", "TLS") else "UDP", received, rport)


def reply(request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None) -> Response:
    """Our own answer to ``request``; a To tag for everything but 100 (RFC 3261 8.2.6.2)."""
    return create_response(request, status, reason, to_tag=None if status == 100 else to_tag)


def forwarded_request(
    request: Request,
    uri: SipUri,
    *,
    via: Via,
    record_routes: list[str],
    keep_routes: bool,
) -> Request:
    """The copy of ``request`` sent on one branch (RFC 3261 16.6): new Request-URI, Max-Forwards
    decremented (70 when absent), our Record-Route(s) and our Via on top."""
    headers = request.headers.copy()
    max_forwards = request.max_forwards
    headers.set("Max-Forwards", str(max_forwards - 1 if max_forwards is not None else 70))
    if not keep_routes:
        headers.remove("Route")
    for value in record_routes:
        headers.insert("Record-Route", value)
    outgoing = Request(request.method, uri, headers, request.body)
    outgoing.push_via(via)
    return outgoing


def forwarded_response(response: Response) -> Response:
    """``response`` without our Via, to send upstream (written as the octets received without that
    line, when they are what serialising would give: Response.without_top_via)."""
    return response.without_top_via()


def without_own_routes(headers: Headers, is_ours: Callable[[SipUri], bool]) -> None:
    """Remove the Route entries at the top that name this proxy (RFC 3261 16.4)."""
    while True:
        first = headers.get("Route")
        if first is None:
            return
        if not is_ours(parse_name_addr(first_element(first)).uri):
            return
        headers.pop_first("Route")
