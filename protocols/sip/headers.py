"""Header field names and the grammar of the header values a proxy needs (RFC 3261 section 20, 25.1).

Everything here is a pure function of strings. Values are expected already unfolded (the parser
replaces folding LWS with a single space, RFC 3261 7.3.1). Malformed values raise
``RemoteProtocolError(answer=400)``; the message accessors turn that into ``answer=None`` for
responses, which are discarded rather than answered.
"""

from __future__ import annotations

import re
from typing import Final

from protocols.errors import RemoteProtocolError
from protocols.sip.uri import MEMO_KEPT, MEMO_MAX, SipUri, parse_uri, split_hostport

__all__ = [
    "LIST_HEADERS",
    "CSeq",
    "NameAddr",
    "Params",
    "Via",
    "canonical_name",
    "first_element",
    "format_params",
    "is_token",
    "parse_cseq",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_params",
    "parse_via",
    "parse_via_list",
    "quote_string",
    "split_list",
    "unquote_string",
]

Params = tuple[tuple[str, str | None], ...]

MAX_CSEQ = 2**31 - 1

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# gen-value = token / host / quoted-string; ':' and brackets let IPv6 addresses through (received=).
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*")
_DIGITS_RE = re.compile(r"[0-9]+")
_TRANSPORT_SENT_BY_RE = re.compile(r"[ \t]*([^ \t]+)[ \t]+([^ \t].*)")
_CSEQ_RE = re.compile(r"[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")

# RFC 3261 7.3.3 compact forms, plus the later ones listed in the IANA registry.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",
    "b": "Referred-By",
    "d": "Request-Disposition",
    "j": "Reject-Contact",
}

_KNOWN_NAMES = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}
_CANONICAL.update(COMPACT_FORMS)

# Headers whose grammar is a comma-separated list (``#element``). Authentication headers, Date,
# Identity, Retry-After and the like are not: their values contain commas that are not separators.
LIST_HEADERS = frozenset(
    {
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "History-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Privacy",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Require",
        "Route",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    }
)


def _bad(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, answer=400)


def canonical_name(name: str) -> str:
    """The full, conventionally capitalised name for a known header or compact form.

    Unknown names come back unchanged (they still compare case-insensitively).
    """
    return _CANONICAL.get(name.lower(), name)


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


# --- quoted strings and lists -----------------------------------------------------------------------


def _end_of_quoted(text: str, start: int) -> int:
    """Index just past the closing quote of the quoted-string opening at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise _bad("Unterminated quoted string")


def unquote_string(text: str) -> str:
    """Remove the quotes and quoted-pair escapes of a complete quoted-string."""
    if len(text) < 2 or text[0] != '"' or _end_of_quoted(text, 0) != len(text):
        raise _bad("Malformed quoted string")
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            i += 1
            ch = inner[i]  # a trailing backslash would have escaped the closing quote
        out.append(ch)
        i += 1
    return "".join(out)


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is outside quoted strings and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    items: list[str] = []
    start = 0
    i = 0
    n = len(text)
    in_angle = False
    while i < n:
        ch = text[i]
        if ch == '"' and not in_angle:
            i = _end_of_quoted(text, i)
            continue
        if ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == sep and not in_angle:
            items.append(text[start:i])
            start = i + 1
        i += 1
    if in_angle:
        raise _bad("Unbalanced angle brackets")
    items.append(text[start:])
    return items


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value into its elements, stripped of surrounding LWS.

    Commas inside quoted strings and ``<...>`` are not separators. Empty elements are kept (as
    ``""``) so that a caller can decide whether they are an error. Use only on :data:`LIST_HEADERS`.
    """
    return [item.strip(" \t") for item in _split_outside(value, ",")]


# --- parameters ------------------------------------------------------------------------------------


