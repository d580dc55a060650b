"""Certificate chains: what makes a signer acceptable, what makes it a 437, and the cache."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir import (
    BadIdentityInfo,
    CredentialResolver,
    StirError,
    UnsupportedCredential,
    store_file_name,
)
from protocols.stir.issue import issue_ca, issue_signer, new_key

from .conftest import NOW, X5U, Pki, pem, when


def resolve(pki: Pki, url: str = X5U, now: float = NOW, anchors: Any = None) -> Any:
    return CredentialResolver([pki.ca] if anchors is None else anchors, pki.store).resolve(url, now)


def test_signer_chains_to_the_anchor(pki: Pki) -> None:
    credential = resolve(pki)
    assert credential.certificate == pki.signer
    assert credential.tn_auth[0].authorises("8696110")
    assert credential.not_after == pki.signer.not_valid_after_utc.timestamp()


def test_intermediate_ca_in_the_x5u_content(pki: Pki) -> None:
    root_key = new_key()
    root = issue_ca(
        root_key, common_name="Root allowing one level", not_before=when(-1), not_after=when(99), path_length=1
    )
    pki.ca_key, pki.ca = root_key, root
    mid_key = new_key()
    mid = _intermediate(pki, mid_key)
    pki.issue("https://afc.example/mid.pem", issuer=(mid_key, mid), chain=[mid])
    assert resolve(pki, "https://afc.example/mid.pem").certificate.issuer == mid.subject


def test_path_length_constraint_is_enforced(pki: Pki) -> None:
    # The test root has pathlen 0: it may issue signers, not intermediates.
    mid_key = new_key()
    mid = _intermediate(pki, mid_key)
    pki.issue("https://afc.example/mid.pem", issuer=(mid_key, mid), chain=[mid])
    with pytest.raises(UnsupportedCredential, match="pathLenConstraint"):
        resolve(pki, "https://afc.example/mid.pem")


def test_missing_intermediate_is_437(pki: Pki) -> None:
    mid_key = new_key()
    mid = _intermediate(pki, mid_key)
    pki.issue("https://afc.example/mid.pem", issuer=(mid_key, mid))
    with pytest.raises(UnsupportedCredential, match="trust anchor"):
        resolve(pki, "https://afc.example/mid.pem")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"digital_signature": False}, "digitalSignature"),
        ({"ca": True}, "is a CA"),
    ],
)
def test_signer_usage_is_enforced(pki: Pki, flags: dict[str, Any], message: str) -> None:
    pki.issue("https://afc.example/bad.pem", **flags)
    with pytest.raises(UnsupportedCredential, match=message):
        resolve(pki, "https://afc.example/bad.pem")


def test_signer_key_must_be_p256(pki: Pki) -> None:
    pki.issue("https://afc.example/p384.pem", key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(UnsupportedCredential, match="P-256"):
        resolve(pki, "https://afc.example/p384.pem")


def test_unknown_critical_extension_is_437(pki: Pki) -> None:
    key = new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(when(-1))
        .not_valid_after(when(30))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)
        .sign(pki.ca_key, hashes.SHA256())
    )
    pki.store["https://afc.example/crit.pem"] = pem(cert)
    with pytest.raises(UnsupportedCredential, match=r"unknown critical extension 1\.3\.6\.1\.4\.1\.99999\.1"):
        resolve(pki, "https://afc.example/crit.pem")


def test_store_misses_and_garbage_are_436(pki: Pki) -> None:
    with pytest.raises(BadIdentityInfo, match="not in the local certificate store"):
        resolve(pki, "https://nowhere.example/cert.pem")
    pki.store["https://afc.example/junk.pem"] = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(BadIdentityInfo, match="not a certificate"):
        resolve(pki, "https://afc.example/junk.pem")


def test_validity_is_checked_at_each_call_but_validation_is_cached(pki: Pki) -> None:
    resolver = CredentialResolver([pki.ca], pki.store)
    first = resolver.resolve(X5U, NOW)
    del pki.store[X5U]  # a cached credential no longer needs the store
    assert resolver.resolve(X5U, NOW + 10) is first
    with pytest.raises(UnsupportedCredential, match="not valid at this time"):
        resolver.resolve(X5U, NOW + 400 * 86400)


def test_negative_results_are_cached_and_raised_afresh(pki: Pki) -> None:
    pki.issue("https://afc.example/bad.pem", digital_signature=False)
    resolver = CredentialResolver([pki.ca], pki.store)
    errors = []
    for _ in range(2):
        with pytest.raises(StirError) as caught:
            resolver.resolve("https://afc.example/bad.pem", NOW)
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].code == errors[1].code == 437


def test_cache_is_bounded(pki: Pki) -> None:
    resolver = CredentialResolver([pki.ca], pki.store, max_entries=2)
    for i in range(5):
        pki.issue(f"https://afc.example/{i}.pem")
        resolver.resolve(f"https://afc.example/{i}.pem", NOW)
    assert len(resolver._cache) == 2


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://stir.afc.example.cn/shaken/signer.pem", "signer.pem"),
        ("http://127.0.0.1:9/a/b.pem", "b.pem"),
        ("https://cr.example/certs/sp-1234_v2.cer?x=1#f", "sp-1234_v2.cer"),
        ("https://cr.example/", None),
        ("https://cr.example", None),
        ("https://cr.example/a/..", None),
        ("https://cr.example/a/%2e%2e", None),
        ("https://cr.example/a/b%2Fc.pem", None),
        ("https://cr.example/a/sign er.pem", None),
    ],
)
def test_store_file_name_is_the_last_path_segment(url: str, name: str | None) -> None:
    assert store_file_name(url) == name


def _intermediate(pki: Pki, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A CA certificate (no pathLenConstraint) issued by the test root."""
    return issue_signer(
        ca_key=pki.ca_key,
        ca_cert=pki.ca,
        public_key=key.public_key(),
        common_name="Test STIR Intermediate",
        not_before=when(-1),
        not_after=when(100),
        tn_auth=None,
        ca=True,
    )


def test_issue_ca_is_a_self_signed_root() -> None:
    key = new_key()
    ca = issue_ca(key, common_name="root", not_before=when(-1), not_after=when(1))
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
