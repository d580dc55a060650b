"""SIP requests and responses with an ordered, case-insensitive multi-header container.

Header values are kept as the (unfolded) strings that arrived, in their original order; the
structured views (``cseq``, ``vias``, ``from_addr`` ...) are parsed on access. A malformed value
raises ``RemoteProtocolError``: with ``answer=400`` on a :class:`Request`, ``answer=None`` on a
:class:`Response` (a broken response is discarded, never answered).

Header names are stored in their canonical long form (``v`` becomes ``Via``); unknown names keep
the spelling they arrived with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NoReturn, cast

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip.headers import (
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    _one_element,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_via_list,
    split_list,
)
from protocols.sip.uri import SipUri

__all__ = ["Headers", "Message", "Request", "Response", "create_response", "reason_phrase"]


SIP_VERSION = "SIP/2.0"


#: Header names already mapped by _header_key: the same few are looked up in every message.
_HEADER_KEYS: dict[str, tuple[str, str]] = {}
_HEADER_KEYS_KEPT = 1024


def _header_key(name: str) -> tuple[str, str]:
    """``(lookup key, canonical name)`` for a header name; remembered, names repeat in every message
    (a plain dict, forgotten when full: a peer that sends ever new names only misses it)."""
    keys = _HEADER_KEYS.get(name)
    if keys is None:
        canonical = canonical_name(name)
        keys = (canonical.lower(), canonical)
        if len(_HEADER_KEYS) >= _HEADER_KEYS_KEPT:
            _HEADER_KEYS.clear()
        _HEADER_KEYS[name] = keys
    return keys


class Headers:
    """An ordered list of ``(name, value)`` header fields with case-insensitive name lookup.

    Compact and long forms are the same header (``Headers.get("f")`` finds ``From``).
    """

    __slots__ = ("_clean", "_index", "_items", "_version", "_views")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = [(*_header_key(name), value) for name, value in items]
        # True while no value holds a CR or LF: what the parser reads never does, and a value added
        # is looked at as it comes in, so that serialise need not scan the whole head for them.
        self._clean = not any(_breaks(value) for _, _, value in self._items)
        # Counts the changes, so that octets known to be what serialise writes for these headers
        # (Response.wire) can tell whether they still are.
        self._version = 0
        # The values by lookup key, built on the first read and dropped by every change: a proxy
        # reads a message's headers a dozen times for each time it changes them. Never changed in
        # place, so copies may share it. A header on one line (nearly all) has its value as it is,
        # one on several lines the list of them: no list to build, or for the collector to visit
        # in the messages the transactions keep, for each of a message's headers.
        self._index: dict[str, str | list[str]] | None = None
        # What Message's accessors parsed from these headers (see Message._remember), dropped by every
        # change too. Copies may share it: until one of them changes, what holds for one holds for
        # the other, and the one that changes lets go of it.
        self._views: dict[str, object] | None = None

    @staticmethod
    def of_items(items: list[tuple[str, str, str]], clean: bool = False) -> Headers:
        """Headers holding ``items`` as they are: ``(lookup key, canonical name, value)`` triples,
        as :func:`_header_key` gives the first two (the parser's way, without a second lookup).
        ``clean``: the caller has made sure that no value holds a CR or LF."""
        headers = Headers()
        headers._items = items
        headers._clean = clean or not any(_breaks(value) for _, _, value in items)
        return headers

    def _changed(self) -> None:
        self._index = None
        self._views = None
        self._version += 1

    def _values(self) -> dict[str, str | list[str]]:
        index = self._index
        if index is None:
            index = {}
            for k, _, value in self._items:
                held = index.get(k)
                if held is None:
                    index[k] = value
                elif isinstance(held, str):
                    index[k] = [held, value]
                else:
                    held.append(value)
            self._index = index
        return index

    # --- reading -------------------------------------------------------------------------------
    def _first(self, key: str) -> str | None:
        """The first value held under the lookup ``key`` (``"call-id"``): the accessors' way, with
        no name to map."""
        held = self._values().get(key)
        if held is None or isinstance(held, str):
            return held
        return held[0]

    def _all(self, key: str) -> list[str]:
        """Every value held under the lookup ``key``, in order."""
        held = self._values().get(key)
        if held is None:
            return []
        return [held] if isinstance(held, str) else list(held)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        held = self._values().get(_header_key(name)[0])
        if held is None:
            return default
        return held if isinstance(held, str) else held[0]

    def get_all(self, name: str) -> list[str]:
        """Every header line's value for ``name``, in order (comma lists are not split)."""
        held = self._values().get(_header_key(name)[0])
        if held is None:
            return []
        return [held] if isinstance(held, str) else list(held)

    def get_list(self, name: str) -> list[str]:
        """The elements of a list header across all its lines (split on commas if it is a list).

        Raises ``RemoteProtocolError(answer=400)`` when a value has an unterminated quoted string
        or unbalanced angle brackets.
        """
        canonical = canonical_name(name)
        values = self.get_all(canonical)
        if canonical not in LIST_HEADERS:
            return values
        out: list[str] = []
        for value in values:
            out.extend(split_list(value))
        return out

    def count(self, name: str) -> int:
        held = self._values().get(_header_key(name)[0])
        if held is None:
            return 0
        return 1 if isinstance(held, str) else len(held)

    def counts(self) -> dict[str, int]:
        """How many lines each header has, keyed by lower-cased long name (``"call-id"``)."""
        return {key: 1 if isinstance(held, str) else len(held) for key, held in self._values().items()}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return _header_key(name)[0] in self._values()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._items:
            yield name, value

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._items]!r})"

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        new._index = self._index
        new._views = self._views
        new._clean = self._clean
        return new

    def fields(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` header line, in order (what iterating gives, as a list)."""
        return [(name, value) for _, name, value in self._items]

    # --- writing -------------------------------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        key, canonical = _header_key(name)
        self._items.append((key, canonical, value))
        self._changed()
        self._admit(value)

    def insert(self, name: str, value: str) -> None:
        """Insert a header line at the top of its kind (before the first ``name``), e.g. a new Via.

        When there is no such header yet it goes first in the message.
        """
        key, canonical = _header_key(name)
        self._changed()
        self._admit(value)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items.insert(i, (key, canonical, value))
                return
        self._items.insert(0, (key, canonical, value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line with one line holding ``value`` (at the first one's place)."""
        key, canonical = _header_key(name)
        out: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] == key:
                if not placed:
                    out.append((key, canonical, value))
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append((key, canonical, value))
        self._items = out
        self._changed()
        self._admit(value)

    def _admit(self, value: str) -> None:
        """Note a value just written: one with a CR or LF makes serialise look at every value."""
        if _breaks(value):
            self._clean = False

    def remove(self, name: str) -> int:
        """Remove every ``name`` line; return how many were removed."""
        key = _header_key(name)[0]
        before = len(self._items)
        kept = [item for item in self._items if item[0] != key]
        if len(kept) == before:
            return 0  # nothing changed: what was looked up and parsed still holds
        self._items = kept
        self._changed()
        return before - len(kept)

    def remove_value(self, name: str, value: str) -> bool:
        """Remove the first ``name`` line whose whole value is ``value``; True when there was one."""
        key = _header_key(name)[0]
        for i, (k, _, v) in enumerate(self._items):
            if k == key and v == value:
                del self._items[i]
                self._changed()
                return True
        return False

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first *element* of ``name`` (the first comma-list element of its
        first line for list headers, e.g. the top Via or the first Route)."""
        key, canonical = _header_key(name)
        for i, (k, n, value) in enumerate(self._items):
            if k != key:
                continue
            self._changed()
            # Without a comma or quote, and with brackets that close, the line is one well-formed
            # element (the usual top Via or Route): splitting it would find nothing to split and
            # nothing to refuse (_one_element looks for three characters: compiled, cheaper than a
            # regex).
            if canonical in LIST_HEADERS and not _one_element(value):
                elements = split_list(value)
                if len(elements) > 1:
                    self._items[i] = (k, n, ", ".join(elements[1:]))
                    return elements[0]
            del self._items[i]
            return value
        return None


def _breaks(value: str) -> bool:
    return "\r" in value or "\n" in value


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name or not name:
        raise LocalProtocolError(f"Refusing to serialise header {name!r}: CR, LF or ':' in it")


#: Header names already checked by _check_header: the same few are sent in every message.
_SENDABLE_NAMES: set[str] = set()


class Message:
    """What requests and responses share: headers, body and the accessors for common headers."""

    __slots__ = ("body", "headers")

    headers: Headers
    body: bytes

    def _identity(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return self._identity() == other._identity()

    __hash__ = None  # type: ignore[assignment]

    # Requests answer malformed values with 400; responses are silently discarded.
    def _answer(self) -> int | None:
        return 400

    def _reraise(self, exc: RemoteProtocolError) -> NoReturn:
        """Raise a header parser's error with this message's answer. The accessors call the parsers
        directly (compiled, a parser passed as an argument is called through Python's protocol)."""
        answer = self._answer()
        if exc.answer == answer:
            raise exc
        raise RemoteProtocolError(str(exc), answer=answer) from exc

    def _remember(self, name: str, value: object) -> None:
        """Memoise ``value`` as what the accessor ``name`` gives, on the headers until they change
        (accessors are read again and again: the proxy asks a message its Call-ID, tags and top Via
        many times). Each accessor looks in the memo first and computes in line on a miss, with no
        closure to build; errors are not memoised, so the accessor raises again."""
        headers = self.headers
        views = headers._views
        if views is None:
            headers._views = {name: value}
        else:
            views[name] = value

    def _required(self, name: str, key: str) -> str:
        """The first value of the header ``name``, whose lookup key is ``key``; raises when absent."""
        value = self.headers._first(key)
        if value is None:
            raise RemoteProtocolError(f"Missing {name}", answer=self._answer())
        return value

    # --- accessors -------------------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        views = self.headers._views
        if views is not None and "call_id" in views:
            return cast(str, views["call_id"])
        call_id = self._call_id()
        self._remember("call_id", call_id)
        return call_id

    def _call_id(self) -> str:
        value = self._required("Call-ID", "call-id").strip(" \t")
        if not value or " " in value or "\t" in value:
            raise RemoteProtocolError("Malformed Call-ID", answer=self._answer())
        return value

    @property
    def cseq(self) -> CSeq:
        views = self.headers._views
        if views is not None and "cseq" in views:
            return cast(CSeq, views["cseq"])
        value = self._required("CSeq", "cseq")
        try:
            cseq = parse_cseq(value)
        except RemoteProtocolError as exc:
            self._reraise(exc)
        self._remember("cseq", cseq)
        return cseq

    @property
    def vias(self) -> list[Via]:
        out: list[Via] = []
        for value in self.headers._all("via"):
            try:
                out.extend(parse_via_list(value))
            except RemoteProtocolError as exc:
                self._reraise(exc)
        return out

    @property
    def top_via(self) -> Via:
        # Parses the whole first line, sharing the cache with ``vias``.
        views = self.headers._views
        if views is not None and "top_via" in views:
            return cast(Via, views["top_via"])
        value = self._required("Via", "via")
        try:
            via = parse_via_list(value)[0]
        except RemoteProtocolError as exc:
            self._reraise(exc)
        self._remember("top_via", via)
        return via

    def replace_top_via(self, via: Via) -> None:
        """Put ``via`` in the top Via's place (the first element of the first Via line).

        What was parsed from the other headers stays known, and ``via`` is :attr:`top_via` as it
        is, not parsed again from its text."""
        headers = self.headers
        views = headers._views
        items = headers._items
        for i, (key, name, value) in enumerate(items):
            if key == "via":
                if _one_element(value):
                    # The usual first Via line, one element: rewritten where it stands.
                    text = str(via)
                    items[i] = (key, name, text)
                    headers._admit(text)
                    headers._version += 1
                    index = headers._index
                    headers._index = {**index, "via": text} if index is not None and index.get("via") == value else None
                    self._keep_views(views, via)
                    return
                break
        headers.pop_first("Via")
        headers.insert("Via", str(via))
        self._keep_views(views, via)

    def push_via(self, via: Via) -> None:
        """Add ``via`` above the Vias (a proxy's own, RFC 3261 16.6 step 8); it is :attr:`top_via`
        as it is, not parsed again from its text, and what was parsed from the rest stays known."""
        headers = self.headers
        views = headers._views
        headers.insert("Via", str(via))
        self._keep_views(views, via)

    def _keep_views(self, views: dict[str, object] | None, via: Via) -> None:
        # Of the accessors memoised by _remember, only top_via reads the Via header. A new dict: the
        # old one may be shared with a copy of the headers.
        kept = dict(views) if views else {}
        kept["top_via"] = via  # in place of the old one, if held
        self.headers._views = kept

    @property
    def from_addr(self) -> NameAddr:
        views = self.headers._views
        if views is not None and "from_addr" in views:
            return cast(NameAddr, views["from_addr"])
        value = self._required("From", "from")
        try:
            addr = parse_name_addr(value)
        except RemoteProtocolError as exc:
            self._reraise(exc)
        self._remember("from_addr", addr)
        return addr

    @property
    def to_addr(self) -> NameAddr:
        views = self.headers._views
        if views is not None and "to_addr" in views:
            return cast(NameAddr, views["to_addr"])
        value = self._required("To", "to")
        try:
            addr = parse_name_addr(value)
        except RemoteProtocolError as exc:
            self._reraise(exc)
        self._remember("to_addr", addr)
        return addr

    @property
    def from_tag(self) -> str | None:
        return self.from_addr.tag

    @property
    def to_tag(self) -> str | None:
        return self.to_addr.tag

    @property
    def max_forwards(self) -> int | None:
        """The Max-Forwards value (0..255), None when absent."""
        views = self.headers._views
        if views is not None and "max_forwards" in views:
            return cast("int | None", views["max_forwards"])
        value = self._max_forwards()
        self._remember("max_forwards", value)
        return value

    def _max_forwards(self) -> int | None:
        value = self.headers._first("max-forwards")
        if value is None:
            return None
        value = value.strip(" \t")
        if not value.isdigit() or not value.isascii() or len(value.lstrip("0")) > 3:
            raise RemoteProtocolError("Malformed Max-Forwards", answer=self._answer())
        number = int(value)
        if number > 255:
            raise RemoteProtocolError("Max-Forwards out of range", answer=self._answer())
        return number

    @property
    def contact_is_wildcard(self) -> bool:
        """True for ``Contact: *`` (REGISTER removing all bindings)."""
        values = self.headers._all("contact")
        return len(values) == 1 and values[0].strip(" \t") == "*"

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact element; empty for ``Contact: *`` (see :attr:`contact_is_wildcard`)."""
        if self.contact_is_wildcard:
            return []
        out: list[NameAddr] = []
        for value in self.headers._all("contact"):
            try:
                out.extend(parse_name_addr_list(value))
            except RemoteProtocolError as exc:
                self._reraise(exc)
        return out

    def _name_addr_list(self, name: str) -> list[NameAddr]:
        out: list[NameAddr] = []
        for value in self.headers.get_all(name):
            try:
                out.extend(parse_name_addr_list(value))
            except RemoteProtocolError as exc:
                self._reraise(exc)
        return out

    @property
    def routes(self) -> list[NameAddr]:
        return self._name_addr_list("Route")

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._name_addr_list("Record-Route")

    @property
    def content_length(self) -> int | None:
        value = self.headers._first("content-length")
        if value is None:
            return None
        value = value.strip(" \t")
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise RemoteProtocolError("Malformed Content-Length", answer=self._answer())
        return int(value)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    # --- serialisation ---------------------------------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def _wire_now(self) -> bytes | None:
        """Octets known to be what serialise writes for the message as it is (Response.wire)."""
        return None

    def serialise(self) -> bytes:
        """The message as bytes. Content-Length is set to the body's length (added if missing)."""
        wire = self._wire_now()
        if wire is not None:
            return wire
        length = str(len(self.body))
        headers = self.headers
        # The usual message, already framed right (one Content-Length, the body's): names checked
        # once each, values all at once (no CR or LF but the line ends), then the head is sent as
        # it is joined. The framing is checked on the way, not through the lookup index, which a
        # message changed for forwarding would have to build again for it.
        lines = [self.start_line()]
        sendable = _SENDABLE_NAMES
        lengths = 0
        for key, name, value in headers._items:
            if key == "content-length":
                lengths += 1 if value == length else 2
            if name not in sendable:
                _check_header(name, "")
                if len(sendable) < 4096:
                    sendable.add(name)
            lines.append(f"{name}: {value}")
        if lengths == 0:
            # Missing (the answers we build ourselves): written last, as the framing fix would.
            lines.append(f"Content-Length: {length}")
        elif lengths != 1:
            return self._serialise_fixing_length(length)
        lines.append("")
        lines.append("")
        text = "\r\n".join(lines)
        if not headers._clean:
            breaks = len(lines) - 1
            if text.count("\r") != breaks or text.count("\n") != breaks:
                for name, value in headers:
                    _check_header(name, value)
        return self._encode(text)

    def _serialise_fixing_length(self, length: str) -> bytes:
        lines = [self.start_line()]
        seen_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if seen_length:
                    continue
                seen_length = True
                value = length
            _check_header(name, value)
            lines.append(f"{name}: {value}")
        if not seen_length:
            lines.append(f"Content-Length: {length}")
        lines.append("")
        lines.append("")
        return self._encode("\r\n".join(lines))

    def _encode(self, head: str) -> bytes:
        try:
            return head.encode("utf-8", "surrogateescape") + self.body
        except UnicodeEncodeError as exc:
            raise LocalProtocolError("Header text cannot be encoded as UTF-8") from exc

    def __bytes__(self) -> bytes:
        # A method rather than ``__bytes__ = serialise``: mypyc compiles an alias of a method in a
        # class body into a lookup that fails when the class is built.
        return self.serialise()


class Request(Message):
    """A SIP request. ``body`` is bytes; Content-Length is recomputed on :meth:`serialise`."""

    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: SipUri, headers: Headers | None = None, body: bytes = b"") -> None:
        self.method = method
        self.uri = uri
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def _identity(self) -> tuple[object, ...]:
        return (self.method, self.uri, self.headers, self.body)

    def start_line(self) -> str:
        if not self.method or " " in self.method or "\r" in self.method or "\n" in self.method:
            raise LocalProtocolError(f"Invalid method {self.method!r}")
        uri = str(self.uri)
        if " " in uri or "\r" in uri or "\n" in uri:
            raise LocalProtocolError(f"Invalid Request-URI {uri!r}")
        return f"{self.method} {uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {str(self.uri)!r}, {self.headers!r}, body={len(self.body)} bytes)"


class Response(Message):
    """A SIP response; ``reason`` defaults to the RFC's phrase for ``status``.

    A response received exactly as serialise would write it (see :func:`parse_message`) keeps the
    octets it came in, and so does the copy :meth:`without_top_via` makes of it for forwarding:
    serialise then gives those octets back rather than write the message again, for as long as the
    status, reason, headers and body are the ones they were written from.
    """

    __slots__ = ("_wire", "_wire_of", "reason", "status")

    def __init__(
        self, status: int, reason: str | None = None, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._wire: bytes | None = None
        self._wire_of: tuple[int, str, Headers, int, bytes] | None = None

    def _keep_wire(self, wire: bytes) -> None:
        """Note that ``wire`` is what serialise writes for the message as it is now."""
        headers = self.headers
        self._wire = wire
        self._wire_of = (self.status, self.reason, headers, headers._version, self.body)

    @property
    def wire(self) -> bytes | None:
        """The octets this response was received as or spliced from, while serialise would write
        just those; None otherwise."""
        wire = self._wire
        held = self._wire_of
        if wire is None or held is None:
            return None
        status, reason, headers, version, body = held
        if (
            headers is self.headers
            and version == headers._version
            and body is self.body
            and status == self.status
            and reason == self.reason
        ):
            return wire
        self._wire = self._wire_of = None  # changed since: written afresh from now on
        return None

    def without_top_via(self) -> Response:
        """A copy without the top Via, as a proxy forwards it upstream (RFC 3261 16.7 step 3).

        When this response is held as received and its top Via is a line of its own, the copy's
        octets are these without that line: nothing else differs in what serialise would write."""
        headers = self.headers.copy()
        popped = headers.pop_first("Via")
        out = Response(self.status, self.reason, headers, self.body)
        wire = self.wire
        if wire is not None and popped is not None:
            start = wire.find(b"\r\nVia: ")
            end = wire.find(b"\r\n", start + 2)
            # The first Via line, when it held only the popped element (otherwise pop_first wrote
            # the rest of the line back, and the copy is serialised afresh).
            if start >= 0 and wire[start + 7 : end] == popped.encode("utf-8", "surrogateescape"):
                out._keep_wire(wire[:start] + wire[end:])
        return out

    def _identity(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.headers, self.body)

    def _answer(self) -> int | None:
        return None

    def _wire_now(self) -> bytes | None:
        return self.wire

    @property
    def is_provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    def start_line(self) -> str:
        if not 100 <= self.status <= 699:
            raise LocalProtocolError(f"Invalid status code {self.status}")
        if "\r" in self.reason or "\n" in self.reason:
            raise LocalProtocolError("CR or LF in reason phrase")
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.reason!r}, {self.headers!r}, body={len(self.body)} bytes)"


_REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    436: "Bad Identity Info",
    437: "Unsupported Credential",
    438: "Invalid Identity Header",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}


def reason_phrase(status: int) -> str:
    """The RFC's reason phrase for ``status`` (a generic one for unknown codes)."""
    return _REASONS.get(status, _REASONS.get(status - status % 100, "Unknown"))


def create_response(
    request: Request | Headers, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` (RFC 3261 8.2.6.2): Via, From, To, Call-ID and CSeq copied.

    ``request`` may also be the headers of a request that failed to parse
    (``SipParseError.headers``), to answer it with a 400 or 505. ``to_tag`` is added to To unless
    To already has a tag.
    """
    source = request.headers if isinstance(request, Request) else request
    headers = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in source.get_all(name):
            if name == "To" and to_tag is not None and not _has_tag(value):
                value = f"{value};tag={to_tag}"
            headers.add(name, value)
    return Response(status, reason, headers)


def _has_tag(to_value: str) -> bool:
    """Whether a To value carries a tag parameter (textual guess when the value is malformed)."""
    try:
        return parse_name_addr(to_value).tag is not None
    except RemoteProtocolError:
        return ";tag=" in to_value.lower().replace(" ", "")
