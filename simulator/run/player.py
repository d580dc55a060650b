"""The scenario runner: plays a :class:`~simulator.run.plan.Plan` through a gateway on the injected
clock and counts, into a :class:`~simulator.report.Report`, what crossed the sockets.

Time. One :class:`~simulator.clock.ManualClock` is the gateway's wall clock (embedded) and the
people's: the runner moves it on every few milliseconds by ``time_speed`` simulated seconds per real
second, sends each item when its moment comes, and holds the clock while too much is in flight (so
that the pace is "at most" ``time_speed``). While a call the runner did not place (the dissuasion
robot's) rings a handset, the clock runs at :data:`~simulator.run.world.ROBOT_PACE`: the robot waits
in real seconds, and at that pace its waits last as long in simulated time as the shipped ones.

Counting, from the wire only:

- SMS: the submit_sm_resp status of each message's first part (not ESME_ROK: blocked); what reached
  the recipient's inbox at the SMSC (as sent: passed; with the tag prefix: tagged); a warning flash
  from the warning sender that reached the recipient after the message (warned). Flashes of the
  dissuasion engine (named in its case events) are not warnings about a message.
- Calls: the trunk's final SIP status and what the callee's screen showed (rang with the call tag:
  warned; with another label: labelled; never rang and refused: blocked); for genuine centre calls,
  whether the screen showed 反诈名片 with the verified mark; for spoofs, the answer and whether the
  mark ever showed.
- Dissuasion: the centre's view built from the gateway's case events.
- Latency: measured by the ESMEs (submit_sm to submit_sm_resp) and the trunk (INVITE to first answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.smpp.constants import CommandStatus
from protocols.stir import LabelRegistry
from simulator.centre_mqtt import CentreView
from simulator.clock import ManualClock
from simulator.esme import SimulatedEsme
from simulator.handset import Handset
from simulator.report import CallOutcome, HandsetTimeline, Report, SmsOutcome, TimelineEntry
from simulator.report_expectations import evaluate
from simulator.run.people import Town
from simulator.run.plan import CallItem, Instruction, Item, Plan, SmsItem, SpoofItem, VerifiedCall, draw
from simulator.run.trunk import Rung, TownTrunk
from simulator.run.world import ROBOT_PACE, World
from simulator.scenarios import Scenario
from simulator.smsc import SimulatedSmsc, StoredSms
from simulator.spoofer import Spoof, SpoofKit, spoof_variants

__all__ = ["Progress", "Run", "spoof_family"]

#: Real seconds between clock steps: at the default scenario's pace, under a minute of the clock each.
TICK = 0.005
#: Items in flight above which the clock waits for the gateway.
MAX_IN_FLIGHT = 256
DAY = 86400.0
#: Local time of the town (China Standard Time): a run starts at local midnight.
UTC_OFFSET = 8 * 3600.0

Progress = Callable[[float, float, str], None]


def spoof_family(name: str) -> str:
    """The scenario's spoof family (SPOOF_KINDS) of one of :func:`spoof_variants`' tricks."""
    if name.startswith(("display-number", "pai-display-number")):
        return "number_in_name"
    if name.startswith("display-") or name == "from-user":
        return "display_name"
    if name in {
        "pai",
        "call-info-reason",
        "call-info-jcard",
        "remote-party-id",
        "vendor-header",
        "p-caller-label",
        "x-label",
        "any-vendor-header",
        "contact-display",
        "subject",
    }:
        return "headers"
    if name in {
        "verstat-in-from",
        "authorised-no-identity",
        "authorised-unknown-x5u",
        "forged-signature",
        "untrusted-ca",
    } or name.startswith("attest-"):
        return "authorised_number"
    return "token_misuse"


@dataclass
class _SmsSent:
    item: SmsItem
    at_s: float
    status: int | None


@dataclass
class _CallPlaced:
    item: CallItem | SpoofItem | VerifiedCall
    at_s: float
    rung: Rung
    spoof: str = ""


@dataclass
class _Delivery:
    at_s: float
    sms: StoredSms


def _start_of_day(now: float) -> float:
    """Local midnight (UTC+8) of the day ``now`` falls in."""
    return (now + UTC_OFFSET) // DAY * DAY - UTC_OFFSET


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@dataclass
class Run:
    """One play of a scenario: set up with :meth:`prepare`, played by :meth:`play` inside a world."""

    scenario: Scenario
    scale: float = 1.0
    progress: Progress | None = None
    plan: Plan = field(init=False)
    clock: ManualClock = field(init=False)
    view: CentreView = field(default_factory=CentreView)

    def __post_init__(self) -> None:
        self.plan = draw(self.scenario, scale=self.scale)
        self.start = _start_of_day(time.time())
        self.clock = ManualClock(self.start)
        self.town = Town(self.scenario.seed, self.clock, self.start)
        for number, profile in sorted(self.plan.profiles.items()):
            self.town.add_subscriber(number, self.plan.profile(profile))
        self.deliveries: dict[str, list[_Delivery]] = defaultdict(list)
        self.smsc: SimulatedSmsc | None = None
        self.sent_sms: list[_SmsSent] = []
        self.placed: list[_CallPlaced] = []
        self.handsets: dict[str, Handset] = {}
        self.failures: list[str] = []
        self.duration = self.scenario.duration
        # A scaled-down run has fewer items per simulated hour: its clock runs faster (up to four
        # times: every millisecond the gateway takes shows as that many more simulated seconds).
        self.time_speed = self.scenario.time_speed / min(1.0, max(self.scale, 0.25))

    # --- the SMSC the gateway relays to, started before the world ------------------------------------

    async def start_smsc(self, host: str, port: int, system_id: str, password: str) -> SimulatedSmsc:
        def stored(sms: StoredSms) -> None:
            self.deliveries[sms.destination].append(_Delivery(self.clock() - self.start, sms))

        self.smsc = SimulatedSmsc(system_id=system_id, password=password, people=self.town, on_stored=stored)
        await self.smsc.start(host, port)
        return self.smsc

    # --- the run ------------------------------------------------------------------------------------

    async def play(self, world: World) -> Report:
        assert self.smsc is not None
        _raise_file_limit(len(self.plan.callees) + 1024)
        esmes = {
            role: SimulatedEsme(*world.smpp, a.system_id, a.password, window=50) for role, a in world.accounts.items()
        }
        for esme in esmes.values():
            await esme.bind()
        trunk = TownTrunk(world.sip, self.clock, domain=world.domain)
        await trunk.start(world.trunk_host)
        registry = LabelRegistry(world.labels.labels, world.labels.plan)
        await self._handsets(world)
        self._say("ready", 0.0)
        try:
            await self._drive(world, esmes, trunk, registry)
        finally:
            for esme in esmes.values():
                with contextlib.suppress(Exception):
                    await esme.unbind()
            await trunk.stop()
            await asyncio.gather(*(handset.stop() for handset in self.handsets.values()))
        return self.report(world, esmes, trunk, registry)

    async def _handsets(self, world: World) -> None:
        gate = asyncio.Semaphore(32)

        async def one(number: str) -> None:
            person = self.town.subscribers[number]
            handset = Handset(
                number, world.sip, password=world.passwords.get(number), domain=world.domain, person=person
            )
            person.handset = handset
            self.handsets[number] = handset
            async with gate:
                await handset.start()
                response = await handset.register(3600)
            if response.status != 200:
                self.failures.append(f"handset {number} could not register: {response.status}")

        await asyncio.gather(*(one(n) for n in sorted(self.plan.callees)))

    def _robot_ringing(self, trunk: TownTrunk, ringing: set[str]) -> int:
        """How many handsets ring (or are in a call) with a call the trunk did not place: the robot's."""
        for number in list(ringing):
            if not [c for c in self.handsets[number].live_calls if c not in trunk.placed]:
                ringing.discard(number)
        return len(ringing)

    async def _drive(
        self, world: World, esmes: dict[str, SimulatedEsme], trunk: TownTrunk, registry: LabelRegistry
    ) -> None:
        loop = asyncio.get_running_loop()
        items = self.plan.items
        in_flight: set[asyncio.Task[None]] = set()
        ringing: set[str] = set()
        for person in self.town.subscribers.values():
            person.on_ring = ringing.add
        index, sim = 0, 0.0
        last = loop.time()
        next_report = 0.0
        drained_at: float | None = None
        # After the last item, time goes on until what is in flight is over (calls ring out, people
        # read their flashes) and the dissuasion cases it opened have run their course.
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            elapsed, last = min(now - last, 0.1), now
            robot_ringing = self._robot_ringing(trunk, ringing)
            # A signed call's PASSporT is fresh for a minute of the clock: the clock stands still
            # while one waits for the gateway's verdict (the trunk's until its phone rings; the
            # robot's, seen in this process, until its phone rings). While the robot's call rings it
            # runs slower: the robot waits in real seconds.
            signed_waiting = trunk.signed_in_flight > 0 or (
                world.robot_calls is not None and world.robot_calls() > robot_ringing
            )
            # A person's acknowledgement of a flash is on its way to the gateway: the clock waits for
            # its answer too, so that the case hears of it when they pressed OK, at any time_speed.
            acks_waiting = self.smsc is not None and self.smsc.sending > 0
            if len(in_flight) < MAX_IN_FLIGHT and not signed_waiting and not acks_waiting:
                pace = ROBOT_PACE if robot_ringing else self.time_speed
                sim += pace * elapsed
                self.clock.advance_to(self.start + sim)
            while index < len(items) and items[index].at_s <= sim and len(in_flight) < MAX_IN_FLIGHT:
                task = loop.create_task(self._send(items[index], world, esmes, trunk, registry))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                index += 1
            if sim >= next_report:
                self._say(f"{index}/{len(items)} items, {len(in_flight)} in flight", sim)
                next_report = sim + self.duration / 20
            if index >= len(items) and sim >= self.duration and not in_flight and not ringing:
                if drained_at is None:
                    drained_at = now
                if not self._cases_open():
                    break
                if sim >= self.duration * 1.5 and now - drained_at >= world.drain_s:
                    break
        self._say(f"{index}/{len(items)} items, done", min(sim, self.duration))
        # The last answers and events: a moment of real time on a still clock.
        await asyncio.sleep(0.3)

    def _cases_open(self) -> bool:
        return any(c.state == "open" for c in self.view.cases.values())

    def _say(self, what: str, sim: float) -> None:
        if self.progress is not None:
            self.progress(min(sim, self.duration), self.duration, what)

    async def _send(
        self, item: Item, world: World, esmes: dict[str, SimulatedEsme], trunk: TownTrunk, registry: LabelRegistry
    ) -> None:
        at_s = self.clock() - self.start
        try:
            if isinstance(item, SmsItem):
                status: int | None
                try:
                    responses = await esmes[item.account].submit(item.sender, item.recipient, item.text)
                    status = responses[0].command_status
                except Exception as exc:  # a dead bind or a timeout: counted as not delivered
                    self.failures.append(f"SMS to {item.recipient}: {exc!r}")
                    status = None
                self.sent_sms.append(_SmsSent(item, at_s, status))
            elif isinstance(item, CallItem):
                if not item.fraud:
                    self.town.subscribers[item.callee].contacts.add(item.caller.lstrip("+"))
                rung = await trunk.ring(item.callee, item.caller)
                self.placed.append(_CallPlaced(item, at_s, rung))
            elif isinstance(item, VerifiedCall):
                identity = world.centre_signer.sign(
                    orig=item.number,
                    dest=item.callee,
                    iat=int(world.signing_clock()),
                    label=registry.lookup(item.number),
                ).serialise()
                rung = await trunk.ring(item.callee, item.number, identity=(identity,))
                self.placed.append(_CallPlaced(item, at_s, rung))
            elif isinstance(item, SpoofItem):
                spoof = self._spoof(item, world, registry)
                rung = await trunk.ring(
                    item.callee,
                    spoof.caller,
                    display=spoof.display,
                    from_uri=spoof.from_uri,
                    identity=spoof.identity,
                    headers=spoof.headers,
                )
                self.placed.append(_CallPlaced(item, at_s, rung, spoof.name))
            elif world.instruct is not None:
                await world.instruct(_instruction_payload(item))
        except Exception as exc:
            self.failures.append(f"{type(item).__name__} at {item.at_s:.0f}s: {exc!r}")

    def _spoof(self, item: SpoofItem, world: World, registry: LabelRegistry) -> Spoof:
        kit = SpoofKit(
            registry, item.callee, world.centre_signer, world.rogue, domain=world.domain, clock=world.signing_clock
        )
        variants = [s for s in spoof_variants(kit) if spoof_family(s.name) == item.family]
        return variants[item.turn % len(variants)]

    # --- the report -----------------------------------------------------------------------------------

    def report(
        self, world: World, esmes: dict[str, SimulatedEsme], trunk: TownTrunk, registry: LabelRegistry
    ) -> Report:
        s = self.scenario
        report = Report(scenario=s.name, seed=s.seed, duration_s=self.duration, subscribers=s.population.count)
        report.notes = list(world.notes) + ([f"counts scaled by {self.scale:g}"] if self.scale < 1 else [])
        case_flashes = _case_flash_ids(self.view)
        warnings = {
            number: sorted(
                (d for d in box if _is_warning(d.sms, world) and d.sms.message_id not in case_flashes),
                key=lambda d: d.at_s,
            )
            for number, box in self.deliveries.items()
        }
        warned_items = _match_warnings(warnings, self.sent_sms, self.placed)
        report.sms.flash_warnings = sum(len(w) for w in warnings.values())
        self._count_sms(report, world, warned_items)
        self._count_calls(report, world, registry)
        for esme in esmes.values():
            report.smpp_latency.samples_ms.extend(x * 1000.0 for x in esme.latencies)
        report.invite_latency.samples_ms.extend(p.rung.first_answer_ms for p in self.placed)
        _dissuasion(report, self.view)
        report.timelines = self._timelines(world)
        report.expectations = evaluate(s.expectations, report)
        return report

    def _count_sms(self, report: Report, world: World, warned: set[int]) -> None:
        used: set[int] = set()
        for sent in sorted(self.sent_sms, key=lambda x: x.at_s):
            item = sent.item
            person = self.town.subscribers.get(item.recipient)
            if sent.status != CommandStatus.ESME_ROK:
                report.count_sms(item.category, fraud=item.fraud, outcome="blocked", at_s=sent.at_s)
                if person is not None:
                    person.timeline.append(
                        TimelineEntry(
                            sent.at_s, "sms_blocked", caller=item.sender, text=item.text, detail=item.category
                        )
                    )
                continue
            arrived = next(
                (
                    d
                    for d in self.deliveries.get(item.recipient, [])
                    if id(d) not in used
                    and d.sms.source == item.sender
                    and not d.sms.flash
                    and d.sms.text.endswith(item.text)
                ),
                None,
            )
            tagged = arrived is not None and arrived.sms.text == world.tag_prefix + item.text
            if arrived is not None:
                used.add(id(arrived))
            outcome: SmsOutcome = "warned" if id(sent) in warned else "tagged" if tagged else "passed"
            report.count_sms(
                item.category, fraud=item.fraud, outcome=outcome, at_s=sent.at_s, delivered=arrived is not None
            )

    def _count_calls(self, report: Report, world: World, registry: LabelRegistry) -> None:
        police = registry.lookup("96110")
        for placed in sorted(self.placed, key=lambda p: p.at_s):
            item = placed.item
            handset = self.handsets.get(item.callee)
            shown = handset.screen.find(placed.rung.call_id) if handset is not None else None
            if isinstance(item, SpoofItem):
                answer = f"{placed.rung.status} {placed.rung.reason_phrase}".strip()
                report.count_spoof(item.family, answer, at_s=placed.at_s, label_shown=bool(shown and shown.badge))
            elif isinstance(item, VerifiedCall):
                label = registry.lookup(item.number)
                showed = bool(shown and shown.badge and label is not None and shown.label == label.text)
                report.count_verified_call(label_shown=showed, at_s=placed.at_s)
            else:
                outcome: CallOutcome
                if shown is None:
                    outcome = "blocked"
                elif shown.display_name in world.call_warnings:
                    outcome = "warned"
                elif shown.display_name:
                    outcome = "labelled"
                else:
                    outcome = "passed"
                report.count_call(item.category, fraud=item.fraud, outcome=outcome, at_s=placed.at_s)
        _ = police

    def _timelines(self, world: World) -> list[HandsetTimeline]:
        assert self.smsc is not None
        for number, box in self.deliveries.items():
            person = self.town.subscribers.get(number)
            if person is None:
                continue
            for d in box:
                if d.sms.flash:
                    person.timeline.append(TimelineEntry(d.at_s, "flash", caller=d.sms.source, text=d.sms.text))
                elif d.sms.text.startswith(world.tag_prefix):
                    person.timeline.append(TimelineEntry(d.at_s, "sms_tagged", caller=d.sms.source, text=d.sms.text))
                else:
                    person.timeline.append(TimelineEntry(d.at_s, "sms", caller=d.sms.source, text=d.sms.text))
        for ack in self.smsc.acknowledgements:
            person = self.town.subscribers.get(ack.handset)
            if person is not None:
                person.timeline.append(TimelineEntry(ack.at - self.start, "flash_acknowledged"))
        for event in self.view.named("case.family_warned"):
            fields = event.get("fields", {})
            case = self.view.cases.get(str(fields.get("case_id", "")))
            person = self.town.subscribers.get(case.subscriber) if case is not None else None
            if person is not None:
                at = float(event.get("at", self.start)) - self.start
                person.timeline.append(TimelineEntry(at, "family_warning", detail=str(fields.get("contact", ""))))
        people = [p for p in self.town.subscribers.values() if p.timeline]
        # The most telling handsets: those that saw the most kinds of thing, then the most things.
        people.sort(key=lambda p: (-len({e.kind for e in p.timeline}), -len(p.timeline), p.number))
        return [
            HandsetTimeline(p.number, p.profile.name, sorted(p.timeline, key=lambda e: e.at_s))
            for p in people[: self.scenario.sample_handsets]
        ]


