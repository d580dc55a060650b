"""A response forwarded as the octets it came in, less the top Via line, is what serialising gives.

A response received exactly as serialise writes it keeps its octets, and the copy without the top
Via (what a proxy sends upstream) keeps them less that line. Whatever the text received, the octets
sent must be those a response built afresh from the same fields serialises to.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip import Headers, Response, parse_message

OUR_VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc123;rport"
THEIR_VIA = "SIP/2.0/UDP 10.0.0.1:5080;branch=z9hG4bK-1-1-0;received=10.0.0.1;rport=5080"
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def response_text(
    *,
    status: str = "SIP/2.0 200 OK",
    vias: list[str] | None = None,
    lines: list[str] | None = None,
    body: bytes = b"",
    length: str | None = None,
) -> bytes:
    head = [status]
    head += [f"Via: {via}" for via in (vias if vias is not None else [OUR_VIA, THEIR_VIA])]
    head += lines if lines is not None else ["From: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]
    head += ["Call-ID: c1@10.0.0.1", "CSeq: 1 INVITE"]
    head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def afresh(response: Response) -> bytes:
    """What serialise writes for ``response``'s fields in a response that never held octets."""
    return Response(response.status, response.reason, Headers(response.headers.fields()), response.body).serialise()


def forwarded(data: bytes) -> tuple[Response, Response]:
    received = parse_message(data)
    assert isinstance(received, Response)
    return received, received.without_top_via()


@pytest.mark.parametrize(
    "data",
    [
        response_text(),
        response_text(body=SDP),
        response_text(status="SIP/2.0 180 Ringing", lines=["From: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2", "X-Odd: "]),
        response_text(
            status="SIP/2.0 603 Declined by \xff\xfe user".encode("latin-1").decode("utf-8", "surrogateescape")
        ),
        response_text(vias=[OUR_VIA]),
        response_text(lines=["From: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2", "Subject: Via: not a header"]),
    ],
)
def test_a_response_received_as_serialise_writes_it_is_forwarded_as_its_octets_less_the_top_via(
    data: bytes,
) -> None:
    received, upstream = forwarded(data)
    assert received.wire == data
    assert received.serialise() == data == afresh(received)
    assert upstream.wire is not None
    assert upstream.serialise() == afresh(upstream)
    assert f"Via: {OUR_VIA}\r\n".encode() not in upstream.serialise()
    assert upstream.headers.get_all("Via") == received.headers.get_all("Via")[1:]


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n" + response_text(),  # CRLFs before the start line
        response_text() + b"trailing",  # octets after the body (RFC 3261 18.3: discarded)
        response_text(status="sip/2.0 200 OK"),
        response_text(status="SIP/2.0 200"),  # no reason phrase
        response_text(status="SIP/2.0 200  OK"),  # the reason begins with a blank
        response_text(length="00"),
        response_text(lines=["from: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["f: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From : <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From:<sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From:  <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From: <sip:a@b>;tag=1 ", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From:\t<sip:a@b>;tag=1", "To: <sip:c@d>;tag=2"]),
        response_text(lines=["From: <sip:a@b>;tag=1", "To: <sip:c@d>;tag=2", "Subject: a", " folded"]),
        response_text(vias=[f"{OUR_VIA}, {THEIR_VIA}"]),  # both Vias on one line
        response_text(vias=[f"{OUR_VIA} ,{THEIR_VIA}"]),
        ("\r\n".join(["SIP/2.0 200 OK", f"Via: {OUR_VIA}", "Call-ID: c", "CSeq: 1 INVITE"]) + "\r\n\r\n").encode(),
    ],
)
def test_a_response_received_in_an_unusual_text_is_forwarded_as_serialise_writes_it(data: bytes) -> None:
    received, upstream = forwarded(data)
    assert received.serialise() == afresh(received)
    assert upstream.serialise() == afresh(upstream)
    if received.wire is None:
        assert upstream.wire is None
    else:  # only the octets of the top Via line can have made it unusual
        assert received.wire == data


def test_a_forwarded_response_changed_after_the_copy_is_written_afresh() -> None:
    changes = [
        lambda r: r.headers.add("Warning", '399 gw "changed"'),
        lambda r: r.headers.set("Content-Length", "0"),
        lambda r: r.headers.pop_first("Via"),
        lambda r: r.replace_top_via(r.top_via.with_param("received", "192.0.2.1")),
        lambda r: setattr(r, "status", 202),
        lambda r: setattr(r, "reason", "Fine"),
        lambda r: setattr(r, "body", SDP),
        lambda r: setattr(r, "headers", Headers(r.headers.fields())),
    ]
    for change in changes:
        received, upstream = forwarded(response_text(body=SDP))
        assert upstream.wire is not None
        change(upstream)
        assert upstream.wire is None
        assert upstream.serialise() == afresh(upstream)
        change(received)
        assert received.serialise() == afresh(received)


def test_a_request_keeps_no_octets() -> None:
    data = b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
    request = parse_message(data)
    assert request.serialise() == data
    assert not hasattr(request, "wire")


TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@given(
    name=st.sampled_from(["Subject", "subject", "s", "X-Thing", "Content-Type", "User-Agent"]),
    before=st.sampled_from(["", " ", "\t"]),
    after=st.sampled_from([" ", "", "  ", " \t", "\t"]),
    value=TEXT,
    trailing=st.sampled_from(["", " ", "\t"]),
    reason=st.sampled_from([" OK", "", "  OK", " Very Fine"]),
)
def test_any_header_line_is_forwarded_as_serialise_writes_it(
    name: str, before: str, after: str, value: str, trailing: str, reason: str
) -> None:
    line = f"{name}{before}:{after}{value}{trailing}"
    data = response_text(status=f"SIP/2.0 200{reason}", lines=["From: <sip:a@b>;tag=1", line, "To: <sip:c@d>"])
    received, upstream = forwarded(data)
    assert received.serialise() == afresh(received)
    assert upstream.serialise() == afresh(upstream)
    assert (received.wire is not None) == (received.serialise() == data)
