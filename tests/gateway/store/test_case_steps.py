"""The steps of an attempt change exactly what they say on a case, and nothing else."""

from __future__ import annotations

import dataclasses

from gateway.store.base import Transition, attempted_case, claimed_case, new_case, noted_case

CASE = dataclasses.replace(
    new_case("9", "8613900000001", "medium", "loan", 1796515200.5, 1796515260.25, ("8613700000002",)),
    fraud_types=("loan", "investment"),
    attempts=2,
)


def test_a_claim_takes_the_lease_and_says_so():
    claimed = claimed_case(CASE, "gw1", 1796515261.0, 1796515321.0)
    assert claimed == dataclasses.replace(
        CASE,
        lease_holder="gw1",
        lease_until=1796515321.0,
        transitions=(*CASE.transitions, Transition("claimed", 1796515261.0, "gw1")),
    )


def test_a_note_adds_one_step():
    held = dataclasses.replace(CASE, lease_holder="gw1", lease_until=1796515321.0)
    noted = noted_case(held, "flashed", 1796515262.0, "3 a1", "gw1", False)
    assert noted == dataclasses.replace(
        held, transitions=(*CASE.transitions, Transition("flashed", 1796515262.0, "3 a1"))
    )


def test_an_attempt_counts_schedules_and_lets_the_lease_go():
    held = dataclasses.replace(CASE, lease_holder="gw1", lease_until=1796515321.0)
    done = attempted_case(held, "gw1", 1796515263.0, 1796515563.0, "flash=a1 call=placed")
    assert done == dataclasses.replace(
        CASE,
        attempts=3,
        due_at=1796515563.0,
        transitions=(*CASE.transitions, Transition("attempt", 1796515263.0, "3 flash=a1 call=placed")),
    )