def _is_warning(sms: StoredSms, world: World) -> bool:
    """A warning flash about a message or call (not one of the dissuasion engine's)."""
    if not sms.flash or sms.source != world.warning_sender:
        return False
    return not world.warning_texts or any(sms.text.startswith(t) for t in world.warning_texts)


def _instruction_payload(item: Instruction) -> bytes:
    doc: dict[str, Any] = {
        "schema": 1,
        "reference": item.reference,
        "subscriber": item.subscriber,
        "tier": item.tier,
        "fraud_type": item.fraud_type,
    }
    if item.family:
        doc["family"] = list(item.family)
    return json.dumps(doc, ensure_ascii=False).encode()


def _case_flash_ids(view: CentreView) -> set[str]:
    ids = set()
    for name in ("case.attempt", "case.family_warned"):
        for event in view.named(name):
            message_id = event.get("fields", {}).get("flash_message_id")
            if message_id:
                ids.add(str(message_id))
    return ids


def _match_warnings(warnings: dict[str, list[_Delivery]], sms: list[_SmsSent], calls: list[_CallPlaced]) -> set[int]:
    """The ids of the accepted SMS a warning flash followed: each flash goes to the latest message or
    call to its recipient sent before it and not yet matched (a blocked one's warning included)."""
    candidates: dict[str, list[tuple[float, int, bool]]] = defaultdict(list)
    for s in sms:
        candidates[s.item.recipient].append((s.at_s, id(s), s.status == CommandStatus.ESME_ROK))
    for c in calls:
        candidates[c.item.callee].append((c.at_s, id(c), False))
    warned: set[int] = set()
    for number, flashes in warnings.items():
        pool = sorted(candidates.get(number, []))
        taken: set[int] = set()
        for flash in flashes:
            before = [c for c in pool if c[0] <= flash.at_s + 1e-6 and c[1] not in taken]
            if before:
                _at, ident, accepted = before[-1]
                taken.add(ident)
                if accepted:
                    warned.add(ident)
    return warned


