"""Digest authentication of handsets (RFC 3261 22, RFC 2617 MD5 and RFC 8760 SHA-256, qop=auth),
failing closed.

A challenge offers each configured algorithm, SHA-256 and MD5 unless told otherwise (RFC 8760
section 2.4: in order of preference, one challenge per algorithm, the same nonce in each);
credentials in any offered algorithm are accepted, in one not offered never.

A nonce is an AES-GCM token sealed under a per-process key: the issue time is its encrypted
payload and the client's source address its associated data. The gateway keeps no table of issued
nonces, a nonce cannot be forged or moved to another address, its age is known to the gateway
alone, and nothing in it (no clock, no counter) tells a client about the host. A nonce older than
``nonce_ttl`` earns a fresh challenge with ``stale=true`` when the password was right. Every other
problem (no credentials, unknown scheme or algorithm, malformed header, unknown user, wrong password,
wrong realm, a replayed nonce count) is the same plain challenge: probes learn nothing.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.errors import RemoteProtocolError
from protocols.sip import Request, parse_uri
from protocols.sip.digest import (
    ALGORITHMS,
    Credentials,
    canonical_algorithm,
    challenge,
    expected_response,
    ha1,
    parse_credentials,
)

_IV_SIZE = 12
_NONCE_BYTES = _IV_SIZE + 8 + 16  # IV, the sealed issue time in milliseconds, the GCM tag
_DUMMY_HA1 = {name: "0" * len(hash_("")) for name, hash_ in ALGORITHMS.items()}


class AuthOutcome(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    username: str | None = None
    #: The header line that carried the credentials checked (name, value): the gateway's own,
    #: removed before the request goes on so that no one downstream sees the digest response.
    consumed: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK


class DigestAuthenticator:
    def __init__(
        self,
        realm: str,
        passwords: dict[str, str],
        *,
        nonce_ttl: float = 300.0,
        algorithms: tuple[str, ...] = tuple(ALGORITHMS),
        max_tracked_nonces: int = 65536,
        secret: bytes | None = None,
    ) -> None:
        self.realm = realm
        # Only HA1 is kept: the password itself is not needed after start.
        self._ha1 = {
            algorithm: {user: ha1(user, realm, password, algorithm) for user, password in passwords.items()}
            for algorithm in ALGORITHMS
        }
        self.nonce_ttl = nonce_ttl
        self.algorithms = algorithms
        key = hashlib.sha256(secret).digest() if secret is not None else AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(key)
        self._nc: OrderedDict[str, int] = OrderedDict()
        self._max_tracked = max_tracked_nonces

    # --- nonces ---------------------------------------------------------------------------------------

    def new_nonce(self, now: float, source: str) -> str:
        iv = secrets.token_bytes(_IV_SIZE)
        sealed = self._aead.encrypt(iv, struct.pack(">q", int(now * 1000)), source.encode())
        return base64.urlsafe_b64encode(iv + sealed).decode("ascii")

    def _nonce_age(self, nonce: str, source: str, now: float) -> float | None:
        """Seconds since the nonce was issued to ``source``; None when it is not one of ours."""
        if len(nonce) != 4 * _NONCE_BYTES // 3:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
            issued_ms = self._aead.decrypt(raw[:_IV_SIZE], raw[_IV_SIZE:], source.encode())
        except (ValueError, binascii.Error, InvalidTag, UnicodeEncodeError):
            return None
        age = now - struct.unpack(">q", issued_ms)[0] / 1000.0
        return age if age >= -1.0 else None

    def challenges(self, now: float, source: str, *, stale: bool = False) -> list[str]:
        """The WWW-Authenticate / Proxy-Authenticate values for ``source``, one per algorithm."""
        nonce = self.new_nonce(now, source)
        return [challenge(self.realm, nonce, stale=stale, algorithm=algorithm) for algorithm in self.algorithms]

    # --- checking -------------------------------------------------------------------------------------

    def check(self, request: Request, source: str, now: float, *, header: str = "Authorization") -> AuthResult:
        """Check the credentials for our realm in ``header`` (Authorization for a registrar,
        Proxy-Authorization for a proxy, RFC 3261 22.2 and 22.3); those for other realms are
        someone else's and left alone."""
        values = request.headers.get_all(header)
        if not values:
            return AuthResult(AuthOutcome.MISSING)
        for value in values:
            try:
                credentials = parse_credentials(value)
            except RemoteProtocolError:
                continue
            if credentials.realm != self.realm:
                continue
            result = self._verify(credentials, request, source, now)
            return AuthResult(result.outcome, result.username, (header, value))
        return AuthResult(AuthOutcome.FAILED)

    def _verify(self, credentials: Credentials, request: Request, source: str, now: float) -> AuthResult:
        algorithm = canonical_algorithm(credentials.algorithm)
        if algorithm is None or algorithm not in self.algorithms or credentials.qop != "auth":
            return AuthResult(AuthOutcome.FAILED)
        # The digest covers ``uri``, so it must name what the request is for; its port is not
        # compared (sipp, for one, writes the port the request was sent to, not the Request-URI's).
        try:
            uri = parse_uri(credentials.uri)
        except RemoteProtocolError:
            return AuthResult(AuthOutcome.FAILED)
        target = request.uri
        if (uri.scheme, uri.user, uri.host.lower()) != (target.scheme, target.user, target.host.lower()):
            return AuthResult(AuthOutcome.FAILED)
        # The same work for an unknown user as for a known one, so timing tells nothing either.
        known = self._ha1[algorithm].get(credentials.username)
        expected = expected_response(credentials, request.method, known or _DUMMY_HA1[algorithm])
        if known is None or not hmac.compare_digest(expected, credentials.response):
            return AuthResult(AuthOutcome.FAILED)
        age = self._nonce_age(credentials.nonce, source, now)
        if age is None:
            return AuthResult(AuthOutcome.FAILED)
        if age > self.nonce_ttl:
            return AuthResult(AuthOutcome.STALE, credentials.username)
        # qop=auth: the nonce count must grow, so a captured request cannot be replayed.
        nc = int(credentials.nc or "0", 16)
        last = self._nc.get(credentials.nonce)
        if last is not None and nc <= last:
            return AuthResult(AuthOutcome.FAILED)
        self._nc[credentials.nonce] = nc
        self._nc.move_to_end(credentials.nonce)
        while len(self._nc) > self._max_tracked:
            self._nc.popitem(last=False)
        return AuthResult(AuthOutcome.OK, credentials.username)
