"""Structural selectors: URLs, contact handles, money, phone numbers, the sender's kind, official reminders."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules import normalise as n
from rules.signals import extract, within_one_edit
from tests.rules.helpers import sms

SELECTORS = {
    "ip": "url.ip_literal: true",
    "short": "url.shortener: true",
    "rare": "url.tld_rare: true",
    "puny": "url.punycode: true",
    "brand": "url.brand_lookalike: true",
    "alipay": "url.brand_lookalike|brand: alipay",
    "handle": "contact.handle: true",
    "qq": "contact.handle|kind: qq",
    "wechat": "contact.handle|kind: wechat",
    "telegram": "contact.handle|kind: telegram",
    "money": "money.amount: true",
    "big_money": "money.amount|at_least: 10000",
    "percent": "money.percent|at_least: 10",
    "phone": "phone.in_text: true",
    "virtual": "sender.kind: virtual_operator",
    "port106": "sender.kind: service_106",
    "abroad": "sender.kind: international",
    "mobile": "sender.kind: mobile",
    "reminder": "reminder.official: true",
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> rules.Engine:
    items = "".join(
        f"  - id: s.{name}\n    title: {name}\n    category: other\n    channel: sms\n    action: tag\n"
        f"    risk: low\n    detection:\n      sel:\n        {key}\n      condition: sel\n"
        for name, key in SELECTORS.items()
    )
    path = tmp_path_factory.mktemp("signals") / "signals.yaml"
    path.write_text("rules:\n" + items, "utf-8")
    return rules.Engine(rules.build([path]))


def fired(engine: rules.Engine, text: str, src: str = "", **kw: str) -> set[str]:
    return {r.removeprefix("s.") for r in engine.evaluate(sms(text, src=src, **kw)).rules}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请访问 http://10.1.2.3:8080/pay 办理", {"ip"}),
        ("点击 1.2.3.4/refund", {"ip"}),
        ("详情 http://t.cn/A6xyZ", {"short"}),
        ("详情见 dwz。cn/abc", {"short"}),
        ("登录 bank-cn.top 认证", {"rare"}),
        ("登录 http://xn--lipay-3ve.com", {"puny", "brand", "alipay"}),  # Cyrillic а in alipay
        ("登录 a1ipay-secure.top", {"rare", "brand", "alipay"}),  # 1 for l
        ("您的工行 icbc-vip.cc 积分兑换", {"rare", "brand"}),
        ("京东 jd-login.top 退款", {"rare", "brand"}),
        ("打开 taoba0.com 查看", {"brand"}),  # 0 for o
        ("打开 unoinpay.com", {"brand"}),  # two letters swapped
        # official domains are not look-alikes of themselves
        ("登录 www.alipay.com 查看", set()),
        ("工商银行 www.icbc.com.cn", set()),
        ("12306.cn 购票", set()),
    ],
)
def test_url_signals(engine, text, expected):
    assert fired(engine, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("加我QQ 12345678 领取", {"handle", "qq"}),
        ("扣扣：987654321", {"handle", "qq"}),
        ("Q: 5566778", {"handle", "qq"}),
        ("＋Ｖ：ｌｉｎｇ８８８８", {"handle", "wechat"}),  # full width, folded first
        ("加V了解详情", {"handle", "wechat"}),
        ("+v 带你赚钱", {"handle", "wechat"}),
        ("薇信 abc12345 联系", {"handle", "wechat"}),
        ("vx：ab_cd_ef", {"handle", "wechat"}),
        ("纸飞机 @bigwin_88", {"handle", "telegram"}),
        ("加我新微信纸飞机：83263695", {"handle", "telegram"}),
        ("进群 t.me/bigwin88", {"handle", "telegram"}),
        # aliases inside longer words and URLs are not handles
        ("vivo手机 version2024 发布", set()),
        ("FAQ123456 见帮助", set()),
        ("https://vx.example.com/abc123", set()),
        ("请发邮件 service@example.com", set()),
        ("VIP会员 增加vip权益", set()),
        ("我的QQ空间更新了", set()),
    ],
)
def test_contact_handles_are_tokens(engine, text, expected):
    assert fired(engine, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("返还¥300", {"money"}),
        ("投资5万元", {"money", "big_money"}),
        ("借款 20,000 元", {"money", "big_money"}),
        ("2w块", {"money", "big_money"}),
        ("年化收益15%", {"percent"}),
        ("收益百分之30", {"percent"}),
        ("打折5%", set()),  # under the at_least
        ("致电 138-0013-8000", {"phone"}),
        ("回拨 0755-12345678", {"phone"}),
        ("热线 400-123-4567", {"phone"}),
        ("订单号 2024061312345678901", set()),  # a long digit run is not a phone number
        ("验证码 123456", set()),
    ],
)
def test_money_and_phone_signals(engine, text, expected):
    assert fired(engine, text) == expected


@pytest.mark.parametrize(
    ("src", "origin", "expected"),
    [
        ("17012345678", "domestic", "virtual"),
        ("16512345678", "domestic", "virtual"),
        ("+8617112345678", "domestic", "virtual"),
        ("13800138000", "domestic", "mobile"),
        ("1069012345", "domestic", "port106"),
        ("+85261234567", "domestic", "abroad"),
        ("13800138000", "international", "abroad"),
    ],
)
def test_sender_kind(engine, src, origin, expected):
    assert fired(engine, "你好", src=src, origin=origin) == {expected}


REMINDERS = [
    "【某某市公安局】警惕冒充公检法诈骗：称你涉嫌洗钱、要求转账到安全账户的都是诈骗，切勿转账。",
    "【国家反诈中心】谨防刷单返利诈骗，凡是要求先垫付的都是诈骗。",
    "【某某银行】提醒您：不要相信“客服”要求注销校园贷的说法，请勿向陌生人转账。",
]
NOT_REMINDERS = [
    "【某某市公安局】你涉嫌洗钱，请勿告诉他人，加QQ 12345678 配合调查",  # secrecy, and a handle
    "【某某银行】警惕！您的账户异常，请登录 icbc-vip.cc 验证",  # a look-alike link
    "警惕冒充客服的诈骗",  # no signature
    "【某某银行】您的账户入账 500 元",  # no warning words
    "【市公安局】你涉嫌洗钱，千万不要告诉家人，请勿挂断",  # secrecy is not a warning
]


@pytest.mark.parametrize("text", REMINDERS)
def test_official_reminders_are_recognised_by_content(engine, text):
    assert "reminder" in fired(engine, text, src="13912345678")


@pytest.mark.parametrize("text", NOT_REMINDERS)
def test_fraud_in_an_official_costume_is_not_a_reminder(engine, text):
    assert "reminder" not in fired(engine, text)


@pytest.mark.parametrize("text", ["1.点击 2.DIGIT 3.HELLO", "步骤2.Next", "第3.test项", "no.limit", "1.do this"])
def test_list_items_and_abbreviations_are_not_domains(text):
    assert n.views(text).domains == ()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["q", "v", "vx", "wx", "qq"]),
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=4),
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=6, max_size=12),
)
def test_an_alias_inside_a_longer_word_is_no_handle(alias, before, after):
    # the alias is glued to letters or digits on its left: part of a word or a URL, never an alias (the
    # leading 0 keeps the generated word itself from starting with an alias: vxabc123 is one)
    for text in (f"0{before}{alias}{after}", f"http://{before}{alias}.com/{after}"):
        assert extract(n.normalise(text)).handles == (), text


@given(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10))
def test_one_edit(word):
    assert within_one_edit(word, word)
    assert within_one_edit(word, word[1:])
    assert within_one_edit(word, word + "x")
    assert not within_one_edit(word, word + "xy")


def test_explain_shows_what_a_signal_saw(engine):
    verdict = engine.evaluate(sms("加我QQ 12345678，投资5万元"), explain=True)
    shown = {m.rule: (m.view, m.text) for m in verdict.matches}
    assert shown["s.qq"] == ("signals", "qq:12345678")
    assert shown["s.big_money"] == ("signals", "50000")


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("url.brand_lookalike|brand: alipy", "did you mean 'alipay'"),
        ("contact.handle|kind: weixin", "expected one of qq, wechat, telegram"),
        ("money.amount|at_least: lots", "expected a number"),
        ("url.shortener: yes", "expected true or false"),
        ("sender.kind: {list: kinds}", "'virtual' (from list 'kinds') is not one of"),
        ("url.shortner: true", "did you mean 'url.shortener'"),
    ],
)
def test_signal_mistakes_are_reported(write_rules, selection, message):
    path = write_rules(
        "lists:\n  kinds: [virtual]\nrules:\n  - id: t.x\n    title: x\n    category: other\n    channel: sms\n"
        f"    action: tag\n    risk: low\n    detection:\n      sel:\n        {selection}\n      condition: sel\n"
    )
    errors = [str(e) for e in rules.check([path])]
    assert any(message in e for e in errors), errors


FRAGMENTS = [
    "加我",
    "QQ",
    "q:",
    "＋Ｖ",
    "vx",
    "微信",
    "纸飞机",
    "@",
    "t.me/",
    "abc123",
    "12345678",
    "5万",
    "元",
    "¥",
    "300",
    "%",
    "百分之",
    "138",
    "0013",
    "8000",
    "0755-",
    "400",
    "【",
    "】",
    "市公安局",
    "国家反诈中心",
    "谨防",
    "切勿",
    "http://",
    "1.2.3.4",
    "/",
    ":8080",
    "t.cn",
    "a1ipay",
    ".top",
    "xn--lipay-3ve",
    ".com",
    "icbc",
    "-",
    "，",
    " ",
    "点",
    "[.]",
    "你好",
    "转账",
]
FLAGS = {
    "ip": "ip_literal",
    "short": "shortener",
    "rare": "tld_rare",
    "puny": "punycode",
    "brand": "lookalikes",
    "handle": "handles",
    "money": "amounts",
    "phone": "phones",
    "reminder": "official_reminder",
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_rules_on_signals_see_what_extraction_sees(engine, parts):
    # the engine only evaluates rules on signals when a Hyperscan hint matched: no hint may miss a signal
    text = "".join(parts)
    found = extract(n.normalise(text))
    fired_now = fired(engine, text)
    for name, attr in FLAGS.items():
        assert (name in fired_now) == bool(getattr(found, attr)), (name, text)
