"""The reference PASSporTs from libstirshaken (tests/vectors/stir/libstirshaken, see tests/vectors/README.md).

Both tokens in passport.txt are signed by sp.pub's key; wrongsp.pem's key must not verify them. Their
orig and dest claims are JSON strings, not objects, so they are also the "valid signature, malformed
claims" case: 438. Through the whole verifier, sp.pem's chain is refused first (437): it has no
keyUsage and its TNAuthList is an IA5String URL, not RFC 8226's TNAuthorizationList.
"""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir import (
    CallInfo,
    CredentialResolver,
    InvalidIdentityHeader,
    LabelRegistry,
    NumberPlan,
    Unverified,
    Verifier,
    decode_passport,
    parse_claims,
    parse_identity,
    verify_signature,
)
from tests.conftest import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "stir/libstirshaken"
IAT = 1603458131


def _text() -> str:
    return (VECTORS / "passport.txt").read_text()


def _tokens() -> list[str]:
    text = _text()
    signed = re.search(r"PASSporT signed is:\s*(\S+)", text)
    identity = re.search(r"SIP Identity Header with PASSporT is:\s*(\S+)", text)
    assert signed
    assert identity
    return [signed.group(1), parse_identity(identity.group(1)).token]


def _public(name: str) -> ec.EllipticCurvePublicKey:
    data = (VECTORS / name).read_bytes()
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"CERTIFICATE" in data
        else serialization.load_pem_public_key(data)
    )
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


@pytest.mark.parametrize("index", [0, 1])
def test_reference_tokens_verify_against_sp_pub(index: int) -> None:
    passport = decode_passport(_tokens()[index])
    verify_signature(passport, _public("sp.pub"))
    verify_signature(passport, _public("sp.pem"))  # the certificate holds the same key
    assert passport.header.x5u == "http://shaken.signalwire.cloud/sp.pem"


@pytest.mark.parametrize("index", [0, 1])
def test_reference_tokens_do_not_verify_against_wrongsp(index: int) -> None:
    with pytest.raises(InvalidIdentityHeader, match="signature does not verify"):
        verify_signature(decode_passport(_tokens()[index]), _public("wrongsp.pem"))


@pytest.mark.parametrize("index", [0, 1])
def test_reference_tokens_string_typed_claims_are_438(index: int) -> None:
    passport = decode_passport(_tokens()[index])
    assert passport.claims["orig"] == '{"tn":"01256789999"}'
    with pytest.raises(InvalidIdentityHeader) as caught:
        parse_claims(passport.claims)
    assert caught.value.code == 438
    assert caught.value.reason() == 'STIR;cause=438;text="Invalid Identity Header"'


def test_reference_identity_header_parses() -> None:
    identity = re.search(r"SIP Identity Header with PASSporT is:\s*(\S+)", _text())
    assert identity
    parsed = parse_identity(identity.group(1))
    assert (parsed.info, parsed.alg, parsed.ppt) == ("http://shaken.signalwire.cloud/sp.pem", "ES256", "shaken")
    assert parsed.serialise() == identity.group(1)


def test_reference_chain_through_the_verifier_is_437() -> None:
    store = {"http://shaken.signalwire.cloud/sp.pem": (VECTORS / "sp.pem").read_bytes()}
    anchor = x509.load_pem_x509_certificate((VECTORS / "ca.pem").read_bytes())
    verifier = Verifier(
        credentials=CredentialResolver([anchor], store),
        registry=LabelRegistry({}, NumberPlan(country_code="1", trunk_prefix="", international_prefix="011")),
    )
    identity = re.search(r"SIP Identity Header with PASSporT is:\s*(\S+)", _text())
    assert identity
    outcome = verifier.verify([identity.group(1)], CallInfo("v1", "01256789999", "01256500600"), IAT)
    assert isinstance(outcome, Unverified)  # not a registered number: the call goes on, unlabelled
    (failure,) = outcome.failures
    assert failure.error.code == 437
    assert failure.error.detail == "signer certificate lacks keyUsage digitalSignature"
