"""PASSporT encoding and decoding (RFC 8225): canonical JSON, strict base64url, ES256 as r || s."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from protocols.stir import (
    InvalidIdentityHeader,
    PassportHeader,
    Rcd,
    decode_passport,
    encode_passport,
    parse_claims,
    verify_signature,
)
from protocols.stir.issue import new_key
from protocols.stir.jose import b64url_decode, b64url_encode, canonical_json
from protocols.stir.passport import shaken_claims

X5U = "https://stir.afc.example.cn/shaken/signer.pem"


def _claims() -> dict[str, object]:
    return shaken_claims(
        orig="8696110",
        dest=["8613800000001"],
        iat=1800000000,
        attest="A",
        origid="b8a8ad5c",
        rcd=Rcd.build("公安反诈专号"),
        crn="反诈预警劝阻",
    )


def test_canonical_json_sorts_members_and_drops_whitespace() -> None:
    assert canonical_json({"orig": {"tn": "1"}, "attest": "A", "dest": {"tn": ["2"]}, "iat": 3}) == (
        b'{"attest":"A","dest":{"tn":["2"]},"iat":3,"orig":{"tn":"1"}}'
    )
    # UTF-8 as is, no \\u escapes, and '/' unescaped (RFC 8225 section 9)
    assert canonical_json({"rcd": {"nam": "公安反诈专号", "icn": "https://a/b"}}) == (
        '{"rcd":{"icn":"https://a/b","nam":"公安反诈专号"}}'.encode()
    )


def test_signed_token_is_canonical_header_claims_and_raw_signature() -> None:
    key = new_key()
    token = encode_passport(PassportHeader(x5u=X5U), _claims(), key)
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert b64url_decode(header_b64, "h") == (
        b'{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://stir.afc.example.cn/shaken/signer.pem"}'
    )
    assert b64url_decode(claims_b64, "c").decode() == (
        '{"attest":"A","crn":"反诈预警劝阻","dest":{"tn":["8613800000001"]},"iat":1800000000,'
        '"orig":{"tn":"8696110"},"origid":"b8a8ad5c","rcd":{"nam":"公安反诈专号"}}'
    )
    signature = b64url_decode(signature_b64, "s")
    assert len(signature) == 64  # r || s, 32 octets each (RFC 7518 section 3.4), not DER
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.public_key().verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))


def test_decode_then_verify_round_trip() -> None:
    key = new_key()
    passport = decode_passport(encode_passport(PassportHeader(x5u=X5U), _claims(), key))
    verify_signature(passport, key.public_key())
    assert passport.header == PassportHeader(alg="ES256", ppt="shaken", typ="passport", x5u=X5U)
    claims = parse_claims(passport.claims)
    assert (claims.orig_tn, claims.dest_tns, claims.iat, claims.attest) == (
        "8696110",
        ("8613800000001",),
        1800000000,
        "A",
    )
    assert claims.rcd is not None
    assert claims.rcd.nam == "公安反诈专号"
    assert claims.crn == "反诈预警劝阻"
    with pytest.raises(InvalidIdentityHeader, match="signature does not verify"):
        verify_signature(passport, new_key().public_key())


def _token(header: bytes, claims: bytes, signature: bytes = b"\x01" * 64) -> str:
    return ".".join(b64url_encode(part) for part in (header, claims, signature))


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "..c2ln",  # compact form where the full form is needed
        _token(b'{"alg":"ES256"}', b"[1]"),  # claims not an object
        _token(b'{"alg":"ES256","alg":"none"}', b"{}"),  # duplicate member
        _token(b'{"alg":"ES256"}', b'{"iat":NaN}'),
        _token(b'{"alg":"ES256"}', b'{"iat":1'),
        _token(b'{"alg":5}', b"{}"),
        _token(b'{"typ":"passport"}', b"{}"),  # no alg
        _token(b"\xff\xfe", b"{}"),
        _token(b'{"alg":"ES256"}', b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")[:9000],
        "eyJhbGciOiJFUzI1NiJ9=.e30.c2ln",  # padding
        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln+",  # not the URL alphabet
        "eyJhbGciOiJFUzI1NiJ9.e31.c2ln",  # non-zero trailing bits: a second spelling of "{}"
        "eyJhbGciOiJFUzI1NiJ9.e30.c2lux",  # impossible length
    ],
)
def test_malformed_tokens_are_438(token: str) -> None:
    with pytest.raises(InvalidIdentityHeader):
        decode_passport(token)


def test_deeply_nested_json_is_438_not_recursion_error() -> None:
    header = b64url_encode(b'{"alg":"ES256"}')
    nested = b64url_encode(b"[" * 5000 + b"]" * 5000)
    with pytest.raises(InvalidIdentityHeader):
        decode_passport(f"{header}.{nested}.AAAA")


def test_libstirshaken_style_string_claims_are_438() -> None:
    claims = {"attest": "A", "dest": '{"tn":"01256500600"}', "iat": 1603458131, "orig": '{"tn":"01256789999"}'}
    with pytest.raises(InvalidIdentityHeader, match="orig is not a JSON object"):
        parse_claims({**claims, "origid": "ref"})


def test_json_helpers_are_strict() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8", "x") == b"\xfb\xff"
    assert json.loads(base64.urlsafe_b64decode("e30=")) == {}


def test_signer_refuses_what_is_not_a_number() -> None:
    from protocols.errors import LocalProtocolError
    from protocols.stir import Signer

    with pytest.raises(LocalProtocolError, match="cannot sign"):
        Signer(new_key(), X5U).sign(orig="police", dest="13800000001", iat=1)
