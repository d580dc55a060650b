"""The town's people for a run: a :class:`~simulator.behaviour.Person` per subscriber the plan touches,
following the scenario's profile, who also keeps the lines of their handset timeline.

The scenario's habits map onto :mod:`simulator.behaviour`'s: answer with probability ``answer``
(``answer_verified`` when the screen shows the verified 反诈名片) after a delay drawn from the range;
a person who ``ignores_unknown`` lets ring every call from a number that is neither in their contacts
nor verified; everyone presses 1 when a robot call asks them to confirm; a flash is read and
acknowledged with probability ``acknowledge`` after its delay.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator.behaviour import CallHabit, FlashHabit, Person, Population
from simulator.behaviour import Profile as Habits
from simulator.clock import SimClock
from simulator.report import TimelineEntry
from simulator.scenarios.model import Profile

if TYPE_CHECKING:
    from simulator.handset import Handset

__all__ = ["Subscriber", "Town", "habits_of"]


def habits_of(profile: Profile) -> Habits:
    calls, flash = profile.calls, profile.flash
    return Habits(
        profile.name,
        CallHabit(
            answer=calls.answer,
            answer_verified=calls.answer_verified,
            after=calls.delay.low,
            after_max=calls.delay.high,
            key="1",
            key_after=2.0,
        ),
        FlashHabit(read=flash.acknowledge, after=flash.delay.low, after_max=flash.delay.high),
    )


@dataclass(eq=False)
class Subscriber(Person):
    ignores_unknown: bool = False
    #: Numbers this person knows (their friends who call them).
    contacts: set[str] = field(default_factory=set)
    handset: Handset | None = None
    #: Simulated seconds of the run's start on the clock (timeline entries count from there).
    start: float = 0.0
    timeline: list[TimelineEntry] = field(default_factory=list)
    #: Told when this person's phone rings (the runner's clock slows while a robot call rings).
    on_ring: Callable[[str], None] | None = None

    def at_s(self) -> float:
        return self.clock() - self.start

    def pick_up(self, detail: str = "", *, verified: bool = False) -> float | None:
        if self.on_ring is not None:
            self.on_ring(self.number)
        shown = self.handset.screen.last if self.handset is not None else None
        caller = shown.caller_number if shown is not None else detail.split(" ", 1)[0]
        if shown is not None:
            self.timeline.append(
                TimelineEntry(
                    self.at_s(),
                    "call_ringing",
                    caller=caller,
                    label=shown.label or shown.display_name or "",
                    verified=shown.badge,
                )
            )
        if self.ignores_unknown and not verified and caller.lstrip("+") not in self.contacts:
            self.calls_rung += 1
            self.rng.random(), self.rng.random()  # the same two draws as any call, so later ones line up
            self.note("let_ring", detail)
            return None
        return super().pick_up(detail, verified=verified)

    def note(self, what: str, detail: str = "") -> None:
        super().note(what, detail)
        if what == "answered":
            self.timeline.append(TimelineEntry(self.at_s(), "call_answered"))
        elif what == "let_ring":
            self.timeline.append(TimelineEntry(self.at_s(), "call_missed", detail="let it ring"))


class Town(Population):
    """The run's population: :meth:`add` makes a :class:`Subscriber` of the scenario's profile."""

    def __init__(self, seed: int, clock: SimClock, start: float) -> None:
        super().__init__(seed, clock)
        self.start = start
        self.subscribers: dict[str, Subscriber] = {}

    def add_subscriber(self, number: str, profile: Profile) -> Subscriber:
        person = Subscriber(
            number,
            habits_of(profile),
            self.clock,
            random.Random(f"{self.seed}/{number}"),
            ignores_unknown=profile.calls.ignores_unknown,
            start=self.start,
        )
        self._people[number] = person
        self.subscribers[number] = person
        return person
