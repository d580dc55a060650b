"""What the gateway keeps beyond one PDU or one call, and the interface every backend implements.

Two faces: ``Store`` is the synchronous part the proxies call on their hot path (the receipt-routing
map and the audit trail); ``StateStore`` is the asynchronous whole (risk scores, registrations,
dissuasion cases with their due-time index and leases) that every backend implements identically,
checked by one conformance suite. Times are the caller's clock in epoch seconds: no backend reads
a clock, so tests and the simulator drive them.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from rules.campaign import hex_similarity

_HEX = re.compile(r"[0-9a-f]+")
_DEC = re.compile(r"[0-9]+")

#: Case states; ``open`` is the only one a subscriber has at most one of, and the only one that is due.
OPEN, HANDLED, ESCALATED, CLOSED = "open", "handled", "escalated", "closed"
CASE_STATES = frozenset({OPEN, HANDLED, ESCALATED, CLOSED})
#: Risk tiers, lowest first; a tier only ever rises while a case is open.
TIERS = ("low", "medium", "high")


def canonical_message_id(message_id: str) -> str:
    """The form under which an id is stored: no NULs or spaces, lower case, no leading zeros."""
    return message_id.strip().strip("\x00").lower().lstrip("0") or "0"


def message_id_keys(message_id: str) -> tuple[str, ...]:
    """The stored forms a receipt's id may stand for.

    SMSCs answer submit_sm with an id in one form and quote it in receipts in another: hexadecimal
    versus decimal, upper versus lower case, with or without leading zeros. The exact form is tried
    first, then the id read as decimal and written in hexadecimal, then the reverse.
    """
    mid = canonical_message_id(message_id)
    keys = [mid]
    if _DEC.fullmatch(mid):
        keys.append(format(int(mid), "x"))
    if _HEX.fullmatch(mid) and len(mid) <= 32:
        keys.append(str(int(mid, 16)))
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    kind: str  # e.g. "sms.blocked"
    at: float
    fields: dict[str, Any] = field(default_factory=dict)


#: Console sessions one operator may hold at once (browsers, machines): a further login ends their oldest.
DEFAULT_SESSIONS_PER_OPERATOR = 10


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A console login as the store keeps it: under the hash of its cookie (``key``), never the cookie
    itself, so that whoever reads the store finds no cookie that logs in."""

    key: str
    operator: str
    role: str
    csrf: str
    #: What the account was at login (see gateway.web.console.auth): a changed account no longer matches.
    account: str
    created_at: float
    seen_at: float
    #: The absolute end; the idle end is ``seen_at`` plus the caller's idle limit.
    expires_at: float

    def live(self, now: float, idle: float) -> bool:
        return now < self.expires_at and self.seen_at > now - idle


@dataclass(frozen=True, slots=True)
class RiskScore:
    """A subscriber's score as last written; the reader decays it from ``updated_at`` to its now."""

    value: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Registration:
    """One contact of an address of record: the handset's Contact URI, when it lapses, the
    sip.instance it announced (RFC 5626) and the flow (``udp:host:port``) requests reach it by."""

    contact: str
    expires_at: float
    flow: str
    instance: str = ""
    call_id: str = ""
    cseq: int = 0
    q: float = 1.0