# generic-params with token names and token/host values and no LWS: checked in one regex.
_FAST_PARAMS_RE = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]]+)?)+")


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )``; ``text`` starts at the first ';' (or is blank)."""
    text = text.strip(" \t")
    if not text:
        return ()
    if _FAST_PARAMS_RE.fullmatch(text):
        fast: list[tuple[str, str | None]] = []
        for item in text[1:].split(";"):
            name, eq, value = item.partition("=")
            fast.append((name, value if eq else None))
        return tuple(fast)
    return _parse_params_general(text)


def _parse_params_general(text: str) -> Params:
    if text[0] != ";":
        raise _bad("Expected ';' before parameter")
    params: list[tuple[str, str | None]] = []
    for item in _split_outside(text[1:], ";"):
        name, eq, value = item.partition("=")
        name = name.strip(" \t")
        if not _TOKEN_RE.fullmatch(name):
            raise _bad("Malformed parameter")
        if not eq:
            params.append((name, None))
            continue
        value = value.strip(" \t")
        if value.startswith('"'):
            if _end_of_quoted(value, 0) != len(value):
                raise _bad("Malformed quoted parameter value")
        elif not _GEN_VALUE_RE.fullmatch(value):
            raise _bad("Malformed parameter value")
        params.append((name, value))
    return tuple(params)


def format_params(params: Params) -> str:
    # A loop rather than a generator given to join: compiled, a generator is an object of its own.
    out: list[str] = []
    for name, value in params:
        out.append(f";{name}" if value is None else f";{name}={value}")
    return "".join(out)


# Parameter names compare case-insensitively; most arrive as they are asked for ("branch"), so the
# exact comparison goes first and spares lower-casing a copy of each.


def param_value(params: Params, name: str) -> str | None:
    lname = name.lower()
    for key, value in params:
        if key == name or key.lower() == lname:
            return value
    return None


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(key == name or key.lower() == lname for key, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    lname = name.lower()
    out = list(params)
    for i, (key, _) in enumerate(out):
        if key == name or key.lower() == lname:
            out[i] = (key, value)
            return tuple(out)
    out.append((name, value))
    return tuple(out)


# --- name-addr / addr-spec ---------------------------------------------------------------------------


class NameAddr:
    """``[display-name] <URI> *(;param)`` or ``addr-spec *(;param)`` (To, From, Contact, Route ...).

    ``display`` is unquoted (None when absent), ``params`` are the header parameters (``tag``,
    ``expires``, ``q`` ...) with quoted values kept quoted. Immutable, compared and hashed by value
    (see :class:`Via` for why it is not a dataclass).
    """

    __slots__ = ("display", "params", "uri")

    def __init__(self, uri: SipUri, display: str | None = None, params: Params = ()) -> None:
        self.uri: Final = uri
        self.display: Final = display
        self.params: Final = params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.uri, self.display, self.params) == (other.uri, other.display, other.params)

    def __hash__(self) -> int:
        return hash((self.uri, self.display, self.params))

    def __repr__(self) -> str:
        return f"NameAddr(uri={self.uri!r}, display={self.display!r}, params={self.params!r})"

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    def has_param(self, name: str) -> bool:
        return has_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return NameAddr(self.uri, self.display, set_param(self.params, name, value))

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def __str__(self) -> str:
        head = f"<{self.uri}>" if self.display is None else f"{quote_string(self.display)} <{self.uri}>"
        return head + format_params(self.params)


def parse_name_addr(value: str) -> NameAddr:
    """Parse one ``(name-addr / addr-spec) *(SEMI param)`` element.

    Memoised up to MEMO_MAX characters (what comes back in every message of a call); a longer text,
    which a peer chooses, is parsed each time rather than kept."""
    if len(value) > MEMO_MAX:
        return _parse_name_addr(value)
    addr = _NAME_ADDR_MEMO.get(value)
    if addr is None:
        addr = _parse_name_addr(value)
        if len(_NAME_ADDR_MEMO) >= MEMO_KEPT:
            _NAME_ADDR_MEMO.clear()
        _NAME_ADDR_MEMO[value] = addr
    return addr


def _parse_name_addr(value: str) -> NameAddr:
    """The parse behind :func:`parse_name_addr`, memoised or not."""
    text = value.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        end = _end_of_quoted(text, 0)
        display = unquote_string(text[:end])
        text = text[end:].lstrip(" \t")
        if not text.startswith("<"):
            raise _bad("Expected '<' after display name")
    lt = text.find("<")
    if lt >= 0:
        if display is None and lt > 0:
            tokens = text[:lt].rstrip(" \t")
            if not _DISPLAY_TOKENS_RE.fullmatch(tokens):
                raise _bad("Malformed display name")
            display = tokens
        gt = text.find(">", lt)
        if gt < 0:
            raise _bad("Missing '>'")
        uri = parse_uri(text[lt + 1 : gt])
        return NameAddr(uri=uri, display=display, params=parse_params(text[gt + 1 :]))
    # addr-spec: parameters after the URI belong to the header, and the URI itself may not contain
    # ',', ';' or '?' (RFC 3261 20: the name-addr form is mandatory then).
    semi = text.find(";")
    spec, rest = (text, "") if semi < 0 else (text[:semi], text[semi:])
    spec = spec.rstrip(" \t")
    if "?" in spec or "," in spec:
        raise _bad("URI with '?' or ',' must be enclosed in <>")
    return NameAddr(uri=parse_uri(spec), params=parse_params(rest))


#: Name-addrs parsed, by text (see uri.MEMO_KEPT).
_NAME_ADDR_MEMO: dict[str, NameAddr] = {}


def _one_element(value: str) -> bool:
    """Whether split_list(value) is just ``[value]`` stripped, and would not refuse it: no comma, no
    quote, no '<' left open (the usual Contact, Route or Via line), so there is nothing to split."""
    return "," not in value and '"' not in value and value.rfind("<") <= value.rfind(">")


def first_element(value: str) -> str:
    """``split_list(value)[0]``, without splitting the usual line of one element (a Route or Via
    line with no comma, quote or unclosed '<'); raises as split_list does."""
    if _one_element(value):
        return value.strip(" \t")
    return split_list(value)[0]


def parse_name_addr_list(value: str) -> list[NameAddr]:
    if _one_element(value):
        element = value.strip(" \t")
        if element:
            return [parse_name_addr(element)]
    items = split_list(value)
    if any(not item for item in items):
        raise _bad("Empty list element")
    return [parse_name_addr(item) for item in items]


# --- Via ----------------------------------------------------------------------------------------------


class Via:
    """One via-parm: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``.

    Immutable (the attributes are Final), compared and hashed by value. A plain class rather than a
    frozen dataclass: compiled with mypyc, a dataclass keeps the ``__init__`` the dataclasses module
    writes, which runs as Python and sets each field through ``object.__setattr__`` (some 9,000
    instructions a Via, against a few hundred here), and a proxy builds several Vias per message.
    """

    __slots__ = ("host", "params", "port", "protocol", "transport", "version")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params = (),
        protocol: str = "SIP",
        version: str = "2.0",
    ) -> None:
        self.transport: Final = transport
        self.host: Final = host
        self.port: Final = port
        self.params: Final = params
        self.protocol: Final = protocol
        self.version: Final = version

    def _fields(self) -> tuple[str, str, int | None, Params, str, str]:
        return (self.transport, self.host, self.port, self.params, self.protocol, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Via) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Via(transport={self.transport!r}, host={self.host!r}, port={self.port!r}, params={self.params!r}, "
            f"protocol={self.protocol!r}, version={self.version!r})"
        )

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    def has_param(self, name: str) -> bool:
        return has_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        params = set_param(self.params, name, value)
        return Via(self.transport, self.host, self.port, params, self.protocol, self.version)

    def with_params(self, *pairs: tuple[str, str | None]) -> Via:
        """``with_param`` for each ``(name, value)`` in turn, building one Via."""
        params = self.params
        for name, value in pairs:
            params = set_param(params, name, value)
        return Via(self.transport, self.host, self.port, params, self.protocol, self.version)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def rport_requested(self) -> bool:
        """True when the rport parameter is present, with or without a value (RFC 3581)."""
        return self.has_param("rport")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server, None when absent or valueless."""
        value = self.param("rport")
        if value is None or not _DIGITS_RE.fullmatch(value) or len(value) > 5:
            return None
        return int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """``(host lower-cased, port)``: the part of the key used by RFC 3261 17.2.3."""
        return self.host.lower(), self.port

    def __str__(self) -> str:
        hostport = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.version}/{self.transport} {hostport}{format_params(self.params)}"


