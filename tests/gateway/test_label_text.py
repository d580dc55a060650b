"""Protected label texts are found in every disguise, and ordinary names are left alone."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import label_text
from gateway.label_text import LabelMatcher, NormalisingRegistry, ProtectedNumbers, normalise_label_text
from protocols.stir import CallInfo, Label, LabelRegistry, Rejected

POLICE, MIIT = "公安反诈专号", "工信部反诈预警"
MATCHER = LabelMatcher([POLICE, MIIT])


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("公安反诈专号", POLICE),
        ("公安反詐專號", POLICE),  # traditional
        ("公 安 反 詐 專 號", POLICE),
        ("公安　反诈　专号", POLICE),  # ideographic spaces
        ("公安·反诈*专号", POLICE),
        ("公安-反诈_专号", POLICE),
        ("公安\u200b反诈\u2060专号\ufe0f", POLICE),  # zero-width space, word joiner, variation selector
        ("公安\u202e反诈专号", POLICE),  # a bidi override
        ("公\u0301安反诈专号", POLICE),  # a combining mark
        ("公安＿反诈＿专号！", POLICE),  # full-width forms
        ("公安反诈専号", POLICE),  # the Japanese 専
        ("公安友诈专号", POLICE),  # 友 drawn for 反
        ("【公安反诈专号】", POLICE),
        ("★公安反诈专号★北京", POLICE),
        ("公安反诈专号96110", POLICE),
        ("公安a反诈1专号", POLICE),  # Latin letters and digits between Han characters
        ("エ信部反诈预警", MIIT),  # katakana エ for 工
        ("⼯信部反诈预警", MIIT),  # Kangxi radical ⼯ (NFKC)
        ("工信部反詐預警", MIIT),
    ],
)
def test_a_disguised_label_is_found(text: str, label: str) -> None:
    assert MATCHER.labels_in(text) == {label}


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Shanghai Bank",
        "96110",
        "公安局",
        "反诈专号",
        "公安反诈",
        "中国移动客服",
        "公安反诈中心",
        "专号反诈安公",
    ],
)
def test_ordinary_names_and_fragments_show_no_label(text: str | None) -> None:
    assert MATCHER.labels_in(text) == frozenset()


def test_both_labels_in_one_text_and_any_of_several_texts() -> None:
    assert MATCHER.labels_in("公安反诈专号/工信部反诈预警") == {POLICE, MIIT}
    assert MATCHER.labels_in_any(["Bank", None, "【工信部反诈预警】"]) == {MIIT}


def test_normal_form() -> None:
    assert normalise_label_text("【公安 反詐 專號】ＡＢｃ１２") == "公安反诈专号abc12"


def test_without_zhconv_the_built_in_map_covers_the_shipped_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zhconv_rs", None)  # import now fails
    convert = label_text._converter()
    assert convert("公安反詐專號") == POLICE
    assert convert("工信部反詐預警") == MIIT
    assert convert("エ信部") == "工信部"


def test_the_normalising_registry_makes_the_verifier_see_disguised_display_names() -> None:
    labels = {"96110": Label(POLICE), "12381": Label(MIIT)}
    plain, normalising = LabelRegistry(labels), NormalisingRegistry(labels)
    assert plain.labels_in("公安反詐專號") == frozenset()
    assert normalising.labels_in("公安反詐專號") == {POLICE}
    assert normalising.claims_label("【工信部反诈预警】")
    assert NormalisingRegistry.of(normalising) is normalising
    assert NormalisingRegistry.of(plain).texts == plain.texts
    from protocols.stir import CredentialResolver, Verifier

    verifier = Verifier(credentials=CredentialResolver([], {}), registry=normalising)
    outcome = verifier.verify([], CallInfo("c1", "8613912345678", "8613800000001", "公安 反詐 專號"), 0)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 428


# --- protected numbers in display names -------------------------------------------------------------

NUMBERS = ProtectedNumbers(["8696110", "861096110", "862196110", "8612381"])
# Ways to write each digit: ASCII, full-width, Arabic-Indic, Devanagari, mathematical bold, circled,
# Chinese numerals, the capital (financial) forms, colloquial forms, and letters drawn like digits.
SPELLINGS = {
    "0": "0０٠०𝟎〇零洞Oo",
    "1": "1１١१𝟏①一壹幺lI|",
    "2": "2２٢२𝟐②二贰两Z",
    "3": "3３٣३𝟑③三叁",
    "4": "4４٤४𝟒④四肆",
    "5": "5５٥५𝟓⑤五伍S",
    "6": "6６٦६𝟔⑥六陆陸",
    "7": "7７٧७𝟕⑦七柒",
    "8": "8８٨८𝟖⑧八捌B",
    "9": "9９٩९𝟗⑨九玖",
}
SEPARATORS = ["", "", " ", ".", "-", "·", "\u200b", "_", "/", "  "]
# (what is written, the E.164 number it must read as)
WRITTEN = [
    ("96110", "8696110"),
    ("12381", "8612381"),
    ("1096110", "861096110"),
    ("2196110", "862196110"),
    ("57196110", "8696110"),  # Hangzhou's area code before the nationwide short code
    ("99196110", "8696110"),
]
PREFIXES = {"96110": ["", "+86", "0086", "86"], "12381": ["", "+86 ", "0086-"]}


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    digits, tn = draw(st.sampled_from(WRITTEN))
    prefix = draw(st.sampled_from(PREFIXES.get(digits, ["", "0", "+86", "0086", "+86 (0)"])))
    if digits not in PREFIXES and prefix == "":
        prefix = "0"
    out = [prefix]
    for digit in digits:
        out.append(draw(st.sampled_from(SPELLINGS[digit])))
        out.append(draw(st.sampled_from(SEPARATORS)))
    before = draw(st.sampled_from(["", "【", "☆ ", "来电 ", "Tel: "]))
    after = draw(st.sampled_from(["", "】", " ★", " 北京", " (官方)"]))
    return before + "".join(out) + after, tn


@given(disguised())
def test_a_protected_number_reads_through_every_digit_game(case: tuple[str, str]) -> None:
    text, tn = case
    assert NUMBERS.read(text) == tn, text


@given(disguised())
def test_the_callers_own_number_in_its_display_is_not_a_claim(case: tuple[str, str]) -> None:
    text, tn = case
    assert NUMBERS.read(text, caller=tn) is None


_NAME_CHARS = st.sampled_from(
    "张李王赵刘陈杨黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
)


@given(st.lists(_NAME_CHARS, min_size=1, max_size=4).map("".join), st.integers(0, 999))
def test_ordinary_names_and_small_numbers_pass(name: str, suffix: int) -> None:
    for text in (name, f"{name} {suffix}", f"{name}快递{suffix}号店", f"Alice {suffix}"):
        assert NUMBERS.read(text) is None, text


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_ordinary_mobile_numbers_pass(mobile: str) -> None:
    for text in (mobile, f"+86 {mobile}", f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}", f"Shop {mobile}"):
        assert NUMBERS.read(text) is None, text


@pytest.mark.parametrize(
    "text", ["张三", "Alice 2", "Bob", "Hello", "Room 101", "110", "Shanghai Bank 95588", "上海第一百货", "Lily Liu"]
)
def test_everyday_display_names_pass(text: str) -> None:
    assert NUMBERS.read(text) is None
