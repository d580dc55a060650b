"""Turning bytes into SIP messages: UDP datagrams, TCP/TLS streams, and the checks before processing.

``parse_message`` reads one datagram (RFC 3261 18.3: extra octets after Content-Length are
discarded, a missing Content-Length means "to the end of the datagram"). ``StreamParser`` frames
messages on a stream by Content-Length, which is mandatory there, and skips the CRLF keep-alives of
RFC 5626. Both check the start line and the header-line syntax; the grammar of individual header
values is checked by :func:`validate_request` / :func:`validate_response` (and on access).

Every problem with the input raises :class:`SipParseError`, a ``RemoteProtocolError`` whose
``answer`` is the status code to send back (400, 505, 513, ...) or None when the message must be
silently discarded (anything wrong with a response). ``close`` is set when a stream can no longer be
framed and must be closed. No other exception type escapes.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from protocols.errors import RemoteProtocolError
from protocols.sip.message import Headers, Message, Request, Response, _header_key
from protocols.sip.uri import parse_uri

__all__ = [
    "ParseLimits",
    "SipParseError",
    "StreamParser",
    "is_keepalive",
    "parse_message",
    "unsupported_extensions",
    "validate_request",
    "validate_response",
]

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)

DEFAULT_SCHEMES = frozenset({"sip", "sips", "tel"})


class SipParseError(RemoteProtocolError):
    """A message could not be parsed.

    ``headers`` holds the header fields read before the problem was found (None if it got no
    further than the framing), so that a 400/505 can still be built with the request's Via, From,
    To, Call-ID and CSeq. ``is_request`` tells whether the broken message was a request.
    """

    def __init__(
        self,
        message: str,
        *,
        answer: int | None,
        close: bool = False,
        headers: Headers | None = None,
        is_request: bool = True,
    ) -> None:
        super().__init__(message, answer=answer if is_request else None, close=close)
        self.headers = headers
        self.is_request = is_request


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds on what a peer may make us buffer and parse."""

    max_message_size: int = 64 * 1024
    max_headers: int = 256
    max_line_length: int = 8 * 1024


DEFAULT_LIMITS = ParseLimits()


def is_keepalive(data: bytes) -> bool:
    """True for a datagram made only of CRLFs (RFC 5626 keep-alive; not a message)."""
    return not data.strip(b"\r\n")


# --- head parsing (shared by both framings) -------------------------------------------------------


class _Head:
    """A start line and the header fields, before the start line has been interpreted."""

    __slots__ = ("exact", "headers", "is_request", "start")

    def __init__(self, start: str, headers: Headers, is_request: bool) -> None:
        self.start = start
        self.headers = headers
        self.is_request = is_request
        #: Every header line is written as serialise writes it: ``Name: value``, the canonical name,
        #: one space, no blanks at the end (looked at for responses only; see parse_message).
        self.exact = False


def _looks_like_response(data: bytes | bytearray) -> bool:
    if data.startswith(b"SIP/"):
        return True
    # A request's method seldom begins with an S: no copy of its first octets to upper-case then.
    return data[:1] in (b"S", b"s") and data[:4].upper() == b"SIP/"


#: Header names already seen to be tokens (as written before the colon), with their lookup key and
#: canonical name: the same few dozen arrive in every message.
_GOOD_NAMES: dict[str, tuple[str, str]] = {}
#: Only short names are remembered: a peer chooses them, and 4,096 long ones would hold megabytes.
_MEMO_MAX = 64


def _read_head(head: bytes | bytearray, limits: ParseLimits) -> _Head:
    """Split the head (without the blank line) into a start line and header fields.

    Raises with ``close=True``: after a failure here the framing of a stream cannot be trusted.
    """
    is_request = not _looks_like_response(head)
    text = bytes(head).decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    # The usual head, checked once as a whole rather than line by line: no line can be too long, no
    # CR or LF outside a CRLF (none left once the lines are joined again: a search for one character
    # costs less than counting them), no more lines than fields allowed; a folded line is found as
    # its name is looked at. Anything else takes the line-by-line path, which says what is wrong.
    if len(text) <= limits.max_line_length and len(lines) - 1 <= limits.max_headers:
        joined = "".join(lines)
        if "\r" not in joined and "\n" not in joined:
            return _read_fields(lines, limits, is_request)
    return _read_lines(lines, limits, is_request)


