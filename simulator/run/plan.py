"""A scenario drawn into a plan: every SMS, call, spoof attempt and instruction of the run, with its
simulated time, sender, recipient and text, decided before anything is sent.

Drawing everything first, from one ``random.Random`` seeded with the scenario's seed, makes a run
reproducible whatever the order in which the gateway answers, and tells the runner which subscribers
will need a handset (only those who receive a call) before the run starts. ``scale`` shrinks every
count (a test plays the shipped files in less time); the population keeps its size.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from simulator.run import texts
from simulator.scenarios import Scenario
from simulator.scenarios.model import SPOOF_KINDS, Profile, Window

__all__ = ["CallItem", "Instruction", "Item", "Plan", "SmsItem", "SpoofItem", "VerifiedCall", "draw"]

#: The centre's names for the fraud categories the scenario files use (instruction ``fraud_type``).
FRAUD_TYPES = {
    "order_brushing": "刷单返利",
    "investment": "虚假投资理财",
    "loan": "虚假网络贷款",
    "customer_service": "冒充电商物流客服",
    "police_impersonation": "冒充公检法",
    "acquaintance_impersonation": "冒充领导熟人",
    "phishing": "钓鱼网站",
}
#: Numbers a fraud caller borrows when the scenario says caller_id: trusted_number.
TRUSTED_NUMBERS = ("95588", "95533", "110")


@dataclass(frozen=True, slots=True)
class SmsItem:
    at_s: float
    category: str  # a legitimate kind (bank, friend ...) or a fraud category
    fraud: bool
    account: str  # the ESME that sends it: services, p2p or bulk
    sender: str
    recipient: str
    text: str
    evasion: str | None = None


@dataclass(frozen=True, slots=True)
class CallItem:
    at_s: float
    category: str
    fraud: bool
    caller: str
    callee: str


@dataclass(frozen=True, slots=True)
class SpoofItem:
    at_s: float
    family: str  # one of SPOOF_KINDS
    turn: int  # which of the family's variants, in turn
    callee: str


@dataclass(frozen=True, slots=True)
class VerifiedCall:
    at_s: float
    number: str
    callee: str


@dataclass(frozen=True, slots=True)
class Instruction:
    at_s: float
    reference: str
    subscriber: str
    tier: str
    fraud_type: str
    family: tuple[str, ...] = ()


Item = SmsItem | CallItem | SpoofItem | VerifiedCall | Instruction


@dataclass
class Plan:
    scenario: Scenario
    items: list[Item] = field(default_factory=list)
    #: Subscriber number -> the name of the behaviour profile they follow (everyone the plan touches).
    profiles: dict[str, str] = field(default_factory=dict)
    #: Subscriber number -> their family contact (亲情号), for those who have one.
    family: dict[str, str] = field(default_factory=dict)

    @property
    def callees(self) -> set[str]:
        """Subscribers whose phone may ring, who need a registered handset: those called, those the
        centre names, and those fraud reaches by SMS (the gateway's own risk score may open a
        dissuasion case for them, and its robot then calls)."""
        ringing = {i.callee for i in self.items if isinstance(i, CallItem | SpoofItem | VerifiedCall)}
        ringing |= {i.recipient for i in self.items if isinstance(i, SmsItem) and (i.fraud or i.sender.startswith("+"))}
        return ringing | {i.subscriber for i in self.items if isinstance(i, Instruction)}

    def profile(self, name: str) -> Profile:
        return next(p for p in self.scenario.population.profiles if p.name == name)


def _times(window: Window, count: int, rng: random.Random) -> list[float]:
    """``count`` moments in ``window`` following its pattern, in time order."""
    span = window.end - window.start
    out = []
    for _ in range(count):
        if window.pattern == "burst":
            at = window.start + span * min(1.0, max(0.0, rng.gauss(0.5, 0.12)))
        elif window.pattern == "day":
            # Busier by day: a hump that peaks in the early afternoon of the window, never zero.
            while True:
                x = rng.random()
                if rng.random() < 0.15 + 0.85 * math.sin(math.pi * x) ** 2:
                    break
            at = window.start + span * x
        else:
            at = window.start + span * rng.random()
        out.append(at)
    return sorted(out)


def _scaled(count: int, scale: float) -> int:
    return count if scale >= 1.0 else max(1, round(count * scale)) if count else 0


class _Town:
    """Who lives here: numbers by index, each one's profile and family contact drawn from the seed."""

    def __init__(self, scenario: Scenario, plan: Plan) -> None:
        self.population = scenario.population
        self.plan = plan
        self.seed = scenario.seed

    def pick(self, rng: random.Random) -> str:
        index = rng.randrange(self.population.count)
        number = self.population.numbers.number(index)
        if number not in self.plan.profiles:
            own = random.Random(f"{self.seed}/town/{number}")
            draw, total = own.random(), 0.0
            chosen = self.population.profiles[-1].name
            for profile in self.population.profiles:
                total += profile.share
                if draw < total:
                    chosen = profile.name
                    break
            self.plan.profiles[number] = chosen
            if own.random() < self.population.family_contacts and self.population.count > 1:
                # A relative in the same town: another subscriber, who has a handset and habits too.
                relative = self.population.numbers.number(
                    (index + 1 + self.population.count // 2) % self.population.count
                )
                self.plan.family[number] = relative
                if relative not in self.plan.profiles:
                    self.plan.profiles[relative] = self.population.profiles[0].name
        return number


def draw(scenario: Scenario, *, scale: float = 1.0) -> Plan:
    """Every item of the run, in time order."""
    plan = Plan(scenario)
    rng = random.Random(scenario.seed)
    town = _Town(scenario, plan)
    traffic = scenario.traffic
    items: list[Item] = []
    for stream in traffic.legitimate_sms:
        account = "p2p" if stream.kind == "friend" else "services"
        for at in _times(stream.window, _scaled(stream.count, scale), rng):
            items.append(
                SmsItem(
                    at,
                    stream.kind,
                    False,
                    account,
                    texts.legit_sender(stream.kind, rng),
                    town.pick(rng),
                    texts.legit_text(stream.kind, rng),
                )
            )
    for campaign in traffic.fraud_sms:
        count = _scaled(campaign.count, scale)
        evading = round(count * campaign.evasion_share) if campaign.evasions else 0
        for i, at in enumerate(_times(campaign.window, count, rng)):
            # Every n-th text evades, each evasion in turn, so the share holds however small the count.
            evasion = None
            if evading and i % max(1, round(count / evading)) == 0:
                evasion = campaign.evasions[(i // max(1, round(count / evading))) % len(campaign.evasions)]
            items.append(
                SmsItem(
                    at,
                    campaign.category,
                    True,
                    "bulk",
                    texts.fraud_sender(campaign.sender, rng),
                    town.pick(rng),
                    texts.fraud_text(campaign.category, rng, evasion),
                    evasion,
                )
            )
    if (legit := traffic.legitimate_calls) is not None:
        for at in _times(legit.window, _scaled(legit.count, scale), rng):
            abroad = rng.random() < legit.international_share
            caller = f"+44{rng.randrange(10**10):010d}" if abroad else f"86139{rng.randrange(10**8):08d}"
            items.append(CallItem(at, "international" if abroad else "people", False, caller, town.pick(rng)))
    for call in traffic.fraud_calls:
        for at in _times(call.window, _scaled(call.count, scale), rng):
            if call.caller_id == "trusted_number":
                caller = rng.choice(TRUSTED_NUMBERS)
            elif call.caller_id == "local_mobile":
                caller = f"86138{rng.randrange(10**8):08d}"
            else:
                caller = f"86170{rng.randrange(10**8):08d}"
            if call.origin == "international":
                # From abroad: a foreign number, or (spoofed) a domestic one in its international form.
                caller = ("+" + caller) if call.caller_id == "local_mobile" else f"+63{rng.randrange(10**9):09d}"
            items.append(CallItem(at, call.category, True, caller, town.pick(rng)))
    if (spoofs := traffic.spoofed_labels) is not None:
        per_kind = _scaled(spoofs.per_kind, scale)
        for family in spoofs.kinds or SPOOF_KINDS:
            for turn, at in enumerate(_times(spoofs.window, per_kind, rng)):
                items.append(SpoofItem(at, family, turn, town.pick(rng)))
    if (verified := traffic.verified_calls) is not None:
        for at in _times(verified.window, _scaled(verified.count, scale), rng):
            items.append(VerifiedCall(at, verified.number, town.pick(rng)))
    if (instructions := traffic.instructions) is not None:
        tiers, weights = zip(*instructions.risk, strict=True)
        taken: set[str] = set()
        for n, at in enumerate(_times(instructions.window, _scaled(instructions.count, scale), rng), 1):
            subscriber = town.pick(rng)
            while subscriber in taken and len(taken) < scenario.population.count // 2:
                subscriber = town.pick(rng)
            taken.add(subscriber)
            category = rng.choice(instructions.categories)
            relative = plan.family.get(subscriber)
            items.append(
                Instruction(
                    at,
                    f"{scenario.name.upper()}-{scenario.seed}-{n:05d}",
                    subscriber,
                    rng.choices(tiers, weights)[0],
                    FRAUD_TYPES.get(category, category),
                    (relative,) if relative else (),
                )
            )
    items.sort(key=lambda item: item.at_s)
    plan.items = items
    return plan
