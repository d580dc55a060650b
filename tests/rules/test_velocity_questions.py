"""Counters kept elsewhere: the engine names the counters and windows a message touches beforehand, and
evaluates from counts fetched for it, with the verdicts its own counters would give."""

from __future__ import annotations

from collections.abc import Callable

import rules
from rules.velocity import Counted, MemoryVelocity, Question
from tests.rules.helpers import call, rule_yaml, sms

Build = Callable[..., rules.RuleSet]

BURST = "sel:\n  velocity: {by: src, count: 3, within: 60}\ncondition: sel"
SLOW = "sel:\n  velocity: {by: src, count: 5, within: 3600}\ncondition: sel"
TARGETED = "sel:\n  velocity: {by: dst, count: 2, within: 600}\ncondition: sel"


def test_the_questions_name_each_counter_once_with_every_window_its_rules_read(build: Build) -> None:
    engine = rules.Engine(
        build(
            rule_yaml(BURST, rule_id="t.burst"),
            rule_yaml(SLOW, rule_id="t.slow"),
            rule_yaml(TARGETED, rule_id="t.targeted", channel="call"),
        )
    )
    assert engine.velocity_questions(sms("x", src="A", dst="D")) == (Question("sms|src|A", (60.0, 3600.0)),)
    assert engine.velocity_questions(call(src="A", dst="D")) == (Question("call|dst|D", (600.0,)),)


def test_no_velocity_rule_no_question(build: Build) -> None:
    engine = rules.Engine(build(rule_yaml("sel:\n  text: 退款\ncondition: sel")))
    assert engine.velocity_questions(sms("x")) == ()


def test_counts_fetched_beforehand_give_the_verdicts_of_the_engines_own_counters(build: Build) -> None:
    ruleset = build(rule_yaml(BURST, rule_id="t.burst"), rule_yaml(SLOW, rule_id="t.slow"))
    alone = rules.Engine(ruleset)
    elsewhere = rules.Engine(ruleset, velocity=MemoryVelocity())
    shared = MemoryVelocity()  # what a shared store would hold
    seen: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for t in (0.0, 10.0, 20.0, 21.0, 59.0, 80.0, 81.0, 3000.0, 3500.0):
        message = sms("x", src="A", now=t)
        questions = elsewhere.velocity_questions(message)
        for q in questions:
            shared.record(q.key, t)
        counts = {(q.key, w): shared.count(q.key, w, t) for q in questions for w in q.windows}
        seen.append((elsewhere.evaluate(message, velocity=Counted(counts)).rules, alone.evaluate(message).rules))
    assert [fetched for fetched, _ in seen] == [own for _, own in seen]
    assert [fetched for fetched, _ in seen] == [
        (),
        (),
        ("t.burst",),
        ("t.burst",),
        ("t.burst", "t.slow"),
        ("t.burst", "t.slow"),  # (20, 80] holds 21, 59 and 80
        ("t.burst", "t.slow"),
        ("t.slow",),
        ("t.slow",),
    ]
    assert len(elsewhere.velocity) == 0  # type: ignore[arg-type]  # its own counters were not used


def test_a_window_nobody_fetched_counts_nothing(build: Build) -> None:
    engine = rules.Engine(build(rule_yaml(BURST)))
    assert "t.rule" in engine.evaluate(sms("x", src="A"), velocity=Counted({("sms|src|A", 60.0): 3})).rules
    assert engine.evaluate(sms("x", src="A"), velocity=Counted({("sms|src|A", 30.0): 9})).rules == ()
