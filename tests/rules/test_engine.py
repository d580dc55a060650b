"""The verdict: precedence, allow-list overrides, which rules get evaluated, explain, rule set swaps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rules
from rules.normalise import views
from tests.rules.helpers import NOW, call, rule_yaml, sms

Build = Callable[..., rules.RuleSet]


def keyword_rule(rule_id: str, word: str, action: str, risk: str | None = "low", **kw: str) -> str:
    return rule_yaml(f"sel:\n  text: {word}\ncondition: sel", rule_id=rule_id, action=action, risk=risk, **kw)


def test_precedence_block_warn_tag_label_pass(build: Build) -> None:
    ruleset = build(
        keyword_rule("r.label", "a", "label", "low", extra="label: 境外短信"),
        keyword_rule("r.tag", "b", "tag", "high", category="loan", extra="template: t_tag"),
        keyword_rule("r.warn", "c", "warn", "low", category="investment", extra="template: t_warn\ndissuade: true"),
        keyword_rule("r.block", "d", "block", "medium", category="police_impersonation", extra="template: t_block"),
    )
    engine = rules.Engine(ruleset)
    v = engine.evaluate(sms("abcd"))
    assert v.action is rules.Action.BLOCK
    assert v.rules == ("r.label", "r.tag", "r.warn", "r.block")  # rule-set order
    assert v.risk is rules.Risk.HIGH  # the highest of all, not the winner's
    assert v.category == "police_impersonation"  # the winner's
    assert v.template == "t_block"
    assert v.dissuade is True  # any rule that asks
    assert v.label == "境外短信"  # carried from the label rule
    assert engine.evaluate(sms("abc")).action is rules.Action.WARN
    assert engine.evaluate(sms("ab")).action is rules.Action.TAG
    assert engine.evaluate(sms("ab")).template == "t_tag"
    assert engine.evaluate(sms("a")).action is rules.Action.LABEL
    assert engine.evaluate(sms("x")) == rules.Verdict()
    assert engine.evaluate(sms("x")).scan_record() == {"action": "pass", "risk": "none", "rules": [], "category": None}


def test_same_action_higher_risk_wins_then_rule_order(build: Build) -> None:
    ruleset = build(
        keyword_rule("r.low", "a", "warn", "low", category="loan"),
        keyword_rule("r.high", "a", "warn", "high", category="investment"),
        keyword_rule("r.high2", "a", "warn", "high", category="police_impersonation"),
    )
    v = rules.Engine(ruleset).evaluate(sms("a"))
    assert (v.action, v.risk, v.category) == (rules.Action.WARN, rules.Risk.HIGH, "investment")


def test_allow_rules_override_named_rules_and_categories(build: Build) -> None:
    allow = rule_yaml(
        "sel:\n  from: ['12381']\ncondition: sel",
        rule_id="allow.official",
        action="pass",
        risk=None,
        category="official",
        extra="overrides: [r.by-id, police_impersonation]",
    )
    ruleset = build(
        keyword_rule("r.by-id", "a", "block", "high", category="loan"),
        keyword_rule("r.by-category", "b", "block", "high", category="police_impersonation"),
        keyword_rule("r.untouched", "c", "warn", "medium", category="investment"),
        allow,
    )
    engine = rules.Engine(ruleset)
    official = engine.evaluate(sms("ab", src="12381"))
    assert official.action is rules.Action.PASS
    assert official.risk is rules.Risk.NONE
    assert official.rules == ("allow.official",)
    assert official.overridden == ("r.by-id", "r.by-category")
    assert official.category is None
    # rules it does not name still act
    mixed = engine.evaluate(sms("abc", src="12381"))
    assert mixed.action is rules.Action.WARN
    assert mixed.rules == ("r.untouched", "allow.official")
    # the allow rule only counts when it matches
    assert engine.evaluate(sms("ab", src="17000000000")).rules == ("r.by-id", "r.by-category")


def test_a_pass_rule_without_overrides_changes_nothing(build: Build) -> None:
    ruleset = build(keyword_rule("r.block", "a", "block", "high"), keyword_rule("r.pass", "a", "pass", None))
    v = rules.Engine(ruleset).evaluate(sms("a"))
    assert v.action is rules.Action.BLOCK
    assert v.rules == ("r.block", "r.pass")


def test_rules_without_patterns_or_with_not_are_still_evaluated(build: Build) -> None:
    ruleset = build(
        rule_yaml("sel:\n  text: 验证码\ncondition: not sel", rule_id="r.not", action="tag", risk="low"),
        rule_yaml("sel:\n  from|startswith: '+852'\ncondition: sel", rule_id="r.prefix", action="tag", risk="low"),
    )
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("hello", src="+85212345678")).rules == ("r.not", "r.prefix")
    assert engine.evaluate(sms("验证码", src="1")).rules == ()
    plan = ruleset.plans["sms"]
    assert plan.always == (0, 1)


def test_rules_are_indexed_by_pattern_and_by_field_value(build: Build) -> None:
    ruleset = build(
        keyword_rule("r.kw", "退款", "warn", "low"),
        rule_yaml(
            "sel:\n  origin: international\ncondition: sel",
            rule_id="r.intl",
            action="label",
            risk="low",
            extra="label: 境外短信",
        ),
        rule_yaml(
            "sel:\n  from: ['12381']\ncondition: sel and not kw\nkw:\n  text: x",
            rule_id="r.from",
            action="tag",
            risk="low",
        ),
    )
    plan = ruleset.plans["sms"]
    assert plan.always == ()
    assert plan.by_field["origin"] == {"international": (1,)}
    assert plan.by_field["src"] == {"12381": (2,)}
    assert sorted(plan.by_atom)
    assert all(ids == (0,) for ids in plan.by_atom.values())
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("hi", src="12381")).rules == ("r.from",)
    assert engine.evaluate(sms("退款", origin="international")).rules == ("r.kw", "r.intl")


def test_explain_reports_view_substring_and_offsets(build: Build) -> None:
    ruleset = build(
        rule_yaml(
            """
            sel_sq:
              text|squeezed: 安全账户
            sel_norm:
              text: 涉嫌洗钱
            sel_raw:
              text|raw: 帳戶
            sel_re:
              text|re: '[0-9]{4}元'
            sel_dom:
              domain: bank-cn.top
            sel_from:
              from|startswith: '+852'
            condition: all of them
            """
        )
    )
    text = "您的帳戶涉嫌洗錢，請轉5000元入安 全 賬 戶 bank-cn[.]top"
    v = rules.Engine(ruleset).evaluate(sms(text, src="+85212345678"), explain=True)
    assert v.rules == ("t.rule",)
    by_selection = {m.selection: m for m in v.matches}
    views_of = views(text)
    for m in v.matches:
        if m.view != "fields":
            source = {"raw": views_of.raw, "normalised": views_of.normalised, "squeezed": views_of.squeezed}.get(
                m.view, "\n".join(views_of.domains)
            )
            assert m.start is not None
            assert source[m.start : m.end] == m.text
    assert (by_selection["sel_sq"].view, by_selection["sel_sq"].text) == ("squeezed", "安全账户")
    assert (by_selection["sel_norm"].view, by_selection["sel_norm"].text) == ("normalised", "涉嫌洗钱")
    assert (by_selection["sel_raw"].view, by_selection["sel_raw"].text) == ("raw", "帳戶")
    assert by_selection["sel_raw"].start == 2
    assert (by_selection["sel_re"].view, by_selection["sel_re"].text) == ("normalised", "5000元")
    assert (by_selection["sel_dom"].view, by_selection["sel_dom"].text) == ("domains", "bank-cn.top")
    assert (by_selection["sel_from"].view, by_selection["sel_from"].text) == ("fields", "+85212345678")
    assert by_selection["sel_sq"].location is not None
    assert rules.Engine(ruleset).evaluate(sms(text, src="+85212345678")).matches == ()


def test_precomputed_views_give_the_same_verdict(packs: rules.RuleSet) -> None:
    engine = rules.Engine(packs)
    for text in ["请转入安 全 帳戶", "您的验证码是123456", "点击 jd-loan.vip 领取借款额度", ""]:
        message = sms(text)
        assert engine.evaluate(message, views=views(text)) == engine.evaluate(message)


def test_verdicts_are_cached_per_rule_set(build: Build) -> None:
    ruleset = build(keyword_rule("r.a", "a", "warn"))
    engine = rules.Engine(ruleset)
    first = engine.evaluate(sms("a"))
    assert engine.evaluate(sms("xa")) is first
    assert engine.evaluate(sms("a"), explain=True) is not first


def test_install_swaps_the_rule_set(build: Build) -> None:
    engine = rules.Engine(build(keyword_rule("r.a", "a", "warn")))
    assert engine.evaluate(sms("a")).rules == ("r.a",)
    engine.install(build(keyword_rule("r.b", "b", "block")))
    assert engine.evaluate(sms("a")).rules == ()
    assert engine.evaluate(sms("b")).rules == ("r.b",)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), -1e300])
def test_odd_times_do_not_break_time_rules(build: Build, now: float) -> None:
    engine = rules.Engine(build(rule_yaml("sel:\n  time: ['00:00', '00:30']\ncondition: sel")))
    engine.evaluate(sms("x", now=now))


def test_calls_have_no_text(packs: rules.RuleSet) -> None:
    engine = rules.Engine(packs)
    v = engine.evaluate(call("+85261234567", origin="international"))
    assert (v.action, v.label, v.rules) == (rules.Action.LABEL, "境外来电", ("intl.call-label",))
    assert engine.evaluate(call("13812345678", now=NOW)) == rules.Verdict()


def test_only_trigger_patterns_bring_a_rule_up(build: Build) -> None:
    # like Suricata's fast_pattern: `common and rare` needs rare, so only rare's pattern triggers it
    ruleset = build(
        rule_yaml(
            "common:\n  text|re: '【[^】]+】'\nrare:\n  text: [安全账户, 资金核查]\ncondition: common and rare",
        )
    )
    (rule,) = ruleset.rules
    rare = {p.id for p in ruleset.patterns if p.expression in ("安全账户", "资金核查")}
    assert rule.atoms == frozenset(rare)
    assert set(ruleset.plans["sms"].by_atom) == rare
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("【银行】请转入安全账户")).rules == ("t.rule",)
    assert engine.evaluate(sms("【银行】您的账单")).rules == ()
    assert engine.evaluate(sms("请转入安全账户")).rules == ()


def test_a_deferred_pattern_is_read_by_the_rule_it_belongs_to(build: Build) -> None:
    # 【...】 brings no rule up: it waits in a deferred database, scanned only for a message that brought
    # up a rule that reads it, whichever way the rule reads it
    ruleset = build(
        rule_yaml(
            "rare:\n  text: [安全账户]\nsvc:\n  from|startswith: '106'\n"
            "common:\n  text|re: '【[^】]+】'\ncondition: rare and (svc and common or not svc and not common)",
        )
    )
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("【银行】请转入安全账户", src="10690000001")).rules == ("t.rule",)
    assert engine.evaluate(sms("请转入安全账户", src="10690000001")).rules == ()
    assert engine.evaluate(sms("请转入安全账户")).rules == ("t.rule",)
    assert engine.evaluate(sms("【银行】请转入安全账户")).rules == ()


def test_a_text_in_traditional_characters_is_matched_in_its_converted_form(build: Build) -> None:
    # the normalised view converts 帳戶 to 账户, and 昇 to 升 only in the phrase 上昇: the text as it was
    # before the conversion matches nothing
    ruleset = build(
        rule_yaml("sel:\n  text: 昇\ncondition: sel", rule_id="t.alone"),
        rule_yaml("sel:\n  text: [账户, 上升]\ncondition: sel", rule_id="t.simplified"),
    )
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("請將資金轉入安全帳戶")).rules == ("t.simplified",)
    assert engine.evaluate(sms("股價上昇")).rules == ("t.simplified",)
    assert engine.evaluate(sms("旭日东昇")).rules == ("t.alone",)
    assert engine.evaluate(sms("请将资金转入安全账户")).rules == ("t.simplified",)
