"""Dialogs (RFC 3261 section 12): ids, route sets from Record-Route, remote targets, CSeq."""

from __future__ import annotations

import pytest

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip import (
    Dialog,
    DialogId,
    DialogState,
    Headers,
    Request,
    Response,
    create_response,
    dialog_id_of,
    parse_uri,
)


def invite() -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8"),
            ("Record-Route", "<sip:p1.example.com;lr>"),
            ("Record-Route", "<sip:p2.example.com;lr>"),
            ("Max-Forwards", "70"),
            ("To", "Bob <sip:bob@biloxi.example.com>"),
            ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
            ("Call-ID", "a84b4c76e66710"),
            ("CSeq", "314159 INVITE"),
            ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
        ]
    )
    return Request("INVITE", parse_uri("sip:bob@biloxi.example.com"), headers)


def answer(request: Request, status: int = 200) -> Response:
    response = create_response(request, status, to_tag="a6c85cf")
    for rr in request.headers.get_all("Record-Route"):
        response.headers.add("Record-Route", rr)
    response.headers.add("Contact", "<sip:bob@192.0.2.4>")
    return response


def test_uac_dialog_route_set_is_reversed_record_route() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    assert dialog.id == DialogId("a84b4c76e66710", "1928301774", "a6c85cf")
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4"
    assert dialog.local_cseq == 314159
    assert dialog.remote_cseq is None


def test_uas_dialog_route_set_keeps_order() -> None:
    req = invite()
    resp = answer(req, 180)
    dialog = Dialog.from_uas(req, resp)
    assert dialog.id == DialogId("a84b4c76e66710", "a6c85cf", "1928301774")
    assert dialog.state is DialogState.EARLY
    assert [r.uri.host for r in dialog.route_set] == ["p1.example.com", "p2.example.com"]
    assert str(dialog.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert dialog.remote_cseq == 314159


def test_dialog_ids_from_both_sides() -> None:
    req = invite()
    resp = answer(req)
    uac = dialog_id_of(resp, uac=True)
    uas = dialog_id_of(resp, uac=False)
    assert uac is not None
    assert uas is not None
    assert uac.reversed() == uas
    assert dialog_id_of(req, uac=True) is None  # no To tag yet


def test_loose_routing_request() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.4"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.cseq.number == 314160
    assert bye.cseq.method == "BYE"
    assert bye.from_tag == "1928301774"
    assert bye.to_tag == "a6c85cf"
    assert bye.call_id == "a84b4c76e66710"
    assert bye.max_forwards == 70
    ack = dialog.create_request("ACK", cseq=314159)
    assert ack.cseq.number == 314159
    with pytest.raises(LocalProtocolError):
        dialog.create_request("ACK")


def test_strict_routing_request() -> None:
    req = invite()
    resp = answer(req)
    resp.headers.remove("Record-Route")
    resp.headers.add("Record-Route", "<sip:strict.example.com>")
    dialog = Dialog.from_uac(req, resp)
    info = dialog.create_request("INFO")
    assert str(info.uri) == "sip:strict.example.com"
    assert info.headers.get_all("Route") == ["<sip:bob@192.0.2.4>"]


def test_in_dialog_requests_cseq_and_target_refresh() -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req))
    reinvite = invite()
    reinvite.headers.set("CSeq", "314160 INVITE")
    reinvite.headers.set("Contact", "<sip:alice@198.51.100.7:5062>")
    dialog.receive_request(reinvite)
    assert dialog.remote_cseq == 314160
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7:5062"
    old = invite()
    old.headers.set("CSeq", "314160 INFO")
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(Request("INFO", old.uri, old.headers))
    assert info.value.answer == 500
    bye = invite()
    bye.headers.set("CSeq", "314161 BYE")
    dialog.receive_request(Request("BYE", bye.uri, bye.headers))
    assert dialog.state is DialogState.TERMINATED


def test_early_dialog_confirmed_by_2xx_takes_its_route_set() -> None:
    req = invite()
    early = answer(req, 183)
    dialog = Dialog.from_uac(req, early)
    assert dialog.state is DialogState.EARLY
    ok = answer(req)
    ok.headers.remove("Record-Route")
    ok.headers.add("Record-Route", "<sip:p9.example.com;lr>")
    ok.headers.set("Contact", "<sip:bob@192.0.2.99>")
    dialog.receive_response(req, ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [r.uri.host for r in dialog.route_set] == ["p9.example.com"]
    assert dialog.remote_target.host == "192.0.2.99"
