"""Structural signals of a message: what its URLs, contact handles, amounts, numbers and sender are.

Keywords say what a message talks about; these say how it is built, which a rewording does not change:
a link to an IP address or a shortener, a domain imitating a bank, a QQ or WeChat id, an amount of money,
a phone number to call back, a sender on a virtual operator's range. They are read from the normalised
view (so full-width digits, ``＋Ｖ`` and traditional characters are already folded), at most once per
message and family by family, when a rule asks: the engine evaluates a rule on a signal only for messages
that match the signal's Hyperscan hint (see ``rules.compiler.SIGNAL_HINTS``).

Aliases are matched as tokens: ``q``/``v`` only as ``+v``/``加v`` or before ``:`` or a space, never inside
a longer word or a URL (``vivo``, ``faq``, ``https://vx.example``). The brand list, the shorteners and the
rare TLDs are data (``rules/data/signals.json``, with their provenance), not code.

``reminder.official`` recognises the anti-fraud centre's, the police's and the banks' own warnings by
their content: a signature (【XX公安】, 【XX银行】, 国家反诈中心 ...) and warning words (谨防, 警惕, 切勿 ...),
with no contact handle and no suspicious link, so that packs can exempt warnings that quote the very
scripts they warn about, whatever number they come from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any, Self, TypeVar, overload

from rules.normalise import domains as find_domains
from rules.senders import sender_kind
from rules.spec import HANDLE_KINDS, SENDER_KINDS

DATA = Path(__file__).resolve().parent / "data" / "signals.json"

__all__ = ["HANDLE_KINDS", "REQUIRED", "SENDER_KINDS", "Signals", "extract"]

#: An alias starts a token: not after a letter or digit, nor inside a URL's path or query.
_TOKEN = r"(?<![a-z0-9./_=?&%#-])"
_ID = r"([a-z][a-z0-9_-]{5,19}|[1-9][0-9]{5,11})(?![a-z0-9_-])"
_SEP = r"\s*(?:号|id)?\s*[:：]?\s*"
_HANDLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("qq", re.compile(_TOKEN + r"(?:qq|扣扣|企鹅)" + _SEP + r"([1-9][0-9]{4,11})(?![0-9])")),
    ("qq", re.compile(r"(?:" + _TOKEN + r"q\s*[:：]\s*|[+加]\s*q\s*[:：]?\s*)([1-9][0-9]{4,11})(?![0-9])")),
    ("wechat", re.compile(_TOKEN + r"(?:微信|wechat|weixin|vx|wx|v信|薇信|威信|徽信|维信|卫星)" + _SEP + _ID)),
    ("wechat", re.compile(r"(?:" + _TOKEN + r"v\s*[:：]\s*|[+加]\s*v\s*[:：]?\s*)" + _ID)),
    ("telegram", re.compile(r"(?<![a-z0-9.-])t\.me/([a-z0-9_]{5,32})")),
    (
        "telegram",
        re.compile(_TOKEN + r"(?:telegram|tg|纸飞机|飞机|电报)" + _SEP + r"@?([a-z0-9_]{5,32})(?![a-z0-9_])"),
    ),
    ("telegram", re.compile(_TOKEN + r"(?<![+])@([a-z][a-z0-9_]{4,31})(?![a-z0-9_.@])")),
)
#: ``+V``/``加Q`` alone: an invitation to a handle that is sent separately (or in a picture).
_ALIAS = re.compile(r"(?:[+加])\s*(v|vx|wx|q|qq)(?![a-z0-9])")
_ALIAS_KIND = {"v": "wechat", "vx": "wechat", "wx": "wechat", "q": "qq", "qq": "qq"}

_NUMBER = r"([0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?)"
_MONEY = (
    re.compile(r"(?:¥|rmb|人民币)\s*" + _NUMBER + r"\s*(万|千|w|k)?"),
    re.compile(_NUMBER + r"\s*(万|千|w|k)?\s*(?:元|块|rmb|人民币)"),
)
_SCALE = {"万": 10_000.0, "w": 10_000.0, "千": 1_000.0, "k": 1_000.0, "": 1.0}
_PERCENT = (re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%"), re.compile(r"百分之([0-9]+(?:\.[0-9]+)?)"))
_PHONE_NUMBER = (
    r"(?:(?:\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}|0[1-9][0-9]{1,2}-[0-9]{7,8}|400-?[0-9]{3}-?[0-9]{4})"
)
_PHONE = re.compile(r"(?<![0-9])" + _PHONE_NUMBER + r"(?![0-9])")
_IP_HOST = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}$")
_IP_IN_TEXT = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]{1,5})?/")

_SIGNATURE_PATTERN = (
    r"【[^【】]{0,16}(?:公安|警方|警察|派出所|反诈|网警|银行|法院|检察院|市场监管|教育局|学校|政府)[^【】]{0,16}】"
    r"|国家反诈中心|反诈中心|全民反诈"
)
_SIGNATURE = re.compile(_SIGNATURE_PATTERN)
#: What a fraudster tells the victim not to do (tell anyone, hang up): 请勿告诉他人 is not a warning.
_SECRECY = r"(?!告诉|泄露|透露|声张|外传|挂断|挂机|关机|让)"
_WARNING_PATTERN = "谨防|警惕|不要相信|切勿{0}|请勿{0}|千万不要{0}|提防|都是诈骗|均为诈骗|一律是诈骗|防骗|反诈提醒"
_WARNING = re.compile(_WARNING_PATTERN.format(_SECRECY))

#: For the signals whose patterns Hyperscan can read (without their lookarounds, which it lacks, so each
#: matches every text the Python pattern does, and maybe more): expressions that every text having the
#: signal matches, all of them. The engine scans for them with the rest and extracts the signal only
#: when they all matched, so a 【signature】 without warning words never runs the Python patterns.
REQUIRED = {
    "phone.in_text": (_PHONE_NUMBER,),
    "reminder.official": (_SIGNATURE_PATTERN, _WARNING_PATTERN.format("")),
}

_SKELETON = str.maketrans(
    {
        **{"0": "o", "1": "l", "i": "l", "3": "e", "5": "s", "8": "b", "-": None, "_": None},
        # Cyrillic and Greek letters that render like Latin ones, as punycode hosts use them
        **dict(zip("аеорсухіјӏѕԁԛԝαοκνρτ", "aeopcyxljlsdqwaokvpt", strict=True)),
    }
)
_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


_T = TypeVar("_T")


class _once(cached_property[_T]):
    """``functools.cached_property`` without the lock Python 3.11 takes on every first read (3.12 dropped
    it): a Signals object belongs to one evaluation on one thread, and the lock cost more than most
    families' extraction."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _T: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> _T | Self:
        if instance is None:
            return self
        value: _T = self.func(instance)
        instance.__dict__[self.func.__name__] = value  # read from the instance from now on
        return value