def _read_fields(lines: list[str], limits: ParseLimits, is_request: bool) -> _Head:
    """_read_head's usual case: lines free of CR and LF, none too long, not too many of them."""
    items: list[tuple[str, str, str]] = []
    good = _GOOD_NAMES
    exact = not is_request
    for line in lines[1:]:
        # Remembered as it precedes the colon, blanks included: "Via " is Via.
        name, colon, value = line.partition(":")
        keys = good.get(name)
        if keys is None or not colon:
            first = line[:1]
            if first == " " or first == "\t":
                # Folding (a name held never begins with a blank): the general path joins it.
                return _read_lines(lines, limits, is_request)
            token = name.rstrip(" \t")
            if not colon or not token or not _TOKEN_RE.fullmatch(token):
                raise SipParseError("Malformed header line", answer=400, close=True, is_request=is_request)
            keys = _header_key(token)
            if len(good) < 4096 and len(name) <= _MEMO_MAX:
                good[name] = keys
        stripped = value.strip(" \t")
        # "Name: value" exactly when the name is the canonical one and one space is all the strip took.
        if exact and (name != keys[1] or len(value) != len(stripped) + 1 or not value.startswith(" ")):
            exact = False
        items.append((keys[0], keys[1], stripped))
    head = _Head(lines[0], Headers.of_items(items, clean=True), is_request)  # no CR or LF: looked for
    head.exact = exact
    return head


def _read_lines(lines: list[str], limits: ParseLimits, is_request: bool) -> _Head:
    start = lines[0]
    max_line = limits.max_line_length
    if len(start) > max_line:
        raise SipParseError("Start line too long", answer=400, close=True, is_request=is_request)
    fields: list[tuple[str, str]] = []
    if "\r" in start or "\n" in start:
        raise SipParseError("Bare CR or LF in start line", answer=400, close=True, is_request=is_request)
    for line in lines[1:]:
        if len(line) > max_line:
            raise SipParseError("Header line too long", answer=400, close=True, is_request=is_request)
        if "\r" in line or "\n" in line:
            raise SipParseError("Bare CR or LF in header", answer=400, close=True, is_request=is_request)
        if line[:1] in (" ", "\t"):
            # Folding (RFC 3261 7.3.1): a continuation line, joined with a single SP.
            if not fields:
                raise SipParseError(
                    "Continuation line before any header", answer=400, close=True, is_request=is_request
                )
            name, value = fields[-1]
            cont = line.strip(" \t")
            value = f"{value} {cont}" if value and cont else value + cont
            if len(value) > max_line:
                raise SipParseError("Header too long", answer=400, close=True, is_request=is_request)
            fields[-1] = (name, value)
            continue
        colon = line.find(":")
        name = line[:colon].rstrip(" \t") if colon > 0 else ""
        if not name or not _TOKEN_RE.fullmatch(name):
            raise SipParseError("Malformed header line", answer=400, close=True, is_request=is_request)
        fields.append((name, line[colon + 1 :].strip(" \t")))
        if len(fields) > limits.max_headers:
            raise SipParseError("Too many header fields", answer=400, close=True, is_request=is_request)
    return _Head(start, Headers(fields), is_request)


def _content_length(head: _Head) -> int | None:
    values = head.headers._all("content-length")
    if not values:
        return None
    if len(values) > 1:
        # RFC 4475 3.3.9: no way to know which one frames the message.
        raise SipParseError(
            "Multiple Content-Length values",
            answer=400,
            close=True,
            headers=head.headers,
            is_request=head.is_request,
        )
    value = values[0]
    if not (value.isdigit() and value.isascii()):  # 1*DIGIT, without a regex
        raise SipParseError(
            "Malformed Content-Length",
            answer=400,
            close=True,
            headers=head.headers,
            is_request=head.is_request,
        )
    if len(value) > 10:
        return 1 << 40  # larger than any limit; the caller reports 513
    return int(value)


