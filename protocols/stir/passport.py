"""PASSporT (RFC 8225) with the SHAKEN extension (RFC 8588) and Rich Call Data claims (RFC 9795).

A token is ``base64url(header) "." base64url(claims) "." base64url(signature)`` (JWS compact
serialisation), signed with ES256 over the first two parts exactly as received. When we sign, header
and claims are serialised canonically (RFC 8225 section 9) so that the compact form of section 7,
``..signature``, can be rebuilt by a verifier from the SIP request.

Decoding is split from interpretation: ``decode_passport`` checks the JWS shape and the header,
``parse_claims`` turns the claims into typed values and rejects every shape RFC 8225/8588/9795 does not
allow (a string where an object belongs, as in the libstirshaken reference tokens, is a 438).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir.errors import InvalidIdentityHeader
from protocols.stir.jose import b64url_decode, b64url_encode, canonical_json, es256_sign, es256_verify, loads_strict
from protocols.stir.rcd import Rcd, parse_rcd, parse_rcdi

__all__ = [
    "MAX_TOKEN_LENGTH",
    "Passport",
    "PassportClaims",
    "PassportHeader",
    "decode_passport",
    "encode_passport",
    "parse_claims",
    "rebuild_compact",
    "shaken_claims",
    "verify_signature",
]

# Far above any real PASSporT (a SHAKEN token with rcd is under 1 KiB); bounds the work an attacker buys.
MAX_TOKEN_LENGTH = 8192
ATTESTATION_LEVELS = frozenset({"A", "B", "C"})
# 2**53: larger iat values are not exactly representable in other implementations' JSON numbers.
MAX_IAT = 2**53


@dataclass(frozen=True, slots=True)
class PassportHeader:
    alg: str = "ES256"
    ppt: str | None = "shaken"
    typ: str | None = "passport"
    x5u: str | None = None

    def as_json(self) -> dict[str, str]:
        members = {"alg": self.alg, "ppt": self.ppt, "typ": self.typ, "x5u": self.x5u}
        return {k: v for k, v in members.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Passport:
    """A decoded, not yet verified, PASSporT."""

    header: PassportHeader
    claims: Mapping[str, Any]
    signing_input: bytes  # what the signature covers: the first two parts as ASCII
    signature: bytes
    compact: bool

    @property
    def compact_form(self) -> str:
        """``..signature``: how RFC 9410 names this PASSporT in a Reason header's ppi."""
        return ".." + b64url_encode(self.signature)


@dataclass(frozen=True, slots=True)
class PassportClaims:
    """The claims of a SHAKEN PASSporT with optional Rich Call Data, checked for shape."""

    iat: int
    orig_tn: str
    dest_tns: tuple[str, ...]
    attest: str | None = None
    origid: str | None = None
    rcd: Rcd | None = None
    rcdi: tuple[tuple[str, str], ...] | None = None
    crn: str | None = None


def decode_passport(token: str) -> Passport:
    """Split and decode a full-form token; its header must name ES256 and ``typ`` passport."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdentityHeader("PASSporT too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidIdentityHeader("PASSporT is not three dot-separated parts")
    header_b64, claims_b64, signature_b64 = parts
    if not header_b64 or not claims_b64:
        raise InvalidIdentityHeader("compact-form PASSporT given where a full form is needed")
    header_json = loads_strict(b64url_decode(header_b64, "PASSporT header"), "PASSporT header")
    claims = loads_strict(b64url_decode(claims_b64, "PASSporT claims"), "PASSporT claims")
    signature = b64url_decode(signature_b64, "PASSporT signature")
    return Passport(
        header=_header(header_json),
        claims=claims,
        signing_input=f"{header_b64}.{claims_b64}".encode("ascii"),
        signature=signature,
        compact=False,
    )


def rebuild_compact(token: str, header: PassportHeader, claims: Mapping[str, Any]) -> Passport:
    """A compact-form token (``..signature``) with the header and claims the verifier rebuilt.

    RFC 8225 section 7: the signer serialised both canonically, so the verifier does the same with
    the values it takes from the SIP request and checks the signature against the result.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdentityHeader("PASSporT too long")
    if not token.startswith("..") or "." in token[2:]:
        raise InvalidIdentityHeader("not a compact-form PASSporT")
    signature = b64url_decode(token[2:], "PASSporT signature")
    signing_input = b64url_encode(canonical_json(header.as_json())) + "." + b64url_encode(canonical_json(claims))
    return Passport(header, dict(claims), signing_input.encode("ascii"), signature, compact=True)


