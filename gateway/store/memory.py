"""The in-process backend: tests, the demo, and a gateway that may forget everything on restart."""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict, deque
from collections.abc import Sequence

from gateway.store.base import (
    DEFAULT_SESSIONS_PER_OPERATOR,
    OPEN,
    AuditRecord,
    CampaignCopy,
    CampaignPolicy,
    CampaignSeen,
    Case,
    Cluster,
    ConsoleSession,
    Registration,
    RiskScore,
    UnknownCase,
    attempted_case,
    best_cluster,
    campaign_seen,
    canonical_message_id,
    claimed_case,
    desk_case,
    lease_free,
    message_id_keys,
    moved_case,
    new_case,
    new_cluster,
    noted_case,
    sighted_cluster,
    updated_case,
)


class FailureWindows:
    """Failure times by key, within a sliding window, in this process: at most ``keys`` keys (the least
    recently failing go first) and ``keep`` times per key."""

    def __init__(self, keys: int = 10_000) -> None:
        self.keys = keys
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    async def failures(self, key: str, now: float, window: float) -> int:
        times = self._times.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - window:
            times.popleft()
        return len(times)

    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int:
        times = self._times.get(key)
        if times is None or times.maxlen != keep:
            times = self._times[key] = deque(times or (), maxlen=keep)
        times.append(now)
        self._times.move_to_end(key)
        while len(self._times) > self.keys:
            self._times.popitem(last=False)
        return await self.failures(key, now, window)

    async def clear_failures(self, key: str) -> None:
        self._times.pop(key, None)


class MemorySessions:
    """Console sessions in this process, ending first at the front (every login lasts as long)."""

    def __init__(self) -> None:
        self._by_key: OrderedDict[str, ConsoleSession] = OrderedDict()

    async def keep_console_session(
        self, session: ConsoleSession, now: float, limit: int, per_operator: int = DEFAULT_SESSIONS_PER_OPERATOR
    ) -> None:
        by_key = self._by_key
        while by_key and next(iter(by_key.values())).expires_at <= now:
            by_key.popitem(last=False)
        by_key[session.key] = session
        mine = [key for key, kept in by_key.items() if kept.operator == session.operator]
        for key in mine[: max(0, len(mine) - max(1, per_operator))]:
            del by_key[key]
        while len(by_key) > limit:
            by_key.popitem(last=False)

    async def console_session(self, key: str, now: float, idle: float, *, touch: bool = True) -> ConsoleSession | None:
        session = self._by_key.get(key)
        if session is None:
            return None
        if not session.live(now, idle):
            del self._by_key[key]
            return None
        if touch and now > session.seen_at:
            session = self._by_key[key] = dataclasses.replace(session, seen_at=now)
        return session

    async def drop_console_session(self, key: str) -> None:
        self._by_key.pop(key, None)


