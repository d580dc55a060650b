"""What the proxy keeps per transaction: server entries, client branches and their response context.

A :class:`ServerEntry` wraps a server transaction with the flow its request came on. An INVITE or
other forwarded request gets a :class:`ResponseContext` (RFC 3261 16.7) holding its
:class:`Branch` es, one client transaction per target, and deciding which responses go upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sip.transport import Flow
from protocols.sip import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Request,
    Response,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
)

ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction


class CallLog:
    """A logger bound to one Call-ID, bound when it first writes: most transactions write no line at
    all, and a structlog bind for every request costs a measurable share of the INVITE path."""

    __slots__ = ("_base", "_bound", "_call_id")

    def __init__(self, base: Any, call_id: str) -> None:
        self._base = base
        self._call_id = call_id
        self._bound: Any = None

    def __getattr__(self, name: str) -> Any:
        # Only for what the slots do not hold: the logging methods.
        bound = self._bound
        if bound is None:
            bound = self._bound = self._base.bind(call_id=self._call_id)
        return getattr(bound, name)


@dataclass(eq=False, slots=True)
class ServerEntry:
    txn: ServerTransaction
    flow: Flow
    to_tag: str
    log: Any
    context: ResponseContext | None = None
    scheduled_at: float | None = None
    #: The user the request authenticated as (None: it did not need to, a trunk or a dialog party).
    auth_user: str | None = None
    #: When an initial INVITE arrived (loop clock), until its first response other than 100 goes back.
    invite_at: float | None = None


@dataclass(eq=False, slots=True)
class Branch:
    txn: ClientTransaction
    flow: Flow
    context: ResponseContext | None
    got_provisional: bool = False
    cancel_pending: bool = False
    cancel_reason: str | None = None
    final: Response | None = None
    scheduled_at: float | None = None


@dataclass(eq=False, slots=True)
class ResponseContext:
    server: ServerEntry
    request: Request
    branches: list[Branch] = field(default_factory=list)
    best: Response | None = None
    final_sent: bool = False
    cancelled: bool = False
    inspecting: bool = False
    #: The 反诈名片 the STIR policy verified and stamped (an inspector's label does not replace it).
    verified_label: str | None = None

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    def all_final(self) -> bool:
        return all(branch.final is not None for branch in self.branches)


def better(candidate: Response, current: Response | None) -> bool:
    """RFC 3261 16.7 step 6: a 6xx beats everything, then the lowest class; among equals the first."""
    if current is None:
        return True
    if current.status >= 600:
        return False
    if candidate.status >= 600:
        return True
    return candidate.status // 100 < current.status // 100
