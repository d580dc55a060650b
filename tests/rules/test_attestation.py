"""Calls that present a protected service number: proof is a verified attestation A for that number."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rules
from tests.rules.helpers import call, rule_yaml

RULE = "protect.service-number-call-unproven"


@pytest.mark.parametrize(("number", "attestation"), [("95588", ""), ("+8695533", ""), ("110", ""), ("10086", "C")])
def test_a_service_number_without_proof_is_warned_with_its_label(
    packs: rules.RuleSet, number: str, attestation: str
) -> None:
    verdict = rules.Engine(packs).evaluate(call(number, attestation=attestation))
    assert verdict.action is rules.Action.WARN
    assert RULE in verdict.rules
    assert verdict.decided_label == "疑似冒用服务号码"


@pytest.mark.parametrize("number", ["95588", "110", "12345"])
def test_attestation_a_for_the_number_lets_the_call_through(packs: rules.RuleSet, number: str) -> None:
    assert rules.Engine(packs).evaluate(call(number, attestation="A")).action is rules.Action.PASS


def test_the_anti_fraud_numbers_are_left_to_the_label_defence(packs: rules.RuleSet) -> None:
    engine = rules.Engine(packs)
    for number in ("96110", "12381"):
        assert RULE not in engine.evaluate(call(number)).rules


def test_attestation_is_read_from_json_and_checked() -> None:
    message = rules.message_from_mapping({"channel": "call", "from": "95588", "attestation": "B"})
    assert message.attestation == "B"
    assert message.as_dict()["attestation"] == "B"
    assert rules.message_from_mapping({"channel": "call"}).attestation == ""
    with pytest.raises(rules.MessageError, match="'attestation' must be one of A, B, C or empty"):
        rules.message_from_mapping({"channel": "call", "attestation": "a"})


def test_a_selection_on_attestation_and_explain_shows_it(build: Callable[..., rules.RuleSet]) -> None:
    ruleset = build(
        rule_yaml("sel:\n  attestation|exists: false\ncondition: sel", channel="call", action="tag", risk="low"),
    )
    engine = rules.Engine(ruleset)
    assert engine.evaluate(call("95588")).action is rules.Action.TAG
    assert engine.evaluate(call("95588", attestation="C")).action is rules.Action.PASS
    explained = engine.evaluate(call("95588"), explain=True)
    assert [m.text for m in explained.matches] == ["none"]
