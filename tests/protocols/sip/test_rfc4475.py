"""RFC 4475 SIP torture tests against protocols.sip, driven by the vectors' INDEX.yaml.

Each message goes through what the gateway does on receipt: ``parse_message`` (UDP framing, start
line, header lines) and then ``validate_request`` (as a forwarding proxy) or ``validate_response``.
The table ``EXPECTED`` says what must come out: the message accepted, or a RemoteProtocolError with
the answer to send (None = silently discard) and the stage that raises it. Where RFC 4475 lets an
element choose between rejecting and being liberal, the choice is noted next to the entry.
"""

from __future__ import annotations

import pytest
import yaml

from protocols.errors import RemoteProtocolError
from protocols.sip import (
    LegacyServerTransactionKey,
    Request,
    Response,
    ServerTransactionKey,
    SipParseError,
    StreamParser,
    create_response,
    parse_message,
    server_transaction_key,
    unsupported_extensions,
    validate_request,
    validate_response,
)
from tests.conftest import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "sip/rfc4475"

ACCEPT = "accept"

# name -> ACCEPT, or (answer, stage) with stage "parse" or "validate".
EXPECTED: dict[str, str | tuple[int | None, str]] = {
    # 3.1.1: valid messages.
    "wsinv": ACCEPT,
    "intmeth": ACCEPT,
    "esc01": ACCEPT,
    "escnull": ACCEPT,
    "esc02": ACCEPT,
    "lwsdisp": ACCEPT,
    "longreq": ACCEPT,
    "dblreq": ACCEPT,
    "semiuri": ACCEPT,
    "transports": ACCEPT,
    "mpart01": ACCEPT,
    "unreason": ACCEPT,
    "noreason": ACCEPT,
    # 3.1.2: invalid messages.
    "badinv01": (400, "validate"),  # empty Via and Contact parameters / list elements
    "clerr": (400, "parse"),  # over UDP: 400 (a stream would wait for more data)
    "ncl": (400, "parse"),  # negative Content-Length; a stream is closed
    "scalar02": (400, "validate"),  # CSeq >= 2**31
    "scalarlg": (None, "validate"),  # a response: discarded
    "quotbal": (400, "validate"),
    "ltgtruri": (400, "parse"),
    "lwsruri": (400, "parse"),
    "lwsstart": (400, "parse"),  # RFC allows being liberal; we reject, as it also allows
    "trws": (400, "parse"),  # RFC allows being liberal; we reject, as it also allows
    "escruri": (400, "validate"),  # RFC allows ignoring the URI headers; we reject
    "baddate": ACCEPT,  # RFC: reject only if Date matters; it never does to a proxy
    "regbadct": (400, "validate"),
    "badaspec": (400, "validate"),
    "baddn": (400, "validate"),
    "badvers": (505, "parse"),
    "mismatch01": (400, "validate"),
    "mismatch02": (400, "validate"),  # 400, not 501
    "bigcode": (None, "parse"),  # a response: discarded
    # 3.2: transaction layer.
    "badbranch": ACCEPT,  # RFC allows 400 or falling back to RFC 2543 matching; we fall back
    # 3.3: application layer, as a forwarding proxy.
    "insuf": (400, "validate"),
    "unkscm": (416, "validate"),
    "novelsc": (416, "validate"),
    "unksm2": ACCEPT,  # a proxy forwards; only a registrar cares about the To scheme
    "bext01": (420, "validate"),  # Proxy-Require with unknown option tags
    "invut": ACCEPT,  # 415 is the UAS's business
    "regaut01": ACCEPT,  # 401 is the registrar's business
    "multi01": (400, "validate"),
    "mcl01": (400, "parse"),
    "bcast": ACCEPT,  # parses; the transport never sends to a broadcast address
    "zeromf": (483, "validate"),
    "cparam01": ACCEPT,
    "cparam02": ACCEPT,
    "regescrt": ACCEPT,  # legal; a registrar may refuse to store the URI header
    "sdp01": ACCEPT,  # 406 is the UAS's business
    # 3.4: RFC 2543 compatibility.
    "inv2543": ACCEPT,
}


