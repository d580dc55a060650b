"""The default backend: one SQLite file in the data directory, in WAL mode, schema versioned.

Every call is one short indexed statement or one small transaction, run on the caller's thread: at
the gateway's rates (a few thousand rows a second) that costs tens of microseconds, less than
handing each call to a thread would. ``synchronous=NORMAL`` in WAL mode means a committed
transaction survives the process being killed (the WAL is in the OS page cache) but the last ones
may be lost if the machine itself loses power; set ``durable=True`` for ``synchronous=FULL``.

A checkpoint (copying the WAL into the database file, with an fsync) is not left to the commit that
happens to fill the WAL, on the event loop: a thread of the store's own, on a connection of its own,
runs one every ``checkpoint_every`` seconds, without blocking the writers (a passive checkpoint).
Under a disk shared with other work an fsync can take tens of milliseconds, which on the loop would
hold up every attempt, SMS and call in flight.

Hot-path writes (routes, audit, velocity) are committed once per event-loop turn rather than one by
one; a second connection to the file in the same process would wait on that open transaction, so
each process opens one SqliteStore per file (other processes are fine: they wait at most a turn).

The schema version is SQLite's ``user_version``; ``MIGRATIONS[n]`` takes a file from version n to
n + 1, each in one transaction, so a file from any older release opens and is upgraded in place.

A case is one row: the columns its queries select on (state, due time, lease) and ``doc``, the whole
case as one compact JSON array (:func:`case_doc`), its timeline last. Every attempt reads and writes
its case three times (the claim, the flash noted, the record), so the array is written by one C call
and read back without a Python step per field; a write adds the new steps to the timeline's text
as read, rather than writing out every earlier step again; and the case a store last read or wrote
is kept beside its text, so that reading that same text again (the next step of the attempt)
decodes nothing. A ``doc`` written by an earlier release (a JSON object) is rewritten as an array
when the file is upgraded to schema version 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, cast

from gateway.logs import get_logger
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
    LeaseLost,
    Registration,
    RiskScore,
    Transition,
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
from gateway.store.batch import TurnBatcher
from gateway.store.memory import FailureWindows, MemorySessions

log = get_logger("afgw.store")


def _cases_as_arrays(db: sqlite3.Connection) -> None:
    """Each case's ``doc`` from the JSON object of earlier releases to the array of :func:`case_doc`
    (in Python, not SQL: SQLite's JSON functions print a time with 15 digits, a Python float has 17)."""
    rows = db.execute("SELECT id, doc FROM cases WHERE doc LIKE '{%'").fetchall()
    for case_id, doc in rows:
        db.execute("UPDATE cases SET doc = ? WHERE id = ?", (case_text(Case.from_doc(json.loads(doc))), case_id))


#: Each step is SQL statements, or a function given the connection; either runs in the step's transaction.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 0 -> 1: the receipt-routing map and the audit trail.
    """
    CREATE TABLE routes (key TEXT PRIMARY KEY, system_id TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX routes_at ON routes (at);
    CREATE TABLE audit (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL, fields TEXT NOT NULL);
    """,
    # 1 -> 2: risk scores, registrations, velocity counters and dissuasion cases.
    """
    CREATE TABLE risk (subscriber TEXT PRIMARY KEY, value REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE registrations (
        aor TEXT NOT NULL, contact TEXT NOT NULL, expires_at REAL NOT NULL, flow TEXT NOT NULL,
        instance TEXT NOT NULL, call_id TEXT NOT NULL, cseq INTEGER NOT NULL, q REAL NOT NULL,
        PRIMARY KEY (aor, contact));
    CREATE TABLE velocity (key TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX velocity_key_at ON velocity (key, at);
    CREATE TABLE cases (
        id INTEGER PRIMARY KEY AUTOINCREMENT, subscriber TEXT NOT NULL, state TEXT NOT NULL,
        due_at REAL, lease_holder TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0,
        doc TEXT NOT NULL);
    CREATE UNIQUE INDEX cases_one_open ON cases (subscriber) WHERE state = 'open';
    CREATE INDEX cases_due ON cases (due_at) WHERE due_at IS NOT NULL;
    """,
    # 2 -> 3: lapsed registrations found by time; the anti-fraud centre's instruction references.
    """
    CREATE INDEX registrations_expires ON registrations (expires_at);
    CREATE TABLE instruction_refs (reference TEXT PRIMARY KEY, held_until REAL NOT NULL);
    CREATE INDEX instruction_refs_held ON instruction_refs (held_until);
    """,
    # 3 -> 4: campaign clusters and the band index that finds them.
    """
    CREATE TABLE campaign_clusters (id INTEGER PRIMARY KEY AUTOINCREMENT, last_at REAL NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX campaign_clusters_last ON campaign_clusters (last_at);
    CREATE TABLE campaign_bands (band TEXT PRIMARY KEY, cluster INTEGER NOT NULL);
    CREATE INDEX campaign_bands_cluster ON campaign_bands (cluster);
    """,
    # 4 -> 5: case documents as compact arrays, cheaper to write and read at every attempt.
    _cases_as_arrays,
)
SCHEMA_VERSION = len(MIGRATIONS)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_decode = json.JSONDecoder().decode
_string = json.encoder.encode_basestring  # a str as a JSON string, as _encode writes it (C, like _encode)
#: How many cases a store keeps decoded beside the text it last read or wrote for them: more than
#: the attempts in flight at once (a few batches), few enough to cost little memory.
KEEP_DECODED = 2048