#: Methods already seen to be tokens: the same few start every request (a regex each time cost more).
_GOOD_METHODS: set[str] = set()


def _good_method(method: str) -> bool:
    """Whether ``method`` is a token; remembered when it is (a few dozen at most are kept)."""
    if _TOKEN_RE.fullmatch(method) is None:
        return False
    if len(_GOOD_METHODS) < 64 and len(method) <= 32:
        _GOOD_METHODS.add(method)
    return True


def _build(head: _Head, body: bytes) -> Request | Response:
    """Interpret the start line. Errors here leave the stream framing intact (close=False)."""
    start = head.start
    if head.is_request:
        parts = start.split(" ")
        if len(parts) != 3:
            if len(parts) > 3 and _VERSION_RE.fullmatch(parts[-1]) and parts[-1].upper() != "SIP/2.0":
                raise SipParseError("Version Not Supported", answer=505, headers=head.headers)
            raise SipParseError("Malformed Request-Line", answer=400, headers=head.headers)
        method, raw_uri, version = parts
        if method not in _GOOD_METHODS and not _good_method(method):
            raise SipParseError("Malformed method", answer=400, headers=head.headers)
        if version.upper() != "SIP/2.0":
            if _VERSION_RE.fullmatch(version):
                raise SipParseError("Version Not Supported", answer=505, headers=head.headers)
            raise SipParseError("Malformed SIP-Version", answer=400, headers=head.headers)
        try:
            uri = parse_uri(raw_uri)
        except RemoteProtocolError as exc:
            raise SipParseError(f"Malformed Request-URI: {exc}", answer=400, headers=head.headers) from exc
        return Request(method, uri, head.headers, body)
    version, sp1, rest = start.partition(" ")
    code, sp2, reason = rest.partition(" ")
    # 3DIGIT, without a regex (isdigit alone would let other scripts' digits through).
    if not sp1 or len(code) != 3 or not (code.isdigit() and code.isascii()) or version.upper() != "SIP/2.0":
        raise SipParseError("Malformed Status-Line", answer=None, headers=head.headers, is_request=False)
    status = int(code)
    if not 100 <= status <= 699:
        raise SipParseError("Status code out of range", answer=None, headers=head.headers, is_request=False)
    del sp2
    return Response(status, reason, head.headers, body)


# --- datagrams ------------------------------------------------------------------------------------


