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

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from protocols.stir import Label, LabelRegistry, NumberPlan, TelephoneNumberError, normalise_tn
from protocols.stir.tn import CHINA

__all__ = [
    "DIGIT_LOOKALIKES",
    "HOMOGLYPHS",
    "TRADITIONAL",
    "LabelMatcher",
    "NormalisingRegistry",
    "ProtectedNumbers",
    "digit_table",
    "normalise_label_text",
]

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

    @property
    def ascii_safe(self) -> bool:
        """True when no text of plain ASCII can show any of the labels (they all have other characters)."""
        return self._ascii_safe

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


#: Chinese numerals, their financial (capital) forms and colloquial readings: what a display name may
#: spell a number with (九六一一零, 玖陆壹壹零, 幺 read for 1 in numbers, 两 for 2, 洞 for 0 on the radio).
CHINESE_DIGITS: Mapping[str, str] = {
    "〇": "0", "零": "0", "洞": "0", "一": "1", "壹": "1", "幺": "1", "弌": "1", "二": "2", "贰": "2",
    "貳": "2", "两": "2", "兩": "2", "弍": "2", "三": "3", "叁": "3", "參": "3", "弎": "3", "四": "4",
    "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6", "陸": "6", "七": "7", "柒": "7", "八": "8",
    "捌": "8", "九": "9", "玖": "9",
}  # fmt: skip

#: Letters and symbols drawn like digits (after NFKC, so full-width forms are already plain).
DIGIT_LOOKALIKES: Mapping[str, str] = {
    "O": "0", "o": "0", "Q": "0", "D": "0", "О": "0", "о": "0", "Ο": "0", "ο": "0", "θ": "0",
    "l": "1", "I": "1", "|": "1", "i": "1", "!": "1", "¡": "1", "ı": "1", "І": "1", "і": "1", "L": "1",
    "Z": "2", "z": "2", "Ʒ": "3", "З": "3", "з": "3", "A": "4", "S": "5", "s": "5", "G": "6", "b": "6",
    "T": "7", "B": "8", "g": "9", "q": "9",
}  # fmt: skip

# Between the digits of one number people write spaces, dots, dashes, slashes, brackets and '+'.
_SEPARATORS = " \t.·・-‐‑‒–—―_/\\()[]{}+,:;'\"~*#"
_SEP = "s"
# Look-alike letters become A-J (0-9) rather than digits: a number may be cut next to one, never
# between two real digits, so that 13896110123 does not read as 96110 while Hello96110 does.
_MARK = "ABCDEFGHIJ"
_RUN = re.compile(f"[0-9{_MARK}{_SEP}]+")
_MAX_DISPLAY = 256  # longer display names are read up to here: a handset shows far less


@functools.cache
def digit_table() -> dict[int, str | None]:
    """The ``str.translate`` table behind :class:`ProtectedNumbers`: every Unicode digit to its ASCII
    digit, Chinese numerals to digits, look-alike letters to their marks, separators to ``_SEP``,
    format characters to nothing. Built once, on first use (a pass over the code space, ~70 ms)."""
    table: dict[int, str | None] = {}
    for code in range(0x110000):
        value = unicodedata.digit(chr(code), None)
        if value is not None and value < 10:
            table[code] = str(value)
    table.update({ord(k): v for k, v in CHINESE_DIGITS.items()})
    table.update({ord(k): _MARK[int(v)] for k, v in DIGIT_LOOKALIKES.items()})
    table.update({ord(c): _SEP for c in _SEPARATORS})
    # Everything else that could be a digit or a separator must not pass through unchanged as one.
    for c in _MARK + _SEP:
        table.setdefault(ord(c), "?")
    table.update(dict.fromkeys((0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x200E, 0x200F)))
    return table


@functools.cache
def _ascii_table() -> bytes:
    """``digit_table`` for ASCII text, as a ``bytes.translate`` table (no ASCII character is deleted)."""
    table = digit_table()
    return bytes(ord(str(table.get(code, chr(code)))) for code in range(256) if code < 128) + bytes(range(128, 256))


