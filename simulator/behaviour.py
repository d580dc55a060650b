"""What the people holding the simulated handsets do: behaviour profiles, and the person who follows one.

A :class:`Profile` is plain data (the scenario files name and tune them): how a person treats a
ringing phone (:class:`CallHabit`) and a flash SMS popping up on the screen (:class:`FlashHabit`).
Each habit has a probability, a delay, and a number of first occurrences that go unnoticed (the
phone in a bag for the first two warnings, say). A :class:`Person` is one subscriber following a
profile: the handset (SIP side) asks it whether and when to pick up and which key to press, the
simulated SMSC (SMS side) asks it whether and when the flash is read and acknowledged.

Reproducible runs: every draw comes from one seeded source, :class:`Population`, which gives each
number its own stream derived from the seed and the number. The draws of one person therefore do not
depend on how the calls and messages of everyone else interleave on the event loop. Every delay runs
on the population's :class:`~simulator.clock.SimClock`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from simulator.clock import SimClock

__all__ = [
    "ATTENTIVE",
    "CAUTIOUS",
    "PROFILES",
    "UNREACHABLE",
    "CallHabit",
    "FlashHabit",
    "Moment",
    "Person",
    "Population",
    "Profile",
]

KEYPAD = frozenset("0123456789*#")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: {value!r} is not a probability between 0 and 1")


def _check_delay(name: str, value: float | None) -> None:
    if value is not None and not value >= 0.0:
        raise ValueError(f"{name}: {value!r} is not a delay in seconds (0 or more)")


def _check_range(low: float, high: float | None) -> None:
    if high is not None and high < low:
        raise ValueError(f"after_max: {high!r} is shorter than after ({low!r})")


@dataclass(frozen=True, slots=True)
class CallHabit:
    """When the phone rings."""

    #: Probability of picking up a call that is noticed.
    answer: float = 1.0
    #: The same when the screen shows the verified 反诈名片 (people trust it more); None: ``answer``.
    answer_verified: float | None = None
    #: Seconds of ringing before picking up: ``after``, or drawn evenly up to ``after_max``.
    after: float = 8.0
    after_max: float | None = None
    #: The first ``misses`` calls ring unnoticed, whatever ``answer`` says.
    misses: int = 0
    #: A key pressed once the call is set up (the robot asks for one on high risk); None: no key.
    key: str | None = None
    #: Seconds after the call is set up before the key is pressed.
    key_after: float = 2.0
    #: Seconds after the call is set up before hanging up; None: the caller hangs up.
    hang_up_after: float | None = None

    def __post_init__(self) -> None:
        _check_probability("answer", self.answer)
        if self.answer_verified is not None:
            _check_probability("answer_verified", self.answer_verified)
        for name in ("after", "after_max", "key_after", "hang_up_after"):
            _check_delay(name, getattr(self, name))
        _check_range(self.after, self.after_max)
        if self.misses < 0:
            raise ValueError(f"misses: {self.misses!r} is not a count")
        if self.key is not None and (len(self.key) != 1 or self.key not in KEYPAD):
            raise ValueError(f"key: {self.key!r} is not one key of a keypad")


@dataclass(frozen=True, slots=True)
class FlashHabit:
    """When a flash SMS (class 0) pops up: read it and press OK, which the handset answers with the
    SME manual/user acknowledgement the sender asked for, or leave it unread."""

    #: Probability of reading and acknowledging a flash that is noticed.
    read: float = 1.0
    #: Seconds between the flash popping up and the person pressing OK: ``after``, or drawn evenly up
    #: to ``after_max``.
    after: float = 30.0
    after_max: float | None = None
    #: The first ``misses`` flashes go unnoticed, whatever ``read`` says.
    misses: int = 0

    def __post_init__(self) -> None:
        _check_probability("read", self.read)
        _check_delay("after", self.after)
        _check_delay("after_max", self.after_max)
        _check_range(self.after, self.after_max)
        if self.misses < 0:
            raise ValueError(f"misses: {self.misses!r} is not a count")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    calls: CallHabit = CallHabit()
    flashes: FlashHabit = FlashHabit()


#: Picks up after a few rings and reads a flash within half a minute.
ATTENTIVE = Profile("attentive", CallHabit(answer=1.0, after=8.0), FlashHabit(read=1.0, after=30.0))
#: Picks up and presses 1 when asked to confirm; reads flashes too.
CAUTIOUS = Profile("cautious", CallHabit(answer=1.0, after=5.0, key="1"), FlashHabit(read=1.0, after=20.0))
#: Never picks up and never reads a flash: the case that ends with people at the door.
UNREACHABLE = Profile("unreachable", CallHabit(answer=0.0), FlashHabit(read=0.0))
PROFILES = {p.name: p for p in (ATTENTIVE, CAUTIOUS, UNREACHABLE)}


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of what happened to a person, on the simulation clock (for reports and timelines)."""

    at: float
    what: str  # rang, answered, let_ring, key_pressed, flash_shown, flash_read, flash_unread
    detail: str = ""


@dataclass(eq=False)
class Person:
    """One subscriber following ``profile``, drawing from their own stream of the seeded source."""

    number: str
    profile: Profile
    clock: SimClock
    rng: random.Random
    calls_rung: int = 0
    flashes_shown: int = 0
    diary: list[Moment] = field(default_factory=list)

    def note(self, what: str, detail: str = "") -> None:
        self.diary.append(Moment(self.clock(), what, detail))

    def pick_up(self, detail: str = "", *, verified: bool = False) -> float | None:
        """The phone rings (``verified``: showing the verified label): seconds until the person
        answers, or None when they let it ring."""
        habit = self.profile.calls
        self.calls_rung += 1
        self.note("rang", detail)
        chance = habit.answer if not verified or habit.answer_verified is None else habit.answer_verified
        # Two draws per call whatever the outcome, so that a miss does not shift later draws.
        draw, spread = self.rng.random(), self.rng.random()
        if self.calls_rung <= habit.misses or draw >= chance:
            self.note("let_ring", detail)
            return None
        return _delay(habit.after, habit.after_max, spread)

    def read_flash(self, detail: str = "") -> float | None:
        """A flash popped up: seconds until the person presses OK, or None when it stays unread."""
        habit = self.profile.flashes
        self.flashes_shown += 1
        self.note("flash_shown", detail)
        draw, spread = self.rng.random(), self.rng.random()
        if self.flashes_shown <= habit.misses or draw >= habit.read:
            self.note("flash_unread", detail)
            return None
        return _delay(habit.after, habit.after_max, spread)


def _delay(low: float, high: float | None, spread: float) -> float:
    return low if high is None else low + (high - low) * spread


class Population:
    """The people of one simulation run: one seed, one clock, a person per number."""

    def __init__(self, seed: int, clock: SimClock) -> None:
        self.seed = seed
        self.clock = clock
        self._people: dict[str, Person] = {}

    def add(self, number: str, profile: Profile) -> Person:
        if number in self._people:
            raise ValueError(f"{number} already has a person")
        # A string seed is hashed (SHA-512) by random.Random: the same stream on every run and platform.
        person = Person(number, profile, self.clock, random.Random(f"{self.seed}/{number}"))
        self._people[number] = person
        return person

    def get(self, number: str) -> Person | None:
        return self._people.get(number)

    def __iter__(self) -> Iterator[Person]:
        return iter(self._people.values())

    def __len__(self) -> int:
        return len(self._people)
