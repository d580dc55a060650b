"""The location service: which contacts each handset user has registered, until when, reached how.

A binding remembers the Contact URI the handset registered (it becomes the Request-URI of requests
sent to it) and the flow its REGISTER came on (where those requests are actually sent: the gateway
never resolves or trusts a host name found in a message). Everything is bounded: at most
``max_aors`` users and ``max_contacts`` bindings per user; expired bindings vanish on the next look.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from gateway.sip.transport import Flow
from protocols.sip import SipUri


@dataclass(slots=True)
class Binding:
    contact: SipUri
    flow: Flow
    expires_at: float
    call_id: str
    cseq: int
    q: float = 1.0

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


class LocationFull(Exception):
    """No room for another user or contact."""


def contact_key(uri: SipUri) -> tuple[str, str | None, str, int | None]:
    """What identifies a contact for the reverse index (a coarser match than RFC 3261 19.1.4)."""
    return uri.scheme, uri.user, uri.host.lower(), uri.port


class LocationService:
    def __init__(self, *, max_aors: int = 100_000, max_contacts: int = 10) -> None:
        self.max_aors = max_aors
        self.max_contacts = max_contacts
        self._bindings: OrderedDict[str, list[Binding]] = OrderedDict()
        # contact -> user, so that a Request-URI naming a contact is found without a scan.
        self._users_by_contact: dict[tuple[str, str | None, str, int | None], str] = {}

    def _set(self, user: str, bindings: list[Binding]) -> None:
        for binding in self._bindings.get(user, ()):
            self._users_by_contact.pop(contact_key(binding.contact), None)
        if bindings:
            self._bindings[user] = bindings
            for binding in bindings:
                self._users_by_contact[contact_key(binding.contact)] = user
        else:
            self._bindings.pop(user, None)

    def __len__(self) -> int:
        return len(self._bindings)

    def lookup(self, user: str, now: float) -> list[Binding]:
        """The live bindings of ``user``, highest q first."""
        bindings = self._bindings.get(user)
        if not bindings:
            return []
        live = [b for b in bindings if b.expires_at > now]
        if len(live) != len(bindings):
            self._set(user, live)
        return sorted(live, key=lambda b: -b.q)

    def find(self, user: str, contact: SipUri) -> Binding | None:
        for binding in self._bindings.get(user, ()):
            if binding.contact.matches(contact):
                return binding
        return None

    def by_contact(self, contact: SipUri, now: float) -> Binding | None:
        """The live binding whose contact is ``contact`` (any user): used to route a request whose
        Request-URI is a handset's contact, such as an in-dialog request of a dialog we forgot."""
        user = self._users_by_contact.get(contact_key(contact))
        if user is None:
            return None
        for binding in self.lookup(user, now):
            if binding.contact.matches(contact):
                return binding
        return None

    def update(self, user: str, binding: Binding) -> None:
        """Add or refresh (same contact URI) a binding."""
        bindings = list(self._bindings.get(user, ()))
        if not bindings and len(self._bindings) >= self.max_aors:
            raise LocationFull(f"{self.max_aors} users registered already")
        for i, existing in enumerate(bindings):
            if existing.contact.matches(binding.contact):
                bindings[i] = binding
                break
        else:
            if len(bindings) >= self.max_contacts:
                raise LocationFull(f"{self.max_contacts} contacts registered already for this user")
            bindings.append(binding)
        self._set(user, bindings)

    def remove(self, user: str, contact: SipUri) -> None:
        bindings = self._bindings.get(user)
        if not bindings:
            return
        self._set(user, [b for b in bindings if not b.contact.matches(contact)])

    def remove_all(self, user: str) -> None:
        self._set(user, [])

    def sweep(self, now: float) -> None:
        """Forget expired bindings (called from time to time, so that dead users free their room)."""
        for user in list(self._bindings):
            self.lookup(user, now)
