"""The session's wire tap hears every PDU that crosses the wire, the answers it makes on its own included."""

from __future__ import annotations

from protocols.smpp.codec import encode
from protocols.smpp.constants import CommandId, CommandStatus
from protocols.smpp.pdu import BindTransceiver, EnquireLink, SubmitSm, SubmitSmResp, response_to
from protocols.smpp.session import Role, SessionConfig, SmppSession


class Heard:
    def __init__(self) -> None:
        self.received: list[tuple[int, int]] = []
        self.sent: list[tuple[int, int]] = []

    def pdu_received(self, command_id: int, command_status: int) -> None:
        self.received.append((command_id, command_status))

    def pdu_sent(self, command_id: int, command_status: int) -> None:
        self.sent.append((command_id, command_status))


def test_the_tap_hears_what_the_application_sends_and_what_the_session_answers_itself() -> None:
    heard = Heard()
    session = SmppSession(Role.SMSC, clock=lambda: 0.0, config=SessionConfig(inbound_window=1))
    session.tap = heard
    session.receive_data(encode(BindTransceiver(system_id="bank", password="pw"), 1))
    bind = session.next_event()
    assert bind is not None
    session.send(response_to(bind))
    wire = b"".join(
        [
            encode(EnquireLink(), 2),  # answered by the session
            encode(SubmitSm(destination_addr="8613800000001", short_message=b"a"), 3),
            encode(SubmitSm(destination_addr="8613800000001", short_message=b"b"), 4),  # past the window
            bytes.fromhex("00000010 00000777 00000000 00000005"),  # an unknown command: generic_nack
        ]
    )
    session.receive_data(wire)
    while session.next_event() is not None:
        pass
    session.send(SubmitSmResp(message_id="1"), sequence_number=3)
    out = session.data_to_send()
    assert out  # the session's own answers, waiting to go
    c, s = CommandId, CommandStatus
    assert heard.received == [
        (c.BIND_TRANSCEIVER, 0),
        (c.ENQUIRE_LINK, 0),
        (c.SUBMIT_SM, 0),
        (c.SUBMIT_SM, 0),
        (0x777, 0),
    ]
    assert sorted(heard.sent) == sorted(
        [
            (c.BIND_TRANSCEIVER_RESP, s.ESME_ROK),
            (c.ENQUIRE_LINK_RESP, s.ESME_ROK),
            (c.SUBMIT_SM_RESP, s.ESME_RTHROTTLED),
            (c.GENERIC_NACK, s.ESME_RINVCMDID),
            (c.SUBMIT_SM_RESP, s.ESME_ROK),
        ]
    )


def test_without_a_tap_nothing_is_told() -> None:
    session = SmppSession(Role.SMSC, clock=lambda: 0.0)
    assert session.tap is None
    session.receive_data(encode(EnquireLink(), 1))
    assert session.next_event() is None  # still answered, silently
    assert session.data_to_send()
