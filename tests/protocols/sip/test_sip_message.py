"""URIs, header grammar, the Headers container, messages and the parser's framing and limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip import (
    Headers,
    ParseLimits,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamParser,
    Via,
    canonical_name,
    create_response,
    hosts_equal,
    is_keepalive,
    parse_cseq,
    parse_message,
    parse_name_addr,
    parse_params,
    parse_uri,
    parse_via,
    split_list,
    users_equal,
    validate_request,
)

# --- URIs --------------------------------------------------------------------------------------------


def test_sip_uri_parts() -> None:
    uri = parse_uri("sips:alice:secret@[2001:DB8::1]:5061;transport=tcp;lr?subject=project%20x&priority=urgent")
    assert uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == ("alice", "secret", "[2001:DB8::1]", 5061)
    assert uri.params == (("transport", "tcp"), ("lr", None))
    assert uri.transport == "tcp"
    assert uri.lr
    assert uri.host_unbracketed == "2001:DB8::1"
    assert uri.headers == (("subject", "project x"), ("priority", "urgent"))
    assert str(uri) == "sips:alice:secret@[2001:DB8::1]:5061;transport=tcp;lr?subject=project%20x&priority=urgent"


def test_escapes_are_decoded_and_re_escaped() -> None:
    uri = parse_uri("sip:%61lice%3b%20x@example.com;n%61me=v%25")
    assert uri.user == "alice; x"
    assert uri.params == (("name", "v%"),)
    assert str(uri) == "sip:alice;%20x@example.com;name=v%25"
    assert parse_uri(str(uri)) == uri


def test_tel_and_opaque_uris() -> None:
    tel = parse_uri("tel:+86-10-1234-5678;phone-context=example.com")
    assert tel.scheme == "tel"
    assert tel.user == "+86-10-1234-5678"
    assert tel.host == ""
    assert tel.param("phone-context") == "example.com"
    assert str(tel) == "tel:+86-10-1234-5678;phone-context=example.com"
    urn = parse_uri("URN:service:sos")
    assert urn.scheme == "urn"
    assert urn.opaque == "service:sos"
    assert str(urn) == "urn:service:sos"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@example.com",
        "sip:user@",
        "sip:user@exa mple.com",
        "sip:user@example.com:99999",
        "sip:user@example.com:",
        "sip:user@[::1",
        "sip:user@[zz::1]",
        "sip:user@example.com;=x",
        "sip:user@example.com;a;;b",
        "sip:us%zzer@example.com",
        "sip:user@example.com?noequals",
        "<sip:user@example.com>",
        "1sip:x",
        "sip:user@example.com ",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_uri(text)
    assert info.value.answer == 400


def test_uri_comparison_rfc3261_19_1_4() -> None:
    # Equivalent.
    assert parse_uri("sip:%61lice@atlanta.com;transport=TCP").matches(parse_uri("sip:alice@AtLanTa.CoM;Transport=tcp"))
    assert parse_uri("sip:carol@chicago.com").matches(parse_uri("sip:carol@chicago.com;newparam=5"))
    assert parse_uri("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com").matches(
        parse_uri("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
    )
    # Not equivalent.
    assert not parse_uri("SIP:ALICE@AtLanTa.CoM;Transport=udp").matches(
        parse_uri("sip:alice@AtLanTa.CoM;Transport=UDP")
    )
    assert not parse_uri("sip:bob@biloxi.com").matches(parse_uri("sip:bob@biloxi.com:5060"))
    assert not parse_uri("sip:bob@biloxi.com").matches(parse_uri("sips:bob@biloxi.com"))
    assert not parse_uri("sip:carol@chicago.com;security=on").matches(parse_uri("sip:carol@chicago.com;security=off"))
    assert not parse_uri("sip:carol@chicago.com").matches(parse_uri("sip:carol@chicago.com;maddr=192.0.2.1"))


def test_user_and_host_helpers() -> None:
    a = parse_uri("sip:Alice@EXAMPLE.com")
    assert hosts_equal(a, parse_uri("sip:bob@example.COM"))
    assert not users_equal(a, parse_uri("sip:alice@example.com"))
    assert users_equal(a, parse_uri("sip:%41lice@example.com"))
    assert hosts_equal(parse_uri("sip:[2001:db8::1]"), parse_uri("sip:[2001:DB8:0::1]"))


def test_uri_builders() -> None:
    uri = SipUri(user="+8613800138000", host="gw.example.com").with_param("user", "phone")
    assert str(uri) == "sip:+8613800138000@gw.example.com;user=phone"
    assert uri.without_param("USER").params == ()
    assert uri.effective_port == 5060


# --- header grammar ----------------------------------------------------------------------------------


def test_compact_forms() -> None:
    expected = {
        "i": "Call-ID",
        "m": "Contact",
        "f": "From",
        "t": "To",
        "v": "Via",
        "l": "Content-Length",
        "c": "Content-Type",
        "k": "Supported",
        "s": "Subject",
        "e": "Content-Encoding",
        "o": "Event",
        "u": "Allow-Events",
        "r": "Refer-To",
        "x": "Session-Expires",
        "y": "Identity",
    }
    for short, full in expected.items():
        assert canonical_name(short) == full
        assert canonical_name(short.upper()) == full
    assert canonical_name("cSEQ") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Custom") == "X-Custom"


def test_split_list_respects_quotes_and_brackets() -> None:
    value = '"Watson, Thomas" <sip:t@example.org;x="a,b">;q=0.5 , <sip:b@example.org?h=1,2>,sip:c@d'
    assert split_list(value) == [
        '"Watson, Thomas" <sip:t@example.org;x="a,b">;q=0.5',
        "<sip:b@example.org?h=1,2>",
        "sip:c@d",
    ]
    assert split_list('a, "b\\", c", d') == ["a", '"b\\", c"', "d"]


def test_headers_that_are_not_lists_are_never_split() -> None:
    headers = Headers(
        [
            ("WWW-Authenticate", 'Digest realm="a, b", nonce="x", qop="auth,auth-int"'),
            ("Authorization", 'Digest username="bob", uri="sip:a"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Identity", "eyJ.x,y.z;info=<https://cert.example.org/c.pem>"),
            ("Allow", "INVITE, ACK,OPTIONS"),
        ]
    )
    for name in ("WWW-Authenticate", "Authorization", "Date", "Identity"):
        assert headers.get_list(name) == headers.get_all(name)
    assert headers.get_list("allow") == ["INVITE", "ACK", "OPTIONS"]


def test_name_addr_forms() -> None:
    a = parse_name_addr('"Bob \\"B\\" Smith" <sip:bob@example.com;transport=tcp>;tag=abc;expires=60')
    assert a.display == 'Bob "B" Smith'
    assert a.uri.transport == "tcp"
    assert a.tag == "abc"
    assert a.param("EXPIRES") == "60"
    assert parse_name_addr(str(a)) == a
    b = parse_name_addr("Anonymous  Caller <sip:anonymous@anonymous.invalid>")
    assert b.display == "Anonymous  Caller"
    c = parse_name_addr("sip:+8613800138000@example.com;tag=x")
    assert c.display is None
    assert c.uri.params == ()
    assert c.tag == "x"
    d = parse_name_addr('"" <sip:a@b>')
    assert d.display == ""
    for bad in [
        '"unterminated <sip:a@b>',
        "<sip:a@b",
        "Bell, Alexander <sip:a@b>",
        "sip:a@b?x=y",
        "< sip:a@b >",
    ]:
        with pytest.raises(RemoteProtocolError):
            parse_name_addr(bad)


def test_via_forms() -> None:
    v = parse_via("SIP / 2.0 / udp 192.0.2.1 : 5060 ;branch=z9hG4bK1;rport;received=192.0.2.9")
    assert (v.protocol, v.version, v.transport, v.host, v.port) == ("SIP", "2.0", "UDP", "192.0.2.1", 5060)
    assert v.branch == "z9hG4bK1"
    assert v.received == "192.0.2.9"
    assert v.rport_requested
    assert v.rport is None
    v2 = parse_via("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK2;rport=40000;received=2001:db8::10")
    assert v2.host == "[2001:db8::9]"
    assert v2.port == 5070
    assert v2.rport == 40000
    assert v2.received == "2001:db8::10"
    assert str(v2.with_param("received", "192.0.2.4")).endswith(";rport=40000;received=192.0.2.4")
    assert parse_via(str(v)) == v
    for bad in [
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP h:x",
    ]:
        if bad == "SIP/2.0/UDP host;branch":
            assert parse_via(bad).branch is None  # valueless parameter: legal grammar
            continue
        with pytest.raises(RemoteProtocolError):
            parse_via(bad)


def test_cseq_range() -> None:
    assert parse_cseq("2147483647 INVITE").number == 2**31 - 1
    assert parse_cseq(" 0 ACK ").number == 0
    for bad in [
        "2147483648 INVITE",
        "-1 INVITE",
        "1",
        "1 INVITE x",
        "x INVITE",
        "36893488147419103232 REGISTER",
    ]:
        with pytest.raises(RemoteProtocolError):
            parse_cseq(bad)


def test_params() -> None:
    assert parse_params(' ; a = 1 ;b; c="x;y"') == (("a", "1"), ("b", None), ("c", '"x;y"'))
    assert parse_params("") == ()
    with pytest.raises(RemoteProtocolError):
        parse_params(";a=")


# --- the Headers container ---------------------------------------------------------------------------


def test_headers_container() -> None:
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"), ("To", "<sip:x@y>")])
    h.add("Via", "SIP/2.0/UDP c;branch=z9hG4bK3")
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"
    assert len(h.get_list("via")) == 3
    assert h.count("v") == 2
    h.insert("Via", "SIP/2.0/UDP proxy;branch=z9hG4bK0")
    assert [name for name, _ in h] == ["Via", "Via", "To", "Via"]
    assert h.pop_first("Via") == "SIP/2.0/UDP proxy;branch=z9hG4bK0"
    assert h.pop_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get("Via") == "SIP/2.0/UDP b;branch=z9hG4bK2"
    h.set("to", "<sip:z@y>")
    assert h.get_all("To") == ["<sip:z@y>"]
    assert "t" in h
    assert "Route" not in h
    assert h.remove("Via") == 2
    assert "Via" not in h
    assert h.pop_first("Via") is None
    assert h == Headers([("TO", "<sip:z@y>")])


def test_pop_first_takes_a_whole_one_element_line_and_refuses_a_broken_one() -> None:
    h = Headers(
        [("Route", "<sip:p1;lr>"), ("Route", "<sip:p2;lr>, <sip:p3;lr>"), ("Via", "SIP/2.0/UDP a ;branch=z9hG4bK1")]
    )
    assert h.pop_first("Route") == "<sip:p1;lr>"
    assert h.pop_first("Route") == "<sip:p2;lr>"
    assert h.get_all("Route") == ["<sip:p3;lr>"]
    assert h.pop_first("Via") == "SIP/2.0/UDP a ;branch=z9hG4bK1"  # a line of one element goes as it is
    with pytest.raises(RemoteProtocolError):
        Headers([("Route", "<sip:p1;lr")]).pop_first("Route")


# --- messages ---------------------------------------------------------------------------------------


def sample_request(body: bytes = b"") -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa"),
            ("From", "<sip:a@example.com>;tag=1"),
            ("To", "<sip:b@example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 MESSAGE"),
            ("Content-Length", "999"),
        ]
    )
    return Request("MESSAGE", parse_uri("sip:b@example.com"), headers, body)


def test_serialise_recomputes_content_length() -> None:
    request = sample_request("你好".encode())
    data = request.serialise()
    assert b"\r\nContent-Length: 6\r\n\r\n" in data
    assert data.endswith("你好".encode())
    again = parse_message(data)
    assert isinstance(again, Request)
    assert again.body == "你好".encode()
    request.headers.remove("Content-Length")
    assert request.serialise().endswith(b"Content-Length: 6\r\n\r\n" + "你好".encode())


def test_serialise_refuses_header_injection() -> None:
    request = sample_request()
    request.headers.add("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(LocalProtocolError):
        request.serialise()
    with pytest.raises(LocalProtocolError):
        Response(200, "OK\r\nX: y").serialise()


@pytest.mark.parametrize(
    ("name", "value"),
    [("Subject", "hi\r\nVia: SIP/2.0/UDP evil"), ("Subject", "hi\nX: y"), ("Subject", "hi\r"), ("X:Y", "z"), ("", "z")],
)
def test_a_message_framed_right_still_refuses_header_injection(name: str, value: str) -> None:
    # Content-Length already right: the serialiser's quick path, which checks the joined head at once.
    request = sample_request()
    request.headers.set("Content-Length", "0")
    request.serialise()
    request.headers.add(name, value)
    with pytest.raises(LocalProtocolError):
        request.serialise()


def _parsed_request() -> Request:
    request = parse_message(sample_request().serialise())
    assert isinstance(request, Request)
    return request


@pytest.mark.parametrize("value", ["hi\r\nVia: SIP/2.0/UDP evil", "hi\nX: y", "hi\r"])
@pytest.mark.parametrize(
    "write",
    [
        lambda h, v: h.add("Subject", v),
        lambda h, v: h.insert("Subject", v),
        lambda h, v: h.set("Subject", v),
        lambda h, v: h.set("To", v),
        lambda h, v: h.insert("Via", v),
    ],
)
def test_a_parsed_message_refuses_a_header_written_later_with_cr_or_lf(
    write: Callable[[Headers, str], None], value: str
) -> None:
    # A parsed message's values are known clean, and serialise scans the head only once a value
    # written after the parse could hold a CR or LF: every way of writing one must say so.
    request = _parsed_request()
    request.serialise()
    write(request.headers, value)
    with pytest.raises(LocalProtocolError):
        request.serialise()
    copied = request.headers.copy()
    copied.remove("Max-Forwards")
    with pytest.raises(LocalProtocolError):
        Request(request.method, request.uri, copied).serialise()


def test_a_via_with_cr_or_lf_put_in_place_is_refused_on_serialising() -> None:
    for place in (Request.replace_top_via, Request.push_via):
        request = _parsed_request()
        place(request, Via("UDP", "evil\r\nX: y", 5060))
        with pytest.raises(LocalProtocolError):
            request.serialise()


def test_headers_built_from_fields_with_cr_or_lf_are_refused_on_serialising() -> None:
    request = _parsed_request()
    request.headers = Headers([*request.headers.fields(), ("Subject", "a\nb")])
    with pytest.raises(LocalProtocolError):
        request.serialise()
    request.headers = Headers.of_items([("subject", "Subject", "a\rb")])
    with pytest.raises(LocalProtocolError):
        request.serialise()


def test_accessors_follow_the_headers_as_they_change() -> None:
    request = sample_request()
    assert request.top_via.branch == "z9hG4bKa"
    assert request.to_tag is None
    copy = request.headers.copy()
    request.headers.insert("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKb")
    assert request.top_via.branch == "z9hG4bKb"
    assert request.headers.pop_first("Via") == "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKb"
    assert request.top_via.branch == "z9hG4bKa"
    request.headers.set("To", "<sip:b@example.com>;tag=9")
    assert request.to_tag == "9"
    request.headers.remove("To")
    with pytest.raises(RemoteProtocolError):
        _ = request.to_tag
    request.headers.add("To", "<sip:b@example.com>;tag=8")
    assert request.to_tag == "8"
    assert request.headers.remove_value("To", "<sip:b@example.com>;tag=8")
    assert "To" not in request.headers
    assert request.max_forwards is None
    request.headers.add("Max-Forwards", "7")
    assert request.max_forwards == 7
    # The copy taken before the changes reads what it holds, before and after its own change.
    before = Request("MESSAGE", request.uri, copy)
    assert before.top_via.branch == "z9hG4bKa"
    assert before.to_tag is None
    copy.pop_first("Via")
    with pytest.raises(RemoteProtocolError):
        _ = before.top_via


def test_accessors_answer_400_on_requests_and_none_on_responses() -> None:
    request = sample_request()
    request.headers.set("CSeq", "abc MESSAGE")
    with pytest.raises(RemoteProtocolError) as info:
        _ = request.cseq
    assert info.value.answer == 400
    response = create_response(request, 200)
    with pytest.raises(RemoteProtocolError) as info:
        _ = response.cseq
    assert info.value.answer is None


def test_create_response_copies_and_tags() -> None:
    request = sample_request()
    response = create_response(request, 486, to_tag="xyz")
    assert response.reason == "Busy Here"
    assert response.to_tag == "xyz"
    assert response.from_tag == "1"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert create_response(response.headers, 200, to_tag="other").to_tag == "xyz"


def test_max_forwards() -> None:
    request = sample_request()
    assert request.max_forwards is None
    request.headers.set("Max-Forwards", "300")
    with pytest.raises(RemoteProtocolError):
        _ = request.max_forwards
    request.headers.set("Max-Forwards", "00070")
    assert request.max_forwards == 70


def test_validate_request_content_length_and_contact() -> None:
    request = sample_request(b"abc")
    with pytest.raises(RemoteProtocolError) as info:
        validate_request(request)
    assert info.value.answer == 400
    request.headers.set("Content-Length", "3")
    validate_request(request)
    request.headers.add("Contact", "*")
    assert request.contact_is_wildcard
    assert request.contacts == []
    validate_request(request)


# --- framing and limits ------------------------------------------------------------------------------


def test_udp_without_content_length_takes_the_rest() -> None:
    data = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\r\nhello\r\n"
    message = parse_message(data)
    assert message.body == b"hello\r\n"


def test_leading_crlf_is_skipped_and_keepalives_recognised() -> None:
    assert isinstance(parse_message(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n"), Request)
    assert is_keepalive(b"\r\n\r\n")
    assert is_keepalive(b"")
    assert not is_keepalive(b"\r\nx")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(b"\r\n\r\n")
    assert info.value.answer is None


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\n", 400),  # no blank line
        (b"OPTIONS sip:a@b SIP/2.0\r\n folded-first: x\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/3.0\r\n\r\n", 505),
        (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", 400),
        (b"OPT(ONS sip:a@b SIP/2.0\r\n\r\n", 400),
        (b"SIP/2.0 99 Too Low\r\n\r\n", None),
        (b"SIP/2.0 700 Too High\r\n\r\n", None),
        (b"SIP/2.0 2000 OK\r\n\r\n", None),
        (b"SIP/3.0 200 OK\r\n\r\n", None),
        (b"SIP/2.0 200 OK\r\nl: 10\r\n\r\nshort", None),
    ],
)
def test_malformed_datagrams(data: bytes, answer: int | None) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.answer == answer


def test_limits() -> None:
    limits = ParseLimits(max_message_size=200, max_headers=3, max_line_length=40)
    big = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n" + b"x" * 300
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(big, limits)
    assert info.value.answer == 513
    many = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: 1\r\n" * 4 + b"\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(many, limits)
    assert info.value.answer == 400
    long_line = b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"y" * 50 + b"\r\n\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(long_line, limits)
    assert info.value.answer == 400
    folded = b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"y" * 30 + b"\r\n " + b"z" * 30 + b"\r\n\r\n"
    with pytest.raises(RemoteProtocolError):
        parse_message(folded, limits)


def test_stream_limits_close_the_connection() -> None:
    parser = StreamParser(ParseLimits(max_message_size=100))
    parser.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_message()
    assert info.value.answer == 513
    assert info.value.close
    with pytest.raises(RemoteProtocolError):
        parser.next_message()  # the stream stays failed
    endless = StreamParser(ParseLimits(max_message_size=100))
    endless.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 20)
    with pytest.raises(RemoteProtocolError) as info:
        endless.next_message()
    assert info.value.answer == 513
    assert info.value.close


def test_stream_requires_content_length_and_counts_pings() -> None:
    parser = StreamParser()
    for byte in b"\r\n\r\n\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nok\r\n\r\n":
        parser.receive_data(bytes([byte]))
        message = parser.next_message()
        if message is not None:
            assert message.body == b"ok"
    assert parser.keepalive_pings == 3
    assert parser.buffered == 0
    parser.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_message()
    assert info.value.answer == 400
    assert info.value.close


def test_remove_value_takes_out_one_line_and_keeps_the_order_of_the_rest():
    from protocols.sip import Headers

    headers = Headers(
        [("Via", "v"), ("Proxy-Authorization", "a"), ("To", "t"), ("Proxy-Authorization", "b"), ("X-Other", "a")]
    )
    assert headers.remove_value("proxy-authorization", "b")
    assert not headers.remove_value("Proxy-Authorization", "missing")
    assert [(n, v) for n, v in headers] == [("Via", "v"), ("Proxy-Authorization", "a"), ("To", "t"), ("X-Other", "a")]


_TWO_MESSAGES = (
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello"
    b"\r\n\r\n"  # a keep-alive ping between the two
    b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\nl: 3\r\n\r\nbye"
)


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(_TWO_MESSAGES)), max_size=8))
def test_a_stream_is_partial_exactly_while_a_message_is_begun_and_not_complete(cuts: list[int]) -> None:
    """What the transport's slowloris deadline relies on, however the bytes are split."""
    first_end = _TWO_MESSAGES.index(b"hello") + 5
    second_start = _TWO_MESSAGES.index(b"MESSAGE")
    parser = StreamParser()
    done = 0
    previous = 0
    for cut in [*sorted(cuts), len(_TWO_MESSAGES)]:
        parser.receive_data(_TWO_MESSAGES[previous:cut])
        previous = cut
        while parser.next_message() is not None:
            done += 1
        begun = 0 < cut < first_end or second_start < cut < len(_TWO_MESSAGES)
        assert parser.partial is begun, cut
        assert done == (cut >= first_end) + (cut == len(_TWO_MESSAGES))