class Written(NamedTuple):
    """A case's ``doc`` and that case decoded; its timeline (the array of transitions) starts at
    ``steps_at`` and ends one character before the end."""

    text: str
    case: Case
    steps_at: int


def _head(case: Case) -> str:
    return _encode(
        [
            case.id,
            case.subscriber,
            case.state,
            case.tier,
            case.fraud_types,
            case.attempts,
            case.opened_at,
            case.due_at,
            case.lease_holder,
            case.lease_until,
            case.family,
        ]
    )


def _step_text(step: Transition) -> str:
    """``,`` and the step as the JSON encoder writes it (times are finite: a float's repr is its JSON),
    without the encoder's set-up, which costs more than so small an array."""
    return ",[" + _string(step.event) + "," + repr(step.at) + "," + _string(step.detail) + "]"


def case_doc(case: Case, before: Written | None = None) -> Written:
    """The ``doc`` of a case: one JSON array, its fields in the order of :class:`Case` but the
    transitions last (each an array of its own). Given the doc of the case ``before`` this change,
    whose timeline this one's continues, the timeline is that doc's with the new steps added: a step
    of an attempt does not write out every earlier time again (a float's repr is what costs most)."""
    head = _head(case)
    steps = case.transitions
    known = 0 if before is None else len(before.case.transitions)
    if before is not None and 0 < known <= len(steps) and steps[:known] == before.case.transitions:
        timeline = before.text[before.steps_at : -1]
        if known < len(steps):
            timeline = timeline[:-1] + "".join([_step_text(step) for step in steps[known:]]) + "]"
    else:
        timeline = _encode(steps)
    return Written(head[:-1] + "," + timeline + "]", case, len(head))


def case_text(case: Case) -> str:
    return case_doc(case).text


def case_of_text(text: str) -> Case:
    """The case a ``doc`` holds, as :func:`case_doc` writes it."""
    cid, subscriber, state, tier, types, attempts, opened_at, due_at, holder, until, family, steps = _decode(text)
    return Case(
        cid,
        subscriber,
        state,
        tier,
        tuple(types),
        attempts,
        opened_at,
        due_at,
        tuple([Transition._make(step) for step in steps]),
        holder,
        until,
        tuple(family),
    )


def migrate(db: sqlite3.Connection) -> int:
    """Bring the file to SCHEMA_VERSION; returns the version it had. Refuses a newer file."""
    found: int = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise RuntimeError(f"store schema version {found} is newer than this gateway's {SCHEMA_VERSION}")
    for version in range(found, SCHEMA_VERSION):
        # executescript would commit on its own; statements one by one keep each step atomic.
        db.execute("BEGIN IMMEDIATE")
        try:
            step = MIGRATIONS[version]
            if callable(step):
                step(db)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return found