class Transition(NamedTuple):
    """One step on a case's timeline. A named tuple rather than a dataclass: a case's document holds
    it as the JSON array it already is, and reading one back builds each at C speed (every attempt
    reads its case's whole timeline)."""

    event: str  # opened, updated, claimed, attempt, handled, escalated, closed ...
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    """A dissuasion case: one subscriber, the highest tier seen, every fraud type that led to it."""

    id: str
    subscriber: str
    state: str
    tier: str
    fraud_types: tuple[str, ...]
    attempts: int
    opened_at: float
    due_at: float | None
    transitions: tuple[Transition, ...]
    lease_holder: str = ""
    lease_until: float = 0.0
    #: Family contacts (亲情号) to warn as well, in the order the triggers named them.
    family: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriber": self.subscriber,
            "state": self.state,
            "tier": self.tier,
            "fraud_types": list(self.fraud_types),
            "attempts": self.attempts,
            "opened_at": self.opened_at,
            "due_at": self.due_at,
            "transitions": [[t.event, t.at, t.detail] for t in self.transitions],
            "lease_holder": self.lease_holder,
            "lease_until": self.lease_until,
            "family": list(self.family),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Case:
        # Lua's cjson writes an empty list as {}, and JSON null may come back as a sentinel.
        fraud_types = doc.get("fraud_types") or []
        transitions = doc.get("transitions") or []
        due = doc.get("due_at")
        family = doc.get("family") or []
        return cls(
            id=str(doc["id"]),
            subscriber=str(doc["subscriber"]),
            state=str(doc["state"]),
            tier=str(doc["tier"]),
            fraud_types=tuple(str(t) for t in (fraud_types if isinstance(fraud_types, list) else [])),
            attempts=int(doc["attempts"]),
            opened_at=float(doc["opened_at"]),
            due_at=float(due) if isinstance(due, int | float | str) else None,
            transitions=tuple(
                Transition(str(t[0]), float(t[1]), str(t[2]) if len(t) > 2 else "")
                for t in (transitions if isinstance(transitions, list) else [])
            ),
            lease_holder=str(doc.get("lease_holder") or ""),
            lease_until=float(doc.get("lease_until") or 0.0),
            family=tuple(str(f) for f in (family if isinstance(family, list) else [])),
        )


class UnknownCase(LookupError):
    """No case has this id."""


class LeaseLost(Exception):
    """The case is leased to another instance (or the lease lapsed and was taken): do not drive it."""


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise ValueError(f"unknown risk tier {tier!r}; one of {', '.join(TIERS)}")
    return tier


class Store(Protocol):
    """The synchronous part, called on the proxies' hot path."""

    def remember_message(self, message_id: str, system_id: str, now: float) -> None: ...
    def owner_of(self, message_id: str, now: float) -> str | None: ...
    def audit(self, record: AuditRecord) -> None: ...