def parse_message(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one UDP datagram into a :class:`Request` or :class:`Response`.

    Leading CRLFs are skipped; octets beyond Content-Length are discarded (RFC 3261 18.3); without
    Content-Length the body runs to the end of the datagram.
    """
    data = bytes(data)
    is_request = not _looks_like_response(data.lstrip(b"\r\n"))
    if len(data) > limits.max_message_size:
        raise SipParseError("Message Too Large", answer=513, is_request=is_request)
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    if start == len(data):
        raise SipParseError("Empty datagram", answer=None, is_request=is_request)
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("No end of header section", answer=400, is_request=is_request)
    head = _read_head(data[start:end], limits)
    body_start = end + 4
    length = _content_length(head)
    if length is None:
        body = data[body_start:]
    else:
        if body_start + length > len(data):
            raise SipParseError(
                "Content-Length larger than the message",
                answer=400,
                headers=head.headers,
                is_request=head.is_request,
            )
        body = data[body_start : body_start + length]
    message = _build(head, body)
    if head.exact and start == 0 and length is not None and body_start + length == len(data):
        assert isinstance(message, Response)  # only a response's lines are looked at
        _keep_if_exact(message, head.start, data)
    return message


def _keep_if_exact(response: Response, start_line: str, data: bytes) -> None:
    """Let ``response`` keep ``data`` as its octets when they are what serialise would write: the
    header lines were (``_Head.exact``), nothing comes before the start line or after the body, and
    here the start line and the one Content-Length are written as serialise writes them."""
    if start_line == response.start_line() and response.headers.get("Content-Length") == str(len(response.body)):
        response._keep_wire(data)


# --- streams --------------------------------------------------------------------------------------


class StreamParser:
    """Frames SIP messages on a stream transport (TCP, TLS).

    ``receive_data(bytes)`` appends; ``next_message()`` returns the next complete message or None
    when more data is needed. A ``SipParseError`` with ``close=False`` consumed the broken message
    (answer it and keep reading); with ``close=True`` the stream is out of sync: answer if you can,
    then close. After such an error every further ``next_message()`` raises it again.

    ``keepalive_pings`` counts double-CRLF pings (RFC 5626 3.5.1) seen between messages; answer
    each with a single CRLF pong.
    """

    def __init__(self, limits: ParseLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._scan_from = 0
        self._crlf_run = 0
        self._head: _Head | None = None
        self._head_len = 0
        self._body_len = 0
        self._fatal: SipParseError | None = None
        self.keepalive_pings = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buffer)

    @property
    def partial(self) -> bool:
        """A message has begun and is not complete (CRLFs between messages do not count).

        Meaningful after ``next_message()`` returned None, which has consumed the CRLFs before it."""
        return self._fatal is None and (
            self._head is not None or len(self._buffer) > 2 or len(self._buffer.lstrip(b"\r\n")) > 0
        )

    def receive_data(self, data: bytes) -> None:
        if self._fatal is None:  # once out of sync, buffering more would only waste memory
            self._buffer += data

    def next_message(self) -> Request | Response | None:
        if self._fatal is not None:
            raise self._fatal
        try:
            return self._next()
        except SipParseError as exc:
            if exc.close:
                self._fatal = exc
            raise

    def _next(self) -> Request | Response | None:
        buf = self._buffer
        limits = self._limits
        if self._head is None:
            # Skip CRLFs between messages, counting "\r\n\r\n" pings.
            skip = 0
            while buf.startswith(b"\r\n", skip):
                skip += 2
                self._crlf_run += 1
                if self._crlf_run == 2:
                    self.keepalive_pings += 1
                    self._crlf_run = 0
            if skip:
                del buf[:skip]
                self._scan_from = 0
            if not buf or buf == b"\r":
                return None
            self._crlf_run = 0
            end = buf.find(b"\r\n\r\n", self._scan_from)
            if end < 0:
                if len(buf) > limits.max_message_size:
                    raise SipParseError(
                        "Message Too Large", answer=513, close=True, is_request=not _looks_like_response(buf)
                    )
                self._scan_from = max(0, len(buf) - 3)
                return None
            self._scan_from = 0
            if end + 4 > limits.max_message_size:
                raise SipParseError(
                    "Message Too Large", answer=513, close=True, is_request=not _looks_like_response(buf)
                )
            head = _read_head(buf[:end], limits)
            length = _content_length(head)
            if length is None:
                raise SipParseError(
                    "Missing Content-Length on a stream transport",
                    answer=400,
                    close=True,
                    headers=head.headers,
                    is_request=head.is_request,
                )
            if end + 4 + length > limits.max_message_size:
                raise SipParseError(
                    "Message Too Large",
                    answer=513,
                    close=True,
                    headers=head.headers,
                    is_request=head.is_request,
                )
            self._head, self._head_len, self._body_len = head, end + 4, length
        total = self._head_len + self._body_len
        if len(buf) < total:
            return None
        head = self._head
        body = bytes(buf[self._head_len : total])
        del buf[:total]
        self._head = None
        return _build(head, body)


# --- checks before processing (RFC 3261 8.2 and 16.3) -------------------------------------------------

_SINGLE_VALUED = ("To", "From", "Call-ID", "CSeq", "Max-Forwards")
_SINGLE_VALUED_KEYS = tuple((name, name.lower()) for name in _SINGLE_VALUED)


def unsupported_extensions(request: Request, supported: Collection[str], header: str = "Proxy-Require") -> list[str]:
    """Option tags of ``header`` (Proxy-Require or Require) that are not in ``supported``."""
    known = {tag.lower() for tag in supported}
    tags: list[str] = []
    for element in request.headers.get_list(header):
        tag = element.strip(" \t")
        if tag and tag.lower() not in known:
            tags.append(tag)
    return tags


def _check_common(message: Message, *, all_vias: bool = True) -> None:
    """The syntax of the headers every message must carry; raises via the accessors."""
    answer = 400 if isinstance(message, Request) else None
    index = message.headers._values()
    for name, key in _SINGLE_VALUED_KEYS:
        if isinstance(index.get(key), list):  # a list: more than one line
            raise RemoteProtocolError(f"Multiple {name} header fields", answer=answer)
    # Parsing is the check: each accessor raises RemoteProtocolError with the right answer.
    _ = (message.to_addr, message.from_addr, message.call_id, message.cseq)
    if all_vias:
        vias = message.vias
        if not vias:
            raise RemoteProtocolError("Missing Via", answer=answer)
        message._remember("top_via", vias[0])  # asked next (the received stamp): not parsed again
    else:
        _ = message.top_via  # raises "Missing Via" itself
    length = message.content_length
    if length is not None and length != len(message.body):
        raise RemoteProtocolError("Content-Length does not match the body", answer=answer)


def validate_request(
    request: Request,
    *,
    forwarding: bool = True,
    supported: Collection[str] = (),
    schemes: Collection[str] = DEFAULT_SCHEMES,
) -> None:
    """Check what RFC 3261 8.2 and 16.3 require before a request is processed.

    Raises ``RemoteProtocolError`` whose ``answer`` is the status to send and whose message is a
    short reason phrase:

    - 400: a missing or malformed To, From, Call-ID, CSeq or Via; more than one To, From, Call-ID,
      CSeq or Max-Forwards; a CSeq method that differs from the request method; a Content-Length
      that does not match the body; a malformed Max-Forwards or Contact; a Request-URI carrying
      URI headers (RFC 3261 19.1.1; RFC 4475 3.1.2.11).
    - 416: a Request-URI scheme not in ``schemes`` (16.3 step 2).
    - 483: Max-Forwards is 0 and ``forwarding`` is true (16.3 step 3). A proxy that wants to answer
      OPTIONS itself in that case must do so before calling this.
    - 420: ``forwarding`` is true and Proxy-Require names an option tag not in ``supported``
      (16.3 step 5); use :func:`unsupported_extensions` for the Unsupported header.

    A missing Max-Forwards is accepted: a proxy adds ``Max-Forwards: 70`` when forwarding.
    """
    _check_common(request)
    cseq = request.cseq
    if cseq.method != request.method:
        raise RemoteProtocolError("CSeq method does not match the request method", answer=400)
    if request.uri.headers:
        raise RemoteProtocolError("Request-URI must not contain headers", answer=400)
    if request.uri.scheme not in schemes:
        raise RemoteProtocolError("Unsupported URI Scheme", answer=416)
    max_forwards = request.max_forwards
    _ = request.contacts
    if forwarding:
        if max_forwards == 0:
            raise RemoteProtocolError("Too Many Hops", answer=483)
        if unsupported_extensions(request, supported):
            raise RemoteProtocolError("Bad Extension", answer=420)


def validate_response(response: Response, *, all_vias: bool = True) -> None:
    """Check a response before it is matched to a transaction; raises with ``answer=None``.

    ``all_vias=False`` checks only the top Via: a proxy removes that one and passes the rest on
    untouched, so it need not parse them (they were checked on the request's way in).
    """
    _check_common(response, all_vias=all_vias)
