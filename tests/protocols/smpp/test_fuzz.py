"""Fuzzing the SMPP core: whatever the peer sends, the codec and the session either understand it or
raise RemoteProtocolError, never anything else; what they understand re-encodes faithfully; what the
session answers is itself well-formed; and buffered input stays bounded.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import RemoteProtocolError
from protocols.smpp.codec import InvalidPdu, PduFramer, decode, encode
from protocols.smpp.constants import RESPONSE_BIT, CommandId
from protocols.smpp.pdu import BindTransceiver, Pdu, response_to
from protocols.smpp.session import (
    ConnectionClosed,
    ErrorAnswered,
    ResponseTimedOut,
    Role,
    SessionConfig,
    SessionInitTimedOut,
    SmppSession,
    State,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "smpp"


def _vectors() -> list[bytes]:
    out = []
    for name in ("spec.yaml", "trace_smpplib_smpp34.yaml"):
        with (VECTORS / name).open(encoding="utf-8") as f:
            data: dict[str, Any] = yaml.safe_load(f)
        out += [bytes.fromhex(v["hex"]) for v in data["vectors" if "vectors" in data else "pdus"]]
    return out


SEEDS = _vectors()
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_decode(data: bytes) -> Pdu | None:
    """decode() either returns a Pdu that survives encode/decode unchanged, or raises InvalidPdu."""
    try:
        pdu = decode(data)
    except InvalidPdu as exc:
        error: InvalidPdu | None = exc
    else:
        error = None
    if error is not None:
        assert isinstance(error, RemoteProtocolError)
        assert isinstance(error.answer, int)
        assert 0 <= error.answer <= 0xFFFFFFFF
        return None
    assert isinstance(pdu, Pdu)
    again = decode(encode(pdu))
    assert again == pdu
    return pdu


# --- strategies ---------------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, *, fix_length: bool) -> bytes:
    """A spec or trace PDU with bytes flipped, inserted and deleted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert" or not data:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[min(at, len(data) - 1)]
        elif op == "flip":
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        else:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
    if fix_length and len(data) >= 4:
        data[:4] = struct.pack(">I", len(data))
    return bytes(data)


@st.composite
def well_framed(draw: st.DrawFn) -> bytes:
    """A header that frames correctly for a known command, followed by arbitrary body octets."""
    command_id = draw(st.sampled_from(sorted(CommandId)))
    body = draw(st.binary(max_size=120))
    status = draw(st.sampled_from([0, 0, 8, 0x58, 0xFFFFFFFF]))
    seq = draw(st.integers(0, 0xFFFFFFFF))
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


