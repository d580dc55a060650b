"""The dissuasion engine: turns triggers into cases and warns each person until they respond.

Guarantees:

- **One loop per subscriber.** A trigger for someone with an open case raises its tier, adds the fraud
  type and family contacts, and leaves the schedule alone (the store does this atomically).
- **An attempt** is a class-0 flash with the victim template plus a robot call, through the injected
  :class:`FlashSender` and :class:`RobotCaller`. It is recorded with the next attempt due ``interval``
  seconds later. After ``max_attempts`` attempts and one more interval without an answer the case is
  escalated (to people) and the family contact is told.
- **Exactly one driver.** Due cases are claimed from the store with a lease, so that of several
  instances on one store exactly one drives each case; a crashed instance's lease lapses and another
  (or the restarted one) takes the case over on its schedule. Nothing is held only in memory: the
  flash's message id goes into the store's receipt-routing map, so an acknowledgement finds its case
  through any instance, also after a restart.
- **Kill -9 mid-attempt: at least once, one repeat at most.** An attempt is written down as it goes:
  the claim (the lease), then ``flashed`` once the flashes are sent (the victim's, and on the first
  attempt the family's; detail: the attempt's number and the message id), then the ``attempt`` record
  (detail: the number, ``flash=<id> call=<placed|quiet_hours|failed>``, and ``resumed`` when it
  finished an attempt another claim began). When an instance dies part way, its lease lapses and the
  instance that claims the case next finishes *that* attempt: the flashes only if ``flashed`` is not
  there, the call in any case (a call in progress ends with the process that placed it), and one
  record, from which the schedule goes on. So no attempt is lost or counted twice, and one death
  gives each person at most one message more: the flash again (it died between sending and writing
  ``flashed``) or the call again (between placing it and the record), never both. An event the dead
  process had not yet published is lost with it; the store has the record.
- **Handled** when the person acknowledges the flash (the SME manual/user acknowledgement matched to
  that flash's message id) or answers the robot call. A high-risk case also needs the key press that
  confirms the call was heard; an answer without it keeps the loop going.
- **High risk** gets the robot loop and, at once, a ``case.escalated`` event with ``reason: high_risk``
  (the case stays open: people are called in and the robot keeps going until it is handled). Once per
  case: the store marks it (a ``high_risk`` transition) atomically, and only the instance that made
  the mark emits the event, however many raise the case to high at the same moment.
- **Escalation on no response** flashes the family before it is recorded: an instance that dies in
  between leaves the case open, and the next one warns the family again and records it.
- **Quiet hours** (local time): for low and medium risk an attempt in them is a flash only, with no
  call, and the next attempt waits for the end of the quiet hours: a pop-up every five minutes all
  night long would wake the person as surely as a call. High risk is called at any hour.
- **Caps and opt-outs.** ``max_attempts_per_day`` bounds the attempts of one case in any 24 hours (the
  next one waits until the oldest leaves the window). An opted-out subscriber gets no robot loop: low
  and medium triggers are ignored, a high-risk one opens a case that is escalated to people at once.
  An opted-out family contact is not warned.
- **Expired triggers** (``expires_at`` passed) are ignored and reported with the reason.

- **Late facts are kept.** What happens to a flash or a call after the case left ``open`` (the
  delivery receipt, the acknowledgement, the call ringing, answered or not) still goes on the case's
  timeline, its state untouched: an escalated case waiting for people shows that the person read the
  warning after all (``flash_acknowledged``), and stays escalated, since people were called in.

Events (each with ``at``, the transition's time on the injected clock): ``case.opened``,
``case.updated``, ``case.attempt``, ``case.family_warned``, ``case.handled``, ``case.escalated``,
``case.closed`` (on :meth:`DissuasionEngine.close_case`), ``case.call_unconfirmed`` (a high-risk call
answered without the key press), ``case.acknowledged`` (a flash acknowledged on a case no longer
open: ``state`` says which), and ``dissuasion.trigger_ignored`` (``reason``: expired, opted_out,
bad_tier).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.dissuasion.robot_call import RobotCallConfig
from gateway.dissuasion.templates import Templates
from gateway.dissuasion.triggers import Trigger
from gateway.events.memory import EventSink
from gateway.logs import get_logger
from gateway.store.base import (
    CLOSED,
    DESK_CLAIM,
    DESK_NOTE,
    ESCALATED,
    HANDLED,
    OPEN,
    TIERS,
    Case,
    LeaseLost,
    StateStore,
    Transition,
    UnknownCase,
    canonical_message_id,
)

log = get_logger("afgw.dissuasion")

DAY = 86400.0
#: How long an acknowledgement is remembered, so that the SMSC repeating it (a retry, another bind)
#: changes nothing: as long as the receipt-routing map can route it at all (its default TTL).
ACK_REMEMBERED = 3 * DAY
#: Transitions the engine notes on a case: the victim's flash of an attempt was sent (detail: the
#: attempt's number and the flash's message id, ``-`` when refused), and people were called in on a
#: high-risk case (once per case).
FLASHED, HIGH_RISK = "flashed", "high_risk"
#: What the engine notes on a case's timeline besides its own steps: a family contact was warned, the
#: SMSC confirmed a warning flash's delivery, a robot call ended (with its outcome and SIP status).
FAMILY_WARNED, FLASH_DELIVERED, ROBOT_CALL = "family_warned", "flash_delivered", "robot_call"
#: Also noted: the robot call rang the handset (its first 180/183, once per call; detail: the status),
#: the person acknowledged a flash once the case was no longer open (detail: the message id), and a
#: family contact acknowledged theirs (which handles nothing).
ROBOT_RINGING, FLASH_ACKNOWLEDGED, FAMILY_ACKNOWLEDGED = "robot_ringing", "flash_acknowledged", "family_acknowledged"
#: The receipt-routing map's owner for a dissuasion flash: ``dissuasion:<case id>``.
OWNER_PREFIX = "dissuasion:"
#: The owner of a family contact's warning flash: the gateway's own too (its receipts and the
#: relative's acknowledgement are taken, not refused), but it never handles the case.
FAMILY_OWNER_PREFIX = "dissuasion-family:"


class FlashSender(Protocol):
    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        """Submit a class-0 flash asking for the manual/user acknowledgement; the SMSC's message id, or
        None when it was not accepted."""


class RobotCaller(Protocol):
    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        """Start the robot call from the anti-fraud number (returns once it is placed, not answered).
        Its outcome comes back through :meth:`DissuasionEngine.call_answered`; ``confirm``: ask for a
        key press."""


class CallUnavailable(Exception):
    """No robot caller is configured: the attempt is a flash alone, and says so (``call: failed``)."""


class NoRobotCaller:
    """The ``RobotCaller`` without ``dissuasion.robot_call``: every call fails, visibly."""

    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        raise CallUnavailable("no robot caller configured")


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: int  # minutes after local midnight
    end: int
    utc_offset: float = 8.0  # hours: local time = UTC + offset

    def active(self, now: float) -> bool:
        minute = self._minute(now)
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def ends_after(self, now: float) -> float:
        """The first moment after ``now`` at which the quiet hours are over."""
        left = (self.end - self._minute(now)) % 1440
        local = now + self.utc_offset * 3600.0
        return now + left * 60.0 - (local % 60.0)

    def _minute(self, now: float) -> int:
        return int(((now + self.utc_offset * 3600.0) % DAY) // 60)


@dataclass(frozen=True, slots=True)
class DissuasionConfig:
    interval: float = 300.0
    max_attempts: int = 6
    lease: float = 60.0  # longer than one attempt takes, shorter than the interval
    #: The longest the loop sleeps between looks at the store (it wakes at the next due time when that
    #: comes sooner): cases opened by another instance are seen within it.
    poll_interval: float = 1.0
    #: The least time between two looks at the store while cases keep falling due: those that fall due
    #: meanwhile are driven together (one claim, one transaction for their notes, one for their
    #: records) rather than one look each. What it may add to an attempt's lag; 0: look at every due time.
    tick_gap: float = 0.01
    batch: int = 100
    quiet_hours: QuietHours | None = None
    max_attempts_per_day: int = 0  # 0: no cap beyond max_attempts
    opt_out: frozenset[str] = field(default_factory=frozenset)
    templates_path: str = ""
    #: Loaded and checked with the configuration, so that a bad template stops the start, not a warning.
    templates: Templates | None = None
    #: ``dissuasion.robot_call``; None: attempts are flashes alone (``call: failed``).
    robot_call: RobotCallConfig | None = None
    robot_call_at: str = ""  # file:line:col of the section, for errors found once sip is read


class DissuasionEngine:
    """Implements ``TriggerSink``; drive it with :meth:`tick` (tests) or :meth:`run` (the gateway)."""

    def __init__(
        self,
        store: StateStore,
        events: EventSink,
        flash: FlashSender,
        caller: RobotCaller,
        templates: Templates,
        config: DissuasionConfig | None = None,
        *,
        instance: str = "afgw",
    ) -> None:
        self.store = store
        self.events = events
        self.flash = flash
        self.caller = caller
        self.templates = templates
        self.config = config or DissuasionConfig()
        self.instance = instance
        #: Set when a trigger opens a case (due at once), to wake the loop in :meth:`run`.
        self._opened = asyncio.Event()

    # --- intake ------------------------------------------------------------------------------

    async def trigger(self, trigger: Trigger, now: float) -> None:
        if trigger.expires_at is not None and trigger.expires_at <= now:
            self._ignored(trigger, now, "expired")
            return
        if trigger.tier not in TIERS:
            self._ignored(trigger, now, "bad_tier")
            return
        opted_out = trigger.subscriber in self.config.opt_out
        if opted_out and trigger.tier != "high":
            self._ignored(trigger, now, "opted_out")
            return
        before = await self.store.open_case_of(trigger.subscriber)
        case, created = await self.store.open_or_update_case(
            trigger.subscriber, trigger.tier, trigger.fraud_type, now, due_at=now, family=trigger.family
        )
        if created:
            self._opened.set()
        fields = self._fields(case, now, source=trigger.source, reference=trigger.reference, detail=trigger.detail)
        self.events.emit("case.opened" if created else "case.updated", **fields)
        if opted_out:
            with contextlib.suppress(ValueError):  # another instance escalated it a moment ago
                await self._escalate(case, now, "opted_out", final=True)
            return
        if case.tier == "high":
            await self._escalate_high_risk(case, now)
        if not created and before is not None and before.attempts > 0:
            # Contacts named after the first attempt missed its warning: give them theirs now.
            await self._warn_family(case, [f for f in case.family if f not in before.family], now, "first")

    async def _escalate_high_risk(self, case: Case, now: float) -> None:
        """Call people in on a high-risk case: once per case, whichever instance gets there first."""
        if any(t.event == HIGH_RISK for t in case.transitions):
            return
        try:
            # Marked in the store first, atomically: of two instances raising it at the same moment
            # one gets the mark and emits; the other sees it there already.
            marked = await self.store.note(case.id, HIGH_RISK, now, "escalated to people", once=True)
        except (UnknownCase, ValueError):
            return  # handled or closed in the meantime
        if marked is not None:
            self.events.emit("case.escalated", **self._fields(marked, now, reason="high_risk", final=False))

    def _ignored(self, trigger: Trigger, now: float, reason: str) -> None:
        self.events.emit(
            "dissuasion.trigger_ignored",
            at=now,
            subscriber=trigger.subscriber,
            tier=trigger.tier,
            fraud_type=trigger.fraud_type,
            source=trigger.source,
            reference=trigger.reference,
            reason=reason,
        )

    # --- the person's answers ------------------------------------------------------------------

    async def flash_acknowledged(self, message_id: str, now: float) -> bool:
        """A manual/user acknowledgement for ``message_id``: True when it handled a case. The same
        acknowledgement again (the SMSC repeats a deliver_sm) is taken once, whichever instance gets it."""
        owner = await self.store.route_owner(message_id, now)
        if owner is None or not owner.startswith((OWNER_PREFIX, FAMILY_OWNER_PREFIX)):
            return False
        # With the owner: an SMSC that reuses an id for another case's flash is not taken for a repeat.
        # "#" first: the centre's instruction references share the store and must begin with a letter
        # or digit, so no instruction can take an acknowledgement's place (or the other way round).
        reference = f"#ack:{owner}:{canonical_message_id(message_id)}"
        if not await self.store.claim_reference(reference, now, now + ACK_REMEMBERED):
            return False
        try:
            return await self._acknowledged(owner, message_id, now)
        except BaseException:
            # Not taken after all (the store failed): a repeat of it must still count.
            await self.store.drop_reference(reference)
            raise

    async def _acknowledged(self, owner: str, message_id: str, now: float) -> bool:
        if owner.startswith(FAMILY_OWNER_PREFIX):
            # A relative read their warning: the desk should know, but only the person at risk handles it.
            await self.note(owner.removeprefix(FAMILY_OWNER_PREFIX), FAMILY_ACKNOWLEDGED, now, message_id)
            return False
        case_id = owner.removeprefix(OWNER_PREFIX)
        if await self._handle(case_id, now, "flash_ack", message_id=message_id):
            return True
        # Escalated or closed meanwhile: the case stays where it is (people were called in, or decided),
        # but the person did read the warning, and the officer working the case must see that.
        case = await self.note(case_id, FLASH_ACKNOWLEDGED, now, message_id)
        if case is not None:
            self.events.emit("case.acknowledged", **self._fields(case, now, message_id=message_id))
        return False

    async def call_answered(self, case_id: str, now: float, *, confirmed: bool) -> bool:
        """The robot call was answered (``confirmed``: the key press came too)."""
        try:
            case = await self.store.get_case(case_id)
        except UnknownCase:
            return False
        if case.state != OPEN:
            return False
        if case.tier == "high" and not confirmed:
            self.events.emit("case.call_unconfirmed", **self._fields(case, now))
            return False
        return await self._handle(case_id, now, "call_confirmed" if confirmed else "call_answered")

    async def _handle(self, case_id: str, now: float, how: str, **extra: Any) -> bool:
        try:
            case = await self.store.transition(case_id, HANDLED, now, detail=how)
        except (UnknownCase, ValueError):
            return False  # already handled, escalated or closed: a late answer changes nothing
        self.events.emit("case.handled", **self._fields(case, now, how=how, **extra))
        return True

    async def close_case(self, case_id: str, now: float, detail: str = "") -> Case:
        case = await self.store.transition(case_id, "closed", now, detail=detail)
        self.events.emit("case.closed", **self._fields(case, now, detail=detail))
        return case

    async def desk(self, case_id: str, action: str, now: float, operator: str, detail: str = "") -> Case:
        """A person's step on a case (the console): see :func:`desk_step`."""
        return await desk_step(self.store, self.events, case_id, action, now, operator, detail)

    # --- the schedule ----------------------------------------------------------------------------

    async def tick(self, now: float) -> int:
        """Claim the due cases and drive each: an attempt, or the escalation. Returns how many."""
        lease_until = now + self.config.lease
        cases = await self.store.claim_due(self.instance, now, lease_until, self.config.batch)
        # Side by side: each attempt waits for the SMSC's answer, and one slow answer must not make
        # the rest of the batch late.
        await asyncio.gather(*(self._drive_one(case, now) for case in cases))
        return len(cases)

    async def _drive_one(self, case: Case, now: float) -> None:
        try:
            await self._drive(case, now)
        except (LeaseLost, ValueError) as exc:
            if await self._ended(case.id):
                # The person acknowledged the flash (or an operator closed the case) while this attempt
                # was under way: the store refuses to write to a case that is no longer open, and that
                # is the attempt's happy end, not a failure. The rest of it (the call) is not needed.
                log.info("dissuasion.ended_during_attempt", case_id=case.id, instance=self.instance)
            elif isinstance(exc, LeaseLost):
                log.warning("dissuasion.lease_lost", case_id=case.id, instance=self.instance)
            else:
                log.error("dissuasion.attempt_failed", case_id=case.id, error=repr(exc))
        except Exception as exc:
            # One case's failure must not stop the others; the lease lapses and it comes round again.
            log.error("dissuasion.attempt_failed", case_id=case.id, error=repr(exc))

    async def _ended(self, case_id: str) -> bool:
        try:
            return (await self.store.get_case(case_id)).state != OPEN
        except Exception:
            return False

    async def run(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Drive due cases until ``stop``: each is claimed when it falls due, not at the next poll.

        Between ticks the loop sleeps until the store's next due time, at most ``poll_interval`` (cases
        opened by another instance are seen then), and wakes at once when a trigger here opens a case.
        Ticks are at least ``tick_gap`` apart: at a thousand due cases a second, each tick drives the ten
        or so that fell due since the last instead of one, for a tenth of the claims and commits.
        """
        while stop is None or not stop.is_set():
            try:
                began = clock()
                if await self.tick(began) >= self.config.batch:
                    continue  # a full batch: more are probably due already
                wait = self.config.poll_interval
                next_due = await self.store.next_due()
                if next_due is not None:
                    now = clock()
                    wait = min(wait, max(0.0, next_due - now, began + self.config.tick_gap - now))
            except Exception as exc:
                log.error("dissuasion.tick_failed", error=repr(exc))
                wait = self.config.poll_interval
            await self._pause(wait, sleep)

    async def _pause(self, wait: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        """``sleep(wait)``, cut short when a trigger opens a case meanwhile."""
        if self._opened.is_set():
            self._opened.clear()
            return
        sleeping = asyncio.ensure_future(sleep(wait))
        woken = asyncio.ensure_future(self._opened.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelled, not awaited: they hold nothing, and awaiting them here could swallow the
            # cancellation of this loop itself (the gateway stopping) if it came meanwhile.
            sleeping.cancel()
            woken.cancel()
        self._opened.clear()

    async def _drive(self, case: Case, now: float) -> None:
        if case.attempts >= self.config.max_attempts:
            await self._escalate(case, now, "no_response", final=True)
            return
        number = case.attempts + 1
        this_attempt = _since_last_attempt(case)
        # An earlier claim of this attempt whose lease lapsed with no record: its instance stopped
        # (killed, or lost the store) part way through, and this one finishes the attempt.
        resumed = sum(t.event == "claimed" for t in this_attempt) > 1
        flashed = next((t.detail for t in this_attempt if t.event == FLASHED), None)
        if flashed is None:
            victim_text = self.templates.render(case.fraud_types, "victim", case.subscriber)
            message_id = await self._send(case.subscriber, victim_text, case, now)
            if case.attempts == 0:
                await self._warn_family(case, list(case.family), now, "first")
            # Written down before the call, under the lease: an instance taking over from here sends
            # no flash again, only the call (a call in progress ends with the process that placed it).
            await self.store.note(case.id, FLASHED, now, f"{number} {message_id or '-'}", instance=self.instance)
        else:
            message_id = flashed.partition(" ")[2].strip("-") or None
            if message_id:
                # The receipt-routing write of the stopped instance may not have reached the store.
                self.store.remember_message(message_id, OWNER_PREFIX + case.id, now)
        quiet = self.config.quiet_hours
        hushed = case.tier != "high" and quiet is not None and quiet.active(now)
        called = False
        if not hushed:
            try:
                await self.caller.call(case.subscriber, case.id, confirm=case.tier == "high")
                called = True
            except Exception as exc:
                log.warning("dissuasion.call_failed", case_id=case.id, error=repr(exc))
        call = "placed" if called else ("quiet_hours" if hushed else "failed")
        next_due = now + self.config.interval
        if hushed and quiet is not None:
            next_due = max(next_due, quiet.ends_after(now))
        next_due = max(next_due, self._cap_wait(case, now))
        said = f"flash={message_id or '-'} call={call}" + (" resumed" if resumed else "")
        done = await self.store.record_attempt(case.id, self.instance, now, next_due, said)
        self.events.emit(
            "case.attempt",
            **self._fields(
                done,
                now,
                attempt=done.attempts,
                flash_message_id=message_id or "",
                call=call,
                next_due=next_due,
                resumed=resumed,
            ),
        )

    def _cap_wait(self, case: Case, now: float) -> float:
        """When the next attempt may come under ``max_attempts_per_day`` (now: no cap reached)."""
        cap = self.config.max_attempts_per_day
        if cap <= 0:
            return now
        recent = sorted(t.at for t in case.transitions if t.event == "attempt" and t.at > now - DAY)
        recent.append(now)  # the attempt being made
        if len(recent) < cap:
            return now
        return recent[-cap] + DAY

    async def _send(self, recipient: str, message: str, case: Case, now: float, *, victim: bool = True) -> str | None:
        try:
            message_id = await self.flash.send_flash(recipient, message, case.id)
        except Exception as exc:
            log.warning("dissuasion.flash_failed", case_id=case.id, recipient=recipient, error=repr(exc))
            return None
        # Only the person at risk reading the warning handles the case, not a relative reading theirs.
        if message_id:
            self.store.remember_message(message_id, (OWNER_PREFIX if victim else FAMILY_OWNER_PREFIX) + case.id, now)
        return message_id

    async def _warn_family(self, case: Case, contacts: list[str], now: float, when: str) -> None:
        sent = await self._flash_family(case, contacts, now)
        await self._note_family(case, sent, now, when)
        self._family_warned(case, sent, now, when)

    async def _note_family(self, case: Case, sent: list[tuple[str, str]], now: float, when: str) -> None:
        """Each warned contact on the case's timeline (detail: contact, message id, first/escalation)."""
        for contact, message_id in sent:
            await self.note(case.id, FAMILY_WARNED, now, f"{contact} {message_id or '-'} {when}")

    async def note(self, case_id: str, event: str, now: float, detail: str) -> Case | None:
        """Something that happened to a case, on its timeline whatever the case's state (a receipt or a
        call's end may come after the case was escalated, handled or closed); None for an unknown case."""
        try:
            return await self.store.note(case_id, event, now, detail, late=True)
        except (UnknownCase, ValueError):
            return None

    async def flash_receipt(self, message_id: str, owner: str, now: float) -> None:
        """The SMSC's delivery receipt for a warning flash (the person's or a relative's)."""
        case_id = owner.removeprefix(OWNER_PREFIX).removeprefix(FAMILY_OWNER_PREFIX)
        await self.note(case_id, FLASH_DELIVERED, now, message_id)

    async def call_ringing(self, case_id: str, now: float, status: int) -> None:
        """The robot call is ringing the handset (its first 180 or 183)."""
        await self.note(case_id, ROBOT_RINGING, now, str(status))

    async def call_ended(self, case_id: str, now: float, outcome: str, status: int) -> None:
        """The robot call's outcome (answered, confirmed, no_answer, busy ...) and final SIP status."""
        await self.note(case_id, ROBOT_CALL, now, f"{outcome} {status}")

    async def _flash_family(self, case: Case, contacts: list[str], now: float) -> list[tuple[str, str]]:
        """Flash each contact the family template; returns who got which message id ("" refused)."""
        if not contacts:
            return []
        text = self.templates.render(case.fraud_types, "family", case.subscriber)
        sent = []
        for contact in contacts:
            if contact in self.config.opt_out or contact == case.subscriber:
                continue
            sent.append((contact, await self._send(contact, text, case, now, victim=False) or ""))
        return sent

    def _family_warned(self, case: Case, sent: list[tuple[str, str]], now: float, when: str) -> None:
        for contact, message_id in sent:
            self.events.emit(
                "case.family_warned", **self._fields(case, now, contact=contact, when=when, flash_message_id=message_id)
            )

    async def _escalate(self, case: Case, now: float, reason: str, *, final: bool) -> None:
        # The family first, the escalation recorded after: an instance killed in between leaves the
        # case open, and the one that takes it over warns them (again) and records it.
        sent = await self._flash_family(case, list(case.family), now)
        await self._note_family(case, sent, now, "escalation")
        moved = await self.store.transition(case.id, ESCALATED, now, instance=self.instance, detail=reason)
        self.events.emit("case.escalated", **self._fields(moved, now, reason=reason, final=final))
        self._family_warned(moved, sent, now, "escalation")

    @staticmethod
    def _fields(case: Case, now: float, **extra: Any) -> dict[str, Any]:
        return {
            "at": now,
            "case_id": case.id,
            "subscriber": case.subscriber,
            "state": case.state,
            "tier": case.tier,
            "fraud_types": list(case.fraud_types),
            "attempts": case.attempts,
            **extra,
        }


