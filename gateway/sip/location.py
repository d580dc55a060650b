"""The location service: which contacts each handset user has registered, until when, reached how.

A binding remembers the Contact URI the handset registered (it becomes the Request-URI of requests
sent to it) and the flow its REGISTER came on (where those requests are actually sent: the gateway
never resolves or trusts a host name found in a message). Everything is bounded: at most
``max_aors`` users and ``max_contacts`` bindings per user; expired bindings vanish on the next look.

Registrations survive a restart: with a ``journal`` (:class:`StoredRegistrations`), every binding
added, refreshed or removed is written through to the store, in the order it happened, while lookups
stay in memory; a starting proxy reloads the unexpired ones before it listens. In memory a binding
expires on the event loop's clock (the registrar's and the transports' timers run on it); in the
store on the wall clock, in epoch seconds, which means the same after a restart, a reboot or on
another instance. The two are converted at the store's edge only.

A restored binding keeps its flow. Over UDP that is where the handset is reached, as before the
restart; over TCP the connection is gone with the old process, and the transports dial the address
its Contact names (:meth:`gateway.sip.transport.Transports.reachable`) until the handset connects
and registers again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.logs import get_logger
from gateway.sip.transport import Flow
from gateway.store import Registration, StateStore
from gateway.tasks import cancel_and_wait
from protocols.errors import RemoteProtocolError
from protocols.sip import SipUri, parse_uri

log = get_logger("afgw.sip.location")

#: Lapsed contacts deleted from the store per call; a sweep goes on until fewer come back.
_EXPIRY_BATCH = 1000


@dataclass(slots=True)
class Binding:
    contact: SipUri
    flow: Flow
    expires_at: float
    call_id: str
    cseq: int
    q: float = 1.0
    #: The ``+sip.instance`` the handset announced (RFC 5626), kept with the registration.
    instance: str = ""

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


class LocationFull(Exception):
    """No room for another user or contact."""


def contact_key(uri: SipUri) -> tuple[str, str | None, str, int | None]:
    """What identifies a contact for the reverse index (a coarser match than RFC 3261 19.1.4)."""
    return uri.scheme, uri.user, uri.host.lower(), uri.port


class Journal(Protocol):
    """Told of every binding the registrar adds, refreshes or removes, and of those that lapsed."""

    def updated(self, user: str, binding: Binding) -> None: ...
    def removed(self, user: str, binding: Binding) -> None: ...
    def lapsed(self, user: str, binding: Binding) -> None: ...


class LocationService:
    def __init__(self, *, max_aors: int = 100_000, max_contacts: int = 10, journal: Journal | None = None) -> None:
        self.max_aors = max_aors
        self.max_contacts = max_contacts
        self.journal = journal
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
            if self.journal is not None:
                for gone in bindings:
                    if gone.expires_at <= now:
                        self.journal.lapsed(user, gone)
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
        replaced = self._update(user, binding)
        if self.journal is not None:
            if replaced is not None and str(replaced.contact) != str(binding.contact):
                # The store keys a contact by its text: an equivalent URI written differently is
                # the same binding, and must not leave the old text behind to be restored.
                self.journal.removed(user, replaced)
            self.journal.updated(user, binding)

    def restore(self, user: str, binding: Binding) -> None:
        """Add a binding read back from the store (not written to it again)."""
        self._update(user, binding)

    def _update(self, user: str, binding: Binding) -> Binding | None:
        bindings = list(self._bindings.get(user, ()))
        if not bindings and len(self._bindings) >= self.max_aors:
            raise LocationFull(f"{self.max_aors} users registered already")
        for i, existing in enumerate(bindings):
            if existing.contact.matches(binding.contact):
                bindings[i] = binding
                self._set(user, bindings)
                return existing
        if len(bindings) >= self.max_contacts:
            raise LocationFull(f"{self.max_contacts} contacts registered already for this user")
        bindings.append(binding)
        self._set(user, bindings)
        return None

    def remove(self, user: str, contact: SipUri) -> None:
        bindings = self._bindings.get(user)
        if not bindings:
            return
        self._set(user, [b for b in bindings if not b.contact.matches(contact)])
        if self.journal is not None:
            for gone in (b for b in bindings if b.contact.matches(contact)):
                self.journal.removed(user, gone)

    def remove_all(self, user: str) -> None:
        bindings = self._bindings.get(user, [])
        self._set(user, [])
        if self.journal is not None:
            for gone in bindings:
                self.journal.removed(user, gone)

    def sweep(self, now: float) -> None:
        """Forget expired bindings (called from time to time, so that dead users free their room)."""
        for user in list(self._bindings):
            self.lookup(user, now)


def parse_flow(text: str) -> Flow:
    """The flow ``str(Flow)`` wrote: ``udp:host:port`` (an IPv6 host keeps its colons)."""
    transport, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if transport.upper() not in ("UDP", "TCP", "TLS") or not host or not port.isdigit():
        raise ValueError(f"not a flow: {text!r}")
    return Flow(transport.upper(), host, int(port))


class StoredRegistrations:
    """The location service's journal: writes each change through to the store, and reads them back.

    Writes leave the hot path at once (queued, in order) and one task applies them; when the store is
    unreachable they wait and are retried, and past ``max_pending`` the oldest are dropped and
    counted (the bindings in memory are untouched: only a restart in that window forgets them).
    ``wall_clock`` gives epoch seconds; the loop's clock is what bindings expire on in memory.
    """

    def __init__(
        self,
        store: StateStore,
        loop: asyncio.AbstractEventLoop,
        *,
        wall_clock: Callable[[], float] = time.time,
        max_pending: int = 100_000,
        retry_interval: float = 1.0,
        shared: bool = False,
        shared_cache: float = 30.0,
    ) -> None:
        self.store = store
        #: Other gateways write to the same store: a user unknown here is looked up there (``fetch``),
        #: and what is found is kept at most ``shared_cache`` seconds, so that a handset that moved or
        #: left through another gateway is not called at its old address for the rest of its lifetime.
        self.shared = shared
        self.shared_cache = shared_cache
        self.loop = loop
        self.wall_clock = wall_clock
        self.retry_interval = retry_interval
        self._pending: deque[tuple[str, Registration | str]] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        #: Changes queued and changes done with (written, or dropped) so far: ``saved`` waits on them.
        self.queued = 0
        self.done = 0
        #: Writes to the store that failed (and were retried).
        self.errors = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._expirer: asyncio.Task[int] | None = None

    def _epoch(self, loop_time: float) -> float:
        return loop_time - self.loop.time() + self.wall_clock()

    def updated(self, user: str, binding: Binding) -> None:
        registration = Registration(
            contact=str(binding.contact),
            expires_at=self._epoch(binding.expires_at),
            flow=str(binding.flow),
            instance=binding.instance,
            call_id=binding.call_id,
            cseq=binding.cseq,
            q=binding.q,
        )
        self._queue(user, registration)

    def removed(self, user: str, binding: Binding) -> None:
        self._queue(user, str(binding.contact))

    def lapsed(self, user: str, binding: Binding) -> None:
        # The store filters lapsed rows on reading; deleting them keeps it from growing with every
        # contact a handset ever had. Only when this gateway alone writes there: with others, the row
        # may have been refreshed through one of them since (and a copy read from the store lapses
        # here early on purpose, see ``shared_cache``); there the store's own expiry deletes it, by
        # the time it lapses in the store (``expire_lapsed``).
        if not self.shared:
            self._queue(user, str(binding.contact))

    def _queue(self, user: str, change: Registration | str) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("sip.registrations_unsaved", dropped=self.dropped)
            self._advance()  # the oldest goes: nobody waits for it any longer
        self._pending.append((user, change))
        self.queued += 1
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = self.loop.create_task(self._write())
        self._wake.set()

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except Exception as exc:  # the store's own errors differ by backend; none may stop the writer
                self.errors += 1
                log.warning("sip.registrations_store_unavailable", error=str(exc), pending=len(self._pending))
                await asyncio.sleep(self.retry_interval)
                self._wake.set()

    async def _drain(self) -> None:
        while self._pending:
            user, change = self._pending[0]
            if isinstance(change, Registration):
                await self.store.register(user, change)
            else:
                await self.store.unregister(user, change)
            self._pending.popleft()
            self._advance()
        self._idle.set()

    def _advance(self) -> None:
        self.done += 1
        if self._waiters and self._waiters[0][0] <= self.done:
            still = []
            for seq, waiter in self._waiters:
                if seq > self.done:
                    still.append((seq, waiter))
                elif not waiter.done():
                    waiter.set_result(None)
            self._waiters = still

    async def saved(self, seq: int, within: float) -> bool:
        """Wait until the change numbered ``seq`` (``queued`` after it was made) is in the store."""
        if self.done >= seq:
            return True
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiters.append((seq, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), within)
        except TimeoutError:
            return False
        return True

    async def flush(self, within: float = 5.0) -> bool:
        """Wait until every change queued so far is in the store; False when it did not get there."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def expire_lapsed(self) -> asyncio.Task[int]:
        """Have the store delete every contact that lapsed by now (wall clock) for all the gateways
        that share it, whoever registered it: in the background, one sweep at a time. The task
        answers how many went."""
        if self._expirer is None or self._expirer.done():
            self._expirer = self.loop.create_task(self._expire())
        return self._expirer

    async def _expire(self) -> int:
        gone = 0
        try:
            while True:
                swept = await self.store.expire_registrations(self.wall_clock(), _EXPIRY_BATCH)
                gone += swept
                if swept < _EXPIRY_BATCH:
                    return gone
        except Exception as exc:  # the next housekeeping turn tries again
            log.warning("sip.registrations_expiry_failed", error=str(exc))
            return gone

    async def close(self) -> None:
        if not await self.flush():
            log.warning("sip.registrations_unsaved", dropped=len(self._pending))
        await cancel_and_wait(self._writer)
        await cancel_and_wait(self._expirer)

    async def restore(self, location: LocationService) -> int:
        """Put the store's unexpired registrations back into ``location``; returns how many."""
        wall = self.wall_clock()
        restored = 0
        for user, registrations in (await self.store.all_registrations(wall)).items():
            try:
                restored += len(self._restore(location, user, registrations, wall))
            except LocationFull:
                log.warning("sip.registrations_not_restored", reason="location full", restored=restored)
                break
        return restored

    async def fetch(self, location: LocationService, user: str) -> list[Binding]:
        """The store's live bindings of ``user`` (written by another gateway), now kept here too."""
        wall = self.wall_clock()
        registrations = await self.store.registrations(user, wall)
        try:
            found = self._restore(location, user, registrations, wall, keep=self.shared_cache)
        except LocationFull:
            return []
        return sorted(found, key=lambda b: -b.q)

    def _restore(
        self,
        location: LocationService,
        user: str,
        registrations: list[Registration],
        wall: float,
        keep: float | None = None,
    ) -> list[Binding]:
        now = self.loop.time()
        restored: list[Binding] = []
        for r in registrations:
            lifetime = r.expires_at - wall if keep is None else min(r.expires_at - wall, keep)
            try:
                binding = Binding(
                    contact=parse_uri(r.contact),
                    flow=parse_flow(r.flow),
                    expires_at=now + lifetime,
                    call_id=r.call_id,
                    cseq=r.cseq,
                    q=r.q,
                    instance=r.instance,
                )
            except (RemoteProtocolError, ValueError) as exc:
                log.warning("sip.registration_unreadable", user=user, contact=r.contact, error=str(exc))
                continue
            location.restore(user, binding)
            restored.append(binding)
        return restored