class ProtectedNumbers:
    """Does a display name read as one of the protected numbers? Seen through the games people play
    with digits: full-width and other Unicode digits, Chinese numerals (九六一一零, 玖陆壹壹零, 幺),
    letters that look like digits (9611O, 96l1o), spaces, dots and dashes between digits, and the
    +86 / 0086 / 86 / 0 / area-code prefixes (010-96110, +86 755 96110).

    One NFKC and one ``str.translate`` bring the text to digits, marks and separators; in each run of
    those, every stretch between two allowed cuts (a separator, a look-alike letter, the run's ends) is
    a candidate number. A candidate reads as a protected number when, without its international,
    country and trunk prefixes, it is a protected national number, or a protected short code after a
    two- or three-digit area code."""

    def __init__(self, numbers: Iterable[str], plan: NumberPlan = CHINA) -> None:
        self.plan = plan
        cc = plan.country_code
        self._national: dict[str, str] = {}  # national significant number -> E.164
        for tn in numbers:
            self._national[tn[len(cc) :] if tn.startswith(cc) else tn] = tn
        self._protected = frozenset(self._national.values())
        self._shortest = max(3, min((len(n) for n in self._national), default=3))
        self._short = {n: tn for n, tn in self._national.items() if len(n) < plan.nsn_lengths[0]}
        self._prefixes = tuple(sorted({plan.international_prefix + cc, cc}, key=len, reverse=True))
        if self._national:
            digit_table()  # built now, not while the first call waits
        self._longest = max((len(n) for n in self._national), default=0) + len(plan.international_prefix + cc) + 4

    def __bool__(self) -> bool:
        return bool(self._national)

    def is_protected(self, number: str) -> bool:
        """Whether ``number``, in any spelling, is one of the protected numbers."""
        try:
            return normalise_tn(number, self.plan) in self._protected
        except TelephoneNumberError:
            return False

    def read(self, text: str | None, *, caller: str | None = None) -> str | None:
        """The protected number (E.164 digits) ``text`` reads as; None when it reads as none, or when
        ``caller`` (E.164) is itself protected: a protected caller's display is for verification to judge."""
        if not text or not self._national or caller in self._protected:
            return None
        text = text[:_MAX_DISPLAY]
        if text.isascii():  # most display names: one C-speed bytes.translate
            form = text.encode().translate(_ascii_table()).decode()
        else:
            form = unicodedata.normalize("NFKC", text).translate(digit_table())
        shortest = self._shortest
        for run in _RUN.findall(form):
            if len(run) - run.count(_SEP) < shortest:
                continue  # too few digits for any protected number
            if run.isdigit():  # digits only: the whole run is the one candidate
                tn = self._number(run)
                if tn is not None:
                    return tn
                continue
            digits: list[str] = []
            cuts = [0]
            real_before = False
            for ch in run:
                if ch == _SEP:
                    cuts.append(len(digits))
                    real_before = False
                    continue
                real = ch <= "9"
                if not (real and real_before):
                    cuts.append(len(digits))
                digits.append(ch if real else str(_MARK.index(ch)))
                real_before = real
            cuts.append(len(digits))
            number = "".join(digits)
            edges = sorted(set(cuts))
            for i, start in enumerate(edges):
                for end in edges[i + 1 :]:
                    if end - start < shortest:
                        continue
                    if end - start > self._longest:
                        break
                    tn = self._number(number[start:end])
                    if tn is not None:
                        return tn
        return None

    def _number(self, digits: str) -> str | None:
        if len(digits) < 3:
            return None
        for prefix in self._prefixes:
            if digits.startswith(prefix) and len(digits) > len(prefix) + 2:
                digits = digits[len(prefix) :]
                break
        trunk = self.plan.trunk_prefix
        if trunk and digits.startswith(trunk):
            digits = digits[len(trunk) :]
        tn = self._national.get(digits)
        if tn is not None:
            return tn
        for short, tn in self._short.items():
            area = digits[: -len(short)]
            if digits.endswith(short) and 2 <= len(area) <= 3 and area[0] != "0":
                return tn
        return None


class NormalisingRegistry(LabelRegistry):
    """A label registry whose ``labels_in`` (and so ``claims_label``) sees through disguises.

    The verifier asks the registry whether a display name or an rcd ``nam`` shows a protected label;
    with this registry a traditional, spaced, decorated or homoglyph spelling counts as showing it.
    """

    def __init__(self, labels: Mapping[str, Label], plan: NumberPlan = CHINA) -> None:
        super().__init__(labels, plan)
        self.matcher = LabelMatcher(self.texts)
        self.protected_numbers = ProtectedNumbers(self.numbers, plan)

    @classmethod
    def of(cls, registry: LabelRegistry) -> NormalisingRegistry:
        return registry if isinstance(registry, cls) else cls(dict(registry), registry.plan)

    def labels_in(self, text: str | None) -> frozenset[str]:
        return self.matcher.labels_in(text)