def _dissuasion(report: Report, view: CentreView) -> None:
    d = report.dissuasion
    cases = list(view.cases.values())
    d.cases = len(cases)
    handled = [c for c in cases if c.state == "handled"]
    d.handled = len(handled)
    d.escalated = sum(1 for c in cases if c.state == "escalated")
    d.flash_sent = sum(c.flashes_sent for c in cases)
    d.calls_placed = sum(1 for c in cases for _, call in c.attempt_log if call == "placed")
    d.family_notified = sum(len(c.family_warned) for c in cases)
    attempts: dict[int, int] = defaultdict(int)
    for c in handled:
        attempts[max(1, c.attempts)] += 1
        if c.handled_at is not None and c.opened_at is not None:
            d.times_to_handle_s.append(c.handled_at - c.opened_at)
        else:
            d.times_to_handle_s.append(0.0)
    d.handled_on_attempt = dict(attempts)
    attempted = [c for c in cases if c.attempts > 0 or c.state == "handled"]
    reached = [
        c
        for c in attempted
        if c.state == "handled"
        or c.unconfirmed_answers
        or any(o in ("answered", "confirmed", "unconfirmed") for o in c.robot_calls)
    ]
    d.funnel = [
        ("opened", len(cases)),
        ("attempted", len(attempted)),
        ("reached", len(reached)),
        ("handled", len(handled)),
    ]


def console_progress(stream: Any = None) -> Progress:
    """Progress on ``stream``: one line rewritten in place on a terminal, a line per step otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()

    def show(sim: float, total: float, what: str) -> None:
        hours = sim / 3600
        line = f"  {hours:5.1f} h of {total / 3600:.1f} h simulated  {what}"
        if tty:
            out.write("\r" + line.ljust(78)[:120])
            if what.endswith("done"):
                out.write("\n")
        else:
            out.write(line + "\n")
        out.flush()

    return show