class StateStore(Store, Protocol):
    """Everything durable, behind one interface for the memory, SQLite and Redis backends."""

    async def route_owner(self, message_id: str, now: float) -> str | None:
        """Like ``owner_of``, but consulting the shared store (another instance's submissions too)."""

    async def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        """The most recent audit records, newest last."""

    async def get_risk(self, subscriber: str) -> RiskScore | None: ...
    async def set_risk(self, subscriber: str, value: float, now: float) -> None: ...

    async def register(self, aor: str, registration: Registration) -> None:
        """Add or refresh a contact (same contact URI: replaced)."""

    async def unregister(self, aor: str, contact: str) -> None: ...
    async def registrations(self, aor: str, now: float) -> list[Registration]:
        """The unexpired contacts of ``aor``, best ``q`` first."""

    async def all_registrations(self, now: float) -> dict[str, list[Registration]]:
        """Every unexpired contact, by address of record: what a restarted registrar reloads."""

    async def expire_registrations(self, now: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` contacts that lapsed at ``now`` or before, earliest first, and return
        how many went. Atomic against the other instances on the store: a contact refreshed by one of
        them in the meantime stays, and what is deleted is gone for all of them."""

    async def claim_reference(self, reference: str, now: float, until: float) -> bool:
        """Atomically: hold ``reference`` until ``until`` and answer True when it is new (unknown, or
        its hold lapsed at ``now`` or before); False, changing nothing, when it is held: a repeat."""

    async def hold_reference(self, reference: str, now: float, until: float) -> None:
        """Hold ``reference`` until ``until``, whatever held it before (how long a repeat is refused)."""

    async def drop_reference(self, reference: str) -> None:
        """Forget ``reference``: it is new again (its instruction could not be acted on)."""

    async def failures(self, key: str, now: float, window: float) -> int:
        """How many failures (e.g. of a login) ``key`` has within ``window`` seconds before ``now``.
        Redis counts them for every instance on it; the memory and SQLite backends in this process."""

    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int:
        """Count one failure of ``key`` at ``now`` (at most ``keep`` are kept) and answer how many it has
        within ``window``, atomically: instances counting at the same moment each see the other's."""

    async def clear_failures(self, key: str) -> None:
        """Forget ``key``'s failures (it succeeded)."""

    async def keep_console_session(
        self, session: ConsoleSession, now: float, limit: int, per_operator: int = DEFAULT_SESSIONS_PER_OPERATOR
    ) -> None:
        """Keep a console login. Beyond ``per_operator`` sessions of its operator, that operator's ending
        first go (so that one account logging in again and again pushes out only its own); beyond ``limit``
        sessions in all the ones ending first go (lapsed ones first). Redis keeps them for every instance on
        it; the memory and SQLite backends in this process."""

    async def console_session(self, key: str, now: float, idle: float, *, touch: bool = True) -> ConsoleSession | None:
        """The session under ``key`` if live at ``now`` (before its end, seen within ``idle`` seconds),
        atomically marked seen at ``now`` when ``touch``; None, and a lapsed one deleted, otherwise."""

    async def drop_console_session(self, key: str) -> None:
        """End the session under ``key`` (a logout, an account changed or removed)."""

    async def open_or_update_case(
        self,
        subscriber: str,
        tier: str,
        fraud_type: str,
        now: float,
        due_at: float,
        family: tuple[str, ...] = (),
    ) -> tuple[Case, bool]:
        """Atomically: open a case due at ``due_at``, or update the subscriber's open one (tier raised,
        fraud type and family contacts added, schedule untouched). True when a case was opened."""

    async def get_case(self, case_id: str) -> Case:
        """The case; raises UnknownCase."""

    async def open_case_of(self, subscriber: str) -> Case | None: ...
    async def open_cases(self) -> list[Case]: ...
    async def all_cases(self) -> list[Case]:
        """Every case, in any state, oldest first: what an operator lists and counts."""

    async def due_cases(self, now: float, limit: int = 100) -> list[Case]:
        """Open cases due at ``now`` or earlier, earliest first (leases not considered)."""

    async def next_due(self) -> float | None:
        """When the next open case may be claimed: the earliest due time, where a case under lease counts
        from when its lease lapses (whoever holds it). None when no open case is scheduled. What the
        scheduler sleeps until; it looks again at its poll interval for cases opened elsewhere."""

    async def claim_due(self, instance: str, now: float, lease_until: float, limit: int = 100) -> list[Case]:
        """Lease up to ``limit`` due cases to ``instance`` until ``lease_until``. A case leased to another
        instance is skipped until its lease lapses; each claimed case records a ``claimed`` transition."""

    async def record_attempt(
        self, case_id: str, instance: str, now: float, next_due: float | None, detail: str = ""
    ) -> Case:
        """Count an attempt, schedule the next (None: no more), and release the lease. LeaseLost when
        ``instance`` does not hold the lease. The ``attempt`` transition's detail is the attempt's
        number, then ``detail`` (what the attempt did) after a space."""

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
        """Add the transition ``event`` to an open case, its state and schedule untouched: a step taken
        within an attempt, or a mark. With ``instance``, LeaseLost unless it holds the lease. With
        ``once``, None (nothing changed) when the case has an ``event`` transition already, so that
        of several instances noting the same thing at once exactly one gets the case back.
        ValueError when the case is no longer open, unless ``late`` (see :func:`noted_case`)."""

    async def transition(self, case_id: str, state: str, now: float, instance: str = "", detail: str = "") -> Case:
        """Move an open case to ``state`` (handled, escalated, closed): no longer due, lease released.
        With ``instance``, LeaseLost when another instance holds a live lease."""

    async def desk(self, case_id: str, action: str, now: float, operator: str, detail: str = "") -> Case:
        """A person's step on a case that is open or escalated (see :func:`desk_case`): ``desk_claim``
        (ValueError when another operator holds it), ``desk_note`` or ``closed`` (no longer due, lease
        released). ValueError when the case is handled or closed already; UnknownCase when absent."""

    async def release(self, case_id: str, instance: str) -> None: ...

    async def campaign_sighting(self, copy: CampaignCopy, policy: CampaignPolicy) -> CampaignSeen:
        """Atomically: find the live cluster whose sketch ``copy`` resembles (through its bands), or start
        one; count the copy's recipients; open the campaign when the policy says so. At most
        ``policy.max_clusters`` clusters are kept, the least recently seen evicted first."""

    async def campaign_clusters(self) -> int:
        """How many clusters the store holds now (what the bound applies to)."""

    async def close(self) -> None: ...


# The case transitions as pure functions, shared by the backends that hold cases as Python objects
# (memory, SQLite); the Redis backend does the same in Lua, checked by the same conformance suite.


def new_case(
    case_id: str, subscriber: str, tier: str, fraud_type: str, now: float, due_at: float, family: tuple[str, ...] = ()
) -> Case:
    return Case(
        id=case_id,
        subscriber=subscriber,
        state=OPEN,
        tier=check_tier(tier),
        fraud_types=(fraud_type,) if fraud_type else (),
        attempts=0,
        opened_at=now,
        due_at=due_at,
        transitions=(Transition("opened", now, f"{tier} {fraud_type}".strip()),),
        family=tuple(dict.fromkeys(family)),
    )


def updated_case(case: Case, tier: str, fraud_type: str, now: float, family: tuple[str, ...] = ()) -> Case:
    check_tier(tier)
    new_tier = tier if tier_rank(tier) > tier_rank(case.tier) else case.tier
    types = case.fraud_types if not fraud_type or fraud_type in case.fraud_types else (*case.fraud_types, fraud_type)
    return _replace(
        case,
        tier=new_tier,
        fraud_types=types,
        family=tuple(dict.fromkeys((*case.family, *family))),
        transitions=(*case.transitions, Transition("updated", now, tier)),
    )


def lease_free(case: Case, instance: str, now: float) -> bool:
    return not case.lease_holder or case.lease_holder == instance or case.lease_until <= now


# The three steps of every attempt (claimed, noted, attempted) build their case field by field:
# dataclasses.replace costs twice as much, and each attempt takes all three.


def claimed_case(case: Case, instance: str, now: float, until: float) -> Case:
    c = case
    steps = (*c.transitions, Transition("claimed", now, instance))
    return Case(
        c.id,
        c.subscriber,
        c.state,
        c.tier,
        c.fraud_types,
        c.attempts,
        c.opened_at,
        c.due_at,
        steps,
        instance,
        until,
        c.family,
    )


def attempted_case(case: Case, instance: str, now: float, next_due: float | None, detail: str = "") -> Case:
    if case.state != OPEN or not lease_free(case, instance, now) or case.lease_holder != instance:
        raise LeaseLost(case.id)
    c = case
    steps = (*c.transitions, Transition("attempt", now, f"{c.attempts + 1} {detail}".rstrip()))
    return Case(
        c.id,
        c.subscriber,
        c.state,
        c.tier,
        c.fraud_types,
        c.attempts + 1,
        c.opened_at,
        next_due,
        steps,
        "",
        0.0,
        c.family,
    )


def noted_case(
    case: Case, event: str, now: float, detail: str, instance: str, once: bool, late: bool = False
) -> Case | None:
    """The case with ``event`` added. ``late``: a fact that happened to the case whatever its state (a
    flash's receipt or acknowledgement, a call ringing or ending after the case was escalated or closed),
    recorded on a case in any state without changing its state, schedule or lease. A step under a lease
    (``instance``) is never late: once the case left ``open`` no instance holds it."""
    if case.state != OPEN and (not late or instance):
        raise ValueError(f"case {case.id} is already {case.state}")
    if instance and case.lease_holder != instance:
        raise LeaseLost(case.id)
    if once and any(t.event == event for t in case.transitions):
        return None
    c = case
    steps = (*c.transitions, Transition(event, now, detail))
    return Case(
        c.id,
        c.subscriber,
        c.state,
        c.tier,
        c.fraud_types,
        c.attempts,
        c.opened_at,
        c.due_at,
        steps,
        c.lease_holder,
        c.lease_until,
        c.family,
    )


#: What a person may do on a case through :meth:`StateStore.desk`.
DESK_CLAIM, DESK_NOTE = "desk_claim", "desk_note"
DESK_ACTIONS = frozenset({DESK_CLAIM, DESK_NOTE, CLOSED})


def desk_holder(case: Case) -> str:
    """The operator who last claimed the case ("" when nobody has)."""
    claims = [t.detail for t in case.transitions if t.event == DESK_CLAIM]
    return claims[-1].partition(" ")[0] if claims else ""


def desk_case(case: Case, action: str, now: float, operator: str, detail: str) -> Case:
    """The case after a person's step. The transition's detail is the operator's name, then ``detail``."""
    if action not in DESK_ACTIONS:
        raise ValueError(f"an operator may claim, note or close a case, not {action!r}")
    if not operator or " " in operator:
        raise ValueError("the operator's name must be one word")
    if case.state not in (OPEN, ESCALATED):
        raise ValueError(f"case {case.id} is already {case.state}")
    holder = desk_holder(case)
    if action == DESK_CLAIM and holder and holder != operator:
        raise ValueError(f"case {case.id} is claimed by {holder}")
    said = Transition(action, now, f"{operator} {detail}".rstrip())
    if action != CLOSED:
        return _replace(case, transitions=(*case.transitions, said))
    return _replace(
        case, state=CLOSED, due_at=None, lease_holder="", lease_until=0.0, transitions=(*case.transitions, said)
    )


def moved_case(case: Case, state: str, now: float, instance: str, detail: str) -> Case:
    if state not in CASE_STATES or state == OPEN:
        raise ValueError(f"a case can move to handled, escalated or closed, not {state!r}")
    if case.state != OPEN:
        raise ValueError(f"case {case.id} is already {case.state}")
    if instance and not lease_free(case, instance, now):
        raise LeaseLost(case.id)
    return _replace(
        case,
        state=state,
        due_at=None,
        lease_holder="",
        lease_until=0.0,
        transitions=(*case.transitions, Transition(state, now, detail)),
    )


def _replace(case: Case, **changes: Any) -> Case:
    return dataclasses.replace(case, **changes)


# --- campaigns: near-duplicate messages to many recipients ------------------------------------------
#
# A cluster is the messages whose sketches (rules.campaign) resemble its first one. It counts the
# distinct recipients of the copies seen since its window started (at most as many as open a campaign:
# a capped set of short hashes, never the numbers themselves), and once enough are reached, and a copy
# carried the rules' evidence, it opens a campaign whose id every later copy carries. A cluster idle for
# longer than the window is forgotten; one that has not opened a campaign restarts its count when its
# window ends. Every backend keeps at most ``max_clusters`` clusters, the least recently seen going first.


@dataclass(frozen=True, slots=True)
class CampaignPolicy:
    #: Seconds within which the distinct recipients count; also how long an idle cluster is kept.
    window: float = 3600.0
    #: Distinct recipients that open a campaign.
    recipients: int = 20
    #: Least estimated similarity (share of agreeing sketch slots) for a message to join a cluster.
    similarity: float = 0.4
    #: Open a campaign only when some copy carried the rules' evidence (a category); False: volume alone.
    needs_evidence: bool = True
    #: Clusters kept at most (each holds one sketch, its band keys and at most ``recipients`` hashes).
    max_clusters: int = 100_000


@dataclass(frozen=True, slots=True)
class CampaignCopy:
    """One message as campaign detection sees it: its sketch (rules.campaign.Sketch.hex and bands), its
    recipients' keys (:func:`recipient_key`), the category of the rules' evidence ("" for none), and when."""

    sketch: str
    bands: tuple[str, ...]
    recipients: tuple[str, ...]
    evidence: str
    now: float


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    sketch: str
    bands: tuple[str, ...]
    started_at: float
    last_at: float
    recipients: tuple[str, ...] = ()
    copies: int = 0
    category: str = ""
    opened_at: float | None = None

    @property
    def campaign(self) -> str | None:
        return None if self.opened_at is None else campaign_id(self.id)

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sketch": self.sketch,
            "bands": list(self.bands),
            "started_at": self.started_at,
            "last_at": self.last_at,
            "recipients": list(self.recipients),
            "copies": self.copies,
            "category": self.category,
            "opened_at": self.opened_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Cluster:
        opened = doc.get("opened_at")
        return cls(
            id=str(doc["id"]),
            sketch=str(doc["sketch"]),
            bands=tuple(str(b) for b in doc.get("bands") or ()),
            started_at=float(doc["started_at"]),
            last_at=float(doc["last_at"]),
            recipients=tuple(str(r) for r in doc.get("recipients") or ()),
            copies=int(doc.get("copies") or 0),
            category=str(doc.get("category") or ""),
            opened_at=float(opened) if isinstance(opened, int | float | str) and opened != "" else None,
        )


@dataclass(frozen=True, slots=True)
class CampaignSeen:
    """What a store answers for one copy: its cluster, the campaign id once one is open (None before),
    whether this copy opened it, and the cluster's counts and evidence category."""

    cluster: str
    campaign: str | None
    opened: bool
    recipients: int
    copies: int
    category: str


def campaign_id(cluster_id: str) -> str:
    return f"cmp-{cluster_id}"


def recipient_key(number: str) -> str:
    """What a cluster keeps of a recipient: 8 hexadecimal digits of a CRC-32, enough to tell a few
    thousand numbers apart, not enough to hold the number."""
    return f"{zlib.crc32(number.encode('utf-8', 'replace')):08x}"


def cluster_live(cluster: Cluster, now: float, policy: CampaignPolicy) -> bool:
    return now - cluster.last_at <= policy.window


def best_cluster(copy: CampaignCopy, candidates: list[Cluster], policy: CampaignPolicy) -> Cluster | None:
    """The live candidate most similar to ``copy`` (at least ``policy.similarity``); the oldest on a tie."""
    best: Cluster | None = None
    best_score = -1.0
    for cluster in sorted(candidates, key=lambda c: int(c.id)):
        if not cluster_live(cluster, copy.now, policy):
            continue
        score = hex_similarity(copy.sketch, cluster.sketch)
        if score >= policy.similarity and score > best_score:
            best, best_score = cluster, score
    return best


def new_cluster(cluster_id: str, copy: CampaignCopy) -> Cluster:
    return Cluster(cluster_id, copy.sketch, copy.bands, copy.now, copy.now)


def sighted_cluster(cluster: Cluster, copy: CampaignCopy, policy: CampaignPolicy) -> tuple[Cluster, bool]:
    """The cluster once ``copy`` is counted, and True when this copy opened its campaign."""
    if cluster.opened_at is None and copy.now - cluster.started_at > policy.window:
        # the window ended without a campaign: count afresh from this copy
        cluster = dataclasses.replace(cluster, started_at=copy.now, recipients=(), copies=0, category="")
    recipients = list(cluster.recipients)
    for key in copy.recipients:
        if len(recipients) >= policy.recipients:
            break
        if key not in recipients:
            recipients.append(key)
    category = cluster.category or copy.evidence
    opens = (
        cluster.opened_at is None
        and len(recipients) >= policy.recipients
        and (bool(category) or not policy.needs_evidence)
    )
    # built directly rather than by dataclasses.replace: every SMS counted comes here
    updated = Cluster(
        cluster.id,
        cluster.sketch,
        cluster.bands,
        cluster.started_at,
        max(cluster.last_at, copy.now),
        tuple(recipients),
        cluster.copies + 1,
        category,
        copy.now if opens else cluster.opened_at,
    )
    return updated, opens


def campaign_seen(cluster: Cluster, opened: bool) -> CampaignSeen:
    return CampaignSeen(cluster.id, cluster.campaign, opened, len(cluster.recipients), cluster.copies, cluster.category)
