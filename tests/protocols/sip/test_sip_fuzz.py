"""Fuzzing the SIP parser: either a message or RemoteProtocolError, never anything else.

Properties, on arbitrary bytes and on mutations of the RFC 4475 vectors:

- ``parse_message`` returns a Request/Response or raises RemoteProtocolError; so do the checks and
  every accessor on what it returns.
- ``serialise(parse(x))`` parses again to an equal message (Content-Length is the one header
  serialisation may add, so it is compared after adding it to the original).
- ``StreamParser`` gives the same messages and errors whether fed whole, one byte at a time, or in
  random chunks.

Set ``AFGW_FUZZ_EXAMPLES`` for a longer run than the default 300 examples per property.
"""

from __future__ import annotations

import contextlib
import itertools
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocols.errors import RemoteProtocolError
from protocols.sip import (
    ParseLimits,
    Request,
    Response,
    StreamParser,
    parse_message,
    parse_uri,
    validate_request,
    validate_response,
)
from protocols.sip.headers import parse_name_addr, parse_via, split_list
from tests.conftest import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "sip/rfc4475"
CORPUS = [p.read_bytes() for p in sorted(VECTORS.glob("*.dat"))]

# A small message of our own so the mutation tests run even without the vectors.
SEED = (
    b"INVITE sip:+8613800138000@gw.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:+8613800138000@example.com>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1:5060;transport=udp>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)
SEEDS = [SEED, *CORPUS]

# AFGW_FUZZ_EXAMPLES=20000 for a longer run.
FUZZ = settings(
    max_examples=int(os.environ.get("AFGW_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INTERESTING = [
    b"\r\n",
    b"\r\n\r\n",
    b"\r\n ",
    b" ",
    b"\t",
    b";",
    b",",
    b'"',
    b"\\",
    b"<",
    b">",
    b"%",
    b"%0",
    b"%zz",
    b":",
    b"@",
    b"?",
    b"=",
    b"[",
    b"]",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"SIP/2.0",
    b"SIP/3.0",
    b"Content-Length: 99999999999999\r\n",
    b"l: -1\r\n",
    b"v: SIP/2.0/UDP a;branch=z9hG4bK1,\r\n",
    b"9999999999",
    b"z9hG4bK",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if not data:
            break
        pos = draw(st.integers(min_value=0, max_value=len(data) - 1))
        op = draw(st.sampled_from(["insert", "delete", "flip", "truncate", "duplicate"]))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(min_value=1, max_value=8))]
        elif op == "flip":
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        elif op == "truncate":
            del data[pos:]
        else:
            end = min(len(data), pos + draw(st.integers(min_value=1, max_value=40)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def exercise(message: Request | Response) -> None:
    """Touch everything a proxy reads; only RemoteProtocolError may come out."""
    for check in (
        lambda: validate_request(message) if isinstance(message, Request) else validate_response(message),
        lambda: message.call_id,
        lambda: message.cseq,
        lambda: message.vias,
        lambda: message.top_via,
        lambda: message.from_addr,
        lambda: message.to_addr,
        lambda: message.from_tag,
        lambda: message.to_tag,
        lambda: message.max_forwards,
        lambda: message.contacts,
        lambda: message.routes,
        lambda: message.record_routes,
        lambda: message.content_length,
    ):
        with contextlib.suppress(RemoteProtocolError):
            check()
    for name, _ in message.headers:
        with contextlib.suppress(RemoteProtocolError):
            message.headers.get_list(name)


def assert_round_trip(message: Request | Response) -> None:
    again = parse_message(message.serialise())
    message.headers.set("Content-Length", str(len(message.body)))
    assert again == message
    assert again.serialise() == message.serialise()


def parse_or_error(data: bytes) -> Request | Response | None:
    try:
        message = parse_message(data)
    except RemoteProtocolError as exc:
        answer = exc.answer
        assert answer in (None, 400, 505, 513)
        return None
    exercise(message)
    assert_round_trip(message)
    return message


@FUZZ
@given(st.binary(max_size=3000))
@example(b"")
@example(b"\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 0000000000000000000000000000001\r\n\r\nx")
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_error(data)


@FUZZ
@given(st.lists(st.sampled_from(INTERESTING) | st.binary(max_size=8), max_size=40))
def test_arbitrary_token_soup(parts: list[bytes]) -> None:
    parse_or_error(b"INVITE sip:a@b SIP/2.0\r\n" + b"".join(parts))


@FUZZ
@given(mutated())
def test_mutated_vectors(data: bytes) -> None:
    parse_or_error(data)


@pytest.mark.parametrize("data", SEEDS, ids=lambda d: d.split(b"\r\n", 1)[0][:30].decode("latin-1"))
def test_round_trip_of_every_vector(data: bytes) -> None:
    parse_or_error(data)


# --- stream framing ---------------------------------------------------------------------------------


def run_stream(chunks: list[bytes], limits: ParseLimits) -> tuple[list[object], int]:
    parser = StreamParser(limits)
    out: list[object] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        while True:
            try:
                message = parser.next_message()
            except RemoteProtocolError as exc:
                out.append(("error", exc.answer, exc.close))
                if exc.close:
                    return out, parser.keepalive_pings
                continue
            if message is None:
                break
            out.append(message)
    return out, parser.keepalive_pings


def with_length(data: bytes) -> bytes:
    """A seed reframed for a stream: Content-Length made to match (most vectors are UDP-only)."""
    try:
        message = parse_message(data)
    except RemoteProtocolError:
        return data
    return message.serialise()


LIMITS = st.sampled_from([ParseLimits(), ParseLimits(max_message_size=400, max_headers=8, max_line_length=120)])


@st.composite
def stream_bytes(draw: st.DrawFn) -> bytes:
    pieces: list[bytes] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["seed", "mutated", "ping", "junk"]))
        if kind == "seed":
            pieces.append(with_length(draw(st.sampled_from(SEEDS))))
        elif kind == "mutated":
            pieces.append(draw(mutated()))
        elif kind == "ping":
            pieces.append(b"\r\n\r\n")
        else:
            pieces.append(draw(st.binary(max_size=50)))
    return b"".join(pieces)


@FUZZ
@given(stream_bytes(), LIMITS, st.data())
def test_stream_whole_bytewise_and_chunked_agree(data: bytes, limits: ParseLimits, draw: st.DataObject) -> None:
    whole = run_stream([data], limits)
    bytewise = run_stream([data[i : i + 1] for i in range(len(data))], limits)
    cuts = sorted(draw.draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=10)))
    bounds = [0, *cuts, len(data)]
    chunked = run_stream([data[a:b] for a, b in itertools.pairwise(bounds)], limits)
    assert whole == bytewise == chunked
    for item in whole[0]:
        if isinstance(item, Request | Response):
            exercise(item)


