"""The normalised, squeezed and homophone views of a text, as the UTF-8 bytes the engine scans, in a pass.

In Python the three views of a message take a dozen calls (the replacements, the NFKC check, casefold,
the conversion gate, two table conversions, three encodes: :mod:`rules.normalise`,
:mod:`rules.homophones`). ``make compile`` builds ``rules/_views.c`` beside the mypyc build, which reads
each character once through two tables built here from those very functions:

- :func:`normalising_table`: what each character of the Basic Multilingual Plane becomes in the
  normalised view when it becomes one character on its own, whatever stands beside it; 0 for the rest
  (decompositions into several characters, combining marks and the characters that compose with what
  precedes them, characters the traditional-to-simplified conversion touches alone or in a phrase);
- :func:`table`: 0 for a character the squeezed view drops, else its character in the homophone view.

A text with a character outside the first table, or beyond the plane, is answered None, and the caller
takes the Python path, which gives the same views (tests/rules/test_squeeze_fold.py holds the two to each
other); so does every text where the extension is not built (no C compiler).
"""

from __future__ import annotations

import importlib
import unicodedata
from array import array
from functools import cache
from typing import Any

from rules.homophones import translation
from rules.normalise import conversion_gate, fold, is_separator


def _native() -> Any:
    try:
        return importlib.import_module("rules._views")
    except ImportError:
        return None


_VIEWS: Any = _native()


def available() -> bool:
    """Whether the one-pass build is there (``make compile``)."""
    return _VIEWS is not None


@cache
def table() -> bytes:
    """For each code point of the BMP: 0 when the squeezed view drops it (a separator, or a lone
    surrogate, which the Python path strips too), else its character in the homophone view."""
    folded = translation()
    out = array("H", range(0x10000))
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF or is_separator(chr(code)):
            out[code] = 0
        else:
            rep = folded.get(code)
            if rep is not None:
                out[code] = ord(rep)
    return out.tobytes()


def _composes_with_previous() -> frozenset[str]:
    """Characters that canonical composition may join to the character before them: the second of every
    two-character canonical decomposition, and the Hangul vowel and final jamo (composed by rule)."""
    out = {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                out.add(chr(int(parts[1], 16)))
    return frozenset(out)


@cache
def normalising_table() -> bytes:
    """For each code point of the BMP: its normalised form when that is one character whatever its
    neighbours, else 0 (the text then takes the Python path)."""
    joins = _composes_with_previous()
    needs_conversion = conversion_gate().search
    out = array("H", bytes(0x20000))
    for code in range(1, 0x10000):
        c = chr(code)
        if 0xD800 <= code <= 0xDFFF or unicodedata.combining(c):
            continue
        first = unicodedata.normalize("NFKD", c)[:1]
        if first in joins or unicodedata.combining(first):
            continue
        folded = fold(c)
        if len(folded) != 1 or not 0 < ord(folded) <= 0xFFFF or needs_conversion(folded):
            continue
        out[code] = ord(folded)
    return out.tobytes()


def normalised_views_utf8(text: str) -> tuple[str, bytes, bytes, bytes] | None:
    """(normalised view, and the normalised, squeezed and homophone views in UTF-8) of ``text``, or None
    where only the Python path can."""
    if _VIEWS is None:
        return None
    if not _NORMALISING:
        prepare()
    views: tuple[str, bytes, bytes, bytes] | None = _VIEWS.normalised_views(text, _NORMALISING[0], _TABLE[0])
    return views


# the tables, kept here once built: a cached call per message would cost a lookup
_NORMALISING: list[bytes] = []
_TABLE: list[bytes] = []


def prepare() -> None:
    """Build the tables (a quarter of a second, once per process) now rather than at the first message:
    the rule set does it when it is compiled."""
    if _VIEWS is not None and not _NORMALISING:
        _TABLE.append(table())
        _NORMALISING.append(normalising_table())


def squeeze_fold_utf8(normalised: str) -> tuple[bytes, bytes] | None:
    """(squeezed view, homophone view) of ``normalised``, UTF-8; None where only the Python path can."""
    if _VIEWS is None:
        return None
    if not _NORMALISING:
        prepare()
    pair: tuple[bytes, bytes] | None = _VIEWS.squeeze_fold(normalised, _TABLE[0])
    return pair
