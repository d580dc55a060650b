"""The homophone view: sound-alike swaps match, the committed table is what pypinyin's data gives, the
message path never imports pypinyin, and explain shows the view."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from rules import homophone_table
from rules.homophones import TABLE, fold_squeezed, spell, translation
from rules.normalise import squeeze
from tests.rules.helpers import rule_yaml, sms

Build = Callable[..., rules.RuleSet]


def test_the_committed_table_is_the_generated_one() -> None:
    assert TABLE.read_text("utf-8") == homophone_table.render(), (
        "rules/homophones.json is stale: python -m rules.homophone_table"
    )


def test_the_check_command_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert homophone_table.main(["--check"]) == 0
    assert capsys.readouterr().out == "homophones.json is up to date\n"


# (keyword, a swap of it for sound-alike characters, what makes them sound alike)
SWAPS = [
    ("安全账户", "按全帐护", "same syllables, other tones"),
    ("刷单", "唰单", "same syllable"),
    ("征信", "蒸信", "same syllable"),
    ("退款", "腿款", "same syllable, other tone"),
    ("客服", "课服", "same syllable, other tone"),
    ("诈骗", "砸骗", "zh/z"),
    ("冲值", "充值", "ch/c is no change here: both chong"),
    ("出款", "粗款", "ch/c"),
    ("手机", "叟机", "sh/s"),
    ("内部", "类部", "n/l"),
    ("银行", "因形", "-ing/-in"),
    ("帮忙", "班忙", "-ang/-an"),
    ("网贷", "晚贷", "-ang/-an (wang/wan)"),
    ("光大", "关大", "-uang/-uan"),
    ("想念", "险念", "-iang/-ian"),
    ("绿色", "路色", "ü/u"),
    ("長沙", "长沙", "traditional folded before sound"),
]


@pytest.mark.parametrize(("word", "swap", "why"), SWAPS)
def test_sound_alike_swaps_read_the_same(word: str, swap: str, why: str) -> None:
    assert fold_squeezed(squeeze(swap)) == fold_squeezed(squeeze(word)), why


@pytest.mark.parametrize(
    ("a", "b"),
    [("安全", "安静"), ("冷", "懒"), ("银行", "营销"), ("账户", "帐篷"), ("刷单", "说单"), ("贷款", "代扣")],
)
def test_different_sounds_stay_apart(a: str, b: str) -> None:
    assert fold_squeezed(squeeze(a)) != fold_squeezed(squeeze(b))


@given(st.text())
def test_the_aho_corasick_pass_is_the_translate_table(text: str) -> None:
    folded = fold_squeezed(text)
    assert folded == text.translate(translation())
    assert len(folded) == len(text)  # one character for one: explain's offsets are the squeezed view's


_FOLDED = sorted(translation())


@given(
    st.lists(
        st.one_of(
            st.sampled_from(_FOLDED).map(chr),  # every block the table covers: common, extension A, astral
            st.sampled_from([c for c in _FOLDED if not 0x4E00 <= c <= 0x9FFF]).map(chr),
            # any other character, but a lone surrogate: the engine scrubs those before any view is built
            # (rules.normalise.scrub), as st.text() leaves them out of the test above
            st.characters(exclude_categories=["Cs"]),
        ),
        max_size=40,
    ).map("".join)
)
def test_every_folded_character_of_every_block_is_folded(text: str) -> None:
    assert fold_squeezed(text) == text.translate(translation())


def test_only_hanzi_are_folded() -> None:
    assert all(0x3400 <= code <= 0x3_FFFF and chr(code).isalpha() for code in translation())
    assert fold_squeezed("abc123vx") == "abc123vx"


def test_heteronyms_take_the_common_reading() -> None:
    groups = json.loads(TABLE.read_text("utf-8"))["groups"]
    where = {c: key for key, chars in groups.items() for c in chars}
    assert where["行"] == "xin"  # xing, folded
    assert where["长"] == "can"  # chang, not zhang
    assert where["还"] == "hai"
    assert where["重"] == "zong"  # zhong (-ong has no -on to merge with)


def test_spell_shows_the_syllables() -> None:
    assert spell(fold_squeezed(squeeze("按全帐护 vx"))) == "an quan zan hu vx"


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("请转入按全帐护", "block"),
        ("請轉入 按 全 帳 護", "block"),
        ("转入 安\u200b全 账🔥户", "block"),
        ("安全账户", "block"),
        ("全账户安", "pass"),
        ("安静的账本", "pass"),
    ],
)
def test_a_homophone_rule_catches_the_swaps(build: Build, text: str, action: str) -> None:
    ruleset = build(rule_yaml("sel:\n  text|homophone: 安全账户\ncondition: sel"))
    assert rules.Engine(ruleset).evaluate(sms(text)).action.value == action


def test_the_normalised_view_does_not_fold_sounds(build: Build) -> None:
    ruleset = build(rule_yaml("sel:\n  text: 安全账户\ncondition: sel"))
    assert rules.Engine(ruleset).evaluate(sms("请转入按全帐护")).action is rules.Action.PASS


@pytest.mark.parametrize(("text", "action"), [("按全的帐护", "block"), ("安全账户", "block"), ("安静的账本", "pass")])
def test_regular_expressions_are_folded_too(build: Build, text: str, action: str) -> None:
    ruleset = build(rule_yaml("sel:\n  text|re|homophone: '安全.{0,6}帐户'\ncondition: sel"))
    assert rules.Engine(ruleset).evaluate(sms(text)).action.value == action


def test_views_given_by_the_caller_are_folded(build: Build) -> None:
    ruleset = build(rule_yaml("sel:\n  text|homophone: 刷单\ncondition: sel"))
    text = "招聘唰单兼职"
    verdict = rules.Engine(ruleset).evaluate(sms(text), views=rules.normalise.views(text))
    assert verdict.action is rules.Action.BLOCK


def test_explain_shows_the_view_and_what_the_sender_wrote(write_rules: Callable[..., Path]) -> None:
    path = write_rules("rules:\n" + rule_yaml("sel:\n  text|homophone: 安全账户\ncondition: sel"))
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "rules", "explain", "--rules", str(path), "--text", "转入 按 全 帐 护"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sel: text|homophone '安全账户' on homophone[2:6] '按全账护'" in out
    assert "    homophone:  '钻茹鞍圈咱呼' (zuan ru an quan zan hu)" in out


def test_the_message_path_does_not_import_pypinyin(write_rules: Callable[..., Path]) -> None:
    path = write_rules("rules:\n" + rule_yaml("sel:\n  text|homophone: 安全账户\ncondition: sel"))
    code = (
        "import sys, rules\n"
        f"engine = rules.Engine(rules.build([{str(path)!r}]))\n"
        "assert engine.evaluate(rules.Message(text='按全帐护')).action.value == 'block'\n"
        "print('pypinyin' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "False\n"
