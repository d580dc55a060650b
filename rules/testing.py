"""Running rules' inline tests: every case through the whole rule set, as the gateway would see it.

A ``match`` case passes when the rule is among the verdict's rules (so a case cancelled by an allow
rule fails, and says so); a ``no_match`` case passes when it is not. ``expect: {action: ...}`` also
checks the decision of the whole set. Each case gets fresh velocity counters; ``repeat`` sends the
message several times, ``interval`` seconds apart, and the last one is judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.compiler import CompiledRule, RuleSet
from rules.engine import Engine, Match, Verdict
from rules.message import DEFAULT_TEST_NOW, Message
from rules.model import TestCase
from rules.velocity import MemoryVelocity


@dataclass(frozen=True)
class CaseResult:
    rule: str
    case: TestCase
    passed: bool
    verdict: Verdict
    reason: str = ""

    def describe(self) -> str:
        return f"{self.rule} {self.case.location} {self.case.label}: {self.reason}"


def run_case(ruleset: RuleSet, compiled: CompiledRule, case: TestCase) -> CaseResult:
    engine = Engine(ruleset, velocity=MemoryVelocity())
    start = case.message.now if case.message.now is not None else DEFAULT_TEST_NOW
    message = case.message
    verdict = Verdict()
    for k in range(case.repeat):
        message = case.message.at(start + k * case.interval)
        verdict = engine.evaluate(message, explain=k == case.repeat - 1)
    rule_id = compiled.rule.id
    matched = rule_id in verdict.rules
    reasons = []
    if case.expect_match and not matched:
        reasons.append(_why_not(engine, compiled, message, verdict))
    elif not case.expect_match and matched:
        reasons.append("matched, but should not: " + _matches(verdict.matches, rule_id))
    if case.expect_action is not None and verdict.action != case.expect_action:
        shown = ", ".join(verdict.rules) or "-"
        reasons.append(f"expected action {case.expect_action}, got {verdict.action.value} (rules: {shown})")
    return CaseResult(rule_id, case, not reasons, verdict, "; ".join(reasons))


def run_tests(ruleset: RuleSet) -> list[CaseResult]:
    """Every inline test case of every rule, in rule-set order."""
    return [run_case(ruleset, compiled, case) for compiled in ruleset.rules for case in compiled.rule.tests]


def _why_not(engine: Engine, compiled: CompiledRule, message: Message, verdict: Verdict) -> str:
    rule = compiled.rule
    if rule.id in verdict.overridden:
        by = [
            r
            for r in verdict.rules
            if r in engine.ruleset.by_id and {rule.id, rule.category} & set(engine.ruleset.by_id[r].rule.overrides)
        ]
        return f"matched, but overridden by {', '.join(by) or 'an allow rule'}"
    if message.channel not in rule.channels():
        return f"the rule is for {rule.channel}, the message is {message.channel}"
    ctx = engine.context(message)
    states = ", ".join(f"{name}={'true' if s.predicate(ctx) else 'false'}" for name, s in compiled.selections.items())
    return f"not matched: condition '{rule.condition_text}' is false ({states})"


def _matches(matches: tuple[Match, ...], rule_id: str) -> str:
    mine = [m for m in matches if m.rule == rule_id]
    if not mine:
        return "(no detail)"
    return "; ".join(f"{m.selection}: {m.key} {m.pattern!r} on {m.view} {m.text!r}" for m in mine)