class MemoryReferences:
    """Instruction references held until a time, in memory: at most ``capacity`` (the oldest go
    first when full, lapsed ones as they are met)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    async def claim_reference(self, reference: str, now: float, until: float) -> bool:
        held = self._until.get(reference)
        if held is not None and held > now:
            return False
        await self.hold_reference(reference, now, until)
        return True

    async def hold_reference(self, reference: str, now: float, until: float) -> None:
        self._until[reference] = until
        self._until.move_to_end(reference)
        # Lapsed ones first, a few per call, so the map does not wait until full to shed them.
        for _ in range(2):
            oldest, held = next(iter(self._until.items()))
            if held > now or oldest == reference:
                break
            del self._until[oldest]
        while len(self._until) > self.capacity:
            self._until.popitem(last=False)

    async def drop_reference(self, reference: str) -> None:
        self._until.pop(reference, None)


class MemoryStore:
    """A bounded in-process store: the oldest ids go first when full, expired ones on lookup."""

    def __init__(
        self,
        *,
        ttl: float = 72 * 3600.0,
        max_entries: int = 1_000_000,
        max_audit: int = 100_000,
        max_references: int = 1_000_000,
    ):
        self.ttl = ttl
        self.max_entries = max_entries
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.audit_log: list[AuditRecord] = []
        self._max_audit = max_audit
        self._risk: dict[str, RiskScore] = {}
        self._registrations: dict[str, dict[str, Registration]] = {}
        self._cases: dict[str, Case] = {}
        self._open: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._references = MemoryReferences(max_references)
        self._failures = FailureWindows()
        self._sessions = MemorySessions()
        # Campaign clusters, least recently seen first, and the band index that finds them.
        self._clusters: OrderedDict[str, Cluster] = OrderedDict()
        self._bands: dict[str, str] = {}
        self._cluster_ids = itertools.count(1)

    def remember_message(self, message_id: str, system_id: str, now: float) -> None:
        # Stored once, in canonical form; the variants are tried at lookup, where receipts are rarer
        # than submissions.
        self.remember_canonical(canonical_message_id(message_id), system_id, now)

    def remember_canonical(self, key: str, system_id: str, now: float) -> None:
        """``remember_message`` of an id already in canonical form (``canonical_message_id``)."""
        owners = self._owners
        if key in owners:
            owners.move_to_end(key)
        owners[key] = (system_id, now)
        if len(owners) > self.max_entries:
            owners.popitem(last=False)

    def owner_of(self, message_id: str, now: float) -> str | None:
        for key in message_id_keys(message_id):
            hit = self._owners.get(key)
            if hit is not None and now - hit[1] <= self.ttl:
                return hit[0]
        return None

    def audit(self, record: AuditRecord) -> None:
        self.audit_log.append(record)
        if len(self.audit_log) > self._max_audit:
            del self.audit_log[: len(self.audit_log) - self._max_audit]

    async def route_owner(self, message_id: str, now: float) -> str | None:
        return self.owner_of(message_id, now)

    async def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        return self.audit_log[-limit:]

    async def get_risk(self, subscriber: str) -> RiskScore | None:
        return self._risk.get(subscriber)

    async def set_risk(self, subscriber: str, value: float, now: float) -> None:
        self._risk[subscriber] = RiskScore(value, now)

    async def get_risks(self, subscribers: Sequence[str]) -> list[RiskScore | None]:
        return [self._risk.get(subscriber) for subscriber in subscribers]

    async def set_risks(self, scores: Sequence[tuple[str, float, float]]) -> None:
        for subscriber, value, now in scores:
            self._risk[subscriber] = RiskScore(value, now)

    async def register(self, aor: str, registration: Registration) -> None:
        self._registrations.setdefault(aor, {})[registration.contact] = registration

    async def unregister(self, aor: str, contact: str) -> None:
        contacts = self._registrations.get(aor, {})
        contacts.pop(contact, None)
        if not contacts:
            self._registrations.pop(aor, None)

    async def registrations(self, aor: str, now: float) -> list[Registration]:
        live = [r for r in self._registrations.get(aor, {}).values() if r.expires_at > now]
        return sorted(live, key=lambda r: (-r.q, r.contact))

    async def all_registrations(self, now: float) -> dict[str, list[Registration]]:
        found = {aor: await self.registrations(aor, now) for aor in list(self._registrations)}
        return {aor: regs for aor, regs in found.items() if regs}

    async def expire_registrations(self, now: float, limit: int = 1000) -> int:
        lapsed = sorted(
            (r.expires_at, aor, r.contact)
            for aor, contacts in self._registrations.items()
            for r in contacts.values()
            if r.expires_at <= now
        )[:limit]
        for _, aor, contact in lapsed:
            await self.unregister(aor, contact)
        return len(lapsed)

    async def claim_reference(self, reference: str, now: float, until: float) -> bool:
        return await self._references.claim_reference(reference, now, until)

    async def hold_reference(self, reference: str, now: float, until: float) -> None:
        await self._references.hold_reference(reference, now, until)

    async def drop_reference(self, reference: str) -> None:
        await self._references.drop_reference(reference)

    async def failures(self, key: str, now: float, window: float) -> int:
        return await self._failures.failures(key, now, window)

    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int:
        return await self._failures.count_failure(key, now, window, keep)

    async def clear_failures(self, key: str) -> None:
        await self._failures.clear_failures(key)

    async def keep_console_session(
        self, session: ConsoleSession, now: float, limit: int, per_operator: int = DEFAULT_SESSIONS_PER_OPERATOR
    ) -> None:
        await self._sessions.keep_console_session(session, now, limit, per_operator)

    async def console_session(self, key: str, now: float, idle: float, *, touch: bool = True) -> ConsoleSession | None:
        return await self._sessions.console_session(key, now, idle, touch=touch)

    async def drop_console_session(self, key: str) -> None:
        await self._sessions.drop_console_session(key)

    async def open_or_update_case(
        self,
        subscriber: str,
        tier: str,
        fraud_type: str,
        now: float,
        due_at: float,
        family: tuple[str, ...] = (),
    ) -> tuple[Case, bool]:
        case_id = self._open.get(subscriber)
        if case_id is not None:
            case = self._cases[case_id] = updated_case(self._cases[case_id], tier, fraud_type, now, family)
            return case, False
        case = new_case(str(next(self._ids)), subscriber, tier, fraud_type, now, due_at, family)
        self._cases[case.id] = case
        self._open[subscriber] = case.id
        return case, True

    async def get_case(self, case_id: str) -> Case:
        try:
            return self._cases[case_id]
        except KeyError:
            raise UnknownCase(case_id) from None

    async def open_case_of(self, subscriber: str) -> Case | None:
        case_id = self._open.get(subscriber)
        return None if case_id is None else self._cases[case_id]

    async def open_cases(self) -> list[Case]:
        return [self._cases[i] for i in self._open.values()]

    async def all_cases(self) -> list[Case]:
        return list(self._cases.values())

    async def due_cases(self, now: float, limit: int = 100) -> list[Case]:
        due = [c for c in (self._cases[i] for i in self._open.values()) if c.due_at is not None and c.due_at <= now]
        due.sort(key=lambda c: (c.due_at or 0.0, int(c.id)))
        return due[:limit]

    async def next_due(self) -> float | None:
        times = [
            max(c.due_at, c.lease_until) if c.lease_holder else c.due_at
            for c in (self._cases[i] for i in self._open.values())
            if c.due_at is not None
        ]
        return min(times, default=None)

    async def claim_due(self, instance: str, now: float, lease_until: float, limit: int = 100) -> list[Case]:
        got: list[Case] = []
        for case in await self.due_cases(now, len(self._open)):
            if len(got) >= limit:
                break
            if lease_free(case, instance, now):
                got.append(claimed_case(case, instance, now, lease_until))
                self._cases[case.id] = got[-1]
        return got

    async def record_attempt(
        self, case_id: str, instance: str, now: float, next_due: float | None, detail: str = ""
    ) -> Case:
        case = self._cases[case_id] = attempted_case(await self.get_case(case_id), instance, now, next_due, detail)
        return case

    async def note(
        self,
        case_id: str,
        event: str,
        now: float,
        detail: str = "",
        *,
        instance: str = "",
        once: bool = False,
        late: bool = False,
    ) -> Case | None:
        case = noted_case(await self.get_case(case_id), event, now, detail, instance, once, late)
        if case is not None:
            self._cases[case_id] = case
        return case

    async def transition(self, case_id: str, state: str, now: float, instance: str = "", detail: str = "") -> Case:
        case = self._cases[case_id] = moved_case(await self.get_case(case_id), state, now, instance, detail)
        if self._open.get(case.subscriber) == case.id and case.state != OPEN:
            del self._open[case.subscriber]
        return case

    async def desk(self, case_id: str, action: str, now: float, operator: str, detail: str = "") -> Case:
        case = self._cases[case_id] = desk_case(await self.get_case(case_id), action, now, operator, detail)
        if self._open.get(case.subscriber) == case.id and case.state != OPEN:
            del self._open[case.subscriber]
        return case

    async def release(self, case_id: str, instance: str) -> None:
        case = await self.get_case(case_id)
        if case.lease_holder == instance:
            self._cases[case_id] = dataclasses.replace(case, lease_holder="", lease_until=0.0)

    async def campaign_sighting(self, copy: CampaignCopy, policy: CampaignPolicy) -> CampaignSeen:
        clusters = self._clusters
        # Least recently seen first: the idle ones are at the front.
        while clusters:
            oldest = next(iter(clusters.values()))
            if copy.now - oldest.last_at <= policy.window:
                break
            self._forget_cluster(oldest)
        candidates = {cid for band in copy.bands if (cid := self._bands.get(band)) is not None}
        found = best_cluster(copy, [clusters[cid] for cid in candidates if cid in clusters], policy)
        if found is None:
            found = new_cluster(str(next(self._cluster_ids)), copy)
            for band in copy.bands:
                self._bands[band] = found.id
            while len(clusters) >= policy.max_clusters:
                self._forget_cluster(next(iter(clusters.values())))
        cluster, opened = sighted_cluster(found, copy, policy)
        clusters[cluster.id] = cluster
        clusters.move_to_end(cluster.id)
        return campaign_seen(cluster, opened)

    def _forget_cluster(self, cluster: Cluster) -> None:
        del self._clusters[cluster.id]
        for band in cluster.bands:
            if self._bands.get(band) == cluster.id:
                del self._bands[band]

    async def campaign_clusters(self) -> int:
        return len(self._clusters)

    async def close(self) -> None:
        pass
