"""The squeezed and homophone views of a normalised text, as the UTF-8 bytes the engine scans, in one pass.

Every message with a rule on either view needs both encoded: in Python that is two table conversions
and two encodes (:func:`rules.normalise.squeezer`, :func:`rules.homophones.folder`, ``str.encode``).
``make compile`` builds ``rules/_views.c`` beside the mypyc build, which does all four in one loop over
the text's characters, from :func:`table`; without it (no C compiler), or for a text with a character
beyond the Basic Multilingual Plane, :func:`squeeze_fold_utf8` answers None and the caller takes the
Python path, which gives the same bytes (tests/rules/test_squeeze_fold.py holds the two to each other).
"""

from __future__ import annotations

import importlib
from array import array
from functools import cache
from typing import Any

from rules.homophones import translation
from rules.normalise import is_separator


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


_TABLE: list[bytes] = []  # table(), kept here once built: a cached call per message costs a lookup


def squeeze_fold_utf8(normalised: str) -> tuple[bytes, bytes] | None:
    """(squeezed view, homophone view) of ``normalised``, UTF-8; None where only the Python path can."""
    if _VIEWS is None:
        return None
    if not _TABLE:
        _TABLE.append(table())
    pair: tuple[bytes, bytes] | None = _VIEWS.squeeze_fold(normalised, _TABLE[0])
    return pair
