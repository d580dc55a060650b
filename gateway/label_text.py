"""Does a text show a protected label (反诈名片)? Matching that sees through the usual disguises.

A spoofer who may not show 公安反诈专号 tries the next best thing: 公安反詐專號 (traditional), 公安 反诈·专号
(spaces, symbols), 公安\u200b反诈专号 (zero-width characters), 公安＿反诈＿专号 (full-width forms), エ信部反诈预警
(a katakana エ for 工), ⼯信部 (a Kangxi radical), 公安反诈専号 (the Japanese 専), 【公安反诈专号】 or
公安反诈专号-北京 (decorations). Both the label texts and the text under test are brought to one form:

1. NFKC (full-width and compatibility forms, Kangxi radicals, circled characters) and casefold;
2. ``HOMOGLYPHS``: characters that look like a label character but NFKC leaves alone;
3. traditional to simplified Chinese: zhconv-rs (zh-CN) when it is importable, else the small
   built-in ``TRADITIONAL`` map, which covers the characters of the shipped labels;
4. only letters and digits kept (spaces, punctuation, symbols, format characters and combining marks
   all go); and for a label written only in Han characters, only the Han characters of the text, so
   that Latin letters or digits slipped between its characters (公安a反诈1专号) do not hide it either.

A text shows a label when the label's form occurs anywhere in the text's form: decorations around
it do not matter. ``HOMOGLYPHS`` and ``TRADITIONAL`` are meant to grow with the labels: when a label
with new characters is configured, add their lookalikes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from protocols.stir import Label, LabelRegistry, NumberPlan
from protocols.stir.tn import CHINA

__all__ = ["HOMOGLYPHS", "TRADITIONAL", "LabelMatcher", "NormalisingRegistry", "normalise_label_text"]

#: Lookalikes NFKC does not fold: katakana and other shapes that pass for the Han characters of the
#: labels, Japanese forms zhconv does not convert, and Cyrillic/Greek letters that pass for Latin ones.
HOMOGLYPHS: Mapping[str, str] = {
    # katakana that are drawn like Han characters
    "エ": "工", "ロ": "口", "カ": "力", "ニ": "二", "ハ": "八", "ト": "卜", "タ": "夕", "ー": "一",
    "ヒ": "匕", "ム": "厶",
    # Japanese and look-alike forms of label characters
    "専": "专", "叀": "专", "友": "反", "仮": "反", "哠": "号", "咢": "号", "號": "号", "詐": "诈",
    "乍": "诈", "䛩": "诈", "預": "预", "豫": "预", "敬": "警", "㕣": "公", "厷": "公",
    # CJK radicals supplement (NFKC folds the Kangxi radicals, not these)
    "⻈": "讠", "⻌": "辶", "⻏": "阝", "⻖": "阝",
    # Cyrillic and Greek letters drawn like Latin ones
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "α": "a", "ο": "o", "ν": "v", "ρ": "p", "τ": "t", "κ": "k",
}  # fmt: skip

#: Traditional -> simplified, for when zhconv-rs is not installed: the characters of the shipped labels
#: and of the names impostors pair them with.
TRADITIONAL: Mapping[str, str] = {
    "詐": "诈", "專": "专", "號": "号", "預": "预", "資": "资", "業": "业", "門": "门", "騙": "骗",
    "偽": "伪", "報": "报", "務": "务", "銀": "银", "險": "险", "電": "电", "話": "话", "訊": "讯",
    "線": "线", "國": "国", "衛": "卫", "關": "关", "護": "护", "區": "区", "廳": "厅", "處": "处",
    "縣": "县", "鄉": "乡", "鎮": "镇", "財": "财", "產": "产", "稅": "税", "貸": "贷", "詢": "询",
    "證": "证", "權": "权", "檢": "检", "議": "议", "會": "会", "聯": "联", "網": "网", "應": "应",
    "與": "与", "勸": "劝", "辦": "办", "碼": "码", "絡": "络", "長": "长",
}  # fmt: skip

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_KEEP = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No"})


def _converter() -> Callable[[str], str]:
    """Homoglyphs, then traditional to simplified, in one pass where zhconv-rs is available."""
    single = {ord(k): v for k, v in HOMOGLYPHS.items() if len(k) == 1}
    try:
        import zhconv_rs
    except ImportError:
        table = {**single, **{ord(k): v for k, v in TRADITIONAL.items()}}
        return lambda text: text.translate(table)
    convert = zhconv_rs.make_converter("zh-CN", list(HOMOGLYPHS.items()))
    # zhconv matches phrases first; the table afterwards catches any homoglyph its phrases skipped.
    return lambda text: convert(text).translate(single)


_CONVERT = _converter()


def normalise_label_text(text: str) -> str:
    """The comparable form of ``text``: NFKC, casefold, homoglyphs, simplified, letters and digits."""
    folded = _CONVERT(unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in folded if unicodedata.category(c) in _KEEP)


def _han_only(form: str) -> str:
    return "".join(_HAN.findall(form))


class LabelMatcher:
    """Which of a set of protected label texts a text shows, in any of the disguises above."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._forms: list[tuple[str, str, bool]] = []  # (label, its form, written only in Han)
        for text in sorted(set(texts)):
            form = normalise_label_text(text)
            if form:
                self._forms.append((text, form, form == _han_only(form)))
        # A text of plain ASCII letters, digits and separators cannot show a label that has a
        # character outside ASCII in its form: the cheap answer for most display names.
        self._ascii_safe = all(not form.isascii() for _, form, _ in self._forms)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def labels_in(self, text: str | None) -> frozenset[str]:
        if not text or not self._forms or (self._ascii_safe and text.isascii()):
            return frozenset()
        form = normalise_label_text(text)
        han = None
        found = []
        for label, label_form, han_label in self._forms:
            if label_form in form:
                found.append(label)
            elif han_label:
                if han is None:
                    han = _han_only(form)
                if label_form in han:
                    found.append(label)
        return frozenset(found)

    def labels_in_any(self, texts: Iterable[str | None]) -> frozenset[str]:
        found: set[str] = set()
        for text in texts:
            found |= self.labels_in(text)
        return frozenset(found)


class NormalisingRegistry(LabelRegistry):
    """A label registry whose ``labels_in`` (and so ``claims_label``) sees through disguises.

    The verifier asks the registry whether a display name or an rcd ``nam`` shows a protected label;
    with this registry a traditional, spaced, decorated or homoglyph spelling counts as showing it.
    """

    def __init__(self, labels: Mapping[str, Label], plan: NumberPlan = CHINA) -> None:
        super().__init__(labels, plan)
        self.matcher = LabelMatcher(self.texts)

    @classmethod
    def of(cls, registry: LabelRegistry) -> NormalisingRegistry:
        return registry if isinstance(registry, cls) else cls(dict(registry), registry.plan)

    def labels_in(self, text: str | None) -> frozenset[str]:
        return self.matcher.labels_in(text)