def _index() -> dict[str, dict[str, str]]:
    loaded = yaml.safe_load((VECTORS / "INDEX.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


INDEX = _index()
NAMES = sorted(INDEX)


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.dat").read_bytes()


def receive(data: bytes) -> Request | Response:
    """What the gateway does with a datagram: parse, then the checks before processing."""
    message = parse_message(data)
    if isinstance(message, Request):
        validate_request(message)
    else:
        validate_response(message)
    return message


def request(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def response(name: str) -> Response:
    message = parse_message(load(name))
    assert isinstance(message, Response)
    return message


# --- the table ------------------------------------------------------------------------------------


def test_every_vector_is_in_the_index_and_the_table() -> None:
    files = {p.stem for p in VECTORS.glob("*.dat")}
    assert files == set(INDEX)
    assert set(EXPECTED) == set(INDEX)
    for name, meta in INDEX.items():
        if meta["class"] == "valid":
            assert EXPECTED[name] == ACCEPT, name


@pytest.mark.parametrize("name", NAMES)
def test_vector_outcome(name: str) -> None:
    data = load(name)
    expected = EXPECTED[name]
    if expected == ACCEPT:
        receive(data)
        return
    assert isinstance(expected, tuple)
    answer, stage = expected
    if stage == "parse":
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(data)
    else:
        message = parse_message(data)
        with pytest.raises(RemoteProtocolError) as info:
            receive(data)
        del message
    assert info.value.answer == answer, str(info.value)
    assert str(info.value)  # the reason phrase


@pytest.mark.parametrize("name", NAMES)
def test_stream_parser_byte_by_byte_agrees_with_datagrams(name: str) -> None:
    """Over a stream the same bytes frame into the same message, or raise RemoteProtocolError."""
    data = load(name)
    try:
        datagram: Request | Response | None = parse_message(data)
    except RemoteProtocolError:
        datagram = None
    parser = StreamParser()
    messages: list[Request | Response] = []
    try:
        for i in range(len(data)):
            parser.receive_data(data[i : i + 1])
            while (message := parser.next_message()) is not None:
                messages.append(message)
    except RemoteProtocolError:
        # Only a message without Content-Length (mandatory on streams) may fail before the first
        # message; dblreq has stray octets after its second message.
        if EXPECTED[name] == ACCEPT and not messages:
            assert datagram is not None
            assert datagram.content_length is None
            return
    if EXPECTED[name] == ACCEPT:
        assert messages
        assert messages[0] == datagram


@pytest.mark.parametrize("name", NAMES)
def test_parse_errors_carry_what_is_needed_to_answer(name: str) -> None:
    expected = EXPECTED[name]
    if expected == ACCEPT or expected[1] != "parse" or expected[0] is None:
        return
    with pytest.raises(SipParseError) as info:
        parse_message(load(name))
    headers = info.value.headers
    assert headers is not None
    answer = create_response(headers, info.value.answer or 400)
    assert answer.headers.get("Call-ID") == headers.get("Call-ID")
    assert answer.headers.get_all("Via") == headers.get_all("Via")


# --- 3.1.1 valid messages: the fields, one by one -----------------------------------------------------


def test_wsinv_short_tortuous_invite() -> None:
    m = request("wsinv")
    assert m.method == "INVITE"
    assert m.uri.user == "vivekg"
    assert m.uri.host == "chair-dnrc.example.com"
    assert m.uri.params == (("unknownparam", None),)
    to = m.to_addr
    assert to.display is None
    assert str(to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert to.tag == "1918181833n"
    frm = m.from_addr
    assert frm.display == 'J Rosenberg \\"'
    assert frm.uri.user == "jdrosen"
    assert frm.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.content_length == 150
    assert len(m.body) == 150
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    vias = m.vias
    assert [(v.protocol, v.version, v.transport, v.host, v.branch) for v in vias] == [
        ("SIP", "2.0", "UDP", "192.0.2.2", "390skdjuw"),
        ("SIP", "2.0", "TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("SIP", "2.0", "UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("s") == ""
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.content_type == "application/sdp"
    (route,) = m.routes
    assert route.uri.host == "services.example.com"
    assert route.uri.lr
    assert route.uri.params == (("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))
    (contact,) = m.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))


def test_intmeth_wide_range_of_valid_characters() -> None:
    m = request("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to_addr.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to_addr.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    frm = m.from_addr
    assert frm.display == "token1~` token2'+_ token3*%!.-"
    assert frm.param("fromParam''~+*_!.-%") == '"работающий"'
    assert frm.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.cseq.number == 139122385
    assert m.cseq.method == m.method
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_valid_escapes() -> None:
    m = request("esc01")
    assert m.uri.user == "sips:user@example.com"
    assert m.uri.host == "example.net"
    assert str(m.uri) == "sip:sips%3Auser%40example.com@example.net"
    assert m.to_addr.uri.user == "user"
    assert m.from_addr.uri.user == "I have spaces"
    (contact,) = m.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert m.content_type == "application/sdp"  # compact form "C:" (upper case)


def test_escnull_escaped_nulls() -> None:
    m = request("escnull")
    assert m.to_addr.uri.user == "null-\x00-null"
    assert m.from_addr.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert str(m.contacts[1].uri) == "sip:%00%00@host5.example.com"


def test_esc02_percent_that_is_not_an_escape() -> None:
    m = request("esc02")
    assert m.method == "RE%47IST%45R"  # a token, not REGISTER
    assert m.cseq.method == "RE%47IST%45R"
    assert m.to_addr.display == "%Z%45"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"
    # "C%6Fntact" is an unknown header, not Contact.
    assert [c.uri.host for c in m.contacts] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_no_lws_before_angle() -> None:
    m = request("lwsdisp")
    assert m.from_addr.display == "caller"
    assert m.from_addr.uri.user == "caller"
    assert m.from_tag == "323"


def test_longreq_long_values() -> None:
    m = request("longreq")
    to = m.to_addr
    assert to.display is not None
    assert to.display.startswith("I have a user name of extreme")
    assert to.display.endswith("proportion")
    assert to.uri.port == 6000
    assert len(to.uri.params) == 3
    assert to.uri.params[2][1] is None
    assert m.from_addr.uri.user == "amazinglylongcallername" * 5
    assert m.from_tag is not None
    assert len(m.from_tag) > 150
    assert m.call_id.startswith("longreq.one")
    assert m.call_id.endswith("longcallid")
    vias = m.vias
    assert len(vias) == 34
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert vias[-1].received == "192.0.2.5"
    assert vias[-1].branch is not None
    assert m.headers.count("Via") == 34
    assert len(m.body) == 150


def test_dblreq_extra_octets_after_content_length_are_ignored() -> None:
    m = request("dblreq")
    assert m.method == "REGISTER"
    assert m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_dblreq_over_a_stream_is_two_messages() -> None:
    parser = StreamParser()
    parser.receive_data(load("dblreq"))
    first = parser.next_message()
    second = parser.next_message()
    assert isinstance(first, Request)
    assert first.method == "REGISTER"
    assert isinstance(second, Request)
    assert second.method == "INVITE"
    assert len(second.body) == 150


def test_semiuri_semicolons_in_user_part() -> None:
    m = request("semiuri")
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == ()
    assert m.headers.get_list("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_varied_and_unknown() -> None:
    m = request("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_multipart_body_is_kept_byte_for_byte() -> None:
    data = load("mpart01")
    m = request("mpart01")
    assert len(m.body) == 553
    assert data.endswith(m.body)
    assert m.content_type == "multipart/mixed;boundary=7a9cbec02ceef655"
    assert m.top_via.rport_requested
    assert m.top_via.rport is None
    assert m.top_via.port == 5070
    assert m.headers.get("Identity", "").startswith("r5mwreLuyDRYBi")
    assert m.headers.get("Date") == "Sat, 15 Oct 2005 04:44:56 GMT"


def test_unreason_unusual_reason_phrase() -> None:
    m = response("unreason")
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def test_noreason_empty_reason_phrase() -> None:
    m = response("noreason")
    assert m.status == 100
    assert m.reason == ""


# --- the ones with a choice, and the application layer ----------------------------------------------------


def test_badbranch_falls_back_to_rfc2543_matching() -> None:
    m = request("badbranch")
    assert m.top_via.branch == "z9hG4bK"
    key = server_transaction_key(m)
    assert isinstance(key, LegacyServerTransactionKey)
    assert key.call_id == m.call_id
    assert key.method == "OPTIONS"


def test_inv2543_rfc2543_syntax() -> None:
    m = request("inv2543")
    validate_request(m)
    assert m.max_forwards is None  # the proxy adds 70
    assert m.top_via.branch is None
    assert m.from_tag is None
    assert isinstance(server_transaction_key(m), LegacyServerTransactionKey)
    assert m.content_length is None
    assert m.body.startswith(b"v=0")
    assert m.to_addr.param("user") == "phone"  # addr-spec form: a header parameter (RFC 3261 20)
    assert m.record_routes[0].uri.maddr == "ss1.example.com"


def test_zero_max_forwards_is_fine_for_a_uas() -> None:
    m = request("zeromf")
    assert m.max_forwards == 0
    validate_request(m, forwarding=False)


def test_bext01_unsupported_option_tags() -> None:
    m = request("bext01")
    assert unsupported_extensions(m, ()) == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    validate_request(m, supported=["noproxiessupportthis", "nordoanyproxiessupportthis"])
    assert unsupported_extensions(m, (), header="Require") == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]


def test_unknown_schemes_are_opaque() -> None:
    m = request("unksm2")
    assert str(m.to_addr.uri) == "isbn:2983792873"
    assert m.to_addr.uri.opaque == "2983792873"
    assert m.from_addr.uri.scheme == "http"
    assert m.from_addr.tag == "3234233"
    assert m.contacts[0].uri.scheme == "name"
    assert request("unkscm").uri.opaque == "totallyopaquecontent"
    assert request("novelsc").uri.scheme == "soap.beep"


def test_contact_parameters_belong_where_the_brackets_say() -> None:
    (c1,) = request("cparam01").contacts
    assert c1.uri.params == ()
    assert c1.params == (("unknownparam", None),)
    (c2,) = request("cparam02").contacts
    assert c2.uri.params == (("unknownparam", None),)
    assert c2.params == ()
    (c3,) = request("regescrt").contacts
    assert c3.uri.headers == (("Route", "<sip:sip.example.com>"),)


def test_authorization_and_date_are_never_split() -> None:
    m = request("regaut01")
    assert m.headers.get_list("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]
    d = request("baddate")
    assert d.headers.get_list("Date") == ["Fri, 01 Jan 2010 16:00:00 EST"]


def test_bcast_response_parses() -> None:
    m = response("bcast")
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


def test_ncl_and_mcl01_close_a_stream() -> None:
    for name in ("ncl", "mcl01"):
        parser = StreamParser()
        parser.receive_data(load(name))
        with pytest.raises(RemoteProtocolError) as info:
            parser.next_message()
        assert info.value.answer == 400
        assert info.value.close


def test_clerr_over_a_stream_waits_for_more_data() -> None:
    parser = StreamParser()
    parser.receive_data(load("clerr"))
    assert parser.next_message() is None


def test_invalid_start_line_on_a_stream_does_not_desync_it() -> None:
    """badvers has a valid Content-Length: the stream answers 505 and carries on."""
    parser = StreamParser()
    parser.receive_data(load("badvers") + load("lwsdisp"))
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_message()
    assert info.value.answer == 505
    assert not info.value.close
    following = parser.next_message()
    assert isinstance(following, Request)
    assert following.call_id.startswith("lwsdisp.")


def test_valid_server_key_for_magic_cookie_branch() -> None:
    m = request("lwsdisp")
    key = server_transaction_key(m)
    assert key == ServerTransactionKey("z9hG4bKkdjuw", ("funky.example.com", None), "OPTIONS")
