"""The authentication service (RFC 8224 section 5): signing calls from authorised numbers.

Used by the anti-fraud centre's side (the simulator, or a deployment that signs for the centre) and
by tests. Numbers are normalised before they are signed, so the claims carry E.164 digits whatever
spelling the caller used.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from protocols.errors import LocalProtocolError
from protocols.stir.errors import StirError
from protocols.stir.identity_header import IdentityHeader
from protocols.stir.passport import PassportHeader, encode_passport, shaken_claims
from protocols.stir.rcd import rcdi_digest
from protocols.stir.registry import Label
from protocols.stir.tn import CHINA, NumberPlan, normalise_tn

__all__ = ["Signer"]


class Signer:
    def __init__(
        self, key: ec.EllipticCurvePrivateKey, x5u: str, *, plan: NumberPlan = CHINA, attest: str = "A"
    ) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise LocalProtocolError("ES256 needs a P-256 key")
        self.key = key
        self.x5u = x5u
        self.plan = plan
        self.attest = attest

    def sign(
        self,
        *,
        orig: str,
        dest: str | Sequence[str],
        iat: int,
        label: Label | None = None,
        origid: str | None = None,
        resources: Mapping[str, bytes] | None = None,
    ) -> IdentityHeader:
        """An Identity header for a call from ``orig`` to ``dest`` at ``iat`` (epoch seconds).

        With a ``label``, the PASSporT carries ``rcd`` (nam, and icn when the label has an icon) and
        ``crn``; when ``resources`` holds the icon's bytes, ``rcdi`` protects it.
        """
        dests = [dest] if isinstance(dest, str) else list(dest)
        try:
            orig_tn = normalise_tn(orig, self.plan)
            dest_tns = [normalise_tn(d, self.plan) for d in dests]
        except StirError as exc:
            raise LocalProtocolError(f"cannot sign: {exc.detail}") from None
        rcd = label.rcd() if label is not None else None
        rcdi = None
        if label is not None and label.icon is not None and resources and label.icon in resources:
            rcdi = {"/icn": rcdi_digest(resources[label.icon])}
        claims = shaken_claims(
            orig=orig_tn,
            dest=dest_tns,
            iat=iat,
            attest=self.attest,
            origid=origid or str(uuid.uuid4()),
            rcd=rcd,
            rcdi=rcdi,
            crn=label.crn if label is not None else None,
        )
        token = encode_passport(PassportHeader(x5u=self.x5u), claims, self.key)
        return IdentityHeader(token=token, info=self.x5u, alg="ES256", ppt="shaken")
