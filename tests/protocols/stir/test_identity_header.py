"""The Identity header (RFC 8224 section 4.1): parsing, serialising, and the errors it raises."""

from __future__ import annotations

import pytest

from protocols.stir import BadIdentityInfo, IdentityHeader, InvalidIdentityHeader, StirError, parse_identity

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9.c2lnbmF0dXJl"
INFO = "https://stir.afc.example.cn/shaken/signer.pem"


def test_serialise_is_token_then_info_alg_ppt() -> None:
    header = IdentityHeader(token=TOKEN, info=INFO, alg="ES256", ppt="shaken")
    assert header.serialise() == f"{TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken"
    assert header.header_line() == f"Identity: {TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken"
    assert header.header_line(compact_name=True) == f"y: {TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken"


def test_round_trip() -> None:
    header = IdentityHeader(TOKEN, INFO, "ES256", "shaken", (("x-tag", "1"), ("flag", None)))
    assert header.serialise() == f"{TOKEN};info=<{INFO}>;alg=ES256;ppt=shaken;x-tag=1;flag"
    assert parse_identity(header.serialise()) == header


def test_whitespace_case_and_order_are_tolerated() -> None:
    parsed = parse_identity(f"  {TOKEN} ;\tPPT = shaken ; ALG=ES256 ;  Info = <{INFO}>  ")
    assert parsed == IdentityHeader(TOKEN, INFO, "ES256", "shaken")


def test_quoted_ppt_is_unquoted() -> None:
    assert parse_identity(f'{TOKEN};info=<{INFO}>;ppt="shaken"').ppt == "shaken"


def test_compact_form_is_recognised() -> None:
    parsed = parse_identity(f"..c2lnbmF0dXJl;info=<{INFO}>;alg=ES256")
    assert parsed.compact
    assert parsed.token == "..c2lnbmF0dXJl"
    assert not parse_identity(f"{TOKEN};info=<{INFO}>").compact


def test_info_uri_may_carry_parameters_and_query() -> None:
    info = "https://cert.example.org/passport.cer;v=1?x=a,b"
    assert parse_identity(f"{TOKEN};info=<{info}>").info == info


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,  # no info
        f"{TOKEN};alg=ES256;ppt=shaken",
        f"{TOKEN};info={INFO}",  # not in angle brackets
        f"{TOKEN};info=<not a uri>",
        f"{TOKEN};info=<{INFO}",
        f"{TOKEN};info=<relative/path>",
        f'{TOKEN};info="{INFO}"',
    ],
)
def test_missing_or_malformed_info_is_436(value: str) -> None:
    with pytest.raises(BadIdentityInfo) as caught:
        parse_identity(value)
    assert caught.value.code == 436
    assert caught.value.reason() == 'STIR;cause=436;text="Bad Identity Info"'


@pytest.mark.parametrize(
    "value",
    [
        "",
        ";info=<https://a.example/c>",
        f"{TOKEN} x;info=<{INFO}>",
        f"{TOKEN};info=<{INFO}>;info=<{INFO}>",
        f"{TOKEN};info=<{INFO}>;alg=ES256;ALG=ES256",
        f"{TOKEN};info=<{INFO}>;alg",
        f"{TOKEN};info=<{INFO}>;ppt=",
        f"{TOKEN};info=<{INFO}>;;ppt=shaken",
        f"{TOKEN};info=<{INFO}>;alg=<https://x.example>",
        f"{TOKEN};info=<{INFO}>;ppt=sha ken",
        f"{TOKEN};info=<{INFO}>,{TOKEN};info=<{INFO}>",  # two headers folded with a comma
        f"{TOKEN};info=<{INFO}>\r\nVia: x",
        "x" * 10_001,
    ],
)
def test_malformed_header_is_438(value: str) -> None:
    with pytest.raises(InvalidIdentityHeader) as caught:
        parse_identity(value)
    assert caught.value.code == 438
    assert isinstance(caught.value, StirError)
