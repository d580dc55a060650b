"""Every selector: text (views, operators, modifiers), domain, from/to/sender_id, origin, time, velocity,
shared lists and macros, alternatives, channels."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rules
from tests.rules.helpers import NOW, call, rule_yaml, sms

Build = Callable[..., rules.RuleSet]


def engine_for(build: Build, detection: str, **kw: object) -> rules.Engine:
    return rules.Engine(build(rule_yaml(detection, **kw)))  # type: ignore[arg-type]


def hit(engine: rules.Engine, message: rules.Message) -> bool:
    return "t.rule" in engine.evaluate(message).rules


@pytest.mark.parametrize(
    ("key", "value", "matching", "not_matching"),
    [
        # default: contains, on the normalised view (NFKC, casefolded, simplified; literals normalised too)
        (
            "text",
            "安全帳戶",
            ["请转入安全账户", "請轉入安全帳戶", "安全帐户", "安全\u200b账户"],
            ["安 全 账 户", "安全"],
        ),
        ("text", "VX", ["加vx", "加ＶＸ", "加Vx"], ["加v x"]),
        ("text|contains", "点击链接", ["请点击链接"], ["请点击 链接"]),
        # squeezed: separators, punctuation, emoji removed on both sides
        ("text|squeezed", "安全账户", ["安 全-账*户", "安。全，账！户", "安🔥全账户", "安\u200b全 帳戶"], ["安全账号"]),
        ("text|contains|squeezed", "加微信", ["加 微 信", "加·微·信"], ["加薇信"]),
        # raw: as received, case-sensitive unless nocase
        ("text|raw", "帳戶", ["您的帳戶"], ["您的账户"]),
        ("text|raw", "VX", ["加VX"], ["加vx", "加ＶＸ"]),
        ("text|raw|nocase", "VX", ["加VX", "加vx", "加Vx"], ["加ＶＸ"]),
        (
            "text|startswith",
            "【国家反诈中心】",
            ["【国家反诈中心】提醒", "【國家反詐中心】提醒"],
            ["提醒【国家反诈中心】"],
        ),
        ("text|endswith", "【工商银行】", ["您的积分将清零【工商银行】"], ["【工商银行】您的积分"]),
        ("text|startswith|squeezed", "国家反诈中心", ["【国 家 反 诈 中 心】提醒"], ["请下载国家反诈中心APP"]),
        ("text|re", "加[^,。]{0,4}(微信|qq)", ["加我微信", "加一下qq", "加我ＱＱ"], ["加,微信", "微信加"]),
        ("text|re|nocase", "[A-Z]{3}", ["abc"], ["ab1"]),
        ("text|re|raw", "^【[^】]+】", ["【银行】x"], ["x【银行】"]),
        ("text|re|squeezed", "验证码[0-9]{6}", ["验证码：123 456"], ["验证码：12345"]),
    ],
)
def test_text(build: Build, key: str, value: str, matching: list[str], not_matching: list[str]) -> None:
    engine = engine_for(build, f"sel:\n  {key}: '{value}'\ncondition: sel")
    for text in matching:
        assert hit(engine, sms(text)), text
    for text in not_matching:
        assert not hit(engine, sms(text)), text


def test_text_any_and_all(build: Build) -> None:
    any_engine = engine_for(build, "sel:\n  text: [退款, 理赔]\ncondition: sel")
    all_engine = engine_for(build, "sel:\n  text|all: [退款, 理赔]\ncondition: sel")
    assert hit(any_engine, sms("办理退款"))
    assert hit(any_engine, sms("办理理赔"))
    assert not hit(all_engine, sms("办理退款"))
    assert hit(all_engine, sms("退款和理赔"))


@pytest.mark.parametrize(
    ("key", "value", "matching", "not_matching"),
    [
        (
            "domain",
            "bank-cn.top",
            ["点击 http://bank-cn.top/x", "登录 www.bank-cn.top", "访问 bank-cn[.]top", "访问 BANK-CN。TOP"],
            ["访问 evilbank-cn.top", "访问 bank-cn.top.example.com", "bank cn top"],
        ),
        ("domain|suffix", "top", ["a.top", "x.y.top"], ["a.topx", "a.cc"]),
        ("domain|contains", "icbc", ["icbc-vip.cc", "my.icbc.com.cn"], ["ibc.cc"]),
        (
            "domain|re",
            "^[a-z]+[0-9]{2,}\\.(vip|cc)$",
            ["lucky88.vip", "h t t p : / / w i n 9 9 . c c"],
            ["lucky8.vip", "88.vip"],
        ),
    ],
)
def test_domain(build: Build, key: str, value: str, matching: list[str], not_matching: list[str]) -> None:
    engine = engine_for(build, f"sel:\n  {key}: '{value}'\ncondition: sel")
    for text in matching:
        assert hit(engine, sms(text)), text
    for text in not_matching:
        assert not hit(engine, sms(text)), text


@pytest.mark.parametrize(("want", "with_link", "without_link"), [(True, True, False), (False, False, True)])
def test_domain_exists(build: Build, want: bool, with_link: bool, without_link: bool) -> None:
    engine = engine_for(build, f"sel:\n  domain|exists: {str(want).lower()}\ncondition: sel")
    assert hit(engine, sms("详见 t.cn/abc")) is with_link
    assert hit(engine, sms("详见官网")) is without_link
    assert hit(engine, sms("")) is without_link


@pytest.mark.parametrize(
    ("key", "value", "field", "matching", "not_matching"),
    [
        ("from", "'12381'", "src", ["12381"], ["123810", "+8612381", ""]),
        ("from", "['12381', '96110']", "src", ["12381", "96110"], ["110"]),
        ("from|startswith", "['+852', '00852']", "src", ["+85261234567", "0085261234567"], ["85261234567"]),
        ("from|endswith", "'110'", "src", ["96110", "110"], ["1100"]),
        ("from|exists", "false", "src", [""], ["1"]),
        ("to", "'13800000001'", "dst", ["13800000001"], ["13800000002"]),
        ("to|startswith", "'1380000'", "dst", ["13800000001"], ["13900000001"]),
        ("sender_id", "[ICBC, CCB]", "sender_id", ["ICBC", "CCB"], ["icbc", None, ""]),
        ("sender_id|exists", "true", "sender_id", ["X"], [None, ""]),
    ],
)
def test_number_fields(
    build: Build, key: str, value: str, field: str, matching: list[str | None], not_matching: list[str | None]
) -> None:
    engine = engine_for(build, f"sel:\n  {key}: {value}\ncondition: sel")
    for v in matching:
        assert hit(engine, sms("x", **{field: v})), v
    for v in not_matching:
        assert not hit(engine, sms("x", **{field: v})), v


def test_origin(build: Build) -> None:
    engine = engine_for(build, "sel:\n  origin: international\ncondition: sel", channel="both")
    assert hit(engine, sms(origin="international"))
    assert hit(engine, call(origin="international"))
    assert not hit(engine, sms(origin="domestic"))


@pytest.mark.parametrize(
    ("between", "inside", "outside"),
    [
        (["09:00", "17:30"], ["09:00", "12:00", "17:29"], ["08:59", "17:30", "23:00"]),
        (["23:00", "06:00"], ["23:00", "00:00", "05:59"], ["06:00", "12:00", "22:59"]),
    ],
)
def test_time_of_day_in_local_time(build: Build, between: list[str], inside: list[str], outside: list[str]) -> None:
    engine = engine_for(build, f"sel:\n  time|between: ['{between[0]}', '{between[1]}']\ncondition: sel")

    def at(hhmm: str) -> rules.Message:
        return sms("x", now=rules.message_from_mapping({"now": f"2024-06-03T{hhmm}:00"}).now)

    for t in inside:
        assert hit(engine, at(t)), t
    for t in outside:
        assert not hit(engine, at(t)), t
    # the same instant is 10:00 in Beijing and 02:00 UTC
    utc = rules.Engine(engine.ruleset, utc_offset_minutes=0)
    ten_am_beijing = rules.message_from_mapping({"now": "2024-06-03T10:00:00+08:00"}).now
    assert hit(engine, sms("x", now=ten_am_beijing)) == ("10:00" in inside or between == ["09:00", "17:30"])
    assert hit(utc, sms("x", now=ten_am_beijing)) == (between == ["23:00", "06:00"])


def test_time_uses_the_engine_clock_when_the_message_has_none(build: Build) -> None:
    ruleset = build(rule_yaml("sel:\n  time: ['00:00', '01:00']\ncondition: sel"))
    midnight = rules.message_from_mapping({"now": "2024-06-03T00:30:00+08:00"}).now
    assert midnight is not None
    engine = rules.Engine(ruleset, clock=lambda: midnight)
    assert hit(engine, rules.Message(text="x"))
    engine.clock = lambda: midnight + 3600
    assert not hit(engine, rules.Message(text="x"))


def test_velocity_by_source_counts_this_message_too(build: Build) -> None:
    engine = engine_for(build, "sel:\n  velocity: {by: src, count: 3, within: 60}\ncondition: sel")
    assert not hit(engine, sms("a", src="A", now=0))
    assert not hit(engine, sms("b", src="A", now=10))
    assert hit(engine, sms("c", src="A", now=20))  # third within 60 s
    assert not hit(engine, sms("d", src="B", now=21))  # another source has its own count
    assert hit(engine, sms("e", src="A", now=59))  # 10, 20, 59
    assert not hit(engine, sms("f", src="A", now=80))  # the window (20, 80] holds 59 and 80 only
    assert hit(engine, sms("g", src="A", now=81))  # 59, 80, 81


def test_velocity_by_destination_and_per_channel(build: Build) -> None:
    engine = engine_for(build, "sel:\n  velocity: {by: dst, count: 2, within: 600}\ncondition: sel", channel="both")
    assert not hit(engine, call(src="X", dst="D", now=0))
    assert not hit(engine, sms("x", src="Y", dst="D", now=1))  # sms and calls are counted apart
    assert hit(engine, call(src="Z", dst="D", now=500))
    assert not hit(engine, call(src="Z", dst="D", now=1200))  # 500 and 1200 are 700 s apart


def test_lists_and_macros(build: Build) -> None:
    header = (
        "lists:\n  wechat: [微信, 薇信, v信]\n  official: ['12381']\n"
        "macros:\n  from_official:\n    from: {list: official}\n  has_link:\n    domain|exists: true\n"
    )
    detection = "sel:\n  text|squeezed: [{list: wechat}, 扣扣]\ncondition: (sel or has_link) and not from_official"
    engine = rules.Engine(build(rule_yaml(detection), header=header))
    assert hit(engine, sms("加 薇 信"))
    assert hit(engine, sms("加扣扣"))
    assert hit(engine, sms("见 a.cn"))
    assert not hit(engine, sms("加薇信", src="12381"))
    assert not hit(engine, sms("hello"))


def test_a_selection_list_is_an_or_of_mappings(build: Build) -> None:
    detection = "sel:\n  - text: 退款\n    from: '1'\n  - text: 理赔\ncondition: sel"
    engine = engine_for(build, detection)
    assert hit(engine, sms("退款", src="1"))
    assert not hit(engine, sms("退款", src="2"))  # both keys of the first mapping must hold
    assert hit(engine, sms("理赔", src="2"))


def test_channels(build: Build) -> None:
    ruleset = build(
        rule_yaml("sel:\n  origin: international\ncondition: sel", rule_id="t.sms", channel="sms"),
        rule_yaml("sel:\n  origin: international\ncondition: sel", rule_id="t.call", channel="call"),
        rule_yaml("sel:\n  origin: international\ncondition: sel", rule_id="t.both", channel="both"),
    )
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms(origin="international")).rules == ("t.sms", "t.both")
    assert engine.evaluate(call(origin="international")).rules == ("t.call", "t.both")
    assert engine.evaluate(rules.Message(channel="fax", origin="international", now=NOW)) == rules.Verdict()
