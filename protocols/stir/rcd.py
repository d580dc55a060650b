"""Rich Call Data claims (RFC 9795): ``rcd`` (what to show) and ``rcdi`` (integrity of what it links).

``rcd`` is an object; this gateway reads ``nam`` (the display name, which must be the registered
label of the calling number), ``icn`` (an icon URL) and ``jcl`` (a jCard URL), and keeps any other
member untouched so that it is still part of what certificate claim constraints compare.

``rcdi`` maps JSON pointers (RFC 6901) into ``rcd`` to digests written as in W3C Subresource
Integrity: ``sha256-`` followed by the standard base64 of the digest. A pointer to a string URL
digests the content behind the URL; a pointer to an object or array digests its canonical JSON.
Content is only ever taken from a local store handed in by the caller: nothing is fetched. Content the
store does not hold stays unverified and is not shown; content that is held and differs is a 438.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocols.stir.errors import InvalidIdentityHeader
from protocols.stir.jose import canonical_json

if TYPE_CHECKING:
    from protocols.stir.certs import UrlStore

__all__ = ["Rcd", "check_rcdi", "parse_rcd", "parse_rcdi", "rcdi_digest", "resolve_pointer"]

MAX_NAM_LENGTH = 256
_DIGESTS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_URL_MEMBERS = ("icn", "jcl")


@dataclass(frozen=True, slots=True)
class Rcd:
    nam: str
    icn: str | None = None
    jcl: str | None = None
    # The whole object as received (or as we will sign it), for canonical comparison.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, nam: str, *, icn: str | None = None, jcl: str | None = None) -> Rcd:
        raw: dict[str, Any] = {"nam": nam}
        if icn is not None:
            raw["icn"] = icn
        if jcl is not None:
            raw["jcl"] = jcl
        return cls(nam, icn, jcl, raw)

    def as_json(self) -> dict[str, Any]:
        return dict(self.raw) if self.raw else Rcd.build(self.nam, icn=self.icn, jcl=self.jcl).as_json()

    def canonical(self) -> str:
        """The rcd object as canonical JSON text: what JWT Claim Constraints permit or refuse."""
        return canonical_json(self.as_json()).decode()


def parse_rcd(value: Any) -> Rcd:
    if not isinstance(value, dict):
        raise InvalidIdentityHeader("rcd is not a JSON object")
    nam = value.get("nam")
    if not isinstance(nam, str) or not nam.strip() or len(nam) > MAX_NAM_LENGTH:
        raise InvalidIdentityHeader("rcd nam is not a non-empty string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in nam):
        raise InvalidIdentityHeader("rcd nam contains control characters")
    urls: dict[str, str | None] = {}
    for key in _URL_MEMBERS:
        member = value.get(key)
        if member is not None and (not isinstance(member, str) or not member):
            raise InvalidIdentityHeader(f"rcd {key} is not a URL string")
        urls[key] = member
    return Rcd(nam, urls["icn"], urls["jcl"], dict(value))


def parse_rcdi(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        raise InvalidIdentityHeader("rcdi is not a non-empty JSON object")
    result = []
    for pointer, digest in value.items():
        if not isinstance(digest, str) or (pointer and not pointer.startswith("/")):
            raise InvalidIdentityHeader("rcdi member is not a JSON pointer to a digest string")
        _split_digest(digest)
        result.append((pointer, digest))
    return tuple(result)


def _split_digest(digest: str) -> tuple[str, bytes]:
    algorithm, _, encoded = digest.partition("-")
    if algorithm not in _DIGESTS:
        raise InvalidIdentityHeader("rcdi digest algorithm is not sha256, sha384 or sha512")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidIdentityHeader("rcdi digest is not base64") from None
    if len(raw) != _DIGESTS[algorithm]().digest_size:
        raise InvalidIdentityHeader("rcdi digest has the wrong length")
    return algorithm, raw


def rcdi_digest(content: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}-{base64.b64encode(_DIGESTS[algorithm](content).digest()).decode('ascii')}"


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901 evaluation; a pointer that does not resolve is a 438."""
    if pointer == "":
        return document
    value = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif (
            isinstance(value, list)
            and token.isdigit()
            and token.isascii()
            and (token == "0" or not token.startswith("0"))
            and int(token) < len(value)
        ):
            value = value[int(token)]
        else:
            raise InvalidIdentityHeader("rcdi pointer does not resolve in rcd")
    return value


def check_rcdi(rcd: Rcd, rcdi: tuple[tuple[str, str], ...], resources: UrlStore) -> frozenset[str]:
    """Check every digest we can; return the URLs whose content was verified.

    Every URL member of ``rcd`` must have a digest once ``rcdi`` is present (otherwise the signer
    could swap the unprotected one): a missing digest, or held content that does not match, is a 438.
    """
    document = rcd.as_json()
    covered = {pointer for pointer, _ in rcdi}
    for key in _URL_MEMBERS:
        if key in document and f"/{key}" not in covered:
            raise InvalidIdentityHeader(f"rcdi has no digest for /{key}")
    verified: set[str] = set()
    for pointer, digest in rcdi:
        algorithm, expected = _split_digest(digest)
        target = resolve_pointer(document, pointer)
        if isinstance(target, str):
            content = resources.get(target)
            if content is None:
                continue  # not held locally: left unverified, and so never shown
            url = target
        else:
            content, url = canonical_json(target), ""
        if _DIGESTS[algorithm](content).digest() != expected:
            raise InvalidIdentityHeader(f"rcdi digest for {pointer} does not match")
        if url:
            verified.add(url)
    return frozenset(verified)