class SqliteStore:
    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float = 72 * 3600.0,
        max_audit: int = 100_000,
        durable: bool = False,
        busy_timeout: float = 5.0,
        checkpoint_every: float = 0.5,
    ) -> None:
        """``checkpoint_every``: seconds between two checkpoints by the store's thread; 0 leaves them to
        SQLite, on the committing connection (every 1,000 pages of WAL)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self.max_audit = max_audit
        # isolation_level=None: we open transactions ourselves, BEGIN IMMEDIATE where read-then-write
        # must be atomic against another connection to the same file.
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.upgraded_from = migrate(self.db)
        self._checkpointer: Checkpointer | None = None
        if checkpoint_every > 0:
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(self.path, checkpoint_every)
            # A store dropped without close() (a test, a short command) does not leave its thread running.
            weakref.finalize(self, self._checkpointer.stopping.set)
        self._audits = 0
        self._routes = 0
        self._velocity_records = 0
        self._references = 0
        self._clusters_kept: int | None = None
        # Failure counts stay in this process: a SQLite store serves one gateway process (workers need Redis).
        self._failures = FailureWindows()
        # Console sessions stay in the process, as the login throttle's counts do: one process serves them.
        self._sessions = MemorySessions()
        #: Case id -> the doc this store last read or wrote for it, and that case decoded.
        self._written: dict[str, Written] = {}
        self._case_changes: TurnBatcher[tuple[str, Callable[[Case], Case | None]], Case | None] = TurnBatcher(
            self._changes
        )

    # --- the synchronous hot path -------------------------------------------------------------

    def _hot_write(self, sql: str, params: tuple[object, ...]) -> None:
        """One write of the hot path, committed together with the others of the same event-loop turn.

        A commit costs about 40 µs, an insert inside an open transaction a few: every route, audit
        record and velocity count written while the loop runs one batch of callbacks joins one
        transaction, committed by a callback queued behind them (before the loop next waits for I/O).
        Without a running loop each write commits at once.
        """
        if not self.db.in_transaction:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.db.execute(sql, params)
                return
            self.db.execute("BEGIN")
            loop.call_soon(self.commit)
        self.db.execute(sql, params)

    def commit(self) -> None:
        """Commit the hot-path writes not yet committed."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def _begin(self) -> None:
        self.commit()
        self.db.execute("BEGIN IMMEDIATE")

    def remember_message(self, message_id: str, system_id: str, now: float) -> None:
        self._hot_write(
            "INSERT OR REPLACE INTO routes (key, system_id, at) VALUES (?, ?, ?)",
            (canonical_message_id(message_id), system_id, now),
        )
        self._routes += 1
        if self._routes % 10_000 == 0:
            # Bounded like the memory store's map, by age: receipts older than the ttl are not routed.
            self.expire_routes(now)

    def owner_of(self, message_id: str, now: float) -> str | None:
        for key in message_id_keys(message_id):
            row = self.db.execute("SELECT system_id, at FROM routes WHERE key = ?", (key,)).fetchone()
            if row is not None and now - row[1] <= self.ttl:
                return str(row[0])
        return None

    def expire_routes(self, now: float) -> int:
        return self.db.execute("DELETE FROM routes WHERE at < ?", (now - self.ttl,)).rowcount

    def audit(self, record: AuditRecord) -> None:
        self._hot_write(
            "INSERT INTO audit (kind, at, fields) VALUES (?, ?, ?)",
            (record.kind, record.at, json.dumps(record.fields, ensure_ascii=False, default=str)),
        )
        self._audits += 1
        if self._audits % 1000 == 0:
            self.db.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (self.max_audit,))

    # --- velocity counters (rules.VelocityStore) ----------------------------------------------

    def record(self, key: str, now: float) -> None:
        self._hot_write("INSERT INTO velocity (key, at) VALUES (?, ?)", (key, now))
        self._velocity_records += 1
        if self._velocity_records % 4096 == 0:
            # No rule looks further back than a day (rule validation caps ``within``).
            self.sweep_velocity(now)

    def at_least(self, key: str, count: int, within: float, now: float) -> bool:
        row = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM velocity WHERE key = ? AND at > ? AND at <= ? LIMIT ?)",
            (key, now - within, now, count),
        ).fetchone()
        return bool(row[0] >= count)

    def sweep_velocity(self, now: float, horizon: float = 86_400.0) -> int:
        return self.db.execute("DELETE FROM velocity WHERE at <= ?", (now - horizon,)).rowcount

    # --- the asynchronous interface -----------------------------------------------------------

    async def route_owner(self, message_id: str, now: float) -> str | None:
        return self.owner_of(message_id, now)

    async def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        rows = self.db.execute("SELECT kind, at, fields FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [AuditRecord(kind, at, json.loads(fields)) for kind, at, fields in reversed(rows)]

    async def get_risk(self, subscriber: str) -> RiskScore | None:
        row = self.db.execute("SELECT value, updated_at FROM risk WHERE subscriber = ?", (subscriber,)).fetchone()
        return None if row is None else RiskScore(row[0], row[1])

    async def set_risk(self, subscriber: str, value: float, now: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO risk (subscriber, value, updated_at) VALUES (?, ?, ?)", (subscriber, value, now)
        )

    async def get_risks(self, subscribers: Sequence[str]) -> list[RiskScore | None]:
        return [await self.get_risk(subscriber) for subscriber in subscribers]

    async def set_risks(self, scores: Sequence[tuple[str, float, float]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO risk (subscriber, value, updated_at) VALUES (?, ?, ?)", scores)

    async def register(self, aor: str, registration: Registration) -> None:
        r = registration
        self.db.execute(
            "INSERT OR REPLACE INTO registrations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (aor, r.contact, r.expires_at, r.flow, r.instance, r.call_id, r.cseq, r.q),
        )

    async def unregister(self, aor: str, contact: str) -> None:
        self.db.execute("DELETE FROM registrations WHERE aor = ? AND contact = ?", (aor, contact))

    async def registrations(self, aor: str, now: float) -> list[Registration]:
        rows = self.db.execute(
            "SELECT contact, expires_at, flow, instance, call_id, cseq, q FROM registrations"
            " WHERE aor = ? AND expires_at > ? ORDER BY q DESC, contact",
            (aor, now),
        ).fetchall()
        return [Registration(*row) for row in rows]

    async def all_registrations(self, now: float) -> dict[str, list[Registration]]:
        found: dict[str, list[Registration]] = {}
        for aor, *rest in self.db.execute(
            "SELECT aor, contact, expires_at, flow, instance, call_id, cseq, q FROM registrations"
            " WHERE expires_at > ? ORDER BY aor, q DESC, contact",
            (now,),
        ):
            found.setdefault(aor, []).append(Registration(*rest))
        return found

    async def expire_registrations(self, now: float, limit: int = 1000) -> int:
        cur = self.db.execute(
            "DELETE FROM registrations WHERE rowid IN"
            " (SELECT rowid FROM registrations WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
            (now, limit),
        )
        return cur.rowcount

    async def claim_reference(self, reference: str, now: float, until: float) -> bool:
        self._references += 1
        if self._references % 1000 == 0:
            self.db.execute("DELETE FROM instruction_refs WHERE held_until <= ?", (now,))
        # One statement: inserted, or taken over when the hold lapsed; a live hold changes no row.
        cur = self.db.execute(
            "INSERT INTO instruction_refs (reference, held_until) VALUES (?, ?) ON CONFLICT (reference)"
            " DO UPDATE SET held_until = excluded.held_until WHERE instruction_refs.held_until <= ?",
            (reference, until, now),
        )
        return cur.rowcount == 1

    async def hold_reference(self, reference: str, now: float, until: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO instruction_refs (reference, held_until) VALUES (?, ?)", (reference, until)
        )

    async def drop_reference(self, reference: str) -> None:
        self.db.execute("DELETE FROM instruction_refs WHERE reference = ?", (reference,))

    async def failures(self, key: str, now: float, window: float) -> int:
        return await self._failures.failures(key, now, window)

    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int:
        return await self._failures.count_failure(key, now, window, keep)

    async def clear_failures(self, key: str) -> None:
        await self._failures.clear_failures(key)

    def _load(self, case_id: str) -> Case:
        row = self.db.execute("SELECT doc FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            raise UnknownCase(case_id)
        return self._case(case_id, row[0])

    def _case(self, case_id: str, text: str) -> Case:
        """The case a doc read from the file holds, kept (with where its timeline starts) for the
        change that follows: an attempt's claim, note and record each read their case, then write it."""
        # The very text this store wrote is that case: whoever else writes the file (another process)
        # writes another text, which is decoded.
        written = self._written.get(case_id)
        if written is not None and written.text == text:
            return written.case
        case = case_of_text(text)
        head = _head(case)
        if text.startswith(head[:-1] + ",["):  # as case_doc writes it (anything else is written afresh)
            self._keep(Written(text, case, len(head)))
        return case

    def _keep(self, written: Written) -> None:
        if len(self._written) >= KEEP_DECODED:
            self._written.clear()
        self._written[written.case.id] = written

    def _save(self, case: Case, before: Case | None = None) -> None:
        known = self._written.get(case.id)
        written = case_doc(case, known if known is not None and known.case is before else None)
        text = written.text
        if before is not None and case.state == before.state and case.due_at == before.due_at:
            # A claim or a note: the indexed columns (state, due time) are left alone, and so are the
            # indexes, which an UPDATE naming those columns rewrites even when the values stay.
            self.db.execute(
                "UPDATE cases SET lease_holder = ?, lease_until = ?, doc = ? WHERE id = ?",
                (case.lease_holder, case.lease_until, text, case.id),
            )
        else:
            self.db.execute(
                "UPDATE cases SET state = ?, due_at = ?, lease_holder = ?, lease_until = ?, doc = ? WHERE id = ?",
                (case.state, case.due_at, case.lease_holder, case.lease_until, text, case.id),
            )
        self._keep(written)

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
        self._begin()
        try:
            row = self.db.execute(
                "SELECT doc FROM cases WHERE subscriber = ? AND state = 'open'", (subscriber,)
            ).fetchone()
            if row is not None:
                case = updated_case(case_of_text(row[0]), tier, fraud_type, now, family)
                self._save(case)
                created = False
            else:
                cur = self.db.execute(
                    "INSERT INTO cases (subscriber, state, due_at, doc) VALUES (?, 'open', ?, '{}')",
                    (subscriber, due_at),
                )
                case = new_case(str(cur.lastrowid), subscriber, tier, fraud_type, now, due_at, family)
                self._save(case)
                created = True
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return case, created

    async def get_case(self, case_id: str) -> Case:
        return self._load(case_id)

    async def open_case_of(self, subscriber: str) -> Case | None:
        row = self.db.execute("SELECT doc FROM cases WHERE subscriber = ? AND state = 'open'", (subscriber,)).fetchone()
        return None if row is None else case_of_text(row[0])

    async def open_cases(self) -> list[Case]:
        rows = self.db.execute("SELECT doc FROM cases WHERE state = 'open' ORDER BY id").fetchall()
        return [case_of_text(doc) for (doc,) in rows]

    async def all_cases(self) -> list[Case]:
        rows = self.db.execute("SELECT doc FROM cases ORDER BY id").fetchall()
        return [case_of_text(row[0]) for row in rows]

    async def due_cases(self, now: float, limit: int = 100) -> list[Case]:
        rows = self.db.execute(
            "SELECT doc FROM cases WHERE due_at IS NOT NULL AND due_at <= ? AND state = 'open'"
            " ORDER BY due_at, id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [case_of_text(doc) for (doc,) in rows]

    async def next_due(self) -> float | None:
        # Earliest due first along the due index; only cases under lease (at most the batches in flight,
        # and those of a crashed instance) are read past before the answer is known.
        best: float | None = None
        for due_at, holder, lease_until in self.db.execute(
            "SELECT due_at, lease_holder, lease_until FROM cases WHERE due_at IS NOT NULL AND state = 'open'"
            " ORDER BY due_at"
        ):
            if best is not None and due_at >= best:
                break
            at = max(due_at, lease_until) if holder else due_at
            best = at if best is None else min(best, at)
        return best

    async def claim_due(self, instance: str, now: float, lease_until: float, limit: int = 100) -> list[Case]:
        self._begin()
        try:
            rows = self.db.execute(
                "SELECT id, doc FROM cases WHERE due_at IS NOT NULL AND due_at <= ? AND state = 'open'"
                " AND (lease_holder = '' OR lease_holder = ? OR lease_until <= ?) ORDER BY due_at, id LIMIT ?",
                (now, instance, now, limit),
            ).fetchall()
            got = []
            for case_id, doc in rows:
                case = self._case(str(case_id), doc)
                if lease_free(case, instance, now):
                    got.append(claimed_case(case, instance, now, lease_until))
                    self._save(got[-1], case)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return got

    def _change(self, case_id: str, change: Callable[[Case], Case]) -> Case:
        self._begin()
        try:
            before = self._load(case_id)
            case = change(before)
            self._save(case, before)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return case

    async def record_attempt(
        self, case_id: str, instance: str, now: float, next_due: float | None, detail: str = ""
    ) -> Case:
        # attempted_case answers a case or raises: never None.
        return cast(Case, await self._batched(case_id, lambda c: attempted_case(c, instance, now, next_due, detail)))

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
        return await self._batched(case_id, lambda case: noted_case(case, event, now, detail, instance, once, late))

    async def _batched(self, case_id: str, change: Callable[[Case], Case | None]) -> Case | None:
        # The changes an engine tick makes to its cases (attempts, notes) are written in one transaction,
        # one commit instead of one each. This turn's hot-path writes are committed now, not when the
        # turn ends: until the batch runs, they would keep the file locked for any other connection.
        self.commit()
        return await self._case_changes.submit((case_id, change))

    async def _changes(self, changes: list[tuple[str, Callable[[Case], Case | None]]]) -> list[Case | Exception | None]:
        """Several cases changed in one transaction; a change that is refused (``LeaseLost``, a case
        unknown or no longer open) is that change's answer and leaves the others be. A change that
        answers None has nothing to write."""
        answers: list[Case | Exception | None] = []
        self._begin()
        try:
            for case_id, change in changes:
                try:
                    before = self._load(case_id)
                    case = change(before)  # refusals come before any write
                except (UnknownCase, LeaseLost, ValueError) as exc:
                    answers.append(exc)
                    continue
                if case is not None:
                    self._save(case, before)
                answers.append(case)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return answers

    async def transition(self, case_id: str, state: str, now: float, instance: str = "", detail: str = "") -> Case:
        return self._change(case_id, lambda case: moved_case(case, state, now, instance, detail))

    async def desk(self, case_id: str, action: str, now: float, operator: str, detail: str = "") -> Case:
        return self._change(case_id, lambda case: desk_case(case, action, now, operator, detail))

    async def release(self, case_id: str, instance: str) -> None:
        case = self._load(case_id)
        if case.lease_holder == instance and case.state == OPEN:
            self._change(
                case_id, lambda c: c.__class__.from_doc({**c.to_doc(), "lease_holder": "", "lease_until": 0.0})
            )

    # --- campaigns ----------------------------------------------------------------------------------

    async def campaign_sighting(self, copy: CampaignCopy, policy: CampaignPolicy) -> CampaignSeen:
        # Every SMS counted comes here: the sighting joins the event-loop turn's transaction, as the
        # hot-path writes do (a commit each would cost more than the rest), inside a savepoint so that a
        # failure undoes this sighting alone. BEGIN IMMEDIATE takes the write lock at once: another
        # process on the file cannot write between the read of a cluster and its update.
        db = self.db
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_soon(self._commit_unless_closed)
        db.execute("SAVEPOINT campaign")
        try:
            expired = [
                row[0]
                for row in db.execute("SELECT id FROM campaign_clusters WHERE last_at < ?", (copy.now - policy.window,))
            ]
            self._forget_clusters(expired)
            marks = ",".join("?" * len(copy.bands))
            rows = db.execute(
                "SELECT doc FROM campaign_clusters WHERE id IN"
                f" (SELECT cluster FROM campaign_bands WHERE band IN ({marks}))",
                copy.bands,
            ).fetchall()
            found = best_cluster(copy, [Cluster.from_doc(json.loads(doc)) for (doc,) in rows], policy)
            if found is None:
                count = self._cluster_count()
                if count >= policy.max_clusters:
                    oldest = db.execute(
                        "SELECT id FROM campaign_clusters ORDER BY last_at, id LIMIT ?",
                        (count - policy.max_clusters + 1,),
                    ).fetchall()
                    self._forget_clusters([row[0] for row in oldest])
                cur = db.execute("INSERT INTO campaign_clusters (last_at, doc) VALUES (?, '{}')", (copy.now,))
                self._clusters_kept = self._cluster_count() + 1
                found = new_cluster(str(cur.lastrowid), copy)
                db.executemany(
                    "INSERT OR REPLACE INTO campaign_bands (band, cluster) VALUES (?, ?)",
                    [(band, int(found.id)) for band in copy.bands],
                )
            cluster, opened = sighted_cluster(found, copy, policy)
            db.execute(
                "UPDATE campaign_clusters SET last_at = ?, doc = ? WHERE id = ?",
                (cluster.last_at, json.dumps(cluster.to_doc()), int(cluster.id)),
            )
            db.execute("RELEASE campaign")
        except BaseException:
            db.execute("ROLLBACK TO campaign")
            db.execute("RELEASE campaign")
            self._clusters_kept = None
            raise
        return campaign_seen(cluster, opened)

    def _commit_unless_closed(self) -> None:
        # close() commits first; the turn's own commit may come after it
        with contextlib.suppress(sqlite3.ProgrammingError):
            self.commit()

    def _cluster_count(self) -> int:
        # Counted once, then kept up to date: COUNT(*) reads the whole table, and a new cluster (most
        # ordinary messages start one) must not cost that.
        if self._clusters_kept is None:
            self._clusters_kept = int(self.db.execute("SELECT COUNT(*) FROM campaign_clusters").fetchone()[0])
        return self._clusters_kept

    def _forget_clusters(self, ids: list[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM campaign_bands WHERE cluster IN ({marks})", chunk)
            gone = self.db.execute(f"DELETE FROM campaign_clusters WHERE id IN ({marks})", chunk).rowcount
            if self._clusters_kept is not None:
                self._clusters_kept -= gone

    async def campaign_clusters(self) -> int:
        (count,) = self.db.execute("SELECT COUNT(*) FROM campaign_clusters").fetchone()
        return int(count)

    @property
    def checkpoints(self) -> int:
        """How many checkpoints the store's thread has run (0 without one)."""
        return 0 if self._checkpointer is None else self._checkpointer.done

    async def close(self) -> None:
        await self._case_changes.close()
        self.commit()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.db.close()


class Checkpointer:
    """Copies the WAL into the database file every ``every`` seconds, on a thread and a connection of
    its own (sqlite3 lets go of the GIL while it works). Passive: it never waits for a writer or
    makes one wait, and copies what it can; the next round takes the rest."""

    def __init__(self, path: Path, every: float) -> None:
        self.path = path
        self.every = every
        self.done = 0
        self.failed = 0
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # With SQLite's own checkpoints off, a round that fails (disk full, an I/O error) must not end
        # the thread: the WAL would then grow without bound. Each failure is counted and the first of
        # each minute logged; the next round tries again on a fresh connection.
        db: sqlite3.Connection | None = None
        logged = -60.0
        while not self.stopping.wait(self.every):
            try:
                if db is None:  # mode=rw: a file removed under the store is not made again, empty
                    db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=rw", uri=True, isolation_level=None)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.done += 1
            except sqlite3.Error as exc:
                self.failed += 1
                if db is not None:
                    db.close()
                    db = None
                if time.monotonic() - logged >= 60.0:
                    logged = time.monotonic()
                    log.warning("store.checkpoint_failed", path=str(self.path), error=str(exc), failures=self.failed)
        if db is not None:
            db.close()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join()
