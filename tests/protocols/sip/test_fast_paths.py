"""The one-regex fast paths for common URIs, Vias and parameters agree with the general parsers.

Each fast path handles only a shape the general path also accepts; for every such input both must
give the same value. Hypothesis builds the inputs from the characters each grammar allows.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import RemoteProtocolError
from protocols.sip.headers import (
    _parse_params_general,
    _parse_via_general,
    parse_name_addr,
    parse_name_addr_list,
    parse_params,
    parse_via,
    parse_via_list,
    split_list,
)
from protocols.sip.uri import _fast_sip, _parse_sip, parse_uri

TOKEN = st.text("abcXYZ019-.!%*_+`'~", min_size=1, max_size=8)
USER = st.text("abcXYZ019-_.!~*'()&=+$,", min_size=1, max_size=8)
HOST = st.from_regex(r"[a-z0-9_][a-z0-9_.\-]{0,10}", fullmatch=True)
PARAM_VALUE = st.text("abcXYZ019-_.!~*'()[]/:&+$", min_size=1, max_size=6)
PORT = st.integers(0, 70000)


@st.composite
def uris(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["sip", "sips"])) + ":"
    if draw(st.booleans()):
        text += draw(USER) + "@"
    text += draw(HOST)
    if draw(st.booleans()):
        text += f":{draw(PORT)}"
    for _ in range(draw(st.integers(0, 3))):
        text += ";" + draw(PARAM_VALUE)
        if draw(st.booleans()):
            text += "=" + draw(PARAM_VALUE)
    return text


@given(uris())
def test_fast_uri_path_agrees_with_the_general_one(text: str) -> None:
    fast = _fast_sip(text)
    scheme, _, rest = text.partition(":")
    try:
        general = _parse_sip(scheme, rest)
    except Exception:
        assert fast is None  # the fast path never accepts what the general one refuses
        return
    if fast is not None:
        assert fast == general
        # The fast path keeps the text it parsed and serialises as that: the general URI's own
        # serialisation must be the very same octets.
        assert str(fast) == str(general) == text
    assert parse_uri(text) == general


def test_a_changed_uri_does_not_serialise_as_the_text_it_was_parsed_from() -> None:
    uri = parse_uri("sip:alice@atlanta.example.com:5060;lr")
    assert str(uri.with_param("transport", "tcp")) == "sip:alice@atlanta.example.com:5060;lr;transport=tcp"
    assert str(uri.without_param("lr")) == "sip:alice@atlanta.example.com:5060"


def _outcome(parse: object, value: str) -> object:
    try:
        return parse(value)  # type: ignore[operator]
    except RemoteProtocolError:
        return "refused"


LIST_TEXT = st.text('<>;"=, \tsip:a@b.tag', max_size=30)


@given(LIST_TEXT)
def test_one_element_lines_parse_as_the_split_path_does(value: str) -> None:
    # parse_*_list skip split_list for a line with one element: same elements, same refusals.
    def split_then(parse: object) -> object:
        items = split_list(value)
        if any(not item for item in items):
            raise RemoteProtocolError("Empty list element", answer=400)
        return [parse(item) for item in items]  # type: ignore[operator]

    assert _outcome(parse_name_addr_list, value) == _outcome(lambda _: split_then(parse_name_addr), value)
    via = value.replace("sip:", "SIP/2.0/UDP ")
    assert _outcome(parse_via_list, via) == _outcome(lambda _: split_then(parse_via), via)


@st.composite
def params(draw: st.DrawFn) -> str:
    text = ""
    for _ in range(draw(st.integers(1, 4))):
        text += ";" + draw(TOKEN)
        if draw(st.booleans()):
            text += "=" + draw(st.one_of(TOKEN, st.just("127.0.0.1"), st.just("[::1]")))
    return text


@given(params())
def test_fast_params_path_agrees_with_the_general_one(text: str) -> None:
    assert parse_params(text) == _parse_params_general(text)


@given(st.sampled_from(["UDP", "tcp", "TLS", "SCTP"]), HOST, st.one_of(st.none(), PORT), params())
def test_fast_via_path_agrees_with_the_general_one(transport: str, host: str, port: int | None, rest: str) -> None:
    text = f"SIP/2.0/{transport} {host}" + ("" if port is None else f":{port}") + rest
    try:
        general = _parse_via_general(text)
    except Exception:
        try:
            parse_via(text)
        except Exception:
            return
        raise AssertionError(f"fast path accepted {text!r}") from None
    assert parse_via(text) == general


def test_only_short_texts_are_remembered_by_the_parsers():
    # A peer chooses what it sends: long URIs, name-addrs and Vias are parsed each time, not kept, so
    # that the parsers' memory stays small whatever arrives.
    from protocols.sip.headers import _NAME_ADDR_MEMO, _VIA_MEMO, parse_name_addr, parse_via
    from protocols.sip.uri import _URI_MEMO, MEMO_MAX, parse_uri

    long_user = "u" * (MEMO_MAX + 10)
    cases = (
        (parse_uri, _URI_MEMO, f"sip:{long_user}@example.com", "sip:short@example.com"),
        (parse_name_addr, _NAME_ADDR_MEMO, f"<sip:{long_user}@example.com>;tag=1", "<sip:a@b.example>;tag=2"),
        (parse_via, _VIA_MEMO, f"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{long_user}", "SIP/2.0/UDP h.example"),
    )
    for parse, memo, long_text, short_text in cases:
        before = len(memo)
        assert parse(long_text) == parse(long_text)
        assert len(memo) == before
        parse(short_text)
        assert parse(short_text) is parse(short_text)


def test_the_parsers_remember_a_bounded_number_of_texts():
    from protocols.sip.headers import _VIA_MEMO, parse_via
    from protocols.sip.uri import MEMO_KEPT

    for n in range(MEMO_KEPT + 10):
        via = parse_via(f"SIP/2.0/UDP h.example;branch=z9hG4bK{n}")
        assert via.branch == f"z9hG4bK{n}"
        assert 0 < len(_VIA_MEMO) <= MEMO_KEPT
