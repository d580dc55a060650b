"""Dissuasion through the whole gateway: the centre's instruction over MQTT, flashes through the SMSC,
robot calls through the SIP side to registered handsets, and people who answer, acknowledge, press a
key or do nothing, as their profiles say. The clock steps the 5-minute intervals (dissuasion_world)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from simulator.behaviour import UNREACHABLE, CallHabit, FlashHabit, Profile
from tests.e2e.dissuasion_world import INTERVAL, LABEL, MAX_ATTEMPTS, ROBOT, TEMPLATES, World, world
from tests.e2e.labels_harness import LabelsPki, make_labels_pki
from tests.e2e.smpp_harness import eventually

VICTIM = "8613800000001"
FAMILY = "8613800000002"
OTHER = "8613800000003"
NEIGHBOUR = "8613800000004"
#: Lets the phone ring out and reads only the third flash, 45 seconds after it pops up.
THIRD_TIME = Profile("third-time", CallHabit(answer=0.0), FlashHabit(read=1.0, after=45.0, misses=2))
#: Reads every flash within ten seconds (a relative who keeps an eye on the phone).
WATCHFUL = Profile("watchful", CallHabit(answer=0.0), FlashHabit(read=1.0, after=10.0))
#: Picks up after 5 seconds and presses nothing.
NO_KEY = Profile("no-key", CallHabit(answer=1.0, after=5.0), FlashHabit(read=0.0))
#: Picks up after 5 seconds and presses 1 two seconds later.
PRESSES_1 = Profile("presses-1", CallHabit(answer=1.0, after=5.0, key="1", key_after=2.0), FlashHabit(read=0.0))
#: Picks up at once: a case for it is handled by its first attempt.
PICKS_UP = Profile("picks-up", CallHabit(answer=1.0, after=0.0), FlashHabit(read=0.0))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("dissuasion-labels"))


async def _barrier(w: World, number: str = OTHER) -> None:
    """Open a case for someone who picks up at once and wait until it is handled: everything the
    engine had due before it has been driven by then (the desk sees events in the order sent)."""
    await w.desk.instruct(number, "low", "刷单返利")
    await w.until_case(number, lambda c: c.state == "handled")


def _robot_calls_rang_verified(w: World, number: str) -> list[tuple[str, str | None, bool, bool]]:
    return [(c.caller_number, c.label, c.badge, c.answered) for c in w.handsets[number].screen.calls]


async def test_acknowledging_the_third_flash_handles_the_case_after_three_calls_and_three_flashes(
    pki: LabelsPki, tmp_path: Path
) -> None:
    async with world(pki, tmp_path, {VICTIM: THIRD_TIME, OTHER: PICKS_UP}) as w:
        reference = await w.desk.instruct(VICTIM, "medium", "冒充公检法")
        for attempt in range(1, 4):
            if attempt > 1:
                await w.step(INTERVAL)
            await w.until_case(VICTIM, lambda c, n=attempt: len(c.robot_calls) == n)
        assert len(w.flashes(VICTIM)) == 3
        assert w.smsc.acknowledgements == []  # the first two went unread
        await w.step(45.0)  # the person reads the third flash and presses OK
        await w.until_case(VICTIM, lambda c: c.state == "handled")
        # Later intervals pass without another attempt.
        await w.step(2 * INTERVAL)
        await _barrier(w)

        case = w.desk.view.case_of(VICTIM)
        assert case is not None
        [handled] = [e for e in w.desk.view.named("case.handled") if e["fields"]["case_id"] == case.case_id]
        assert handled["fields"]["message_id"] == w.flashes(VICTIM)[2].message_id
        assert (case.reference, case.tier, case.handled_how) == (reference, "medium", "flash_ack")
        assert case.attempt_log == [(1, "placed"), (2, "placed"), (3, "placed")]
        assert case.robot_calls == ["no_answer"] * 3
        assert case.escalations == []
        # Exactly three robot calls rang, each from 96110 with the label and the verified mark.
        assert _robot_calls_rang_verified(w, VICTIM) == [("+8696110", LABEL, True, False)] * 3
        flashes = w.flashes(VICTIM)
        assert [f.text for f in flashes] == [TEMPLATES.render("冒充公检法", "victim", VICTIM)] * 3
        assert {(f.source, f.data_coding) for f in flashes} == {("12381", 0x18)}
        [ack] = w.smsc.acknowledgements
        assert (ack.message_id, ack.status) == (flashes[2].message_id, 0)
        stored = await w.case_of(VICTIM)
        assert (stored.state, stored.attempts) == ("handled", 3)


async def test_a_person_who_never_responds_is_escalated_and_the_family_contact_warned_twice(
    pki: LabelsPki, tmp_path: Path
) -> None:
    async with world(pki, tmp_path, {VICTIM: UNREACHABLE, FAMILY: WATCHFUL}) as w:
        await w.desk.instruct(VICTIM, "low", "刷单返利", family=[FAMILY])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                await w.step(INTERVAL)
            await w.until_case(VICTIM, lambda c, n=attempt: len(c.robot_calls) == n)
            await w.step(10.0)  # the relative reads whatever reached them
        assert (await w.until_case(VICTIM, lambda c: c.attempts == MAX_ATTEMPTS)).state == "open"
        await w.step(INTERVAL)
        case = await w.until_case(VICTIM, lambda c: c.state == "escalated" and len(c.family_warned) == 2)
        await eventually(lambda: len(w.flashes(FAMILY)) == 2)
        await w.step(10.0)
        await eventually(lambda: len(w.smsc.acknowledgements) == 2)

        assert case.escalations == [("no_response", True)]
        assert case.attempts == MAX_ATTEMPTS
        assert case.handled_at is None
        assert case.family_warned == [(FAMILY, "first"), (FAMILY, "escalation")]
        family_text = TEMPLATES.render("刷单返利", "family", VICTIM)
        assert [f.text for f in w.flashes(FAMILY)] == [family_text] * 2
        assert VICTIM[-4:] in family_text
        # The relative acknowledged both flashes: that does not handle the person's case.
        assert {a.handset for a in w.smsc.acknowledgements} == {FAMILY}
        # ... and the gateway takes them (a refusal would have the SMSC deliver them again and again).
        assert [a.status for a in w.smsc.acknowledgements] == [0, 0]
        assert (await w.case_of(VICTIM)).state == "escalated"
        assert len(w.flashes(VICTIM)) == MAX_ATTEMPTS
        assert _robot_calls_rang_verified(w, VICTIM) == [("+8696110", LABEL, True, False)] * MAX_ATTEMPTS
        assert w.handsets[FAMILY].screen.calls == []  # the family is told by flash, not called


async def test_high_risk_is_handled_by_the_answer_with_the_key_press_and_not_without_it(
    pki: LabelsPki, tmp_path: Path
) -> None:
    # The robot rings long enough (real time) for the test to step the people's 5 seconds in.
    robot = replace(ROBOT, ring_timeout=10.0, confirm_timeout=5.0)
    async with world(pki, tmp_path, {VICTIM: NO_KEY, OTHER: PRESSES_1}, robot=robot) as w:
        start = w.clock.now
        for number in (VICTIM, OTHER):
            await w.desk.instruct(number, "high", "冒充公检法")
        await eventually(lambda: all(w.handsets[n].screen.calls for n in (VICTIM, OTHER)))
        await w.step(5.0)  # both pick up
        await eventually(lambda: all(w.handsets[n].screen.calls[0].connected for n in (VICTIM, OTHER)))
        await w.step(2.0)  # one of them presses 1
        unconfirmed = await w.until_case(VICTIM, lambda c: c.robot_calls == ["unconfirmed"])
        confirmed = await w.until_case(OTHER, lambda c: c.state == "handled" and bool(c.robot_calls))
        # High risk goes to people at once, and the robot keeps going.
        assert unconfirmed.escalations == confirmed.escalations == [("high_risk", False)]
        assert (unconfirmed.state, unconfirmed.unconfirmed_answers, unconfirmed.handled_how) == ("open", 1, None)
        assert (confirmed.state, confirmed.handled_how, confirmed.robot_calls) == (
            "handled",
            "call_confirmed",
            ["confirmed"],
        )
        for number in (VICTIM, OTHER):
            assert _robot_calls_rang_verified(w, number) == [("+8696110", LABEL, True, True)]
        assert w.handsets[VICTIM].key_answers == []
        assert [r.status for r in w.handsets[OTHER].key_answers] == [200]
        stored = await w.case_of(VICTIM)
        assert (stored.state, stored.attempts, stored.due_at) == ("open", 1, start + INTERVAL)


async def test_a_second_instruction_updates_the_open_case_and_a_malformed_one_is_answered(
    pki: LabelsPki, tmp_path: Path
) -> None:
    async with world(pki, tmp_path, {VICTIM: UNREACHABLE, OTHER: PICKS_UP, NEIGHBOUR: PICKS_UP}) as w:
        first = await w.desk.instruct(VICTIM, "low", "刷单返利")
        await w.until_case(VICTIM, lambda c: len(c.robot_calls) == 1)
        second = await w.desk.instruct(VICTIM, "medium", "虚假投资理财", family=[FAMILY])
        await w.desk.instruct(VICTIM, "low", "刷单返利", reference=first)  # the same one again
        bad = w.desk.instruction("not a number", "low", "刷单返利", reference="BAD-1")
        await w.desk.publish(json.dumps(bad).encode())
        await w.desk.publish(b"\xff not even text")
        view = await w.until(lambda v: len(v.errors) == 2 and bool(v.named("case.updated")))
        # The gateway goes on: the next instruction is followed as usual.
        await _barrier(w)
        await w.step(INTERVAL)
        await w.until_case(VICTIM, lambda c: len(c.robot_calls) == 2)
        await _barrier(w, NEIGHBOUR)

        bad_fields, not_text = view.errors
        assert (bad_fields["reference"], bad_fields["error"]) == ("BAD-1", "bad_number")
        assert bad_fields["field"] == "subscriber"
        assert (not_text["reference"], not_text["error"]) == (None, "bad_json")
        [updated] = view.named("case.updated")
        assert updated["fields"]["reference"] == second
        case = view.case_of(VICTIM)
        assert case is not None
        assert len([c for c in view.cases.values() if c.subscriber == VICTIM]) == 1
        # Two attempts in two intervals, not two loops: one flash and one call each.
        assert case.attempt_log == [(1, "placed"), (2, "placed")]
        assert case.tier == "medium"
        assert len(w.flashes(VICTIM)) == 2
        assert len(w.handsets[VICTIM].screen.calls) == 2
        # Named after the first attempt, the relative was warned when the update came.
        assert case.family_warned == [(FAMILY, "first")]
        stored = await w.case_of(VICTIM)
        assert (stored.tier, stored.fraud_types, stored.attempts) == ("medium", ("刷单返利", "虚假投资理财"), 2)
        assert [t.at - stored.opened_at for t in stored.transitions if t.event == "attempt"] == [0.0, INTERVAL]
