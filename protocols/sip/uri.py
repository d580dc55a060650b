"""SIP, SIPS and tel URIs (RFC 3261 section 19.1 and 25.1, RFC 3966).

A :class:`SipUri` holds the *meaning* of a URI: user, password, parameter names and values and
header names and values are stored unescaped (``%41`` becomes ``A``, ``%00`` a NUL character), and
:meth:`SipUri.__str__` escapes whatever the component's grammar does not allow. Re-serialising a
parsed URI therefore gives an equivalent URI (RFC 3261 19.1.4), not always the same octets: escapes
of characters that need none are dropped and hex digits come out upper case.

URIs of any other scheme (``http:``, ``isbn:``, ``soap.beep:`` ...) are kept opaque: only the scheme
is lower-cased and the rest is validated against the generic ``absoluteURI`` character set.

Octets that are not valid UTF-8 after unescaping are kept as lone surrogates (``surrogateescape``)
so that parsing and serialising round-trip exactly.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote_to_bytes

from protocols.errors import RemoteProtocolError

__all__ = [
    "SipUri",
    "escape",
    "hosts_equal",
    "parse_uri",
    "unescape",
    "users_equal",
]

# RFC 3261 25.1 character classes (``%`` is handled separately, as part of ``escaped``).
_UNRESERVED = "A-Za-z0-9\\-_.!~*'()"
_USER_RE = re.compile(f"[{_UNRESERVED}&=+$,;?/%#]+")  # '#' tolerated: seen in the wild (*21#)
_PASSWORD_RE = re.compile(f"[{_UNRESERVED}&=+$,%]*")
_PARAMCHAR_RE = re.compile(f"[{_UNRESERVED}\\[\\]/:&+$%]+")
_HNAME_RE = re.compile(f"[{_UNRESERVED}\\[\\]/?:+$%]+")
_HVALUE_RE = re.compile(f"[{_UNRESERVED}\\[\\]/?:+$%]*")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]#]+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Characters left as they are when serialising each component (quote() always keeps A-Za-z0-9_.-~).
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"

_SIP_SCHEMES = frozenset({"sip", "sips"})
_DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def _bad(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, answer=400)


def unescape(text: str) -> str:
    """Undo RFC 3261 ``%HH`` escapes; raise RemoteProtocolError(400) on a malformed escape."""
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise _bad("Malformed %-escape in URI")
    try:
        raw = unquote_to_bytes(text)
    except UnicodeEncodeError as exc:  # non-ASCII in text; callers validate first, be safe anyway
        raise _bad("Non-ASCII character in URI") from exc
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, safe: str) -> str:
    """Escape every character of ``text`` outside the unreserved set and ``safe`` as ``%HH``."""
    return quote(text, safe=safe, encoding="utf-8", errors="surrogateescape")


@dataclass(frozen=True, slots=True)
class SipUri:
    """A parsed URI.

    ``scheme`` is lower case. For ``sip``/``sips``: ``user`` and ``password`` (None when absent),
    ``host`` (IPv6 references keep their brackets), ``port`` (None when absent), ``params`` and
    ``headers`` as ordered ``(name, value)`` pairs, all unescaped. For ``tel``: the number is in
    ``user``, ``host`` is empty. For other schemes ``opaque`` holds everything after ``scheme:``.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None
    # The text a URI was parsed from, when serialising it gives those very octets back (the common
    # shape, see _fast_sip): str() then costs nothing. Not part of the value, and not carried over by
    # replace(), which builds a new URI.
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    # --- parameters -----------------------------------------------------------------------------
    def param(self, name: str) -> str | None:
        """Value of the first parameter called ``name`` (case-insensitive); None if absent or bare."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return value
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self.params)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with parameter ``name`` set (replacing an existing one in place)."""
        lname = name.lower()
        params = list(self.params)
        for i, (key, _) in enumerate(params):
            if key.lower() == lname:
                params[i] = (key, value)
                break
        else:
            params.append((name, value))
        return replace(self, params=tuple(params))

    def without_param(self, name: str) -> SipUri:
        lname = name.lower()
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != lname))

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs."""
        return self.scheme in _SIP_SCHEMES

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value is not None else None

    @property
    def lr(self) -> bool:
        """The loose-routing flag (RFC 3261 19.1.1)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def host_unbracketed(self) -> str:
        """The host without the brackets of an IPv6 reference."""
        if self.host.startswith("["):
            return self.host[1:-1]
        return self.host

    @property
    def effective_port(self) -> int | None:
        """The port, or the scheme's default (5060 for sip, 5061 for sips); None for other schemes."""
        if self.port is not None:
            return self.port
        return _DEFAULT_PORTS.get(self.scheme)

    def without_headers(self) -> SipUri:
        return replace(self, headers=()) if self.headers else self

    # --- comparison (RFC 3261 19.1.4) --------------------------------------------------------------
    def matches(self, other: SipUri) -> bool:
        """URI equivalence per RFC 3261 19.1.4 (sip/sips); exact comparison for other schemes."""
        if self.scheme != other.scheme:
            return False
        if not self.is_sip:
            if self.opaque is not None or other.opaque is not None:
                return self.opaque == other.opaque
            return users_equal(self, other) and _params_equivalent(self.params, other.params, ())
        if not (users_equal(self, other) and hosts_equal(self, other)):
            return False
        if self.password != other.password or self.port != other.port:
            return False
        if not _params_equivalent(self.params, other.params, ("user", "ttl", "method", "maddr")):
            return False
        return _headers_equivalent(self.headers, other.headers)

    # --- serialisation ------------------------------------------------------------------------------
    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        parts = [self.scheme, ":"]
        if self.scheme == "tel":
            parts.append(escape(self.user or "", _USER_SAFE))
        else:
            if self.user is not None:
                parts.append(escape(self.user, _USER_SAFE))
                if self.password is not None:
                    parts.append(":")
                    parts.append(escape(self.password, _PASSWORD_SAFE))
                parts.append("@")
            parts.append(self.host)
            if self.port is not None:
                parts.append(f":{self.port}")
        for name, value in self.params:
            parts.append(";")
            parts.append(escape(name, _PARAM_SAFE))
            if value is not None:
                parts.append("=")
                parts.append(escape(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append("&".join(f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers))
        return "".join(parts)


def users_equal(a: SipUri, b: SipUri) -> bool:
    """User parts compare case-sensitively after unescaping (RFC 3261 19.1.4)."""
    return a.user == b.user


def hosts_equal(a: SipUri, b: SipUri) -> bool:
    """Hosts compare case-insensitively; IPv6 references compare as addresses."""
    ha, hb = a.host, b.host
    if ha.lower() == hb.lower():
        return True
    if ha.startswith("[") and hb.startswith("["):
        try:
            return ipaddress.IPv6Address(ha[1:-1]) == ipaddress.IPv6Address(hb[1:-1])
        except ValueError:
            return False
    return False


def _params_equivalent(
    a: tuple[tuple[str, str | None], ...], b: tuple[tuple[str, str | None], ...], must_match: tuple[str, ...]
) -> bool:
    da = {k.lower(): (v.lower() if v is not None else None) for k, v in a}
    db = {k.lower(): (v.lower() if v is not None else None) for k, v in b}
    for name in must_match:
        if (name in da) != (name in db):
            return False
    return all(da[name] == db[name] for name in da.keys() & db.keys())


def _headers_equivalent(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> bool:
    return {(k.lower(), v) for k, v in a} == {(k.lower(), v) for k, v in b}


# --- parsing --------------------------------------------------------------------------------------


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """``text`` is what follows the first ';' of the parameter section."""
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAMCHAR_RE.fullmatch(name):
            raise _bad("Malformed URI parameter")
        if eq:
            if not _PARAMCHAR_RE.fullmatch(value):
                raise _bad("Malformed URI parameter value")
            params.append((unescape(name), unescape(value)))
        else:
            params.append((unescape(name), None))
    return tuple(params)


def _parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
            raise _bad("Malformed URI header")
        headers.append((unescape(name), unescape(value)))
    return tuple(headers)


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4 address or bracketed IPv6 reference) and return it."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise _bad("Malformed IPv6 reference")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError as exc:
            raise _bad("Malformed IPv6 reference") from exc
        return text
    if not _HOSTNAME_RE.fullmatch(text):
        raise _bad("Malformed host")
    return text


def parse_port(text: str) -> int:
    if not _PORT_RE.fullmatch(text):
        raise _bad("Malformed port")
    port = int(text)
    if port > 65535:
        raise _bad("Port out of range")
    return port


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (no whitespace allowed)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _bad("Malformed IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return parse_host(host), None
        if rest[0] != ":":
            raise _bad("Malformed host")
        return parse_host(host), parse_port(rest[1:])
    host, colon, port = text.partition(":")
    return parse_host(host), (parse_port(port) if colon else None)


# The shape of nearly every URI a proxy sees: sip:[user@]host[:port][;name[=value]]..., with no
# escapes, password, URI headers, IPv6 or ';' in the user part. One regex parses it; anything else
# takes the general path below, which gives the same result for these.
_PCHAR = "A-Za-z0-9\\-_.!~*'()\\[\\]/:&+$"
_FAST_SIP_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]+)@)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)(?::([0-9]{1,5}))?"
    rf"((?:;[{_PCHAR}]+(?:=[{_PCHAR}]+)?)*)"
)


