"""Digest authentication grammar and arithmetic (RFC 2617), and the fuzz invariant of the parsers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import RemoteProtocolError
from protocols.sip.digest import (
    Challenge,
    authorization,
    challenge,
    expected_response,
    ha1,
    parse_challenge,
    parse_credentials,
)

# RFC 2617 3.5: the worked example ("Mufasa" / "Circle Of Life"), response 6629fae4...
RFC2617_EXAMPLE = (
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_the_rfc_2617_example_verifies():
    credentials = parse_credentials(RFC2617_EXAMPLE)
    assert (credentials.username, credentials.qop, credentials.nc) == ("Mufasa", "auth", "00000001")
    secret = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert expected_response(credentials, "GET", secret) == credentials.response


def test_a_challenge_round_trips_and_is_answered():
    value = challenge("afgw", "n1", opaque="o", stale=True)
    assert parse_challenge(value) == Challenge("afgw", "n1", opaque="o", qop=("auth",), stale=True)
    answer = authorization(
        parse_challenge(value), username="u", password="p", method="REGISTER", uri="sip:a", cnonce="c"
    )
    credentials = parse_credentials(answer)
    assert expected_response(credentials, "REGISTER", ha1("u", "afgw", "p")) == credentials.response


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "NoOneKnowsThisScheme opaque-data=here",
        'Digest username="a", realm="r"',  # nonce, uri, response missing
        'Digest username="a, realm="r", nonce="n", uri="u", response="x"',  # unterminated quote
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',  # no nc/cnonce
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth-int, nc=00000001, cnonce="c"',
    ],
)
def test_malformed_or_foreign_credentials_are_remote_errors(value):
    with pytest.raises(RemoteProtocolError):
        parse_credentials(value)


@given(st.text(max_size=200))
def test_parsers_either_parse_or_raise_remote_protocol_error(text):
    for parse in (parse_credentials, parse_challenge):
        with contextlib.suppress(RemoteProtocolError):
            parse(text)
        with contextlib.suppress(RemoteProtocolError):
            parse("Digest " + text)
