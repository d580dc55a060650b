"""HTTP Digest authentication for SIP (RFC 3261 22.4, RFC 2617, RFC 8760): the header grammar and the math.

Two algorithms: ``MD5`` (RFC 2617, what every SIP phone speaks) and ``SHA-256`` (RFC 8760, which
reuses the RFC 7616 formulas with SHA-256 as the hash). The ``-sess`` variants are not offered.

Pure functions only: the nonce policy (what a nonce contains, how long it lives) belongs to whoever
issues it. :func:`parse_credentials` reads an Authorization / Proxy-Authorization value,
:func:`challenge` writes a WWW-Authenticate / Proxy-Authenticate value, and :func:`expected_response`
computes the ``response`` a client with the right password sends.

Anything malformed raises ``RemoteProtocolError``: an authenticating server treats that as "not
authenticated" and challenges again, never as a pass.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from protocols.errors import RemoteProtocolError
from protocols.sip.headers import quote_string, unquote_string

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "authorization",
    "canonical_algorithm",
    "challenge",
    "expected_response",
    "ha1",
    "parse_challenge",
    "parse_credentials",
]

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
# The parameters that a Digest answer may carry only once; a second copy is an attempt to confuse.
_SINGLE = frozenset({"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc"})
_MAX_VALUE = 1024


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


#: The algorithms this module computes, by their canonical name, in order of preference.
ALGORITHMS = {"SHA-256": _sha256, "MD5": _md5}
_CANONICAL = {name.lower(): name for name in ALGORITHMS}


def canonical_algorithm(name: str) -> str | None:
    """``MD5`` or ``SHA-256`` for any spelling of them (the token is case-insensitive); else None."""
    return _CANONICAL.get(name.lower())


def _hash(algorithm: str) -> Callable[[str], str]:
    return ALGORITHMS[_canonical_or_fail(algorithm)]


def _bad(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, answer=400)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed ``Digest`` credentials value; quoted values are unquoted."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    qop: str | None = None
    nc: str | None = None
    opaque: str | None = None


def _split_params(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs separated by commas; values are tokens or quoted strings."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise _bad("Malformed auth-param")
        name = text[i:eq].strip(" \t")
        if not _TOKEN_RE.fullmatch(name):
            raise _bad("Malformed auth-param name")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise _bad("Unterminated quoted string in credentials")
            value = unquote_string(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ", \t":
                j += 1
            value = text[i:j]
            i = j
            if not _TOKEN_RE.fullmatch(value):
                raise _bad("Malformed auth-param value")
        if len(value) > _MAX_VALUE:
            raise _bad("auth-param value too long")
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise _bad("Expected ',' between auth-params")
        out.append((name.lower(), value))
    return out


def parse_credentials(value: str) -> Credentials:
    """Parse ``Digest username=..., realm=..., ...``; raises RemoteProtocolError when malformed."""
    text = value.strip(" \t")
    scheme, _, rest = text.partition(" ")
    if scheme.lower() != "digest":
        raise _bad(f"Unsupported authentication scheme {scheme[:32]!r}")
    params: dict[str, str] = {}
    for name, item in _split_params(rest):
        if name in params and name in _SINGLE:
            raise _bad(f"Repeated auth-param {name}")
        params[name] = item
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in params]
    if missing:
        raise _bad("Credentials lack " + ", ".join(missing))
    qop = params.get("qop")
    if qop is not None:
        if qop.lower() != "auth":
            raise _bad(f"Unsupported qop {qop[:16]!r}")
        nc = params.get("nc")
        if "cnonce" not in params or nc is None or not _NC_RE.fullmatch(nc):
            raise _bad("qop=auth needs cnonce and an 8-hex-digit nc")
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"].lower(),
        algorithm=params.get("algorithm", "MD5"),
        cnonce=params.get("cnonce"),
        qop=qop.lower() if qop is not None else None,
        nc=params.get("nc"),
        opaque=params.get("opaque"),
    )


def challenge(realm: str, nonce: str, *, opaque: str | None = None, stale: bool = False, algorithm: str = "MD5") -> str:
    """A ``Digest`` challenge offering ``algorithm`` with qop=auth."""
    parts = [f"realm={quote_string(realm)}", f"nonce={quote_string(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={quote_string(opaque)}")
    parts.append(f"algorithm={_canonical_or_fail(algorithm)}")
    parts.append('qop="auth"')
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


def _canonical_or_fail(algorithm: str) -> str:
    canonical = canonical_algorithm(algorithm)
    if canonical is None:
        raise _bad(f"Unsupported digest algorithm {algorithm[:16]!r}")
    return canonical


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    return _hash(algorithm)(f"{username}:{realm}:{password}")


def expected_response(credentials: Credentials, method: str, password_ha1: str) -> str:
    """The ``response`` value RFC 2617 3.2.2.1 (RFC 7616 3.4.1 for SHA-256) gives for these
    credentials and request method; ``password_ha1`` must be computed with the same algorithm."""
    h = _hash(credentials.algorithm)
    ha2 = h(f"{method}:{credentials.uri}")
    if credentials.qop == "auth":
        return h(f"{password_ha1}:{credentials.nonce}:{credentials.nc}:{credentials.cnonce}:auth:{ha2}")
    return h(f"{password_ha1}:{credentials.nonce}:{ha2}")


# --- the client side ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``Digest`` challenge (WWW-Authenticate / Proxy-Authenticate)."""

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False


def parse_challenge(value: str) -> Challenge:
    """Parse ``Digest realm=..., nonce=..., ...``; raises RemoteProtocolError when malformed."""
    text = value.strip(" \t")
    scheme, _, rest = text.partition(" ")
    if scheme.lower() != "digest":
        raise _bad(f"Unsupported authentication scheme {scheme[:32]!r}")
    params = dict(_split_params(rest))
    if "realm" not in params or "nonce" not in params:
        raise _bad("Challenge lacks realm or nonce")
    qop = tuple(q.strip(" \t").lower() for q in params.get("qop", "").split(",") if q.strip(" \t"))
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        opaque=params.get("opaque"),
        algorithm=params.get("algorithm", "MD5"),
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
    )


def authorization(
    challenge: Challenge, *, username: str, password: str, method: str, uri: str, cnonce: str, nc: int = 1
) -> str:
    """The Authorization value answering ``challenge`` (qop=auth when offered, else RFC 2069 style)."""
    qop = "auth" if "auth" in challenge.qop else None
    credentials = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop else None,
        qop=qop,
        nc=f"{nc:08x}" if qop else None,
        opaque=challenge.opaque,
    )
    response = expected_response(credentials, method, ha1(username, challenge.realm, password, challenge.algorithm))
    parts = [
        f"username={quote_string(username)}",
        f"realm={quote_string(challenge.realm)}",
        f"nonce={quote_string(challenge.nonce)}",
        f"uri={quote_string(uri)}",
        f"response={quote_string(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"cnonce={quote_string(cnonce)}", "qop=auth", f"nc={nc:08x}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote_string(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
