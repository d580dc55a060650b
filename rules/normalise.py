"""Text normalisation: the views of a message that rules match against.

- ``raw``: the text as received.
- ``normalised``: NFKC (full-width letters and digits become ASCII, circled digits become digits ...),
  format characters removed (zero-width spaces and joiners, bidi controls, soft hyphens, variation
  selectors, tags), casefolded, converted from traditional to simplified Chinese (zhconv-rs, zh-CN, which
  also turns 帳戶/轉帳 into 账户/转账), then a small variant map (帐 -> 账) for characters that simplified
  text itself writes two ways. The conversion pass runs only on the texts that hold a character it
  changes, which a cheap character-class search finds first; the NFKC pass runs only on the texts that
  the quick check says are not NFKC once their full-width commas, colons and question marks are ASCII.
- ``squeezed``: the normalised text with everything that is not a letter or a digit removed (and the
  strokes 丨丶丿 that Unicode counts as letters), so that ``安 全-账*户`` and ``安丨全丶账户`` read ``安全账户``.
- ``domains``: the host names of URLs in the normalised text, after undoing the usual obfuscations
  (``h t t p``, ``[.]``, ``(.)``, ``点com``, ``。``).

Aliases (薇信, V信, vx) as keywords belong in rules and shared lists; contact handles as tokens are a
structural signal (:mod:`rules.signals`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import zhconv_rs

import rules

#: Characters that render as nothing (or only steer rendering) and so hide keywords: Unicode's format
#: characters (Cf), variation selectors, and the Hangul fillers that render blank.
FORMAT_CHARACTERS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2"
)
#: Variants that survive traditional-to-simplified conversion because simplified text uses both.
VARIANTS: tuple[tuple[str, str], ...] = (("帐", "账"), ("帳", "账"))
_SEPARATORS = re.compile(r"[\W_]+")

# URL de-obfuscation, applied to the normalised (NFKC, casefolded) text only to find domains.
_OBFUSCATED_DOT = r"(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}|\s+dot\s+|点|。|·|丶)"
_DOTS = re.compile(rf"(?<=[a-z0-9])\s*{_OBFUSCATED_DOT}\s*(?=[a-z0-9])")
_SPACED = re.compile(r"(?<![a-z0-9./:-])(?:[a-z0-9./:-] ){2,}[a-z0-9./:-](?![a-z0-9./:-])")
_CANDIDATE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(?:xn--[a-z0-9-]+|[a-z]{2,24})")
_IP_URL = re.compile(r"https?://([0-9]{1,3}(?:\.[0-9]{1,3}){3})(?![0-9])")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: Generic TLDs a host may end in (every two-letter one is a country's, and xn-- ones are IDNs): without
#: this, list items and abbreviations such as ``2.DIGIT`` or ``no.limit`` were taken for domains.
_GENERIC_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "name",
        "pro",
        "mobi",
        "asia",
        "tel",
        "travel",
        "jobs",
        "aero",
        "coop",
        "museum",
        "app",
        "dev",
        "page",
        "cloud",
        "tech",
        "online",
        "site",
        "shop",
        "store",
        "link",
        "live",
        "fun",
        "top",
        "xyz",
        "vip",
        "club",
        "icu",
        "wang",
        "ren",
        "ink",
        "kim",
        "xin",
        "group",
        "company",
        "email",
        "today",
        "news",
        "blog",
        "art",
        "design",
        "games",
        "game",
        "bet",
        "casino",
        "loan",
        "win",
        "bid",
        "work",
        "ltd",
        "law",
    ]
)
_LIST_ITEM = re.compile(r"[0-9]{1,2}$")
#: Which de-obfuscation a text needs. A text that matches none of these has no domain; the engine runs
#: them inside its Hyperscan scan of the normalised view, so that most messages skip domain extraction
#: and the rest run only the steps they need.
URL_HINTS = {
    "plain": r"[a-z0-9]\s*\.\s*[a-z]|https?://",
    "obfuscated": rf"[a-z0-9]\s*{_OBFUSCATED_DOT}\s*[a-z0-9]",
    "spaced": r"(?:[a-z0-9./:-] ){2}[a-z0-9./:-]",
}
_HINTS = {name: re.compile(pattern) for name, pattern in URL_HINTS.items()}
_ANY_HINT = re.compile("|".join(URL_HINTS.values()))


def _format_characters() -> list[str]:
    out: list[str] = []
    for part in re.findall(r"(.)(?:-(.))?", FORMAT_CHARACTERS, re.S):
        first, last = part
        out.extend(chr(c) for c in range(ord(first), ord(last or first) + 1))
    return out


@cache
def _normaliser() -> Callable[[str], str]:
    """zhconv-rs zh-CN plus our variants, with format characters mapped to nothing, in one pass."""
    rules = [(c, "") for c in _format_characters()]
    rules += [(a, b) for a, b in VARIANTS]
    return zhconv_rs.make_converter("zh-CN", rules)


#: Characters that zh-CN conversion rewrites only inside a phrase (上昇 -> 上升, 一釐 -> 一厘, 著 in some
#: phrases), from the traditional-to-simplified phrases of MediaWiki's table that contain no character
#: converted on its own. A text holding none of these nor any character converted on its own is left as
#: it is by the converter, except for regional vocabulary written in simplified characters (滑鼠 -> 鼠标),
#: which the gate lets through unconverted (no rule or corpus message depends on it).
PHRASE_ONLY_CONVERSIONS = "么侷崑彷彿慇懃昇沈甦著蒐薰藉覆觔跼釐陞餬"


@cache
def conversion_gate() -> re.Pattern[str]:
    """Matches a text that the converter of :func:`_normaliser` may change.

    Most SMS are in simplified Chinese and have no character to convert; a search of one character class
    (a bitmap lookup per character) costs a fraction of the conversion pass, so the message path runs the
    converter only on the texts this matches. The class is what the converter itself does to each
    character of the Basic Multilingual Plane on its own (asked in one call, with newlines between them
    so that no phrase spans two), plus :data:`PHRASE_ONLY_CONVERSIONS`; any character beyond the plane
    (a few rare hanzi convert, format tags are removed) sends the text to the converter."""
    chars = [chr(c) for c in range(0x10000) if c != 0x0A and not 0xD800 <= c <= 0xDFFF]
    converted = _normaliser()("\n".join(chars)).split("\n")
    assert len(converted) == len(chars), "a conversion added or removed a line"
    changed = {c for c, out in zip(chars, converted, strict=True) if out != c}
    changed.update(PHRASE_ONLY_CONVERSIONS)
    return re.compile("[" + re.escape("".join(sorted(changed))) + "\U00010000-\U0010ffff]")


@cache
def _squeezer() -> Callable[[str], str]:
    """Every separator of the Basic Multilingual Plane mapped to nothing, in one pass (no conversion)."""
    return zhconv_rs.make_converter(None, [(chr(c), "") for c in range(0x10000) if is_separator(chr(c))])


# Strokes that Unicode files as hanzi (so isalnum() holds) but that no word is written with: senders put
# them between characters as bars and dots (刷丨单, 返丶利). 一 and 乙 are words, so they stay.
_STROKE_SEPARATORS = frozenset("丨丶丿亅乀乁")


def is_separator(c: str) -> bool:
    return not (0xD800 <= ord(c) <= 0xDFFF) and (not c.isalnum() or c in _STROKE_SEPARATORS)


#: Full-width punctuation that nearly every Chinese SMS has and that NFKC maps to one ASCII character
#: (which composes with nothing): replaced first, it leaves most texts already in NFKC, whose quick check
#: is several times cheaper than normalising.
_FULL_WIDTH_PUNCTUATION = (("，", ","), ("：", ":"), ("？", "?"))


def fold(text: str) -> str:
    """NFKC and casefold: the first two steps of both the normalised and the squeezed view."""
    for full, ascii_form in _FULL_WIDTH_PUNCTUATION:
        text = text.replace(full, ascii_form)
    if not unicodedata.is_normalized("NFKC", text):
        # NFKC is NFC(NFKD(s)) by definition; CPython computes the two steps several times faster than NFKC.
        text = unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text))
    return text.casefold()


def normalise(text: str) -> str:
    """The normalised view of ``text``; also used on rule literals so that both sides agree."""
    return normaliser()(text)


def squeeze(text: str) -> str:
    """The squeezed view of ``text``: only the letters and digits of its normalised form."""
    return squeezer()(normaliser()(text))


def squeeze_normalised(normalised: str) -> str:
    """The squeezed view from the normalised one."""
    return squeezer()(normalised)


@cache
def normaliser() -> Callable[[str], str]:
    """:func:`normalise` as one function with its tables bound, for the message path."""
    convert = _normaliser()
    needs_conversion = conversion_gate().search
    normalize = unicodedata.normalize
    is_normalized = unicodedata.is_normalized

    def normalise_bound(text: str) -> str:
        # fold(), inlined: this runs once per message
        text = text.replace("，", ",").replace("：", ":").replace("？", "?")
        if not is_normalized("NFKC", text):
            text = normalize("NFC", normalize("NFKD", text))
        text = text.casefold()
        return convert(text) if needs_conversion(text) else text

    return normalise_bound


@cache
def squeezer() -> Callable[[str], str]:
    """:func:`squeeze_normalised` as one function with its tables bound, for the message path."""
    convert = _squeezer()
    strip = _SEPARATORS.sub

    def squeeze_bound(normalised: str) -> str:
        out = convert(normalised)
        # the table knows the separators of the Basic Multilingual Plane; emoji and the like go here
        return out if out.isalnum() or not out else strip("", out)

    return squeeze_bound


def domains(normalised: str) -> tuple[str, ...]:
    """Host names of URLs in the normalised text, de-obfuscated, lower case, in order, without repeats."""
    if not _ANY_HINT.search(normalised):
        return ()
    hints = {name for name, pattern in _HINTS.items() if pattern.search(normalised)}
    return domains_hinted(normalised, obfuscated="obfuscated" in hints, spaced="spaced" in hints)


def domains_hinted(normalised: str, *, obfuscated: bool, spaced: bool) -> tuple[str, ...]:
    """:func:`domains` for a text known to match :data:`URL_HINTS` (``plain`` and those given)."""
    text = normalised
    if spaced:
        text = _SPACED.sub(lambda m: m.group().replace(" ", ""), text)
    if obfuscated:
        text = _DOTS.sub(".", text)
    found: list[str] = []
    for candidate in _CANDIDATE.findall(text):
        host = candidate.strip(".-")
        labels = host.split(".")
        if len(labels) > 1 and all(_LABEL.match(label) for label in labels) and host not in found:
            if not _plausible_tld(labels[-1]) or (len(labels) == 2 and _LIST_ITEM.match(labels[0])):
                continue
            found.append(host)
    if "://" in text:
        for ip in _IP_URL.findall(text):
            if ip not in found:
                found.append(ip)
    return tuple(found)


@cache
def _tlds() -> frozenset[str]:
    # from the package's path: a module compiled with mypyc does not carry its own in ``__file__``
    data = json.loads((Path(rules.__file__).resolve().parent / "data" / "signals.json").read_text("utf-8"))
    return _GENERIC_TLDS | frozenset(data["rare_tlds"])


def _plausible_tld(tld: str) -> bool:
    return len(tld) == 2 or tld.startswith("xn--") or tld in _tlds()


def normalise_domain(value: str) -> str:
    """A domain as written in a rule, in the form :func:`domains` produces."""
    return normalise(value).strip().lstrip("*").strip(".")


@dataclass(frozen=True, slots=True)
class Views:
    raw: str
    normalised: str
    squeezed: str
    domains: tuple[str, ...]


def views(text: str) -> Views:
    """Every view of ``text`` (the engine computes only those its rules use)."""
    norm = normalise(text)
    return Views(text, norm, squeeze_normalised(norm), domains(norm))


def scrub(text: str) -> str:
    """``text`` with lone surrogates (which no encoder accepts) replaced by U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