class Signals:
    """The signals of one message, each family extracted on first use (a rule on money never pays for URLs)."""

    def __init__(
        self, normalised: str, src: str = "", origin: str = "domestic", domains: tuple[str, ...] | None = None
    ) -> None:
        self.normalised = normalised
        self.src = src
        self.origin = origin
        self._domains = domains

    @_once
    def domains(self) -> tuple[str, ...]:
        return self._domains if self._domains is not None else find_domains(self.normalised)

    @_once
    def _names(self) -> list[str]:
        return [h for h in self.domains if not _IP_HOST.match(h)]

    @_once
    def ip_literal(self) -> bool:
        return bool(_IP_IN_TEXT.search(self.normalised)) or any(_IP_HOST.match(h) for h in self.domains)

    @_once
    def shortener(self) -> bool:
        short = data().shorteners
        # a shortener's host or a name under it: some tail of the labels is on the list
        return any(not short.isdisjoint(_tails(h)) for h in self._names)

    @_once
    def tld_rare(self) -> bool:
        return any(h.rsplit(".", 1)[-1] in data().rare_tlds for h in self._names)

    @_once
    def punycode(self) -> bool:
        return any(label.startswith("xn--") for h in self._names for label in h.split("."))

    @_once
    def lookalikes(self) -> tuple[str, ...]:
        """The brands a domain imitates."""
        return tuple(dict.fromkeys(b for h in self._names for b in lookalike_brands(h)))

    @_once
    def handles(self) -> tuple[tuple[str, str], ...]:
        """(kind, id) of each contact handle; the id is empty for a bare ``+V``."""
        text = self.normalised
        found: list[tuple[str, str]] = []
        for kind, pattern in _HANDLES:
            for m in pattern.finditer(text):
                handle = (kind, m.group(1))
                if handle not in found and not _inside_domain(m.group(1), self.domains):
                    found.append(handle)
        for m in _ALIAS.finditer(text):
            kind = _ALIAS_KIND[m.group(1)]
            if not any(k == kind for k, _ in found):
                found.append((kind, ""))
        return tuple(found)

    @_once
    def amounts(self) -> tuple[float, ...]:
        """Amounts of money in yuan."""
        out = [
            float(m.group(1).replace(",", "")) * _SCALE[m.group(2) or ""]
            for pattern in _MONEY
            for m in pattern.finditer(self.normalised)
        ]
        return tuple(dict.fromkeys(out))

    @_once
    def percents(self) -> tuple[float, ...]:
        return tuple(dict.fromkeys(float(m.group(1)) for p in _PERCENT for m in p.finditer(self.normalised)))

    @_once
    def phones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(re.sub(r"[- ]", "", m.group()) for m in _PHONE.finditer(self.normalised)))

    @property
    def sender_kind(self) -> str:
        return sender_kind(self.src, self.origin)

    @_once
    def official_reminder(self) -> bool:
        text = self.normalised
        if not (_SIGNATURE.search(text) and _WARNING.search(text)):
            return False
        suspicious_link = self.ip_literal or self.shortener or self.punycode or bool(self.lookalikes)
        return not self.handles and not suspicious_link

    def show(self, field: str) -> str:
        """What the selector named ``field`` saw, for explain."""
        readers: dict[str, Callable[[], object]] = {
            "url.ip_literal": lambda: self.ip_literal,
            "url.shortener": lambda: self.shortener,
            "url.tld_rare": lambda: self.tld_rare,
            "url.punycode": lambda: self.punycode,
            "url.brand_lookalike": lambda: ", ".join(self.lookalikes),
            "contact.handle": lambda: ", ".join(f"{k}:{i}" if i else k for k, i in self.handles),
            "money.amount": lambda: ", ".join(f"{a:g}" for a in self.amounts),
            "money.percent": lambda: ", ".join(f"{p:g}%" for p in self.percents),
            "phone.in_text": lambda: ", ".join(self.phones),
            "sender.kind": lambda: self.sender_kind,
            "reminder.official": lambda: self.official_reminder,
        }
        shown = readers[field]()
        if isinstance(shown, bool):
            answer = "yes" if shown else "no"
            return f"{answer} ({', '.join(self.domains) or 'no URL'})" if field.startswith("url.") else answer
        return str(shown)


