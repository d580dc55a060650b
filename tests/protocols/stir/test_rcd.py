"""Rich Call Data (RFC 9795): rcd shapes, rcdi digests and JSON pointers."""

from __future__ import annotations

import base64
import hashlib

import pytest

from protocols.stir import InvalidIdentityHeader, Rcd
from protocols.stir.rcd import check_rcdi, parse_rcd, parse_rcdi, rcdi_digest, resolve_pointer

ICON = "https://afc.example/icons/police.png"


def test_digest_is_sri_style_standard_base64() -> None:
    digest = rcdi_digest(b"icon bytes")
    assert digest == "sha256-" + base64.b64encode(hashlib.sha256(b"icon bytes").digest()).decode()
    assert rcdi_digest(b"x", "sha384").startswith("sha384-")


def test_pointers_follow_rfc_6901() -> None:
    document = {"a/b": {"m~n": ["x", "y"]}, "": 1}
    assert resolve_pointer(document, "/a~1b/m~0n/1") == "y"
    assert resolve_pointer(document, "/") == 1
    assert resolve_pointer(document, "") is document
    for bad in ("/a~1b/m~0n/01", "/a~1b/m~0n/2", "/missing", "/a~1b/m~0n/-"):
        with pytest.raises(InvalidIdentityHeader):
            resolve_pointer(document, bad)


def test_check_rcdi_verifies_held_content_and_skips_the_rest() -> None:
    rcd = Rcd.build("公安反诈专号", icn=ICON)
    rcdi = parse_rcdi({"/icn": rcdi_digest(b"badge")})
    assert check_rcdi(rcd, rcdi, {ICON: b"badge"}) == {ICON}
    assert check_rcdi(rcd, rcdi, {}) == frozenset()
    with pytest.raises(InvalidIdentityHeader, match="does not match"):
        check_rcdi(rcd, rcdi, {ICON: b"other"})


def test_every_url_needs_a_digest_once_rcdi_is_present() -> None:
    rcd = parse_rcd({"nam": "公安反诈专号", "icn": ICON, "jcl": "https://afc.example/card.json"})
    with pytest.raises(InvalidIdentityHeader, match="no digest for /jcl"):
        check_rcdi(rcd, parse_rcdi({"/icn": rcdi_digest(b"badge")}), {})


def test_digest_of_an_object_is_over_its_canonical_json() -> None:
    rcd = parse_rcd({"nam": "x", "jcd": ["vcard", [["fn", {}, "text", "x"]]]})
    digest = rcdi_digest(b'["vcard",[["fn",{},"text","x"]]]')
    assert check_rcdi(rcd, parse_rcdi({"/jcd": digest}), {}) == frozenset()


@pytest.mark.parametrize(
    "value",
    [{}, [], {"/icn": 5}, {"icn": "sha256-AAAA"}, {"/icn": "md5-AAAA"}, {"/icn": "sha256-!!"}, {"/icn": "sha256-AAAA"}],
)
def test_malformed_rcdi_is_438(value: object) -> None:
    with pytest.raises(InvalidIdentityHeader):
        parse_rcdi(value)


@pytest.mark.parametrize(
    "value",
    [{"nam": ""}, {"nam": " "}, {"nam": 5}, {}, {"nam": "a\nb"}, {"nam": "x" * 300}, {"nam": "x", "icn": 1}],
)
def test_malformed_rcd_is_438(value: object) -> None:
    with pytest.raises(InvalidIdentityHeader):
        parse_rcd(value)
