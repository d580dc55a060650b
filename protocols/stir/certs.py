"""Certificates behind PASSporTs: resolving x5u locally and validating the chain to a trust anchor.

The call path never fetches: ``x5u`` is looked up in a local store (a mapping from URL to the PEM
bytes that would be served there, which the gateway loads from a directory at start). A URL the store
does not hold is a 436.

Chain validation uses the ``cryptography`` library for the signatures and checks, for every
certificate from the signer to a configured trust anchor: the issuer's signature, the validity period
at the injected ``now``, basicConstraints (issuers are CAs, within their pathLenConstraint; the signer
is not a CA), keyUsage (keyCertSign on issuers when present; digitalSignature required on the signer),
and that no critical extension is one we do not understand. The signer's key must be P-256 (ES256).
Any failure is a 437.

Validation does not depend on ``now`` except for the validity period, so its result is cached per
URL (bounded, least recently used first out) together with the window in which the whole chain is
valid: a cached credential costs a dictionary lookup and two comparisons per INVITE.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID

from protocols.stir import der
from protocols.stir.authority import (
    OID_ENHANCED_JWT_CLAIM_CONSTRAINTS,
    OID_JWT_CLAIM_CONSTRAINTS,
    OID_TN_AUTH_LIST,
    ClaimConstraints,
    TnAuthList,
)
from protocols.stir.errors import BadIdentityInfo, StirError, UnsupportedCredential

__all__ = ["Credential", "CredentialResolver", "UrlStore", "load_certificates", "store_file_name"]

_E = TypeVar("_E", bound=x509.ExtensionType)
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")

MAX_CHAIN_LENGTH = 4  # certificates from the signer up to (not counting) the trust anchor
_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CERTIFICATE_POLICIES,
        x509.ObjectIdentifier(OID_TN_AUTH_LIST),
        x509.ObjectIdentifier(OID_JWT_CLAIM_CONSTRAINTS),
        x509.ObjectIdentifier(OID_ENHANCED_JWT_CLAIM_CONSTRAINTS),
    }
)


class UrlStore(Protocol):
    """Local content by URL (a dict will do): what x5u, icn and jcl URLs would serve, never fetched."""

    def get(self, url: str, /) -> bytes | None: ...


def store_file_name(url: str) -> str | None:
    """The file a URL is kept under in a certificate store directory: the last segment of its path
    (``https://stir.afc.example.cn/shaken/signer.pem`` -> ``signer.pem``), as a carrier names the
    files it downloads. None when that segment cannot be a plain file name (empty, ``.``, ``..``, or
    any character outside letters, digits, ``.``, ``_``, ``-``): such a URL needs an explicit entry.
    """
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if not _FILE_NAME.fullmatch(name) or name in (".", ".."):
        return None
    return name


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates in PEM ``data`` (signer first), or one DER certificate; raises ValueError.

    What cryptography only warns about (a serial number that is not positive, which RFC 5280
    forbids) is an error here: such a certificate is not one a CA we trust would issue.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            if b"-----BEGIN" in data:
                return x509.load_pem_x509_certificates(data)
            return [x509.load_der_x509_certificate(data)]
        except CryptographyDeprecationWarning as exc:
            raise ValueError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Credential:
    """A signer certificate that chains to a trust anchor, with what the chain authorises."""

    x5u: str
    certificate: x509.Certificate
    public_key: ec.EllipticCurvePublicKey
    not_before: float  # the window in which every certificate of the chain is valid
    not_after: float
    # TNAuthList of each certificate in the chain that has one (the signer's first, when present).
    tn_auth: tuple[TnAuthList, ...]
    signer_has_tn_auth: bool
    constraints: tuple[ClaimConstraints, ...]
    defect: str | None  # an authority extension that is present but unreadable

    def check_validity(self, now: float) -> None:
        if not self.not_before <= now <= self.not_after:
            raise UnsupportedCredential("certificate chain is not valid at this time")

    def check_authority(self, orig_tn: str, claims: Mapping[str, Any]) -> None:
        """TNAuthList and claim constraints of every certificate in the chain must allow the token."""
        if self.defect is not None:
            raise UnsupportedCredential(self.defect)
        if not self.signer_has_tn_auth:
            raise UnsupportedCredential("signer certificate has no TNAuthList")
        for tn_auth in self.tn_auth:
            # An SPC entry (RFC 8226 section 9) stands for the numbers its service provider serves,
            # which no list here can name: it vouches for an ordinary call. For a label it is not
            # enough unless labels.yaml delegates the number to that SPC (``lists_number``).
            if not (tn_auth.authorises(orig_tn) or tn_auth.spcs):
                raise UnsupportedCredential("certificate is not authorised for the calling number")
        for constraints in self.constraints:
            constraints.check(claims)

    def lists_number(self, orig_tn: str) -> bool:
        """Whether every TNAuthList of the chain names ``orig_tn`` itself (a number or a range)."""
        return self.signer_has_tn_auth and all(tn_auth.authorises(orig_tn) for tn_auth in self.tn_auth)

    @property
    def spcs(self) -> frozenset[str]:
        """The service provider codes of the signer certificate's TNAuthList."""
        return frozenset(self.tn_auth[0].spcs) if self.signer_has_tn_auth else frozenset()


class CredentialResolver:
    """x5u -> validated Credential, from a local store and a set of trust anchors, with a cache."""

    def __init__(
        self,
        trust_anchors: Sequence[x509.Certificate],
        store: UrlStore,
        *,
        max_entries: int = 256,
    ) -> None:
        self._anchors = tuple(trust_anchors)
        self._store = store
        self._max_entries = max_entries
        self._cache: OrderedDict[str, Credential | StirError] = OrderedDict()

    def resolve(self, x5u: str, now: float) -> Credential:
        """The credential at ``x5u``, valid at ``now``; raises BadIdentityInfo or UnsupportedCredential."""
        cached = self._cache.get(x5u)
        if cached is None:
            cached = self._validate(x5u)
            self._cache[x5u] = cached
            if len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(x5u)
        if isinstance(cached, StirError):
            raise type(cached)(cached.detail)
        cached.check_validity(now)
        return cached

    def _validate(self, x5u: str) -> Credential | StirError:
        data = self._store.get(x5u)
        if data is None:
            # Not cached: the store may be reloaded with it, and a miss costs nothing.
            raise BadIdentityInfo("x5u is not in the local certificate store")
        try:
            certificates = load_certificates(data)
        except ValueError:
            return BadIdentityInfo("x5u content is not a certificate")
        if not certificates:
            return BadIdentityInfo("x5u content is not a certificate")
        try:
            return _credential(x5u, certificates, self._anchors)
        except UnsupportedCredential as exc:
            return exc
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # cryptography raises these for malformed or duplicate extensions and odd key types.
            return UnsupportedCredential(f"unusable certificate: {exc.__class__.__name__}")


def _credential(x5u: str, certificates: list[x509.Certificate], anchors: tuple[x509.Certificate, ...]) -> Credential:
    signer = certificates[0]
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedCredential("signer key is not P-256")
    if _is_ca(signer):
        raise UnsupportedCredential("signer certificate is a CA")
    usage = _extension(signer, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise UnsupportedCredential("signer certificate lacks keyUsage digitalSignature")
    path = [signer, *_issuers(signer, certificates[1:], anchors)]
    for cert in path:
        for extension in cert.extensions:
            if extension.critical and extension.oid not in _UNDERSTOOD:
                raise UnsupportedCredential(f"unknown critical extension {extension.oid.dotted_string}")
    for below, ca in enumerate(path[1:]):
        constraints = _extension(ca, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise UnsupportedCredential("an issuer in the chain is not a CA")
        if constraints.path_length is not None and constraints.path_length < below:
            raise UnsupportedCredential("chain longer than an issuer's pathLenConstraint")
        ca_usage = _extension(ca, x509.KeyUsage)
        if ca_usage is not None and not ca_usage.key_cert_sign:
            raise UnsupportedCredential("an issuer lacks keyUsage keyCertSign")
    tn_auth: list[TnAuthList] = []
    constraints_found: list[ClaimConstraints] = []
    defect = None
    for cert in path:
        try:
            raw = _raw_extension(cert, OID_TN_AUTH_LIST)
            if raw is not None:
                tn_auth.append(TnAuthList.from_der(raw))
            for oid, enhanced in ((OID_JWT_CLAIM_CONSTRAINTS, False), (OID_ENHANCED_JWT_CLAIM_CONSTRAINTS, True)):
                raw = _raw_extension(cert, oid)
                if raw is not None:
                    constraints_found.append(ClaimConstraints.from_der(raw, enhanced=enhanced))
        except der.DerError as exc:
            defect = defect or f"unreadable STIR extension: {exc.detail}"
    return Credential(
        x5u=x5u,
        certificate=signer,
        public_key=key,
        not_before=max(c.not_valid_before_utc.timestamp() for c in path),
        not_after=min(c.not_valid_after_utc.timestamp() for c in path),
        tn_auth=tuple(tn_auth),
        signer_has_tn_auth=_raw_extension(signer, OID_TN_AUTH_LIST) is not None,
        constraints=tuple(constraints_found),
        defect=defect,
    )


def _issuers(
    cert: x509.Certificate, intermediates: list[x509.Certificate], anchors: tuple[x509.Certificate, ...]
) -> list[x509.Certificate]:
    """The issuers of ``cert`` up to and including a trust anchor, or UnsupportedCredential."""
    path: list[x509.Certificate] = []
    current = cert
    for _ in range(MAX_CHAIN_LENGTH + 1):
        for anchor in anchors:
            if anchor.subject == current.issuer and _signed_by(current, anchor):
                return [*path, anchor]
        candidates = [c for c in intermediates if c.subject == current.issuer and c not in path and c != current]
        issuer = next((c for c in candidates if _signed_by(current, c)), None)
        if issuer is None:
            raise UnsupportedCredential("certificate chain does not lead to a trust anchor")
        path.append(issuer)
        current = issuer
    raise UnsupportedCredential("certificate chain too long")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _raw_extension(cert: x509.Certificate, oid: str) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value
    return None  # pragma: no cover - cryptography does not parse these OIDs itself
