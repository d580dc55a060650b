"""The one-pass squeezed and homophone views (rules/_views.c, built by ``make compile``) give the bytes the
Python path gives, for any text; the engine's verdicts do not depend on which path ran."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import squeeze_fold
from rules.homophones import fold_squeezed
from rules.normalise import normalise, scrub, squeeze_normalised

pytestmark = pytest.mark.skipif(
    not squeeze_fold.available(), reason="rules/_views.c is not built: run `make compile` (needs a C compiler)"
)


def python_path(normalised: str) -> tuple[bytes, bytes]:
    # lone surrogates: the engine scrubs them to U+FFFD first, a separator, which the one pass drops as it is
    squeezed = squeeze_normalised(scrub(normalised))
    return squeezed.encode(), fold_squeezed(squeezed).encode()


SAMPLES = [
    "",
    "安 全-账*户",
    "安丨全丶账户 加 v 信 abc_123",
    "【交通银行】温馨提示:银行不会以任何理由要求您转账到安全账户,谨防诈骗。",
    "鞍全帐护 征信 蒸信 刷单 唰单",
    "ⅻ①½ café ß ǅ",  # numbers and letters beyond ASCII are letters or digits, kept
    "\x00\t\r\n\u200b\ufeff\u3000",  # separators only: both views empty
    "㐀㐁 豈 更",  # extension A and compatibility ideographs (the Python path folds them with translate)
    "\ud800lone surrogate\udfff",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_one_pass_views_are_the_python_views(text: str) -> None:
    assert squeeze_fold.squeeze_fold_utf8(text) == python_path(text)


def test_a_text_beyond_the_basic_plane_is_left_to_the_python_path() -> None:
    assert squeeze_fold.squeeze_fold_utf8("转账😀到安全账户") is None
    assert squeeze_fold.squeeze_fold_utf8("𠀀") is None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFFFF)))
def test_any_basic_plane_text_gives_the_python_bytes(text: str) -> None:
    assert squeeze_fold.squeeze_fold_utf8(text) == python_path(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("安全账户帐护鞍征信蒸刷单唰 -*丨丶,.:!?vV信薇q①ａＡ\u200b")))
def test_normalised_fraud_spellings_give_the_python_bytes(text: str) -> None:
    normalised = normalise(text)
    assert squeeze_fold.squeeze_fold_utf8(normalised) == python_path(normalised)


def python_views(text: str) -> tuple[str, bytes, bytes, bytes]:
    normalised = normalise(text)
    return (normalised, normalised.encode(), *python_path(normalised))


EVERYDAY = [
    "【交通银行】温馨提示：银行不会以任何理由要求您转账到安全账户，谨防诈骗。",
    "您的验证码是 482913，5分钟内有效。",
    "ＡＰＰ下载 ＶＸ：ab_12 Ｑ群 QQ:12345 http://Pay-Refund.Buzz/x?a=1",
    "妈，我今天加班，晚饭不回来吃了？",
    "",
    "ABC DEF ghi ΣΑΣ",
]
PYTHON_ONLY = [
    "帳戶轉帳到安全帳戶",  # traditional: the conversion runs
    "账户著名",  # 著 converts only inside some phrases
    "cafe\u0301 e\u0301",  # a combining mark composes with what precedes it
    "\u1100\u1161\u11a8",  # Hangul jamo compose by rule
    "①②③ ½ ﬁ ß",  # one character normalised to several
    "转\u200b账",  # a format character, removed by the conversion pass
    "转账😀",  # beyond the Basic Multilingual Plane
    "\ud800",  # a lone surrogate
]


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_texts_take_the_one_pass_and_give_the_python_views(text: str) -> None:
    assert squeeze_fold.normalised_views_utf8(text) == python_views(text)


@pytest.mark.parametrize("text", PYTHON_ONLY)
def test_texts_that_need_more_than_a_character_map_are_left_to_the_python_path(text: str) -> None:
    assert squeeze_fold.normalised_views_utf8(text) is None


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",))))
def test_any_text_the_one_pass_answers_has_the_python_views(text: str) -> None:
    fast = squeeze_fold.normalised_views_utf8(text)
    assert fast is None or fast == python_views(text)


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            "安全账户帐帳护鞍征信蒸刷单唰 ,.:!?，：？。！vV信薇qQ①ａＡe\u0301\u0308\u1100\u1161\u11a8가ÅΩﬀ著么"
        )
    )
)
def test_mixed_texts_either_take_the_python_path_or_give_its_views(text: str) -> None:
    fast = squeeze_fold.normalised_views_utf8(text)
    assert fast is None or fast == python_views(text)


def _astral_or_surrogate(text: str) -> tuple[bool, bool]:
    return any(ord(c) > 0xFFFF for c in text), any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=())))
def test_any_text_at_all_gives_the_python_views_or_none(text: str) -> None:
    # lone surrogates, astral characters and NUL included: the engine scrubs surrogates first, but the
    # one pass must neither crash nor answer for a text it cannot map
    astral, surrogate = _astral_or_surrogate(text)
    fast = squeeze_fold.normalised_views_utf8(text)
    if astral or surrogate:
        assert fast is None
    elif fast is not None:
        assert fast == python_views(text)
    pair = squeeze_fold.squeeze_fold_utf8(text)
    assert pair == (None if astral else python_path(text))


def _mapped(c: str) -> bool:
    """Whether the normalising table maps ``c`` (a text of such characters takes the one pass)."""
    squeeze_fold.prepare()
    return squeeze_fold._NORMALISING[0][2 * ord(c) : 2 * ord(c) + 2] != b"\0\0"


_PIECES = st.text(alphabet=st.characters(max_codepoint=0xFFFF).filter(_mapped), max_size=40)


@settings(max_examples=25, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=8), st.integers(min_value=1, max_value=20_000))
def test_long_texts_take_the_one_pass_and_give_the_python_views(pieces: list[str], times: int) -> None:
    # long SMS and SIP MESSAGE bodies (64 KiB) and beyond, up to a few MB
    text = "".join(pieces) * times
    assert squeeze_fold.normalised_views_utf8(text) == python_views(text)
    assert squeeze_fold.squeeze_fold_utf8(text) == python_path(text)


# characters whose UTF-8 is 1, 2 and 3 bytes, and what the homophone view may turn them into
WIDTHS = ["a", "é", "账", "a账", "é\uffef", "\u0800\u07ff\x7f"]


@pytest.mark.parametrize("unit", WIDTHS)
@pytest.mark.parametrize("length", [1, 160, 65_536, 1 << 20])
def test_every_width_at_every_message_size_gives_the_python_views(unit: str, length: int) -> None:
    text = (unit * (length // len(unit) + 1))[:length]
    fast = squeeze_fold.normalised_views_utf8(text)
    assert fast is None or fast == python_views(text)
    assert squeeze_fold.squeeze_fold_utf8(text) == python_path(text)


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_two_hundred_thousand_views_leak_neither_memory_nor_references() -> None:
    squeeze_fold.prepare()
    normalising, table = squeeze_fold._NORMALISING[0], squeeze_fold._TABLE[0]
    native: Any = squeeze_fold._VIEWS
    texts = [
        EVERYDAY[0],  # the one pass answers
        "帳戶轉帳到安全帳戶",  # left to the Python path
        "转账😀",  # beyond the plane
        "\ud800 lone",
        "x" * 300,
    ]

    def calls() -> None:
        for text in texts:
            native.normalised_views(text, normalising, table)
            native.squeeze_fold(text, table)
        with pytest.raises(ValueError, match="65536"):
            native.normalised_views(texts[0], normalising, b"short")
        with pytest.raises(ValueError, match="65536"):
            native.squeeze_fold(texts[0], memoryview(table)[2:])

    for _ in range(2_000):
        calls()
    references = [sys.getrefcount(x) for x in (normalising, table, *texts)]
    before = _resident()
    for _ in range(20_000):  # 200,000 calls into the extension
        calls()
    grown = _resident() - before
    assert [sys.getrefcount(x) for x in (normalising, table, *texts)] == references
    assert grown < 1 << 20, f"{grown} bytes more resident after 200,000 calls"
    views = native.normalised_views(texts[0], normalising, table)
    assert [sys.getrefcount(x) for x in views] == [3] * 4  # the tuple, the list and getrefcount's argument