def _fast_sip(text: str) -> SipUri | None:
    # Every character the regex lets through is one __str__ leaves unescaped, so the URI serialises
    # back to ``text`` exactly and keeps it (see SipUri._text).
    match = _FAST_SIP_RE.fullmatch(text)
    if match is None:
        return None
    scheme, user, host, port_text, param_text = match.groups()
    port = int(port_text) if port_text is not None else None
    if port is not None and port > 65535:
        return None
    params: tuple[tuple[str, str | None], ...] = ()
    if param_text:
        items = []
        for item in param_text[1:].split(";"):
            name, eq, value = item.partition("=")
            items.append((name, value if eq else None))
        params = tuple(items)
    uri = SipUri(scheme=scheme, user=user, host=host, port=port, params=params)
    object.__setattr__(uri, "_text", text)
    return uri


#: The longest text a parser memoises: a peer chooses what it sends, and 4,096 remembered texts of up
#: to a line's length each would hold megabytes.
MEMO_MAX = 256
#: How many texts each parser remembers. The memos are plain dicts, emptied when full (a peer that
#: sends ever new texts only misses them): looked up from compiled code, a dict costs a fraction of
#: an lru_cache, which is called through Python's protocol and keeps a list in recency order.
MEMO_KEPT = 4096


def parse_uri(text: str) -> SipUri:
    """Parse a URI; raise RemoteProtocolError(answer=400) when it is malformed.

    Memoised up to MEMO_MAX characters (what comes back in every message of a call); a longer text,
    which a peer chooses, is parsed each time rather than kept."""
    if len(text) > MEMO_MAX:
        return _parse_uri(text)
    uri = _URI_MEMO.get(text)
    if uri is None:
        uri = _parse_uri(text)
        if len(_URI_MEMO) >= MEMO_KEPT:
            _URI_MEMO.clear()
        _URI_MEMO[text] = uri
    return uri


