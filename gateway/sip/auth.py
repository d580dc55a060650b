"""Digest authentication of handsets (RFC 3261 22, RFC 2617 MD5 with qop=auth), failing closed.

A nonce is ``<issued-at>.<random>.<mac>`` where the MAC (HMAC-SHA256 under a per-process secret)
covers the issue time, the random part and the client's source address: the gateway keeps no table
of issued nonces, a nonce cannot be forged or moved to another address, and its age is known. A
nonce older than ``nonce_ttl`` earns a fresh challenge with ``stale=true`` when the password was
right. Every other problem (no credentials, unknown scheme, malformed header, unknown user, wrong
password, wrong realm, a replayed nonce count) is the same plain challenge: probes learn nothing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from protocols.errors import RemoteProtocolError
from protocols.sip import Request, parse_uri
from protocols.sip.digest import Credentials, challenge, expected_response, ha1, parse_credentials

_DUMMY_HA1 = "0" * 32


class AuthOutcome(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    username: str | None = None

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
        max_tracked_nonces: int = 65536,
        secret: bytes | None = None,
    ) -> None:
        self.realm = realm
        # Only HA1 is kept: the password itself is not needed after start.
        self._ha1 = {user: ha1(user, realm, password) for user, password in passwords.items()}
        self.nonce_ttl = nonce_ttl
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._nc: OrderedDict[str, int] = OrderedDict()
        self._max_tracked = max_tracked_nonces

    # --- nonces ---------------------------------------------------------------------------------------

    def _mac(self, issued: str, rand: str, source: str) -> str:
        msg = f"{issued}.{rand}.{source}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def new_nonce(self, now: float, source: str) -> str:
        issued = format(int(now * 1000), "x")
        rand = secrets.token_hex(8)
        return f"{issued}.{rand}.{self._mac(issued, rand, source)}"

    def _nonce_age(self, nonce: str, source: str, now: float) -> float | None:
        """Seconds since the nonce was issued to ``source``; None when it is not one of ours."""
        parts = nonce.split(".")
        if len(parts) != 3 or len(parts[0]) > 16:
            return None
        issued, rand, mac = parts
        if not hmac.compare_digest(mac, self._mac(issued, rand, source)):
            return None
        try:
            age = now - int(issued, 16) / 1000.0
        except ValueError:
            return None
        return age if age >= -1.0 else None

    def challenge(self, now: float, source: str, *, stale: bool = False) -> str:
        """A WWW-Authenticate value with a fresh nonce for ``source``."""
        return challenge(self.realm, self.new_nonce(now, source), stale=stale)

    # --- checking -------------------------------------------------------------------------------------

    def check(self, request: Request, source: str, now: float) -> AuthResult:
        values = request.headers.get_all("Authorization") + request.headers.get_all("Proxy-Authorization")
        if not values:
            return AuthResult(AuthOutcome.MISSING)
        for value in values:
            try:
                credentials = parse_credentials(value)
            except RemoteProtocolError:
                continue
            if credentials.realm != self.realm:
                continue
            return self._verify(credentials, request, source, now)
        return AuthResult(AuthOutcome.FAILED)

    def _verify(self, credentials: Credentials, request: Request, source: str, now: float) -> AuthResult:
        if credentials.algorithm.lower() != "md5" or credentials.qop != "auth":
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
        known = self._ha1.get(credentials.username)
        expected = expected_response(credentials, request.method, known or _DUMMY_HA1)
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
