"""The homophone view: the squeezed text with every hanzi replaced by the representative of its sound.

Fraudsters swap a character for another that sounds the same or nearly so (安全帐户 -> 按全账护, 刷单 ->
唰单, 征信 -> 蒸信) to slip past keywords. In this view every hanzi becomes one representative character
of its toneless pinyin syllable, with the near-homophones of southern Mandarin merged (zh/z, ch/c, sh/s,
n/l, -ang/-an, -eng/-en, -ing/-in, -iang/-ian, -uang/-uan, ü/u), so both spellings read the same. The
table is ``rules/homophones.json``, generated from pypinyin's data by :mod:`rules.homophone_table` and
committed; this module only reads it, once, into a translation table (:func:`translation`, the
``str.translate`` form), which runs as one zhconv-rs Aho-Corasick pass over the squeezed text, as the
squeezed view's own table does: 0.8 µs for a 53-character SMS against 2.4 µs for ``str.translate`` on
this machine. The message path never imports pypinyin. Characters other than hanzi stay as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import zhconv_rs

import rules

# The package directory from the package itself: a module compiled with mypyc does not carry its own
# path in ``__file__`` as Python does.
TABLE = Path(rules.__file__).resolve().parent / "homophones.json"


@cache
def groups() -> dict[str, str]:
    """Folded syllable -> its characters, the representative first (as committed)."""
    data = json.loads(TABLE.read_text("utf-8"))
    out: dict[str, str] = data["groups"]
    return out


@cache
def translation() -> dict[int, str]:
    """The ``str.translate`` table: every hanzi that is not its own representative, to the representative."""
    table: dict[int, str] = {}
    for chars in groups().values():
        representative = chars[0]
        for c in chars[1:]:
            table[ord(c)] = representative
    return table


@cache
def keys() -> dict[str, str]:
    """Representative -> its folded syllable, for showing the view."""
    return {chars[0]: key for key, chars in groups().items()}


#: The block nearly every Chinese text is written in (CJK Unified Ideographs), folded by the converter.
_COMMON = range(0x4E00, 0xA000)


@cache
def folder() -> Callable[[str], str]:
    """:func:`fold_squeezed` itself, the converter with its table, for the message path.

    zhconv-rs takes time more than in proportion to its pairs to build a converter: the 20,000 pairs
    of the common block take a quarter of the time of all 41,000 (two to three seconds less at every
    start). The rest (extension A, the supplementary planes, compatibility ideographs) go through
    ``str.translate``, only for a text that holds a character of their blocks: one class search
    (0.4 µs for an SMS), no second pass for everyday text. A representative is never folded itself,
    so the two passes give what one would."""
    table = translation()
    convert = zhconv_rs.make_converter(None, [(chr(code), rep) for code, rep in table.items() if code in _COMMON])
    rare = {code: rep for code, rep in table.items() if code not in _COMMON}
    if not rare:
        return convert
    has_rare = re.compile("[" + "".join(_ranges(sorted(rare))) + "]").search

    def fold(squeezed: str) -> str:
        folded = convert(squeezed)
        return folded.translate(rare) if has_rare(folded) else folded

    return fold


def _ranges(codes: list[int], gap: int = 0x1000) -> list[str]:
    """Sorted code points as a few ranges of a character class that holds them all (and the unassigned
    or rare ones between two of them less than ``gap`` apart: a class of thousands of small ranges is
    searched range by range, and one that holds a character too many only costs a translate)."""
    out: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], None]:
        if code is not None and code - prev < gap:
            prev = code
            continue
        out.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else ""))
        if code is not None:
            start = prev = code
    return out


def fold_squeezed(squeezed: str) -> str:
    """The homophone view from the squeezed one (the same as ``squeezed.translate(translation())``)."""
    return folder()(squeezed)


def fold_pattern(text: str) -> str:
    """A regular expression or keyword with its hanzi folded (ASCII syntax is left alone)."""
    return text.translate(translation())


def spell(folded: str) -> str:
    """The homophone view with each representative written as its syllable key, for ``explain``:
    ``安全账户`` -> ``an quan zan hu``."""
    names = keys()
    out: list[str] = []
    for c in folded:
        key = names.get(c)
        out.append(c if key is None else f" {key} ")
    return " ".join("".join(out).split())