#: The event each desk step publishes.
DESK_EVENTS = {DESK_CLAIM: "case.claimed", DESK_NOTE: "case.noted", CLOSED: "case.closed"}


async def desk_step(
    store: StateStore, events: EventSink, case_id: str, action: str, now: float, operator: str, detail: str = ""
) -> Case:
    """Claim (``desk_claim``), note (``desk_note``) or close (``closed``, ``detail`` the outcome) an
    open or escalated case in the store, and publish it. A closed case is never due again, so the
    robot loop stops at once, whichever instance drives it; ``case.closed`` carries the outcome as
    ``afgw case close`` does. ValueError / UnknownCase as :meth:`StateStore.desk`."""
    case = await store.desk(case_id, action, now, operator, detail)
    fields = DissuasionEngine._fields(case, now, operator=operator, source="operator")
    if action == CLOSED:
        fields.update(outcome=detail, detail=detail)
    elif detail:
        fields["note"] = detail
    events.emit(DESK_EVENTS[action], **fields)
    return case


def _since_last_attempt(case: Case) -> tuple[Transition, ...]:
    """The transitions since the last recorded attempt (since the case opened, before the first)."""
    for i in range(len(case.transitions) - 1, -1, -1):
        if case.transitions[i].event == "attempt":
            return case.transitions[i + 1 :]
    return case.transitions
