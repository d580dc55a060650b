"""A hostile peer against the sans-IO session: sequence numbers, exclusive text fields, unbind order."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import encode
from protocols.smpp.constants import CommandId, CommandStatus, Tag
from protocols.smpp.pdu import (
    DestAddress,
    GenericNack,
    Pdu,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    UnbindResp,
    response_to,
)
from protocols.smpp.session import ErrorAnswered, Event, Role, SessionConfig, State
from tests.protocols.smpp.test_session import FakeClock, answer_octets, drain, received, session_in

C = CommandId
S = CommandStatus
TRX, OPEN = State.BOUND_TRX, State.OPEN

#: Requests an ESME may send while bound, with a response of their own.
BOUND_REQUESTS = [C.SUBMIT_SM, C.DATA_SM, C.QUERY_SM, C.CANCEL_SM, C.SUBMIT_MULTI]


def with_seq(data: bytes, seq: int) -> bytes:
    return data[:12] + struct.pack(">I", seq) + data[16:]


@given(
    seq=st.one_of(st.just(0), st.integers(0x80000000, 0xFFFFFFFF)),
    command_id=st.sampled_from([*BOUND_REQUESTS, C.ENQUIRE_LINK, C.UNBIND]),
)
def test_a_sequence_number_out_of_range_is_nacked_and_never_delivered(seq: int, command_id: int) -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(with_seq(received(command_id, 1), seq))
    (event,) = drain(session)
    assert isinstance(event, ErrorAnswered)
    assert session.data_to_send() == encode(GenericNack(sequence_number=seq, command_status=S.ESME_RUNKNOWNERR))
    assert session.state is TRX
    assert session.awaiting_our_response == 0


@pytest.mark.parametrize("seq", [0, 0x80000000, 0xFFFFFFFF])
@pytest.mark.parametrize("command_id", [C.BIND_TRANSCEIVER, C.BIND_TRANSMITTER, C.ENQUIRE_LINK])
def test_before_bind_too(seq: int, command_id: int) -> None:
    session = session_in(Role.SMSC, OPEN)
    session.receive_data(with_seq(received(command_id, 1), seq))
    assert [type(e) for e in drain(session)] == [ErrorAnswered]
    assert session.data_to_send() == encode(GenericNack(sequence_number=seq, command_status=S.ESME_RUNKNOWNERR))
    assert session.state is OPEN


@given(
    first=st.sampled_from(BOUND_REQUESTS),
    second=st.sampled_from(BOUND_REQUESTS),
    seq=st.integers(1, 0x7FFFFFFF),
    repeats=st.integers(1, 30),
)
def test_a_number_already_awaiting_a_response_is_refused_every_time(
    first: int, second: int, seq: int, repeats: int
) -> None:
    session = session_in(Role.SMSC, TRX, config=SessionConfig(inbound_window=10))
    session.receive_data(received(first, seq))
    (request,) = drain(session)
    assert request.command_id == first
    # A stream of one repeated number: none of it reaches the application, none of it is stored.
    session.receive_data(received(second, seq) * repeats)
    events = drain(session)
    assert all(isinstance(e, ErrorAnswered) and e.status == S.ESME_RUNKNOWNERR for e in events)
    assert len(events) == repeats
    assert session.data_to_send() == answer_octets(second, seq, S.ESME_RUNKNOWNERR) * repeats
    assert session.awaiting_our_response == 1
    # Once answered, the number is free again.
    session.send(_ok(request))
    session.receive_data(received(second, seq))
    (again,) = drain(session)
    assert again.command_id == second


def _ok(request: Event) -> Pdu:
    assert isinstance(request, Pdu)
    return response_to(request)


def submit(seq: int, short: bytes, payload: bytes | None, cls: type = SubmitSm) -> bytes:
    tlvs = (Tlv(Tag.MESSAGE_PAYLOAD, payload),) if payload is not None else ()
    if cls is SubmitMulti:
        pdu = SubmitMulti(
            sequence_number=seq,
            source_addr="10690",
            dest_addresses=(DestAddress(1, 1, "8613800000001"),),
            short_message=short,
            tlvs=tlvs,
        )
    else:
        pdu = SubmitSm(
            sequence_number=seq, source_addr="10690", destination_addr="8613800000001", short_message=short, tlvs=tlvs
        )
    return encode(pdu)


@given(
    short=st.binary(min_size=1, max_size=140),
    payload=st.binary(min_size=0, max_size=300),
    cls=st.sampled_from([SubmitSm, SubmitMulti]),
)
def test_short_message_and_message_payload_together_are_refused(short: bytes, payload: bytes, cls: type) -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(submit(9, short, payload, cls))
    (event,) = drain(session)
    assert isinstance(event, ErrorAnswered)
    assert event.status == S.ESME_RINVPARLEN
    assert session.data_to_send() == answer_octets(cls.command_id, 9, S.ESME_RINVPARLEN)
    assert session.awaiting_our_response == 0


@pytest.mark.parametrize(("short", "payload"), [(b"hello", None), (b"", b"hello"), (b"", b"")])
def test_either_text_field_alone_is_accepted(short: bytes, payload: bytes | None) -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(submit(9, short, payload))
    (event,) = drain(session)
    assert isinstance(event, SubmitSm)
    assert event.payload == short + (payload or b"")


@pytest.mark.parametrize("outstanding", [1, 3, 10])
def test_unbind_is_answered_after_every_outstanding_request(outstanding: int) -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(b"".join(received(C.SUBMIT_SM, 10 + i) for i in range(outstanding)))
    requests = drain(session)
    session.receive_data(received(C.UNBIND, 99))
    (unbind,) = drain(session)
    assert unbind.command_id == C.UNBIND
    assert session.data_to_send() == b""
    # Requests after the unbind are refused; the session waits only for what it accepted before.
    session.receive_data(received(C.SUBMIT_SM, 200))
    assert [type(e) for e in drain(session)] == [ErrorAnswered]
    assert session.data_to_send() == answer_octets(C.SUBMIT_SM, 200, S.ESME_RINVBNDSTS)
    out = b""
    for i, request in enumerate(requests):
        out += session.send(SubmitSmResp(sequence_number=request.sequence_number, message_id=f"m{i}"))
        if i < outstanding - 1:
            assert session.data_to_send() == b""
            assert session.state is not State.CLOSED
    assert session.data_to_send() == encode(UnbindResp(sequence_number=99))
    assert session.state is State.CLOSED


def test_unbind_with_nothing_outstanding_is_answered_at_once() -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(received(C.UNBIND, 5))
    drain(session)
    assert session.data_to_send() == encode(UnbindResp(sequence_number=5))
    assert session.state is State.CLOSED


def test_a_held_unbind_is_answered_when_the_response_timeout_passes() -> None:
    clock = FakeClock()
    session = session_in(Role.SMSC, TRX, clock=clock, config=SessionConfig(response_timeout=7.0))
    session.receive_data(received(C.SUBMIT_SM, 1) + received(C.UNBIND, 3))
    drain(session)
    assert session.get_timer() == clock.now + 7.0
    clock.now += 7.0
    session.handle_timer()
    assert session.data_to_send() == encode(UnbindResp(sequence_number=3))
    assert session.state is State.CLOSED


def test_a_second_unbind_while_one_is_held_is_refused_and_the_first_answered() -> None:
    session = session_in(Role.SMSC, TRX)
    session.receive_data(received(C.SUBMIT_SM, 1) + received(C.UNBIND, 2) + received(C.UNBIND, 3))
    request, unbind, refused = drain(session)
    assert isinstance(unbind, Pdu)
    assert unbind.command_id == C.UNBIND
    assert isinstance(refused, ErrorAnswered)
    assert session.data_to_send() == answer_octets(C.UNBIND, 3, S.ESME_RINVBNDSTS)
    session.send(_ok(request))
    assert session.data_to_send() == encode(UnbindResp(sequence_number=2))
    assert session.state is State.CLOSED
