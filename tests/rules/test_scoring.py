"""Evidence scoring: rule scores add up per category and the pack's thresholds turn totals into actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from gateway.cli import main
from tests.rules.helpers import sms

PACK = """\
scoring:
  police_impersonation: {tag: 3, warn: 5, block: 8}
  default: {warn: 4}
rules:
  - id: pol.authority
    title: an authority speaks
    category: police_impersonation
    channel: sms
    score: 3
    detection:
      sel: {text: [公安局, 检察院]}
      condition: sel
  - id: pol.accuse
    title: an accusation
    category: police_impersonation
    channel: sms
    score: 3
    detection:
      sel: {text: [洗钱, 涉嫌]}
      condition: sel
  - id: pol.urgent
    title: urgency
    category: police_impersonation
    channel: sms
    score: 2
    detection:
      sel: {text: [立即, 马上]}
      condition: sel
  - id: pol.safe_account
    title: a safe account, which acts alone
    category: police_impersonation
    channel: sms
    action: block
    risk: high
    detection:
      sel: {text: 安全账户}
      condition: sel
  - id: loan.fee
    title: a loan fee
    category: loan
    channel: sms
    score: 2
    action: tag
    risk: low
    detection:
      sel: {text: 解冻费}
      condition: sel
  - id: loan.quick
    title: a quick loan
    category: loan
    channel: sms
    score: 2
    detection:
      sel: {text: 秒到账}
      condition: sel
  - id: official.reminder
    title: a reminder quoting the script
    category: official
    channel: sms
    action: pass
    overrides: [police_impersonation]
    detection:
      sel: {text: 谨防}
      condition: sel
