"""The SIP Identity header (RFC 8224 section 4.1), compact name ``y``.

::

    Identity = "Identity" HCOLON signed-identity-digest SEMI ident-info *( SEMI ident-info-params )
    signed-identity-digest = 1*(base64-char / ".")
    ident-info = "info" EQUAL ident-info-uri
    ident-info-uri = LAQUOT absoluteURI RAQUOT
    ident-info-params = ident-info-alg / ident-type / ident-info-extension
    ident-info-alg = "alg" EQUAL token
    ident-type = "ppt" EQUAL token
    ident-info-extension = generic-param

RFC 8224 spells base64-char as ALPHA / DIGIT / "/" / "+", but PASSporTs are base64url (RFC 7515), so
"-" and "_" are accepted too; a digest that is not base64url fails later, in the PASSporT decoder.
Parameter names are case-insensitive and may appear once each. Values reach us unfolded (the SIP
parser turns folding into a single space), so SWS here is spaces and tabs only.

Each Identity header field carries one PASSporT: RFC 8224 does not make it a comma-separated list
(an info URI may contain commas), so a request with several has several header fields, and the
caller hands over the list of their values.

Errors: no ``info`` parameter, or one that is not ``<absoluteURI>``, is a 436 (Bad Identity Info);
anything else malformed is a 438.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.stir.errors import BadIdentityInfo, InvalidIdentityHeader

__all__ = ["COMPACT_NAME", "HEADER_NAME", "MAX_IDENTITY_LENGTH", "IdentityHeader", "parse_identity"]

HEADER_NAME = "Identity"
COMPACT_NAME = "y"
MAX_IDENTITY_LENGTH = 10_000

_SWS_RE = re.compile(r"[ \t]*")
_DIGEST_RE = re.compile(r"[A-Za-z0-9/+\-_=.]+")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 3261 gen-value also allows a host (IPv6 references included).
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
# RFC 3986 absolute-URI: scheme ":" hier-part [ "?" query ], characters only from the URI set.
_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_QUOTED_RE = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*)"')


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    """One Identity header field value: a PASSporT and its parameters."""

    token: str
    info: str
    alg: str | None = None
    ppt: str | None = None
    # Extension parameters in the order received; names lower-cased, values as written.
    extensions: tuple[tuple[str, str | None], ...] = ()

    @property
    def compact(self) -> bool:
        """True for a compact-form PASSporT (RFC 8225 section 7): ``..signature``."""
        return self.token.startswith("..")

    def serialise(self) -> str:
        """The header field value, in the order RFC 8224 examples and other implementations use."""
        parts = [self.token, f"info=<{self.info}>"]
        if self.alg is not None:
            parts.append(f"alg={self.alg}")
        if self.ppt is not None:
            parts.append(f"ppt={self.ppt}")
        parts.extend(name if value is None else f"{name}={value}" for name, value in self.extensions)
        return ";".join(parts)

    def header_line(self, *, compact_name: bool = False) -> str:
        return f"{COMPACT_NAME if compact_name else HEADER_NAME}: {self.serialise()}"


def parse_identity(value: str) -> IdentityHeader:
    """Parse one Identity header field value; raises BadIdentityInfo or InvalidIdentityHeader."""
    if len(value) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentityHeader("Identity header too long")
    pos = _skip(value, 0)
    match = _DIGEST_RE.match(value, pos)
    if match is None:
        raise InvalidIdentityHeader("Identity header does not start with a signed-identity-digest")
    token = match.group()
    pos = match.end()
    params: dict[str, str | None] = {}
    order: list[str] = []
    while True:
        pos = _skip(value, pos)
        if pos == len(value):
            break
        if value[pos] != ";":
            raise InvalidIdentityHeader(f"unexpected character at offset {pos} of the Identity header")
        pos = _skip(value, pos + 1)
        name_match = _TOKEN_RE.match(value, pos)
        if name_match is None:
            raise InvalidIdentityHeader(f"expected a parameter name at offset {pos} of the Identity header")
        name = name_match.group().lower()
        pos = _skip(value, name_match.end())
        param_value: str | None = None
        if pos < len(value) and value[pos] == "=":
            pos = _skip(value, pos + 1)
            param_value, pos = _param_value(value, pos, name)
        if name in params:
            raise InvalidIdentityHeader(f"Identity parameter {name!r} given twice")
        params[name] = param_value
        order.append(name)
    info = params.pop("info", None)
    if info is None:
        raise BadIdentityInfo("Identity header has no info parameter")
    alg = params.pop("alg", None)
    ppt = params.pop("ppt", None)
    for name, given in (("alg", alg), ("ppt", ppt)):
        if name in order and not given:
            raise InvalidIdentityHeader(f"Identity parameter {name} has no value")
    if ppt is not None and ppt.startswith('"'):
        ppt = _unquote(ppt)  # some implementations quote it; the PASSporT's ppt is the bare value
    extensions = tuple((name, params[name]) for name in order if name in params)
    return IdentityHeader(token=token, info=info, alg=alg, ppt=ppt, extensions=extensions)


def _skip(value: str, pos: int) -> int:
    match = _SWS_RE.match(value, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _param_value(value: str, pos: int, name: str) -> tuple[str, int]:
    if pos < len(value) and value[pos] == "<":
        end = value.find(">", pos + 1)
        uri = value[pos + 1 : end] if end >= 0 else ""
        if end < 0 or not _ABSOLUTE_URI_RE.fullmatch(uri):
            error = BadIdentityInfo if name == "info" else InvalidIdentityHeader
            raise error(f"Identity parameter {name} is not <absoluteURI>")
        if name != "info":
            raise InvalidIdentityHeader(f"Identity parameter {name} cannot be a URI")
        return uri, end + 1
    if name == "info":
        raise BadIdentityInfo("Identity info parameter is not <absoluteURI>")
    quoted = _QUOTED_RE.match(value, pos)
    if quoted is not None:
        return quoted.group(), quoted.end()
    match = _GEN_VALUE_RE.match(value, pos)
    if match is None:
        raise InvalidIdentityHeader(f"Identity parameter {name} has a malformed value")
    if name in ("alg", "ppt") and not _TOKEN_RE.fullmatch(match.group()):
        raise InvalidIdentityHeader(f"Identity parameter {name} is not a token")
    return match.group(), match.end()


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
