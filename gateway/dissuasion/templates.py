"""Warning texts per fraud type, for the person at risk and for their family contact, checked at load.

A warning that is itself shaped like a fraud text teaches people to trust fraud texts, so every template
is held to what the 12381 platform's warnings keep to: it fits one flash part (70 UCS2 characters)
unless the entry says ``multipart: true``, it carries no link, no number other than the official ones
(96110, 12381 by default), and it never asks the reader to reply with or hand over personal data.
Every problem is reported as ``file:line:col: message``, all of them in one pass.

File layout::

    official_numbers: ["96110", "12381"]   # optional; the numbers a text may name
    templates:
      default: {victim: "...", family: "..."}   # required: used for any type not listed
      police_impersonation:
        aliases: [冒充公检法]                     # other names the triggers may use for the type
        victim: "..."
        family: "... 尾号{tail} ..."             # {tail}: the last 4 digits of the person at risk
        multipart: false                        # true: the text may take several flash parts
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from protocols.smpp import text as sms_text
from rules.yaml_source import LocatedDict, Location, Reader, SourceErrors, load_file, load_text

Audience = Literal["victim", "family"]
AUDIENCES: tuple[Audience, ...] = ("victim", "family")
#: The texts shipped with the gateway, used when the configuration names no file of its own.
DEFAULT_PATH = Path(__file__).with_name("default_templates.yaml")
DEFAULT_OFFICIAL_NUMBERS = ("96110", "12381")
#: One flash part in UCS2: 140 octets.
FLASH_CHARS = 70
PLACEHOLDERS = frozenset({"tail"})
_TAIL_SAMPLE = "0000"  # what {tail} stands for when a template's length is checked

_URL = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.|\b[a-z0-9-]+\.(?:com|cn|net|org|top|xyz|vip|cc|me|io|info|shop|club|site|app"
    r"|link|tk|co|gov|edu)\b)"
)
# Digits with the separators people put inside numbers; NFKC first turns full-width digits into ASCII.
_NUMBER = re.compile(r"\+?\d(?:[\d\- ()]*\d)?")
#: Shorter digit runs are counts, dates and years (第2次, 24小时), not numbers to call.
_MIN_PHONE_DIGITS = 5
_DATA = (
    r"(?:身份证|验证码|校验码|动态码|银行卡|卡号|密码|口令|账号|账户|户名|姓名|住址|地址|个人信息|短信内容|CVV|有效期)"
)
#: Asking for data: reply with it, send it, tell it, type it in. A negation just before (不要/请勿/
#: 不会/切勿/别) turns the request into the warning's own advice, which is allowed.
FORBIDDEN_REQUESTS: tuple[re.Pattern[str], ...] = (
    re.compile(r"回复[^，。！；,.!;]{0,8}?" + _DATA),
    re.compile(r"(?:发送|发给|提供|告知|告诉|输入|填写|填入|报出|上传)[^，。！；,.!;]{0,8}?" + _DATA),
    re.compile(r"(?i)(?:回复|reply)\s*[0-9A-Za-z一二三四五六七八九是否]"),
)
_NEGATION = re.compile(r"(?:不|勿|别|莫|拒绝|谨防|防止|禁止|严禁)[^，。！；,.!;]{0,6}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Template:
    fraud_type: str
    victim: str
    family: str
    multipart: bool = False


@dataclass(frozen=True, slots=True)
class Templates:
    by_type: Mapping[str, Template]
    default: Template
    official_numbers: tuple[str, ...] = DEFAULT_OFFICIAL_NUMBERS
    source: str = "<built-in>"

    def template_for(self, fraud_types: tuple[str, ...] | str) -> Template:
        """The template of the first listed type that has one, else the default."""
        for kind in (fraud_types,) if isinstance(fraud_types, str) else fraud_types:
            if (found := self.by_type.get(kind)) is not None:
                return found
        return self.default

    def render(self, fraud_types: tuple[str, ...] | str, audience: Audience, subscriber: str = "") -> str:
        template = self.template_for(fraud_types)
        raw = template.victim if audience == "victim" else template.family
        return raw.replace("{tail}", _tail(subscriber))


def _tail(subscriber: str) -> str:
    # a number of digits alone, as almost every subscriber is, is its own digits (one attempt, one call)
    digits = (
        subscriber if subscriber.isascii() and subscriber.isdigit() else "".join(c for c in subscriber if c.isdigit())
    )
    return digits[-4:] or "----"


def ucs2_chars(message: str) -> int:
    """The 16-bit units the text takes in UCS2, as the flash's short_message counts them."""
    return len(sms_text.encode(message, sms_text.Alphabet.UCS2)) // 2


