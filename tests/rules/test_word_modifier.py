"""``text|word``: short ASCII keywords (vx, qq, v) match as tokens, not inside longer words, numbers or URLs."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from tests.rules.helpers import sms

PACK = """\
rules:
  - id: t.alias
    title: alias as a token
    category: other
    channel: sms
    action: tag
    risk: low
    detection:
      sel: {text|word: [vx, qq, v, 加v]}
      condition: sel
  - id: t.substring
    title: the same aliases as plain keywords, for contrast
    category: other
    channel: sms
    action: tag
    risk: low
    detection:
      sel: {text: [vx, qq, v]}
      condition: sel
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> rules.Engine:
    path = tmp_path_factory.mktemp("word") / "word.yaml"
    path.write_text(PACK, "utf-8")
    return rules.Engine(rules.build([path]))


@pytest.mark.parametrize(
    "text",
    ["vivo手机新品", "https://vx.example.com/a", "SVX3 型号", "version 2.0", "访问 vx.top 领取", "ssqq空间", "dev@vx"],
)
def test_inside_a_word_a_number_or_a_url_it_does_not_match(engine, text):
    verdict = engine.evaluate(sms(text))
    assert "t.alias" not in verdict.rules
    assert "t.substring" in verdict.rules  # what a plain keyword did


@pytest.mark.parametrize("text", ["加vx:abc123", "VX abc123", "ＱＱ号 12345", "加V了解", "请加vx.", "下载vx", "v"])
def test_as_a_token_it_matches(engine, text):
    assert "t.alias" in engine.evaluate(sms(text)).rules


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["vx", "qq", "v"]),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=5),
    st.text(alphabet=string.ascii_letters + string.digits, max_size=5),
    st.sampled_from(["", "你好", "，"]),
)
def test_glued_to_letters_or_digits_it_never_matches(engine, alias, before, after, outside):
    text = f"{outside}{before}{alias}{after}{outside}"
    found = any(t in ("vx", "qq", "v") for t in re.findall(r"[a-z0-9]+", text.casefold()))  # a word may be one
    assert ("t.alias" in engine.evaluate(sms(text)).rules) == found


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["vx", "qq", "v"]), st.sampled_from(["", " ", "：", "你", "!", "+", "。"]))
def test_next_to_spaces_hanzi_or_punctuation_it_matches(engine, alias, side):
    assert "t.alias" in engine.evaluate(sms(f"加{side}{alias}{side}好友")).rules


@pytest.mark.parametrize(
    ("key", "message"),
    [("text|word|squeezed: vx", "|word does not apply to squeezed"), ("text|re|word: 'v.x'", "regular expression")],
)
def test_word_needs_the_normalised_or_raw_view(write_rules, key, message):
    path = write_rules(
        "rules:\n  - {id: t.x, title: x, category: other, channel: sms, action: tag, risk: low,"
        f" detection: {{sel: {{{key}}}, condition: sel}}}}\n"
    )
    errors = [str(e) for e in rules.check([path])]
    assert any(message in e for e in errors), errors
