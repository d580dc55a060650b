"""Tests of protocols.smpp.session: the state table, a linked ESME/SMSC pair, windows and timers.

Received PDUs come from the spec vectors in tests/vectors/smpp/spec.yaml (re-sequenced); the answers
the session writes are checked octet for octet against responses laid out here from the spec tables.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from protocols.errors import LocalProtocolError
from protocols.smpp.codec import InvalidPdu, PduFramer, decode, encode
from protocols.smpp.constants import MAX_SEQUENCE_NUMBER, RESPONSE_BIT, CommandId, CommandStatus
from protocols.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    response_to,
)
from protocols.smpp.session import (
    ALLOWED_REQUESTS,
    ConnectionClosed,
    ErrorAnswered,
    Event,
    ResponseTimedOut,
    Role,
    SessionConfig,
    SessionInitTimedOut,
    SmppSession,
    State,
)

C = CommandId
S = CommandStatus
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "smpp"

with (VECTORS / "spec.yaml").open(encoding="utf-8") as _f:
    _SPEC: list[dict[str, Any]] = yaml.safe_load(_f)["vectors"]

#: One spec vector per command_id (the first listed), as octets.
VECTOR_BY_ID: dict[int, bytes] = {}
for _v in _SPEC:
    VECTOR_BY_ID.setdefault(int.from_bytes(bytes.fromhex(_v["hex"])[4:8], "big"), bytes.fromhex(_v["hex"]))


def received(command_id: int, seq: int) -> bytes:
    """The spec vector for ``command_id`` under sequence number ``seq``."""
    data = VECTOR_BY_ID[command_id]
    return data[:12] + struct.pack(">I", seq) + data[16:]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drain(session: SmppSession) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


BIND_FOR = {
    State.BOUND_TX: (BindTransmitter, BindTransmitterResp),
    State.BOUND_RX: (BindReceiver, BindReceiverResp),
    State.BOUND_TRX: (BindTransceiver, BindTransceiverResp),
}


def session_in(
    role: Role, state: State, clock: FakeClock | None = None, config: SessionConfig | None = None
) -> SmppSession:
    """A session brought to ``state`` through the public API only, with nothing pending."""
    session = SmppSession(role, clock=clock or FakeClock(), config=config)
    if state is State.OPEN:
        return session
    if state is State.CLOSED:
        session.connection_lost()
        return session
    bind, bind_resp = BIND_FOR.get(state, BIND_FOR[State.BOUND_TRX])
    if role is Role.ESME:
        session.send(bind(sequence_number=1, system_id="esme", password="pw"))
        session.receive_data(encode(bind_resp(sequence_number=1, system_id="smsc")))
    else:
        session.receive_data(encode(bind(sequence_number=1, system_id="esme", password="pw")))
        (request,) = drain(session)
        assert isinstance(request, bind)
        session.send(response_to(request, system_id="smsc"))
    assert drain(session) == [bind_resp(sequence_number=1, system_id="smsc")] * (role is Role.ESME)
    if state is State.UNBOUND:
        session.send(Unbind(sequence_number=2))
    assert session.state is state
    assert session.data_to_send() == b""
    return session


# --- the state table ----------------------------------------------------------------------------------------

OPEN, TX, RX, TRX, UNBOUND, CLOSED = (
    State.OPEN,
    State.BOUND_TX,
    State.BOUND_RX,
    State.BOUND_TRX,
    State.UNBOUND,
    State.CLOSED,
)
ESME, SMSC = Role.ESME, Role.SMSC

#: SMPP 3.4 section 2.3, table 2-1: the session states in which each request may be issued, and by
#: whom, read with the bind types of section 2.2 (an ESME transmits only when bound TX or TRX, the
#: SMSC delivers only to an ESME bound RX or TRX). The session's state names the ESME's bind on both
#: sides. Two deliberate departures, as in SMPP 5.0 section 2.4: enquire_link is also accepted while
#: OPEN, and replace_sm is accepted from a transceiver (table 2-1 lists BOUND_TX only, an omission
#: from when BOUND_TRX was added in 3.4). UNBOUND is not a 3.4 state: it is this session's name for
#: "our unbind awaits its unbind_resp", during which 3.4 still counts the session as bound; the peer's
#: own unbind is accepted there so that crossing unbinds close both sides.
SPEC_TABLE_2_1: dict[int, dict[Role, frozenset[State]]] = {
    C.BIND_TRANSMITTER: {ESME: frozenset({OPEN})},
    C.BIND_RECEIVER: {ESME: frozenset({OPEN})},
    C.BIND_TRANSCEIVER: {ESME: frozenset({OPEN})},
    C.OUTBIND: {SMSC: frozenset({OPEN})},
    C.UNBIND: {ESME: frozenset({TX, RX, TRX, UNBOUND}), SMSC: frozenset({TX, RX, TRX, UNBOUND})},
    C.SUBMIT_SM: {ESME: frozenset({TX, TRX})},
    C.SUBMIT_MULTI: {ESME: frozenset({TX, TRX})},
    C.DATA_SM: {ESME: frozenset({TX, TRX}), SMSC: frozenset({RX, TRX})},
    C.DELIVER_SM: {SMSC: frozenset({RX, TRX})},
    C.QUERY_SM: {ESME: frozenset({TX, TRX})},
    C.CANCEL_SM: {ESME: frozenset({TX, TRX})},
    C.REPLACE_SM: {ESME: frozenset({TX, TRX})},
    C.ENQUIRE_LINK: {ESME: frozenset({OPEN, TX, RX, TRX}), SMSC: frozenset({OPEN, TX, RX, TRX})},
    C.ALERT_NOTIFICATION: {SMSC: frozenset({RX, TRX})},
}
BINDS = {C.BIND_TRANSMITTER, C.BIND_RECEIVER, C.BIND_TRANSCEIVER}
NO_RESPONSE = {C.OUTBIND, C.ALERT_NOTIFICATION}  # answered, when they must be, by generic_nack

#: The body of each response sent with an error status, laid out from section 4 with every field
#: empty: C-Octet Strings are a lone NUL, integers zero; submit_sm_resp has none on error (4.4.2).
ERROR_BODY: dict[int, bytes] = {
    C.BIND_TRANSMITTER_RESP: b"\0",
    C.BIND_RECEIVER_RESP: b"\0",
    C.BIND_TRANSCEIVER_RESP: b"\0",
    C.SUBMIT_SM_RESP: b"",
    C.DELIVER_SM_RESP: b"\0",
    C.DATA_SM_RESP: b"\0",
    C.SUBMIT_MULTI_RESP: b"\0\0",  # message_id, no_unsuccess
    C.QUERY_SM_RESP: b"\0\0\0\0",  # message_id, final_date, message_state, error_code
    C.CANCEL_SM_RESP: b"",
    C.REPLACE_SM_RESP: b"",
    C.UNBIND_RESP: b"",
    C.ENQUIRE_LINK_RESP: b"",
    C.GENERIC_NACK: b"",
}


def answer_octets(request_id: int, seq: int, status: int) -> bytes:
    response_id = C.GENERIC_NACK if request_id in NO_RESPONSE else request_id | RESPONSE_BIT
    body = ERROR_BODY[response_id]
    return struct.pack(">IIII", 16 + len(body), response_id, status, seq) + body


def expected_outcome(role: Role, state: State, command_id: int) -> tuple[str, int | None]:
    """What a session of ``role`` in ``state`` does with ``command_id`` from its peer, per the table."""
    if state is CLOSED:
        return ("ignored", None)
    if command_id & RESPONSE_BIT:
        return ("event", None)  # responses are matched (or not) and handed to the application
    sender = SMSC if role is ESME else ESME
    if state in SPEC_TABLE_2_1[command_id].get(sender, frozenset()):
        if command_id == C.ENQUIRE_LINK:
            return ("auto", None)
        return ("unbind", None) if command_id == C.UNBIND else ("event", None)
    if command_id in BINDS and state in (TX, RX, TRX):
        return ("answer", S.ESME_RALYBND)
    return ("answer", S.ESME_RINVBNDSTS)


TABLE = [(role, state, command_id) for role in Role for state in State for command_id in sorted(CommandId)]


def test_table_2_1_agrees_with_allowed_requests() -> None:
    for role in Role:
        for state in State:
            from_table = {cid for cid, by in SPEC_TABLE_2_1.items() if state in by.get(role, frozenset())}
            assert ALLOWED_REQUESTS[role][state] == from_table, (role, state)


@pytest.mark.parametrize(
    ("role", "state", "command_id"),
    TABLE,
    ids=[f"{r.value}-{s.value}-{CommandId(c).name.lower()}" for r, s, c in TABLE],
)
def test_state_table(role: Role, state: State, command_id: int) -> None:
    session = session_in(role, state)
    seq = 0x1234
    data = received(command_id, seq)
    kind, status = expected_outcome(role, state, command_id)
    session.receive_data(data)
    events = drain(session)
    answer = session.data_to_send()
    if kind == "ignored":
        assert (events, answer, session.state) == ([], b"", CLOSED)
    elif kind == "event":
        assert events == [decode(data)]
        assert answer == b""
        assert session.state is state
    elif kind == "auto":
        assert events == []
        assert answer == encode(EnquireLinkResp(sequence_number=seq))
        assert session.state is state
    elif kind == "unbind":
        assert events == [Unbind(sequence_number=seq)]
        assert answer == encode(UnbindResp(sequence_number=seq))
        assert session.state is CLOSED
    else:
        assert status is not None
        assert answer == answer_octets(command_id, seq, status)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, ErrorAnswered)
        assert (event.command_id, event.sequence_number, event.status) == (command_id, seq, status)
        assert session.state is state


def test_submit_sm_in_open_is_rinvbndsts_with_the_same_sequence_number() -> None:
    session = session_in(SMSC, OPEN)
    session.receive_data(received(C.SUBMIT_SM, 99))
    (event,) = drain(session)
    assert isinstance(event, ErrorAnswered)
    assert decode(session.data_to_send()) == SubmitSmResp(sequence_number=99, command_status=S.ESME_RINVBNDSTS)


def test_bind_when_bound_is_ralybnd() -> None:
    session = session_in(SMSC, TRX)
    session.receive_data(received(C.BIND_TRANSCEIVER, 5))
    (event,) = drain(session)
    assert isinstance(event, ErrorAnswered)
    assert event.status == S.ESME_RALYBND
    assert decode(session.data_to_send()) == BindTransceiverResp(sequence_number=5, command_status=S.ESME_RALYBND)
    assert session.state is TRX


def test_unknown_command_is_generic_nack_and_the_session_carries_on() -> None:
    session = session_in(SMSC, TRX)
    unknown = struct.pack(">IIII", 20, 0x00000099, 0, 41) + b"abcd"
    session.receive_data(unknown + received(C.SUBMIT_SM, 42))
    first, second = drain(session)
    assert first == ErrorAnswered(0x99, 41, S.ESME_RINVCMDID, first.reason)  # type: ignore[union-attr]
    assert session.data_to_send() == encode(GenericNack(sequence_number=41, command_status=S.ESME_RINVCMDID))
    assert isinstance(second, SubmitSm)
    assert second.sequence_number == 42
    assert session.state is TRX
    assert session.awaiting_our_response == 1


def test_malformed_request_is_answered_with_its_own_response() -> None:
    session = session_in(SMSC, TRX)
    data = bytearray(received(C.SUBMIT_SM, 8))
    data[-20] = 200  # sm_length runs past the end
    session.receive_data(bytes(data))
    (event,) = drain(session)
    assert isinstance(event, ErrorAnswered)
    assert session.data_to_send() == answer_octets(C.SUBMIT_SM, 8, S.ESME_RINVMSGLEN)
    assert session.awaiting_our_response == 0


def test_command_length_out_of_range_nacks_and_closes() -> None:
    session = session_in(SMSC, TRX)
    session.receive_data(struct.pack(">IIII", 8000, C.SUBMIT_SM, 0, 77))
    with pytest.raises(InvalidPdu) as info:
        session.next_event()
    assert info.value.close
    assert session.data_to_send() == encode(GenericNack(sequence_number=77, command_status=S.ESME_RINVCMDLEN))
    assert session.state is CLOSED
    assert session.next_event() is None
    session.receive_data(received(C.ENQUIRE_LINK, 1))
    assert session.next_event() is None
    assert session.get_timer() is None


def test_end_of_stream_is_connection_closed() -> None:
    session = session_in(ESME, TRX)
    session.receive_data(received(C.ENQUIRE_LINK, 3)[:10])
    session.receive_data(b"")
    assert drain(session) == [ConnectionClosed()]
    assert session.state is CLOSED


def test_sending_in_the_wrong_state_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        session_in(ESME, OPEN).send(SubmitSm(sequence_number=1))
    with pytest.raises(LocalProtocolError):
        session_in(SMSC, TX).send(DeliverSm(sequence_number=1))
    with pytest.raises(LocalProtocolError):
        session_in(ESME, RX).send(SubmitSm(sequence_number=1))
    with pytest.raises(LocalProtocolError):
        session_in(ESME, TRX).send(SubmitSmResp(sequence_number=1))  # nothing to answer
    esme = session_in(ESME, TRX)
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(sequence_number=0))
    esme.send(SubmitSm(sequence_number=5))
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(sequence_number=5))  # already awaiting a response


# --- a pair joined by a fake link ---------------------------------------------------------------------------


class Link:
    """Carries octets between two sessions the way a TCP connection would."""

    def __init__(self, clock: FakeClock) -> None:
        self.esme = SmppSession(ESME, clock=clock)
        self.smsc = SmppSession(SMSC, clock=clock)

    def send(self, sender: SmppSession, pdu: Pdu) -> list[Event]:
        receiver = self.smsc if sender is self.esme else self.esme
        receiver.receive_data(sender.send(pdu))
        return self.pump()

    def pump(self) -> list[Event]:
        events: list[Event] = []
        moved = True
        while moved:
            moved = False
            for a, b in ((self.esme, self.smsc), (self.smsc, self.esme)):
                events += drain(a)
                if out := a.data_to_send():
                    b.receive_data(out)
                    moved = True
            events += drain(self.esme) + drain(self.smsc)
        return events


def test_linked_pair_bind_submit_deliver_unbind() -> None:
    clock = FakeClock()
    link = Link(clock)
    seq = link.esme.next_sequence_number()
    assert link.send(link.esme, BindTransceiver(sequence_number=seq, system_id="afgw", password="pw")) == [
        BindTransceiver(sequence_number=seq, system_id="afgw", password="pw")
    ]
    assert (link.esme.state, link.smsc.state) == (OPEN, OPEN)
    assert link.send(link.smsc, BindTransceiverResp(sequence_number=seq, system_id="SMSC")) == [
        BindTransceiverResp(sequence_number=seq, system_id="SMSC")
    ]
    assert (link.esme.state, link.smsc.state) == (TRX, TRX)

    submit = SubmitSm(sequence_number=link.esme.next_sequence_number(), destination_addr="13912345678")
    assert link.send(link.esme, submit) == [submit]
    assert (link.esme.outstanding, link.smsc.awaiting_our_response) == (1, 1)
    resp = SubmitSmResp(sequence_number=submit.sequence_number, message_id="m1")
    assert link.send(link.smsc, resp) == [resp]
    assert (link.esme.outstanding, link.smsc.awaiting_our_response) == (0, 0)

    deliver = DeliverSm(sequence_number=link.smsc.next_sequence_number(), esm_class=0x04)
    assert link.send(link.smsc, deliver) == [deliver]
    assert link.send(link.esme, DeliverSmResp(sequence_number=deliver.sequence_number)) == [
        DeliverSmResp(sequence_number=deliver.sequence_number)
    ]

    # enquire_link is answered by the session itself: no event on either side.
    assert link.send(link.esme, EnquireLink(sequence_number=link.esme.next_sequence_number())) == [
        EnquireLinkResp(sequence_number=3)
    ]

    unbind = Unbind(sequence_number=link.esme.next_sequence_number())
    events = link.send(link.esme, unbind)
    assert events == [unbind, UnbindResp(sequence_number=unbind.sequence_number)]
    assert (link.esme.state, link.smsc.state) == (CLOSED, CLOSED)
    assert (link.esme.get_timer(), link.smsc.get_timer()) == (None, None)


def test_unbinds_that_cross_on_the_wire_close_both_sides() -> None:
    clock = FakeClock()
    link = Link(clock)
    link.send(link.esme, BindTransceiver(sequence_number=1))
    link.send(link.smsc, BindTransceiverResp(sequence_number=1))
    from_esme = link.esme.send(Unbind(sequence_number=2))
    from_smsc = link.smsc.send(Unbind(sequence_number=9))
    assert (link.esme.state, link.smsc.state) == (UNBOUND, UNBOUND)
    link.smsc.receive_data(from_esme)
    link.esme.receive_data(from_smsc)
    events = link.pump()
    assert Unbind(sequence_number=2) in events
    assert Unbind(sequence_number=9) in events
    assert (link.esme.state, link.smsc.state) == (CLOSED, CLOSED)


# --- windows ------------------------------------------------------------------------------------------------


def test_outbound_window_full_is_a_local_error_until_a_response_frees_it() -> None:
    session = session_in(ESME, TRX, config=SessionConfig(window=2))
    session.send(SubmitSm(sequence_number=10))
    session.send(SubmitSm(sequence_number=11))
    assert session.window_available == 0
    with pytest.raises(LocalProtocolError):
        session.send(SubmitSm(sequence_number=12))
    session.receive_data(encode(SubmitSmResp(sequence_number=10, message_id="a")))
    assert drain(session) == [SubmitSmResp(sequence_number=10, message_id="a")]
    assert session.window_available == 1
    session.send(SubmitSm(sequence_number=12))
    # enquire_link from the application counts too; responses never do.
    with pytest.raises(LocalProtocolError):
        session.send(EnquireLink(sequence_number=13))


def test_a_send_that_fails_to_encode_takes_no_window_slot() -> None:
    session = session_in(ESME, TRX, config=SessionConfig(window=1))
    with pytest.raises(LocalProtocolError):
        session.send(SubmitSm(sequence_number=10, source_addr="x" * 30))
    assert session.outstanding == 0
    session.send(SubmitSm(sequence_number=10))  # the same sequence number is free to use
    with pytest.raises(LocalProtocolError):
        session.send(Unbind(sequence_number=11, tlvs=(Tlv(1 << 16, b""),)))
    assert session.state is TRX


def test_inbound_window_exceeded_is_throttled_and_recovers() -> None:
    session = session_in(SMSC, TRX, config=SessionConfig(inbound_window=2))
    session.receive_data(received(C.SUBMIT_SM, 20) + received(C.SUBMIT_SM, 21) + received(C.SUBMIT_SM, 22))
    first, second, third = drain(session)
    assert isinstance(first, SubmitSm)
    assert isinstance(second, SubmitSm)
    assert isinstance(third, ErrorAnswered)
    assert third.status == S.ESME_RTHROTTLED
    assert session.data_to_send() == answer_octets(C.SUBMIT_SM, 22, S.ESME_RTHROTTLED)
    # enquire_link and unbind are never throttled.
    session.receive_data(received(C.ENQUIRE_LINK, 23))
    assert drain(session) == []
    assert session.data_to_send() == encode(EnquireLinkResp(sequence_number=23))
    session.send(response_to(first, message_id="m20"))
    session.receive_data(received(C.SUBMIT_SM, 24))
    (fourth,) = drain(session)
    assert isinstance(fourth, SubmitSm)
    assert session.data_to_send() == b""
    assert session.awaiting_our_response == 2


# --- timers -------------------------------------------------------------------------------------------------

CONFIG = SessionConfig(enquire_link_interval=30.0, response_timeout=10.0, session_init_timeout=5.0)


def bound_esme(clock: FakeClock) -> SmppSession:
    session = session_in(ESME, TRX, clock=clock, config=CONFIG)
    return session


def test_enquire_link_after_the_interval_of_silence() -> None:
    clock = FakeClock(1000.0)
    session = bound_esme(clock)
    assert session.get_timer() == 1030.0  # bound at 1000, silent since
    session.handle_timer(1029.999)
    assert session.data_to_send() == b""
    clock.now = 1030.0
    session.handle_timer()
    probe = decode(session.data_to_send())
    assert isinstance(probe, EnquireLink)
    assert probe.sequence_number == 1  # from next_sequence_number(); the bind used 1 by hand
    assert session.get_timer() == 1040.0
    session.handle_timer(1035.0)  # no second probe while one is out
    assert session.data_to_send() == b""
    clock.now = 1036.5
    session.receive_data(encode(EnquireLinkResp(sequence_number=probe.sequence_number)))
    assert drain(session) == []  # the session's own probe is not the application's business
    assert session.get_timer() == 1066.5
    assert session.state is TRX


def test_traffic_from_the_peer_postpones_the_probe() -> None:
    clock = FakeClock(0.0)
    session = bound_esme(clock)
    clock.now = 25.0
    session.receive_data(received(C.DELIVER_SM, 7))
    drain(session)
    assert session.get_timer() == 55.0
    session.handle_timer(30.0)
    assert session.data_to_send() == b""


def test_missing_enquire_link_resp_closes_the_session() -> None:
    clock = FakeClock(0.0)
    session = bound_esme(clock)
    session.handle_timer(30.0)
    probe = decode(session.data_to_send())
    session.handle_timer(39.9)
    assert drain(session) == []
    session.handle_timer(40.0)
    assert drain(session) == [ResponseTimedOut(probe)]
    assert session.state is CLOSED
    assert session.get_timer() is None


def test_response_timeout_reports_the_request_and_frees_the_slot() -> None:
    clock = FakeClock(0.0)
    session = session_in(ESME, TRX, clock=clock, config=SessionConfig(window=1, response_timeout=10.0))
    clock.now = 3.0
    submit = SubmitSm(sequence_number=7, short_message=b"hi")
    session.send(submit)
    assert session.get_timer() == 13.0
    assert session.window_available == 0
    session.handle_timer(12.5)
    assert drain(session) == []
    session.handle_timer(13.0)
    assert drain(session) == [ResponseTimedOut(submit)]
    assert session.window_available == 1
    assert session.state is TRX
    # A late response is still handed over, but frees nothing twice.
    session.receive_data(encode(SubmitSmResp(sequence_number=7, message_id="late")))
    assert drain(session) == [SubmitSmResp(sequence_number=7, message_id="late")]
    assert session.window_available == 1


def test_response_timeout_of_a_relayed_request_names_the_number_it_went_out_with() -> None:
    # A relay sends a request on with a number of its own; the PDU keeps the one it arrived with.
    clock = FakeClock(0.0)
    session = session_in(ESME, TRX, clock=clock, config=SessionConfig(response_timeout=10.0))
    relayed = SubmitSm(sequence_number=7, short_message=b"hi")
    session.send(relayed, sequence_number=42)
    session.handle_timer(10.0)
    [timed_out] = drain(session)
    assert isinstance(timed_out, ResponseTimedOut)
    assert (timed_out.request, timed_out.sequence_number) == (relayed, 42)


def test_response_timeouts_fire_in_order() -> None:
    clock = FakeClock(0.0)
    session = session_in(ESME, TRX, clock=clock, config=SessionConfig(response_timeout=10.0))
    requests = []
    for i in range(3):
        clock.now = float(i)
        requests.append(SubmitSm(sequence_number=100 + i))
        session.send(requests[-1])
    assert session.get_timer() == 10.0
    session.handle_timer(11.0)
    assert drain(session) == [ResponseTimedOut(requests[0]), ResponseTimedOut(requests[1])]
    assert session.get_timer() == 12.0


def test_session_init_timeout_for_the_smsc_role() -> None:
    clock = FakeClock(500.0)
    smsc = SmppSession(SMSC, clock=clock, config=CONFIG)
    esme = SmppSession(ESME, clock=clock, config=CONFIG)
    assert smsc.get_timer() == 505.0
    assert esme.get_timer() is None
    smsc.handle_timer(504.0)
    assert drain(smsc) == []
    smsc.handle_timer(505.0)
    assert drain(smsc) == [SessionInitTimedOut()]
    assert smsc.state is CLOSED
    assert smsc.get_timer() is None


def test_a_bind_in_time_cancels_the_session_init_timer() -> None:
    clock = FakeClock(0.0)
    smsc = SmppSession(SMSC, clock=clock, config=CONFIG)
    clock.now = 4.0
    smsc.receive_data(received(C.BIND_TRANSMITTER, 1))
    (bind,) = drain(smsc)
    assert isinstance(bind, BindTransmitter)
    assert smsc.get_timer() == 5.0  # not bound until we answer
    smsc.send(response_to(bind, system_id="SMSC"))
    assert smsc.get_timer() == 34.0  # the enquire_link interval from the bind
    smsc.handle_timer(5.0)
    assert drain(smsc) == []
    assert smsc.state is TX


def test_a_failed_bind_leaves_the_session_init_timer_running() -> None:
    clock = FakeClock(0.0)
    smsc = SmppSession(SMSC, clock=clock, config=CONFIG)
    smsc.receive_data(received(C.BIND_TRANSCEIVER, 1))
    (bind,) = drain(smsc)
    assert isinstance(bind, BindTransceiver)
    smsc.send(response_to(bind, S.ESME_RBINDFAIL))
    assert smsc.state is OPEN
    assert smsc.get_timer() == 5.0


def test_no_enquire_link_when_disabled() -> None:
    clock = FakeClock(0.0)
    session = session_in(ESME, TRX, clock=clock, config=SessionConfig(enquire_link_interval=None))
    assert session.get_timer() is None
    session.handle_timer(1e9)
    assert session.data_to_send() == b""


# --- sequence numbers ---------------------------------------------------------------------------------------


def test_sequence_numbers_start_at_one_and_wrap_at_0x7fffffff() -> None:
    session = SmppSession(ESME, clock=FakeClock())
    assert [session.next_sequence_number() for _ in range(3)] == [1, 2, 3]
    session._next_seq = MAX_SEQUENCE_NUMBER - 1  # no public way to fast-forward 2**31 numbers
    got = [session.next_sequence_number() for _ in range(4)]
    assert got == [0x7FFFFFFE, 0x7FFFFFFF, 1, 2]
    assert 0 not in got


def test_enquire_link_probe_uses_the_wrapped_sequence_number() -> None:
    clock = FakeClock(0.0)
    session = bound_esme(clock)
    session._next_seq = MAX_SEQUENCE_NUMBER
    session.handle_timer(30.0)
    probe = decode(session.data_to_send())
    assert probe.sequence_number == MAX_SEQUENCE_NUMBER
    assert session.next_sequence_number() == 1


# --- helpers are what they claim ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("state", list(State))
def test_session_in_reaches_the_state(role: Role, state: State) -> None:
    session = session_in(role, state)
    assert session.state is state
    assert session.next_event() is None


def test_every_answer_in_the_table_is_a_well_formed_pdu() -> None:
    framer = PduFramer()
    for command_id in NO_RESPONSE | {c for c in CommandId if not c & RESPONSE_BIT}:
        for status in (S.ESME_RINVBNDSTS, S.ESME_RALYBND):
            framer.feed(answer_octets(command_id, 1, status))
            raw = framer.next_pdu()
            assert raw is not None
            decode(raw)
