"""Behaviour profiles and the people who follow them: decisions reproducible from the seed, delays on
the simulation clock."""

from __future__ import annotations

import asyncio

import pytest

from simulator.behaviour import ATTENTIVE, UNREACHABLE, CallHabit, FlashHabit, Population, Profile
from simulator.clock import ManualClock

T0 = 1_796_558_400.0


def _decisions(seed: int, numbers: list[str], profile: Profile, rounds: int) -> dict[str, list[float | None]]:
    population = Population(seed, ManualClock(T0))
    people = [population.add(n, profile) for n in numbers]
    return {p.number: [p.pick_up() for _ in range(rounds)] for p in people}


def test_the_same_seed_gives_the_same_people_whatever_order_they_are_asked_in() -> None:
    coin = Profile("coin", CallHabit(answer=0.5, after=4.0))
    numbers = [f"86138000000{i:02d}" for i in range(20)]
    first = _decisions(7, numbers, coin, 10)
    # Asked in the opposite order: each person's stream is their own.
    again = _decisions(7, list(reversed(numbers)), coin, 10)
    assert first == again
    other = _decisions(8, numbers, coin, 10)
    assert first != other
    answers = [d for ds in first.values() for d in ds]
    assert set(answers) == {None, 4.0}
    # p = 0.5 over 200 calls: about half picked up (seeded, so the same figure every run).
    assert 70 <= sum(1 for d in answers if d is not None) <= 130


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_probability_zero_never_and_one_always(p: float) -> None:
    profile = Profile("p", CallHabit(answer=p, after=3.0), FlashHabit(read=p, after=9.0))
    person = Population(1, ManualClock(T0)).add("8613800000001", profile)
    calls = {person.pick_up() for _ in range(50)}
    flashes = {person.read_flash() for _ in range(50)}
    assert calls == ({3.0} if p else {None})
    assert flashes == ({9.0} if p else {None})


def test_the_first_misses_go_unnoticed_then_the_habit_holds() -> None:
    profile = Profile("bag", CallHabit(answer=1.0, after=2.0, misses=1), FlashHabit(read=1.0, after=30.0, misses=2))
    person = Population(1, ManualClock(T0)).add("8613800000001", profile)
    assert [person.read_flash() for _ in range(4)] == [None, None, 30.0, 30.0]
    assert [person.pick_up() for _ in range(3)] == [None, 2.0, 2.0]
    assert [m.what for m in person.diary if m.what.startswith("flash")] == [
        "flash_shown",
        "flash_unread",
        "flash_shown",
        "flash_unread",
        "flash_shown",
        "flash_shown",
    ]


def test_the_shipped_profiles_do_what_their_names_say() -> None:
    population = Population(3, ManualClock(T0))
    attentive, unreachable = population.add("1001", ATTENTIVE), population.add("1002", UNREACHABLE)
    assert attentive.pick_up() == ATTENTIVE.calls.after
    assert attentive.read_flash() == ATTENTIVE.flashes.after
    assert unreachable.pick_up() is None
    assert unreachable.read_flash() is None
    assert population.get("1001") is attentive
    assert population.get("1003") is None
    with pytest.raises(ValueError, match="already has a person"):
        population.add("1001", UNREACHABLE)


def test_a_verified_label_changes_the_odds_and_delays_are_drawn_within_their_range() -> None:
    wary = Profile("wary", CallHabit(answer=0.0, answer_verified=1.0, after=5.0, after_max=15.0))
    person = Population(2, ManualClock(T0)).add("8613800000001", wary)
    assert [person.pick_up() for _ in range(20)] == [None] * 20  # an unlabelled number: never
    delays = [person.pick_up(verified=True) for _ in range(200)]
    assert all(d is not None and 5.0 <= d <= 15.0 for d in delays)
    assert len(set(delays)) > 100  # drawn, not fixed
    reader = Population(2, ManualClock(T0)).add("1", Profile("r", flashes=FlashHabit(after=10.0, after_max=20.0)))
    assert all(d is not None and 10.0 <= d <= 20.0 for d in (reader.read_flash() for _ in range(50)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CallHabit(answer=1.5), "answer: 1.5 is not a probability"),
        (lambda: FlashHabit(read=-0.1), "read: -0.1 is not a probability"),
        (lambda: CallHabit(after=-1.0), "after: -1.0 is not a delay"),
        (lambda: CallHabit(key="12"), "key: '12' is not one key"),
        (lambda: FlashHabit(misses=-1), "misses: -1 is not a count"),
        (lambda: CallHabit(hang_up_after=float("nan")), "hang_up_after: nan is not a delay"),
        (lambda: CallHabit(answer_verified=2.0), "answer_verified: 2.0 is not a probability"),
        (lambda: FlashHabit(after=30.0, after_max=10.0), "after_max: 10.0 is shorter than after"),
    ],
)
def test_a_profile_that_cannot_be_followed_is_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


async def test_the_manual_clock_runs_what_falls_due_in_time_order() -> None:
    clock = ManualClock(T0)
    ran: list[tuple[str, float]] = []
    clock.call_later(30.0, lambda: ran.append(("b", clock())))
    clock.call_later(10.0, lambda: ran.append(("a", clock())))
    cancelled = clock.call_later(20.0, lambda: ran.append(("never", clock())))
    clock.call_later(400.0, lambda: ran.append(("later", clock())))
    cancelled.cancel()
    clock.advance(300.0)
    assert ran == [("a", T0 + 10), ("b", T0 + 30)]
    assert clock() == T0 + 300
    assert clock.pending == 1
    clock.call_later(0.0, lambda: ran.append(("now", clock())))
    assert ran[-1][0] == "b"  # not inside call_later: on the loop's next turn
    await asyncio.sleep(0)
    assert ran[-1] == ("now", T0 + 300)
    clock.advance(100.0)
    assert ran[-1] == ("later", T0 + 400)
