"""Property: evaluate never raises, whatever the text and the fields (lone surrogates, controls, huge
or odd times, unknown channels and origins), with the shipped packs and with every selector kind."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from tests.rules.helpers import rule_yaml

texts = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("安全账户帳戶转账微信薇信vxＶＸ http://.[]点com。 \u200b\u202e\ud800\x00\n🔥①")),
)
fields = st.one_of(st.text(max_size=20), st.sampled_from(["", "12381", "96110", "+8613800000000", "ICBC"]))
times = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12))
messages = st.builds(
    rules.Message,
    channel=st.one_of(st.sampled_from(["sms", "call"]), st.text(max_size=5)),
    src=fields,
    dst=fields,
    text=texts,
    origin=st.one_of(st.sampled_from(["domestic", "international"]), st.text(max_size=5)),
    sender_id=st.one_of(st.none(), fields),
    now=times,
)


def check(engine: rules.Engine, message: rules.Message) -> None:
    for explain in (False, True):
        verdict = engine.evaluate(message, explain=explain)
        assert verdict.action in set(rules.Action)
        assert verdict.risk in set(rules.Risk)
        assert (verdict.action is rules.Action.PASS) == (verdict.risk is rules.Risk.NONE) or verdict.action in (
            rules.Action.LABEL,
            rules.Action.TAG,
        )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=messages)
def test_evaluate_never_raises_with_the_packs(packs: rules.RuleSet, message: rules.Message) -> None:
    check(rules.Engine(packs, clock=lambda: 1.7e9), message)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=messages)
def test_evaluate_never_raises_with_every_selector(build: Callable[..., rules.RuleSet], message: rules.Message) -> None:
    ruleset = _every_selector(build)
    check(rules.Engine(ruleset), message)


_CACHE: dict[str, rules.RuleSet] = {}


def _every_selector(build: Callable[..., rules.RuleSet]) -> rules.RuleSet:
    if "all" not in _CACHE:
        _CACHE["all"] = build(
            rule_yaml(
                """
                s1:
                  text|raw|nocase: [ab, 帳]
                s2:
                  text|re|squeezed: '安全[0-9]*'
                s3:
                  domain: example.com
                s4:
                  domain|re: '\\.(top|cc)$'
                s5:
                  domain|exists: true
                s6:
                  from|startswith: ['+852', '1']
                s7:
                  to|endswith: '1'
                s8:
                  sender_id|exists: true
                s9:
                  origin: international
                s10:
                  time: ['23:00', '06:00']
                s11:
                  velocity: {by: src, count: 2, within: 60}
                s12:
                  velocity: {by: dst, count: 3, within: 600}
                s13:
                  text|endswith: 户
                condition: 1 of them or (s1 and not s2)
                """,
                channel="both",
            )
        )
    return _CACHE["all"]
