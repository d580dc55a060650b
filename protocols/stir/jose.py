"""The JOSE pieces a PASSporT needs: strict base64url, canonical JSON, strict JSON and ES256.

Only what RFC 8225 uses, done strictly, because every leniency here is a second way to spell the same
token: base64url without padding and with zero trailing bits, JSON with no duplicate member names and
no NaN/Infinity, and ES256 signatures as the 64-byte ``r || s`` of RFC 7518 section 3.4 (not DER).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from protocols.stir.errors import InvalidIdentityHeader

__all__ = ["b64url_decode", "b64url_encode", "canonical_json", "es256_sign", "es256_verify", "loads_strict"]

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_B64URL_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_ES256 = ec.ECDSA(hashes.SHA256())
_P256_BYTES = 32


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Decode unpadded base64url, accepting only the one canonical spelling of each byte string."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidIdentityHeader(f"{what} is not base64url")
    # Non-zero trailing bits decode to the same bytes as the canonical text: a malleable spelling.
    # The last character carries 4 (length 2 mod 4) or 2 (length 3 mod 4) such bits.
    unused = {2: 0x0F, 3: 0x03}.get(len(text) % 4, 0)
    if unused and _B64URL_VALUE[text[-1]] & unused:
        raise InvalidIdentityHeader(f"{what} is not canonical base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern above already excludes these
        raise InvalidIdentityHeader(f"{what} is not base64url") from None


def canonical_json(value: Any) -> bytes:
    """RFC 8225 section 9: members in lexicographic order, no whitespace, UTF-8 without escapes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers may keep different copies; refuse rather than guess which one was signed.
            raise InvalidIdentityHeader(f"duplicate JSON member {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise InvalidIdentityHeader(f"JSON constant {name} is not allowed")


def loads_strict(data: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object; anything else, or anything malformed, is a 438."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except InvalidIdentityHeader:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to convert.
        raise InvalidIdentityHeader(f"{what} is not JSON: {exc.__class__.__name__}") from None
    if not isinstance(value, dict):
        raise InvalidIdentityHeader(f"{what} is not a JSON object")
    return value


def es256_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, _ES256))
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def es256_verify(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    if len(signature) != 2 * _P256_BYTES:
        return False
    r = int.from_bytes(signature[:_P256_BYTES], "big")
    s = int.from_bytes(signature[_P256_BYTES:], "big")
    if r == 0 or s == 0:
        return False
    try:
        key.verify(encode_dss_signature(r, s), data, _ES256)
    except InvalidSignature:
        return False
    return True