# The shape nearly every Via has (no LWS inside, no quotes, no IPv6): one regex instead of the
# general path below. Anything else falls through to the general path, which gives the same result.
_VIA_FAST_RE = re.compile(
    r"SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+) ([A-Za-z0-9_][A-Za-z0-9_.\-]*)(?::([0-9]{1,5}))?((?:;[^ \t\"]*)?)"
)


def parse_via(value: str) -> Via:
    """Parse one via-parm (an element of a Via header's comma list).

    Memoised up to MEMO_MAX characters (what comes back in every message of a call); a longer text,
    which a peer chooses, is parsed each time rather than kept."""
    if len(value) > MEMO_MAX:
        return _parse_via(value)
    via = _VIA_MEMO.get(value)
    if via is None:
        via = _parse_via(value)
        if len(_VIA_MEMO) >= MEMO_KEPT:
            _VIA_MEMO.clear()
        _VIA_MEMO[value] = via
    return via


def _parse_via(value: str) -> Via:
    """The parse behind :func:`parse_via`, memoised or not."""
    text = value.strip(" \t")
    fast = _VIA_FAST_RE.fullmatch(text)
    if fast is not None:
        transport, host, port_text, rest = fast.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or port <= 65535:
            return Via(transport=transport.upper(), host=host, port=port, params=parse_params(rest))
    return _parse_via_general(text)


