"""The shipped packs: they load, their inline tests pass, and each carries enough tests of each kind."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

import rules
from rules.normalise import normalise
from rules.testing import run_tests
from tests.rules.helpers import sms

PACK_FILES = sorted(p for p in rules.DEFAULT_PACKS.glob("*.yaml"))
RULE_PACKS = [p for p in PACK_FILES if p.name != "common.yaml"]
FORMAT = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
FULL_WIDTH = re.compile("[\uff01-\uff5e]")


def test_every_inline_test_passes(packs: rules.RuleSet) -> None:
    results = run_tests(packs)
    failures = [r.describe() for r in results if not r.passed]
    assert failures == []
    assert len(results) >= 15 * len(RULE_PACKS)


def test_the_five_high_incidence_types_and_the_rest_are_covered(packs: rules.RuleSet) -> None:
    categories = {r.rule.category for r in packs.rules}
    assert {
        "order_brushing",
        "investment",
        "loan",
        "customer_service",
        "police_impersonation",
        "acquaintance_impersonation",
        "international",
        "spoofing",
        "official",
    } <= categories


@pytest.mark.parametrize("path", RULE_PACKS, ids=lambda p: p.stem)
def test_each_pack_has_fifteen_tests_with_evasions_and_hard_legitimate_cases(packs: rules.RuleSet, path: Path) -> None:
    cases = [c for r in packs.rules if r.rule.location.path == str(path) for c in r.rule.tests]
    assert len(cases) >= 15
    kinds = Counter("match" if c.expect_match else "no_match" for c in cases)
    assert kinds["match"] >= 5
    assert kinds["no_match"] >= 5
    texts = [c.message.text for c in cases]
    if path.stem != "international":  # international rules are about origin, numbers and counts
        assert any(FORMAT.search(t) for t in texts), "no zero-width evasion"
        assert any(any("\u4e00" <= c <= "\u9fff" and normalise(c) != c for c in t) for t in texts), (
            "no traditional-character evasion"
        )
        assert any(re.search(r"\S \S \S", t) for t in texts), "no spacing evasion"
    assert any(FULL_WIDTH.search(t) for t in texts), "no full-width evasion"


def test_official_senders_get_through_and_spoofers_do_not(packs: rules.RuleSet) -> None:
    engine = rules.Engine(packs)
    reminder = "【国家反诈中心】凡是要求转入安全账户、刷单返利、先交保证金贷款的都是诈骗！"
    assert engine.evaluate(sms(reminder, src="12381")).action is rules.Action.PASS
    assert engine.evaluate(sms(reminder, src="17012345678")).action is rules.Action.BLOCK
    assert engine.evaluate(sms(reminder, src="12381", origin="international")).action is rules.Action.BLOCK


@pytest.mark.parametrize(
    "text",
    [
        "您的验证码是482913，5分钟内有效，请勿泄露给他人。【京东】",
        "【工商银行】您尾号1234的账户06月03日转账支出2,000.00元，余额8,000.00元。",
        "妈，这个月工资发了，给你转了2000块，记得查收",
        "【顺丰速运】您的快件SF1234567890已到达驿站，请凭取件码8-3-2011领取。",
        "【中国移动】您本月话费58元，剩余流量3GB。",
    ],
)
def test_everyday_messages_pass(packs: rules.RuleSet, text: str) -> None:
    assert rules.Engine(packs).evaluate(sms(text, src="10690000")).action is rules.Action.PASS
