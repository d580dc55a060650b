"""Issuing the anti-fraud centre's certificates: a root CA and a signer restricted to its labels.

Pure functions of keys, names and times (the caller supplies ``now``); ``afgw keys init`` does the
file handling. What the signer certificate says, and why:

- basicConstraints CA:FALSE and keyUsage digitalSignature, both critical: the key signs PASSporTs,
  nothing else, and cannot issue certificates.
- TNAuthList (1.3.6.1.5.5.7.1.26, non-critical): one ``one`` entry per authorised number, in the
  normalised E.164 form the PASSporT's ``orig`` carries (8696110, 861096110, ...).
- JWTClaimConstraints (1.3.6.1.5.5.7.1.27, non-critical): mustInclude ``rcd``, and permittedValues
  for ``rcd`` listing the canonical JSON of each label's rcd object (``{"nam":"公安反诈专号"}``), and for
  ``crn`` listing the call reasons when labels have them. A key that leaks can then sign only the
  registered label texts, and only for the registered numbers.

Both STIR extensions are non-critical, as RFC 8226 deployments mark them, so that verifiers that do
not know them (secsipidx's Go x509) still validate the chain; this gateway enforces them regardless.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocols.stir.authority import (
    OID_ENHANCED_JWT_CLAIM_CONSTRAINTS,
    OID_JWT_CLAIM_CONSTRAINTS,
    OID_TN_AUTH_LIST,
    ClaimConstraints,
    TnAuthList,
)
from protocols.stir.registry import LabelRegistry

__all__ = ["authority_for", "issue_ca", "issue_signer", "new_key"]


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Anti-Fraud Centre"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_ca(
    key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None = 0,
) -> x509.Certificate:
    """A self-signed root: CA:TRUE (pathlen 0 by default: it issues signers directly)."""
    name = _name(common_name)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_signer(
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    tn_auth: TnAuthList | None,
    constraints: ClaimConstraints | None = None,
    enhanced: bool = False,
    digital_signature: bool = True,
    ca: bool = False,
) -> x509.Certificate:
    """A signer certificate under ``ca_cert``; the flags exist so tests can build bad ones too."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=digital_signature, cert_sign=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec_public(ca_cert)),
            critical=False,
        )
    )
    if tn_auth is not None:
        builder = builder.add_extension(_raw(OID_TN_AUTH_LIST, tn_auth.to_der()), critical=False)
    if constraints is not None:
        oid = OID_ENHANCED_JWT_CLAIM_CONSTRAINTS if enhanced else OID_JWT_CLAIM_CONSTRAINTS
        builder = builder.add_extension(_raw(oid, constraints.to_der(enhanced=enhanced)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def authority_for(registry: LabelRegistry) -> tuple[TnAuthList, ClaimConstraints]:
    """The TNAuthList and claim constraints that restrict a signer to ``registry``."""
    labels = [label for _, label in registry]
    rcds = tuple(sorted({label.rcd().canonical() for label in labels}))
    crns = tuple(sorted({label.crn for label in labels if label.crn}))
    permitted: list[tuple[str, tuple[str, ...]]] = [("rcd", rcds)]
    if crns:
        permitted.append(("crn", crns))
    return TnAuthList.for_numbers(registry.numbers), ClaimConstraints(("rcd",), tuple(permitted))


def _usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _raw(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError("the CA key must be an EC key")
    return key