def _header(value: Mapping[str, Any]) -> PassportHeader:
    for key in ("alg", "ppt", "typ", "x5u"):
        if key in value and not isinstance(value[key], str):
            raise InvalidIdentityHeader(f"PASSporT header {key} is not a string")
    if "alg" not in value:
        raise InvalidIdentityHeader("PASSporT header has no alg")
    return PassportHeader(alg=value["alg"], ppt=value.get("ppt"), typ=value.get("typ"), x5u=value.get("x5u"))


def verify_signature(passport: Passport, key: ec.EllipticCurvePublicKey) -> None:
    if not es256_verify(key, passport.signing_input, passport.signature):
        raise InvalidIdentityHeader("signature does not verify")


def parse_claims(claims: Mapping[str, Any], *, shaken: bool = True) -> PassportClaims:
    """Typed claims; raises InvalidIdentityHeader for any shape the RFCs do not allow."""
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool) or not 0 <= iat < MAX_IAT:
        raise InvalidIdentityHeader("iat is not a NumericDate")
    orig = claims.get("orig")
    if not isinstance(orig, dict):
        raise InvalidIdentityHeader("orig is not a JSON object")
    orig_tn = orig.get("tn")
    if not isinstance(orig_tn, str) or set(orig) != {"tn"}:
        raise InvalidIdentityHeader("orig must be an object with a single tn string")
    dest = claims.get("dest")
    if not isinstance(dest, dict):
        raise InvalidIdentityHeader("dest is not a JSON object")
    dest_tns = dest.get("tn")
    if (
        not isinstance(dest_tns, list)
        or not dest_tns
        or not all(isinstance(tn, str) for tn in dest_tns)
        or set(dest) - {"tn", "uri"}
    ):
        raise InvalidIdentityHeader("dest must be an object with a non-empty tn array of strings")
    attest = claims.get("attest")
    origid = claims.get("origid")
    if shaken:
        if attest not in ATTESTATION_LEVELS:
            raise InvalidIdentityHeader("attest is not A, B or C")
        if not isinstance(origid, str) or not origid:
            raise InvalidIdentityHeader("origid is missing")
    elif (attest is not None and attest not in ATTESTATION_LEVELS) or (
        origid is not None and not isinstance(origid, str)
    ):
        raise InvalidIdentityHeader("attest or origid malformed")
    rcd = parse_rcd(claims["rcd"]) if "rcd" in claims else None
    rcdi = parse_rcdi(claims["rcdi"]) if "rcdi" in claims else None
    if rcdi is not None and rcd is None:
        raise InvalidIdentityHeader("rcdi without rcd")
    crn = claims.get("crn")
    if crn is not None and (not isinstance(crn, str) or not crn):
        raise InvalidIdentityHeader("crn is not a non-empty string")
    return PassportClaims(
        iat=iat,
        orig_tn=orig_tn,
        dest_tns=tuple(dest_tns),
        attest=attest if isinstance(attest, str) else None,
        origid=origid if isinstance(origid, str) else None,
        rcd=rcd,
        rcdi=rcdi,
        crn=crn,
    )


def shaken_claims(
    *,
    orig: str,
    dest: Sequence[str],
    iat: int,
    attest: str,
    origid: str,
    rcd: Rcd | None = None,
    rcdi: Mapping[str, str] | None = None,
    crn: str | None = None,
) -> dict[str, Any]:
    """The claims object of a SHAKEN PASSporT; numbers must already be normalised."""
    claims: dict[str, Any] = {
        "attest": attest,
        "dest": {"tn": list(dest)},
        "iat": iat,
        "orig": {"tn": orig},
        "origid": origid,
    }
    if rcd is not None:
        claims["rcd"] = rcd.as_json()
    if rcdi:
        claims["rcdi"] = dict(rcdi)
    if crn is not None:
        claims["crn"] = crn
    return claims


def encode_passport(header: PassportHeader, claims: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """Sign ``claims`` and return the full-form token, header and claims in canonical JSON."""
    signing_input = b64url_encode(canonical_json(header.as_json())) + "." + b64url_encode(canonical_json(claims))
    return signing_input + "." + b64url_encode(es256_sign(key, signing_input.encode("ascii")))