#: Vias parsed, by text (see uri.MEMO_KEPT).
_VIA_MEMO: dict[str, Via] = {}


def _parse_via_general(text: str) -> Via:
    semi = text.find(";")
    head, rest = (text, "") if semi < 0 else (text[:semi], text[semi:])
    parts = head.split("/")
    if len(parts) != 3:
        raise _bad("Malformed Via sent-protocol")
    protocol = parts[0].strip(" \t")
    version = parts[1].strip(" \t")
    match = _TRANSPORT_SENT_BY_RE.fullmatch(parts[2])
    if match is None:
        raise _bad("Malformed Via sent-by")
    transport, sent_by = match.group(1), match.group(2)
    if not (_TOKEN_RE.fullmatch(protocol) and _TOKEN_RE.fullmatch(version) and _TOKEN_RE.fullmatch(transport)):
        raise _bad("Malformed Via sent-protocol")
    # COLON = SWS ":" SWS, so "host : 5060" is legal.
    sent_by = sent_by.strip(" \t")
    if " " in sent_by or "\t" in sent_by:
        sent_by = sent_by.replace(" ", "").replace("\t", "")
    host, port = split_hostport(sent_by)
    params = parse_params(rest)
    for name, pvalue in params:
        if pvalue is not None and pvalue.startswith('"') and name.lower() in ("branch", "received", "rport"):
            raise _bad("Malformed Via parameter")
    return Via(
        transport=transport.upper(),
        host=host,
        port=port,
        params=params,
        protocol=protocol.upper(),
        version=version,
    )


def parse_via_list(value: str) -> list[Via]:
    if _one_element(value):
        element = value.strip(" \t")
        if element:
            return [parse_via(element)]
    items = split_list(value)
    if any(not item for item in items):
        raise _bad("Empty Via element")
    return [parse_via(item) for item in items]


# --- CSeq ----------------------------------------------------------------------------------------------


class CSeq:
    """The CSeq header: immutable, compared and hashed by value (see :class:`Via` for why it is not a
    dataclass)."""

    __slots__ = ("method", "number")

    def __init__(self, number: int, method: str) -> None:
        self.number: Final = number
        self.method: Final = method

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CSeq) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.number, self.method) == (other.number, other.method)

    def __hash__(self) -> int:
        return hash((self.number, self.method))

    def __repr__(self) -> str:
        return f"CSeq(number={self.number!r}, method={self.method!r})"

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """Parse ``1*DIGIT LWS Method``; the number must be below 2**31 (RFC 3261 8.1.1.5).

    Memoised up to MEMO_MAX characters: "1 INVITE", "1 ACK", "2 BYE" come back call after call."""
    if len(value) > MEMO_MAX:
        return _parse_cseq(value)
    cseq = _CSEQ_MEMO.get(value)
    if cseq is None:
        cseq = _parse_cseq(value)
        if len(_CSEQ_MEMO) >= MEMO_KEPT:
            _CSEQ_MEMO.clear()
        _CSEQ_MEMO[value] = cseq
    return cseq


def _parse_cseq(value: str) -> CSeq:
    """The parse behind :func:`parse_cseq`, memoised or not."""
    match = _CSEQ_RE.fullmatch(value)
    if match is None:
        raise _bad("Malformed CSeq")
    digits, method = match.group(1), match.group(2)
    digits = digits.lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise _bad("CSeq number out of range")
    return CSeq(int(digits), method)


#: CSeqs parsed, by text (see uri.MEMO_KEPT).
_CSEQ_MEMO: dict[str, CSeq] = {}