"""

WEIGHTS = {"公安局": ("pol.authority", 3), "涉嫌": ("pol.accuse", 3), "立即": ("pol.urgent", 2)}


@pytest.fixture
def engine(write_rules: Callable[..., Path]) -> rules.Engine:
    return rules.Engine(rules.build([write_rules(PACK)]))


@pytest.mark.parametrize(
    ("text", "action", "risk", "total"),
    [
        ("公安局通知", "tag", "low", 3),  # one weak signal: tag only
        ("公安局通知你涉嫌犯罪", "warn", "medium", 6),  # two add up to warn
        ("公安局通知你涉嫌犯罪，立即配合", "block", "high", 8),  # three to block
        ("立即回复", "pass", "none", 2),  # below every threshold
    ],
)
def test_weak_signals_add_up_per_category(engine, text, action, risk, total):
    verdict = engine.evaluate(sms(text))
    assert (verdict.action.value, verdict.risk.value) == (action, risk)
    assert verdict.score == total
    assert dict(verdict.totals) == {"police_impersonation": total}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(WEIGHTS)), unique=True), st.text(alphabet="你好请的", max_size=5))
def test_total_is_the_sum_of_what_matched(write_rules_once, words, filler):
    engine = write_rules_once
    verdict = engine.evaluate(sms(filler.join(words) + filler))
    total = sum(WEIGHTS[w][1] for w in words)
    assert sorted(verdict.contributions) == sorted(
        (WEIGHTS[w][0], "police_impersonation", float(WEIGHTS[w][1])) for w in words
    )
    expected = "block" if total >= 8 else "warn" if total >= 5 else "tag" if total >= 3 else "pass"
    assert verdict.action.value == expected


@pytest.fixture(scope="module")
def write_rules_once(tmp_path_factory: pytest.TempPathFactory) -> rules.Engine:
    path = tmp_path_factory.mktemp("scoring") / "pack.yaml"
    path.write_text(PACK, "utf-8")
    return rules.Engine(rules.build([path]))


def test_a_strong_rule_still_acts_alone(engine):
    verdict = engine.evaluate(sms("请把钱转到安全账户"))
    assert verdict.action.value == "block"
    assert verdict.rules == ("pol.safe_account",)
    assert verdict.contributions == ()


def test_score_and_action_together_the_stronger_wins(engine):
    # loan.fee tags alone; with loan.quick the loan total (4) reaches the default warn threshold
    assert engine.evaluate(sms("先交解冻费")).action.value == "tag"
    verdict = engine.evaluate(sms("先交解冻费，秒到账"))
    assert (verdict.action.value, verdict.category, verdict.score) == ("warn", "loan", 4)


def test_categories_are_totalled_apart(engine):
    # 3 police + 2 loan: neither category reaches a decision on the other's points
    verdict = engine.evaluate(sms("公安局：秒到账"))
    assert dict(verdict.totals) == {"police_impersonation": 3, "loan": 2}
    assert (verdict.action.value, verdict.category) == ("tag", "police_impersonation")


def test_an_allow_rule_cancels_the_scores_of_what_it_overrides(engine):
    verdict = engine.evaluate(sms("【某某公安】谨防冒充公安局称你涉嫌洗钱，立即挂断"))
    assert verdict.action.value == "pass"
    assert verdict.contributions == ()
    assert set(verdict.overridden) == {"pol.authority", "pol.accuse", "pol.urgent"}


def test_explain_lists_every_contribution_and_the_total(write_rules, capsys):
    path = write_rules(PACK)
    assert main(["rules", "explain", "--rules", str(path), "--text", "公安局通知你涉嫌犯罪"]) == 0
    text = capsys.readouterr().out
    assert "score police_impersonation: 6 (tag 3, warn 5, block 8) -> warn" in text
    assert "    +3  pol.authority\n    +3  pol.accuse\n" in text
    assert main(["rules", "explain", "--json", "--rules", str(path), "--text", "公安局通知你涉嫌犯罪"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["scores"] == {
        "contributions": [
            {"rule": "pol.authority", "category": "police_impersonation", "score": 3.0},
            {"rule": "pol.accuse", "category": "police_impersonation", "score": 3.0},
        ],
        "totals": {"police_impersonation": 6.0},
    }


BAD_PACKS = [
    (
        "rules:\n  - {id: a, title: a, category: loan, channel: sms, score: 2,"
        " detection: {sel: {text: x}, condition: sel}}\n",
        "no scoring thresholds",
    ),
    ("scoring:\n  loan: {tag: 5, warn: 3}\n", "thresholds must rise"),
    ("scoring:\n  laon: {warn: 3}\n", "did you mean 'loan'"),
    ("scoring:\n  loan: {}\n", "give at least one of"),
    ("scoring:\n  loan: {warn: 0}\n", "must be more than 0"),
    (
        "scoring: {loan: {warn: 3}}\nrules:\n  - {id: a, title: a, category: loan, channel: sms,"
        " detection: {sel: {text: x}, condition: sel}}\n",
        "missing required field 'action' or 'score'",
    ),
    (
        "scoring: {loan: {warn: 3}}\nrules:\n  - {id: a, title: a, category: loan, channel: sms, score: 5000,"
        " detection: {sel: {text: x}, condition: sel}, action: tag, risk: low}\n",
        "must be at most 1000",
    ),
    (
        "scoring: {loan: {warn: 3}}\nrules:\n  - {id: a, title: a, category: loan, channel: sms, score: 1,"
        " action: pass, detection: {sel: {text: x}, condition: sel}}\n",
        "'score' is not allowed with action: pass",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_PACKS)
def test_scoring_mistakes_are_reported_where_they_are(write_rules, text, message):
    path = write_rules(text)
    errors = rules.check([path])
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
    assert all(str(e).startswith(str(path) + ":") for e in errors)


def test_thresholds_set_twice_across_packs(write_rules):
    a = write_rules("scoring: {loan: {warn: 3}}\n", "a.yaml")
    b = write_rules("scoring: {loan: {warn: 4}}\n", "b.yaml")
    errors = [str(e) for e in rules.check([a, b])]
    assert len(errors) == 1
    assert "set twice" in errors[0]
    assert errors[0].startswith(f"{b}:1:")