def test_stream_of_every_seed_in_a_row_byte_by_byte() -> None:
    data = b"\r\n\r\n".join(with_length(seed) for seed in SEEDS)
    whole, pings = run_stream([data], ParseLimits())
    bytewise, pings_bytewise = run_stream([data[i : i + 1] for i in range(len(data))], ParseLimits())
    assert whole == bytewise
    assert pings == pings_bytewise
    assert sum(isinstance(m, Request | Response) for m in whole) >= 1


# --- the header grammar on its own --------------------------------------------------------------------

HEADER_TEXT = st.lists(
    st.sampled_from([*'ab:;,=<>"\\ @%0123456789[]?.zZ\t\x00é', "sip:", "tel:", "<sip:a@b>", "%41", "tag="]),
    max_size=30,
).map("".join)


@FUZZ
@given(HEADER_TEXT)
def test_header_value_parsers_raise_only_remote_errors(text: str) -> None:
    for parse in (parse_name_addr, parse_via, split_list, parse_uri):
        with contextlib.suppress(RemoteProtocolError):
            parse(text)


@FUZZ
@given(HEADER_TEXT)
def test_uri_round_trip(text: str) -> None:
    try:
        uri = parse_uri(text)
    except RemoteProtocolError:
        return
    assert parse_uri(str(uri)) == uri
    assert uri.matches(uri)


@FUZZ
@given(HEADER_TEXT)
def test_name_addr_round_trip(text: str) -> None:
    try:
        value = parse_name_addr(text)
    except RemoteProtocolError:
        return
    assert parse_name_addr(str(value)) == value