@dataclass(frozen=True)
class _Data:
    brands: dict[str, tuple[str, ...]]
    shorteners: frozenset[str]
    rare_tlds: frozenset[str]
    skeleton_of: dict[str, str]


@cache
def data() -> _Data:
    raw = json.loads(DATA.read_text("utf-8"))
    brands = {name: tuple(domains) for name, domains in raw["brands"].items()}
    return _Data(
        brands,
        frozenset(raw["shorteners"]),
        frozenset(raw["rare_tlds"]),
        {name: skeleton(name) for name in brands},
    )


def skeleton(label: str) -> str:
    """``label`` with look-alike characters folded (0/o, 1/l/i, rn/m, vv/w ...) and hyphens dropped."""
    out = label.translate(_SKELETON)
    for pair, single in _PAIRS:
        out = out.replace(pair, single)
    return out


def within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by at most one insertion, deletion, substitution or swap of neighbours."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


@lru_cache(maxsize=4096)
def lookalike_brands(host: str) -> tuple[str, ...]:
    """The brands whose name ``host`` imitates without being one of their official domains."""
    d = data()
    # every label, and every hyphenated part of one, by its skeleton: computed once for all brands
    seen: set[str] = set()
    for label in map(_unicode_label, host.split(".")):
        seen.add(skeleton(label))
        seen.update(skeleton(part) for part in label.split("-") if part)
    seen.discard("")
    out: list[str] = []
    for brand, official in d.brands.items():
        wanted = d.skeleton_of[brand]
        if len(wanted) <= 4:
            hit = wanted in seen  # short names only as a whole label or hyphenated part (jd-login, not adjd)
        else:
            hit = any(wanted in s or (abs(len(s) - len(wanted)) <= 1 and within_one_edit(s, wanted)) for s in seen)
        if hit and not any(host == o or host.endswith("." + o) for o in official):
            out.append(brand)
    return tuple(out)


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def extract(normalised: str, src: str = "", origin: str = "domestic") -> Signals:
    """The signals of a message, from its normalised text and its source address (extracted as read)."""
    return Signals(normalised, src, origin)


def _tails(host: str) -> list[str]:
    """``a.b.t.cn`` -> ``[a.b.t.cn, b.t.cn, t.cn, cn]``."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _inside_domain(ident: str, hosts: tuple[str, ...]) -> bool:
    """An "id" that is a label of a URL's host (``@example`` of an e-mail, ``wx.example.com``)."""
    return any(ident in h.split(".") for h in hosts)