# --- decode -------------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(well_framed())
def test_decode_well_framed_arbitrary_bodies(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(mutated(fix_length=False))
def test_decode_mutated_vectors(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(mutated(fix_length=True))
def test_decode_mutated_vectors_with_a_consistent_length(data: bytes) -> None:
    check_decode(data)


# --- the session --------------------------------------------------------------------------------------------


def bound_smsc(max_pdu_size: int) -> SmppSession:
    session = SmppSession(
        Role.SMSC,
        clock=lambda: 0.0,
        config=SessionConfig(max_pdu_size=max_pdu_size, inbound_window=4),
    )
    session.receive_data(encode(BindTransceiver(sequence_number=1, system_id="fuzz")))
    bind = session.next_event()
    assert isinstance(bind, BindTransceiver)
    session.send(response_to(bind))
    assert session.state is State.BOUND_TRX
    return session


EVENT_TYPES = (Pdu, ErrorAnswered, ResponseTimedOut, SessionInitTimedOut, ConnectionClosed)


def is_closed(session: SmppSession) -> bool:
    return session.state is State.CLOSED


def feed(session: SmppSession, chunks: list[bytes], *, answer: bool) -> None:
    """Feed chunks as the asyncio adapter would, checking the invariants after each one."""
    framer = PduFramer()  # re-frames what the session sends back
    max_pdu = session.config.max_pdu_size
    for chunk in chunks:
        if is_closed(session):
            break
        session.receive_data(chunk)
        assert session._framer.buffered <= max_pdu + len(chunk)
        try:
            while (event := session.next_event()) is not None:
                assert isinstance(event, EVENT_TYPES)
                if (
                    answer
                    and isinstance(event, Pdu)
                    and not event.command_id & RESPONSE_BIT
                    and event.command_id not in (CommandId.OUTBIND, CommandId.ALERT_NOTIFICATION)
                    and not is_closed(session)
                ):
                    session.send(response_to(event))
        except RemoteProtocolError as exc:
            closed_by: RemoteProtocolError | None = exc
        else:
            closed_by = None
        if closed_by is not None:
            assert closed_by.close
            assert is_closed(session)
        assert session._framer.buffered < max_pdu or is_closed(session)
        framer.feed(session.data_to_send())
        while (raw := framer.next_pdu()) is not None:
            answered = decode(raw)  # the session's own answers always decode
            assert answered.command_id & RESPONSE_BIT
    assert framer.buffered == 0  # and they are whole PDUs


@st.composite
def byte_stream(draw: st.DrawFn) -> bytes:
    """Mostly PDUs that frame (spec, mutated, random bodies), now and then raw garbage."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(SEEDS),
                mutated(fix_length=True),
                well_framed(),
                st.binary(max_size=24),
            ),
            max_size=8,
        )
    )
    return b"".join(parts)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@FUZZ
@given(byte_stream(), st.booleans())
def test_session_fed_whole(stream: bytes, answer: bool) -> None:
    feed(bound_smsc(512), [stream], answer=answer)


@FUZZ
@given(byte_stream(), st.lists(st.integers(0, 4096), max_size=12), st.booleans())
def test_session_fed_in_random_chunks(stream: bytes, cuts: list[int], answer: bool) -> None:
    feed(bound_smsc(512), chunked(stream, cuts), answer=answer)


@settings(max_examples=300, deadline=None)
@given(byte_stream(), st.booleans())
def test_session_fed_one_byte_at_a_time(stream: bytes, answer: bool) -> None:
    feed(bound_smsc(512), [stream[i : i + 1] for i in range(len(stream))], answer=answer)


@FUZZ
@given(byte_stream())
def test_session_gives_the_same_events_whole_and_byte_by_byte(stream: bytes) -> None:
    def run(chunks: list[bytes]) -> tuple[list[object], bytes, State]:
        session = bound_smsc(512)
        events: list[object] = []
        out = b""
        for chunk in chunks:
            session.receive_data(chunk)
            try:
                while (event := session.next_event()) is not None:
                    events.append(event)
            except RemoteProtocolError as exc:
                events.append(("closed", exc.answer))
                # The framer refuses a bad command_length as soon as its four octets arrive; the
                # sequence_number it echoes in the closing generic_nack is whatever octets 12..15 of
                # the garbage were by then (0 if not yet received), so only that field may differ.
                out += session.data_to_send()[:-4]
            out += session.data_to_send()
        return events, out, session.state

    whole = [stream] if stream else []  # b"" would mean end of stream
    assert run(whole) == run([stream[i : i + 1] for i in range(len(stream))])


@FUZZ
@given(st.binary(min_size=1, max_size=2048), st.integers(1, 64))
def test_garbage_never_grows_the_buffer_past_one_pdu(garbage: bytes, size: int) -> None:
    session = bound_smsc(64)
    for i in range(0, len(garbage), size):
        chunk = garbage[i : i + size]
        session.receive_data(chunk)
        assert session._framer.buffered <= 64 + len(chunk)
        try:
            while session.next_event() is not None:
                pass
        except RemoteProtocolError:
            assert session.state is State.CLOSED
            return
        assert session._framer.buffered < 64