HEADS = [
    "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nSubject: hi",
    "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nSubject: hi\r\n there\r\nTo: <sip:a@b>",
    "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nSubject: hi\r\n\tthere",
    "INVITE sip:a@b SIP/2.0\r\n Subject: folded first",
    "INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\nSubject: a\r\n b",
    "INVITE sip:a@b SIP/2.0\r\nSubject: a\r\n b\r\nBad Name: x",
    "INVITE sip:a@b SIP/2.0\r\nSubject: a\rb",
    "INVITE sip:a@b SIP/2.0\r\nSubject: a\nb",
    "INVITE sip:a@b SIP/2.0\r\nSubject: a\r\r\nTo: <sip:a@b>",
    "INVITE sip:a@b\r SIP/2.0\r\nTo: <sip:a@b>",
    "SIP/2.0 200 OK\r\nvia : SIP/2.0/UDP h\r\nv:SIP/2.0/UDP g\r\nCONTENT-LENGTH:  0 ",
    "SIP/2.0 200 OK\r\nNo colon here",
    "SIP/2.0 200 OK\r\n: no name",
]


@pytest.mark.parametrize("head", HEADS)
def test_the_usual_head_path_reads_as_the_line_by_line_one(head: str) -> None:
    # _read_head takes a quicker path for the usual head; whatever it is given, it must give the
    # fields the line-by-line path gives, or refuse with the same error.
    from protocols.sip.parser import DEFAULT_LIMITS, SipParseError, _read_head, _read_lines

    def outcome(read: Callable[[], object]) -> object:
        try:
            result = read()
        except SipParseError as exc:
            return (str(exc), exc.answer, exc.close)
        return (result.start, result.headers.fields())  # type: ignore[attr-defined]

    lines = head.split("\r\n")
    quick = outcome(lambda: _read_head(head.encode(), DEFAULT_LIMITS))
    assert quick == outcome(lambda: _read_lines(lines, DEFAULT_LIMITS, not head.startswith("SIP/")))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Call-ID", "call-id"),
        ("CSeq", "cseq"),
        ("Via", "via"),
        ("From", "from"),
        ("To", "to"),
        ("Max-Forwards", "max-forwards"),
        ("Contact", "contact"),
        ("Content-Length", "content-length"),
    ],
)
def test_the_lookup_keys_the_accessors_use_are_those_of_the_names(name: str, key: str) -> None:
    from protocols.sip.message import _header_key

    assert _header_key(name)[0] == key
    compact = {"Call-ID": "i", "Via": "v", "From": "f", "To": "t", "Contact": "m", "Content-Length": "l"}
    headers = Headers([(compact.get(name, name.upper()), "x")])
    assert headers._first(key) == headers.get(name) == "x"
    assert headers._all(key) == headers.get_all(name) == ["x"]


@pytest.mark.parametrize("code", ["2OO", "20", "2000", "٢٠٠", "+20", " 200"])
def test_a_status_code_must_be_three_ascii_digits(code: str) -> None:
    data = f"SIP/2.0 {code} OK\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(SipParseError):
        parse_message(data)


@pytest.mark.parametrize("method", ["INV(TE", "INVITE\x7f", "ÎNVITE"])
def test_a_method_must_be_a_token_however_often_it_comes(method: str) -> None:
    data = f"{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n".encode()
    for _ in range(2):
        with pytest.raises(SipParseError, match="Malformed method"):
            parse_message(data)
    assert isinstance(parse_message(data.replace(method.encode(), b"INVITE", 1)), Request)
