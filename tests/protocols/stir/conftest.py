"""A small PKI for STIR tests: the anti-fraud centre's CA and signer, a registry and a certificate store.

Everything is built in memory at a fixed ``NOW`` so that tests control time; certificates are valid
from a day before ``NOW`` to a year after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir import (
    CredentialResolver,
    Label,
    LabelRegistry,
    PassportHeader,
    ReplayCache,
    Signer,
    Verifier,
    encode_passport,
)
from protocols.stir.authority import ClaimConstraints, TnAuthList
from protocols.stir.issue import authority_for, issue_ca, issue_signer, new_key

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
X5U = "https://stir.afc.example.cn/shaken/signer.pem"
POLICE = Label("公安反诈专号", crn="反诈预警劝阻")
MIIT = Label("工信部反诈预警")
LABELS = {"96110": POLICE, "010 96110": POLICE, "+86 21 96110": POLICE, "12381": MIIT}
CALLEE = "8613800000001"
ORIGID = "b8a8ad5c-1f2e-4f0c-9d52-000000000001"


def when(offset_days: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(NOW, dt.UTC) + dt.timedelta(days=offset_days)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class Pki:
    registry: LabelRegistry
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey
    signer: x509.Certificate
    store: dict[str, bytes] = field(default_factory=dict)

    def issue(
        self,
        url: str,
        *,
        tn_auth: TnAuthList | str | None = "registry",
        constraints: ClaimConstraints | str | None = "registry",
        issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        chain: Sequence[x509.Certificate] = (),
        not_before: float = -1,
        not_after: float = 365,
        key: Any = None,
        **flags: Any,
    ) -> ec.EllipticCurvePrivateKey:
        """Issue a signer certificate, file it under ``url`` in the store, and return its key."""
        default_tn, default_constraints = authority_for(self.registry)
        signer_key = key if key is not None else new_key()
        ca_key, ca = issuer or (self.ca_key, self.ca)
        cert = issue_signer(
            ca_key=ca_key,
            ca_cert=ca,
            public_key=signer_key.public_key(),
            common_name=url,
            not_before=when(not_before),
            not_after=when(not_after),
            tn_auth=default_tn if isinstance(tn_auth, str) else tn_auth,
            constraints=default_constraints if isinstance(constraints, str) else constraints,
            **flags,
        )
        self.store[url] = pem(cert, *chain)
        return signer_key

    def verifier(self, *, anchors: Sequence[x509.Certificate] | None = None, **kwargs: Any) -> Verifier:
        return Verifier(
            credentials=CredentialResolver([self.ca] if anchors is None else list(anchors), self.store),
            registry=self.registry,
            replay=kwargs.pop("replay", ReplayCache()),
            **kwargs,
        )

    def sign(
        self,
        orig: str = "96110",
        dest: str = CALLEE,
        *,
        iat: int = NOW,
        label: Label | str | None = "registry",
        key: ec.EllipticCurvePrivateKey | None = None,
        x5u: str = X5U,
        attest: str = "A",
    ) -> str:
        """An Identity header value, signed like the anti-fraud centre would sign it."""
        chosen = self.registry.lookup(orig) if label == "registry" else label
        signer = Signer(key or self.signer_key, x5u, attest=attest)
        assert chosen is None or isinstance(chosen, Label)
        return signer.sign(orig=orig, dest=dest, iat=iat, label=chosen, origid=ORIGID).serialise()

    def sign_claims(
        self, claims: dict[str, Any], *, header: PassportHeader | None = None, key: Any = None, info: str = X5U
    ) -> str:
        """An Identity header value over arbitrary claims (valid signature, possibly bad content)."""
        token = encode_passport(header or PassportHeader(x5u=X5U), claims, key or self.signer_key)
        return f"{token};info=<{info}>;alg=ES256;ppt=shaken"


@pytest.fixture
def pki() -> Pki:
    return make_pki()


def make_pki() -> Pki:
    registry = LabelRegistry(LABELS)
    ca_key = new_key()
    ca = issue_ca(ca_key, common_name="Test STIR Root", not_before=when(-30), not_after=when(3650))
    result = Pki(registry, ca_key, ca, ca_key, ca)
    result.signer_key = result.issue(X5U)
    result.signer = x509.load_pem_x509_certificate(result.store[X5U])
    return result