def _parse_uri(text: str) -> SipUri:
    """The parse behind :func:`parse_uri`, memoised or not."""
    fast = _fast_sip(text)
    if fast is not None:
        return fast
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise _bad("Malformed URI scheme")
    scheme = scheme.lower()
    if scheme in _SIP_SCHEMES:
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if not _OPAQUE_RE.fullmatch(rest) or _BAD_ESCAPE_RE.search(rest):
        raise _bad("Malformed URI")
    return SipUri(scheme=scheme, opaque=rest)


#: URIs parsed, by text (see MEMO_KEPT).
_URI_MEMO: dict[str, SipUri] = {}


def _parse_sip(scheme: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = text.rfind("@")
    if at >= 0:
        userinfo, text = text[:at], text[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not _USER_RE.fullmatch(raw_user):
            raise _bad("Malformed URI user part")
        user = unescape(raw_user)
        if colon:
            if not _PASSWORD_RE.fullmatch(raw_password):
                raise _bad("Malformed URI password")
            password = unescape(raw_password)
    headers: tuple[tuple[str, str], ...] = ()
    q = text.find("?")
    if q >= 0:
        headers = _parse_headers(text[q + 1 :])
        text = text[:q]
    params: tuple[tuple[str, str | None], ...] = ()
    semi = text.find(";")
    if semi >= 0:
        params = _parse_params(text[semi + 1 :])
        text = text[:semi]
    host, port = split_hostport(text)
    return SipUri(scheme=scheme, user=user, password=password, host=host, port=port, params=params, headers=headers)


def _parse_tel(text: str) -> SipUri:
    number, semi, rest = text.partition(";")
    if not _PARAMCHAR_RE.fullmatch(number):
        raise _bad("Malformed tel URI")
    params = _parse_params(rest) if semi else ()
    return SipUri(scheme="tel", user=unescape(number), params=params)
