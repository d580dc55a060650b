"""What the proxy remembers about each dialog it record-routed, to route in-dialog requests.

RFC 3261 lets a record-routing proxy keep no dialog state: in-dialog requests carry its Route.
Not every UA plays along (sipp's built-in UAC sends ACK and BYE to the proxy with no Route at all),
and the gateway never sends to a host named in a message, so it keeps, per dialog, the flow and
the target URI of each side. The table is keyed by Call-ID and the two tags in either order, is
bounded (least recently used forgotten first) and forgets a dialog ``timeout`` seconds after its
last request, or ``linger`` seconds after its BYE.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from gateway.sip.transport import Flow
from protocols.sip import SipUri


@dataclass(slots=True)
class Leg:
    """One side of a dialog as the proxy sees it: the flow to reach it and its Contact URI."""

    tag: str
    flow: Flow
    target: SipUri | None


@dataclass(slots=True)
class DialogRoute:
    call_id: str
    caller: Leg
    callee: Leg
    expires_at: float
    confirmed: bool = False
    ended: bool = False

    def towards(self, from_tag: str | None) -> Leg:
        """The leg a request with this From tag goes to (the other side of the sender)."""
        return self.callee if from_tag == self.caller.tag else self.caller


DialogKey = tuple[str, str, str]


def dialog_key(call_id: str, tag_a: str, tag_b: str) -> DialogKey:
    return (call_id, tag_a, tag_b) if tag_a <= tag_b else (call_id, tag_b, tag_a)


class DialogTable:
    def __init__(self, *, max_dialogs: int, timeout: float, linger: float = 32.0) -> None:
        self.max_dialogs = max_dialogs
        self.timeout = timeout
        self.linger = linger
        self._dialogs: OrderedDict[DialogKey, DialogRoute] = OrderedDict()

    def __len__(self) -> int:
        return len(self._dialogs)

    def get(self, call_id: str, from_tag: str, to_tag: str, now: float) -> DialogRoute | None:
        key = dialog_key(call_id, from_tag, to_tag)
        route = self._dialogs.get(key)
        if route is None:
            return None
        if route.expires_at <= now:
            del self._dialogs[key]
            return None
        return route

    def touch(self, route: DialogRoute, now: float) -> None:
        key = dialog_key(route.call_id, route.caller.tag, route.callee.tag)
        if route.ended:
            return  # BYE seen: do not revive it
        route.expires_at = now + self.timeout
        self._dialogs.move_to_end(key)

    def record(self, route: DialogRoute) -> None:
        """Add a dialog, or update the one known: a later response may confirm an early dialog, and a
        re-INVITE and its answer refresh the targets of their senders (RFC 3261 12.2).

        ``route.caller`` is whoever sent the request, which is the callee of the dialog when the callee
        sends a re-INVITE: the legs are matched by tag, never by role, so that the dialog keeps who is
        who."""
        key = dialog_key(route.call_id, route.caller.tag, route.callee.tag)
        existing = self._dialogs.get(key)
        if existing is not None:
            for update in (route.caller, route.callee):
                leg = existing.caller if update.tag == existing.caller.tag else existing.callee
                if update.target is not None:
                    leg.target = update.target
            if route.confirmed and not existing.confirmed:
                existing.confirmed = True
                existing.expires_at = max(existing.expires_at, route.expires_at)
            return
        self._dialogs[key] = route
        while len(self._dialogs) > self.max_dialogs:
            self._dialogs.popitem(last=False)

    def ending(self, route: DialogRoute, now: float) -> None:
        """A BYE went through: keep the dialog a little (retransmissions, a challenged BYE), then forget."""
        route.ended = True
        route.expires_at = min(route.expires_at, now + self.linger)

    def sweep(self, now: float) -> None:
        """Forget dialogs past their time; the oldest-touched are at the front."""
        expired = [key for key, route in self._dialogs.items() if route.expires_at <= now]
        for key in expired:
            del self._dialogs[key]
