"""The evasions fraudsters apply to a message, as functions ``(text, rnd) -> text``.

Each is written to keep the message readable for a person while breaking an exact keyword: traditional
forms, spacing and punctuation between characters, zero-width and other format characters, full-width
letters and digits, sound-alike characters, look-alike digits and letters (Cyrillic and Greek letters,
O for 0), and emoji between characters. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

import zhconv_rs

HOMOPHONES = Path(__file__).resolve().parents[1] / "rules" / "homophones.json"

Evasion = Callable[[str, random.Random], str]


def is_hanzi(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff"


def _between_hanzi(text: str, rnd: random.Random, share: float, pick: Callable[[], str]) -> str:
    """Insert ``pick()`` after a share of the hanzi that a hanzi follows."""
    out = []
    for i, c in enumerate(text):
        out.append(c)
        if is_hanzi(c) and i + 1 < len(text) and is_hanzi(text[i + 1]) and rnd.random() < share:
            out.append(pick())
    return "".join(out)


def traditional(text: str, rnd: random.Random) -> str:
    return zhconv_rs.zhconv(text, rnd.choice(("zh-TW", "zh-HK", "zh-Hant")))


def spacing(text: str, rnd: random.Random) -> str:
    mark = rnd.choice((" ", " ", "-", "*", "/", "。", "丨", "_", "~"))
    return _between_hanzi(text, rnd, rnd.uniform(0.4, 1.0), lambda: mark)


ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e")


def zero_width(text: str, rnd: random.Random) -> str:
    chosen = rnd.sample(ZERO_WIDTH, 2)
    return _between_hanzi(text, rnd, rnd.uniform(0.5, 1.0), lambda: rnd.choice(chosen))


def full_width(text: str, rnd: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@cache
def _sound_alikes() -> dict[str, tuple[str, ...]]:
    """Common hanzi (GB2312 level 1) -> the other common hanzi of the same homophone key."""
    groups: dict[str, str] = json.loads(HOMOPHONES.read_text("utf-8"))["groups"]
    out: dict[str, tuple[str, ...]] = {}
    for chars in groups.values():
        common = [c for c in chars if _level1(c)]
        for c in common:
            out[c] = tuple(o for o in common if o != c)
    return out


def _level1(c: str) -> bool:
    try:
        first = c.encode("gb2312")[0]
    except UnicodeEncodeError:
        return False
    return 0xB0 <= first <= 0xD7


def homophones(text: str, rnd: random.Random) -> str:
    alikes = _sound_alikes()
    share = rnd.uniform(0.15, 0.4)
    out = []
    for c in text:
        options = alikes.get(c)
        out.append(rnd.choice(options) if options and rnd.random() < share else c)
    return "".join(out)


LOOKALIKES = {
    "0": "OoО",
    "1": "lI",
    "o": "0оο",
    "a": "а",
    "e": "е",
    "c": "с",
    "p": "р",
    "x": "х",
    "v": "ν",
    "i": "і",
    "l": "1",
    "q": "ԛ",
}


def lookalikes(text: str, rnd: random.Random) -> str:
    share = rnd.uniform(0.5, 1.0)
    return "".join(rnd.choice(LOOKALIKES[c]) if c in LOOKALIKES and rnd.random() < share else c for c in text)


EMOJI = ("🔥", "💰", "✨", "🎁", "👉", "❤️", "🌹", "⭐", "💎", "📢", "🧧", "😊")


def emoji(text: str, rnd: random.Random) -> str:
    chosen = rnd.sample(EMOJI, 3)
    return _between_hanzi(text, rnd, rnd.uniform(0.2, 0.6), lambda: rnd.choice(chosen))


EVASIONS: dict[str, Evasion] = {
    "traditional": traditional,
    "spacing": spacing,
    "zero_width": zero_width,
    "full_width": full_width,
    "homophone": homophones,
    "lookalike": lookalikes,
    "emoji": emoji,
}