def problems(message: str, *, official_numbers: tuple[str, ...], multipart: bool) -> list[str]:
    """What is wrong with one warning text (empty: nothing)."""
    found: list[str] = []
    for name in _PLACEHOLDER.findall(message):
        if name not in PLACEHOLDERS:
            found.append(f"unknown placeholder {{{name}}}; only {{tail}} is filled in")
    rendered = message.replace("{tail}", _TAIL_SAMPLE)
    normal = unicodedata.normalize("NFKC", rendered)
    if not multipart and (chars := ucs2_chars(rendered)) > FLASH_CHARS:
        found.append(
            f"{chars} UCS2 characters, one flash part holds {FLASH_CHARS} (shorten it, or set multipart: true)"
        )
    if (url := _URL.search(normal)) is not None:
        found.append(f"contains a link ({url.group(0)!r}); warnings carry no links")
    for match in _NUMBER.finditer(normal.replace(_TAIL_SAMPLE, "")):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= _MIN_PHONE_DIGITS and digits not in official_numbers:
            found.append(f"names the number {match.group(0).strip()!r}; only {', '.join(official_numbers)} may appear")
    for pattern in FORBIDDEN_REQUESTS:
        for match in pattern.finditer(normal):
            if not _NEGATION.search(normal[: match.start()]):
                found.append(f"asks for a reply or for personal data ({match.group(0)!r}); warnings never do")
                break
    return found


def load(path: str | Path) -> Templates:
    """Read and check a templates file; raises SourceErrors listing every problem."""
    reader = Reader()
    doc = load_file(path, collect=reader.errors)
    return _build(reader, doc, str(path))


def loads(source: str, path: str = "<string>") -> Templates:
    reader = Reader()
    doc = load_text(source, path, collect=reader.errors)
    return _build(reader, doc, path)


def _build(reader: Reader, doc: object, path: str) -> Templates:
    if not isinstance(doc, LocatedDict):
        reader.error(Location(path, 1, 1), "a templates file is a mapping with a 'templates' section")
        raise SourceErrors(reader.errors)
    reader.keys(doc, {"official_numbers", "templates"}, required=("templates",))
    official: tuple[str, ...] = DEFAULT_OFFICIAL_NUMBERS
    if "official_numbers" in doc:
        numbers = []
        for item, where in reader.items(doc, "official_numbers"):
            if not isinstance(item, str) or not item.isdigit():
                reader.error(where, f"official_numbers: expected a quoted string of digits, got {item!r}")
            else:
                numbers.append(item)
        official = tuple(numbers)
    by_type: dict[str, Template] = {}
    default: Template | None = None
    section = reader.mapping(doc, "templates", required=True)
    for name in section or {}:
        assert section is not None
        entry = section[name]
        if not isinstance(entry, LocatedDict):
            reader.error(section.where(name), f"{name}: expected a mapping with victim and family texts")
            continue
        template = _template(reader, name, entry, official)
        if name == "default":
            default = template
        for key in (name, *_aliases(reader, entry)):
            if key in by_type and key != "default":
                reader.error(entry.location, f"{name}: the type {key!r} already has a template")
            by_type[key] = template
    if section is not None and default is None:
        reader.error(section.location, "templates: a 'default' entry is required, for fraud types not listed")
    reader.check()
    assert default is not None
    return Templates(by_type=by_type, default=default, official_numbers=official, source=path)


def _aliases(reader: Reader, entry: LocatedDict) -> list[str]:
    names = []
    for item, where in reader.items(entry, "aliases"):
        if not isinstance(item, str) or not item:
            reader.error(where, f"aliases: expected a fraud type name, got {item!r}")
        else:
            names.append(item)
    return names


def _template(reader: Reader, name: str, entry: LocatedDict, official: tuple[str, ...]) -> Template:
    reader.keys(entry, {"victim", "family", "multipart", "aliases"}, required=AUDIENCES)
    multipart = bool(reader.get(entry, "multipart", bool, False))
    texts: dict[str, str] = {}
    for audience in AUDIENCES:
        value = reader.get(entry, audience, str, "")
        texts[audience] = value
        if audience in entry and isinstance(entry[audience], str):
            if not value.strip():
                reader.error(entry.where(audience), f"{name}.{audience}: empty text")
            for why in problems(value, official_numbers=official, multipart=multipart):
                reader.error(entry.where(audience), f"{name}.{audience}: {why}")
    return Template(fraud_type=name, victim=texts["victim"], family=texts["family"], multipart=multipart)
