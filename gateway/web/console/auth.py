"""Who may use the console: scrypt password hashes, sessions, CSRF tokens and login throttling.

A password hash reads ``scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>``: the parameters travel with
it, so raising them later leaves older hashes valid. Sessions live in the store (:class:`Sessions`),
under the hash of their cookie; each carries its own CSRF token, which every form sends back and the
server compares in constant time. Failed logins are counted in the store too (:class:`Throttle`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.store.base import ConsoleSession

#: RFC 7914's interactive parameters: about 16 MiB and a few tens of milliseconds per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
_KEY_BYTES = 32
_MAX_MEMORY = 64 * 1024 * 1024
#: The roles, least first: a viewer watches, an agent works cases, an admin works cases and reads the
#: operators' audit log.
ROLES = ("viewer", "agent", "admin")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES, maxmem=_MAX_MEMORY)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(key).decode()}"


def check_hash(encoded: str) -> str | None:
    """None when ``encoded`` is a password hash this module can check, else what is wrong with it."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return "expected scrypt$N$r$p$salt$key (made by `afgw console passwd`)"
    try:
        n, r, p = (int(x) for x in parts[1:4])
        base64.b64decode(parts[4], validate=True)
        base64.b64decode(parts[5], validate=True)
    except ValueError:
        return "the parameters must be integers and the salt and key base64"
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r > _MAX_MEMORY:
        return "N must be a power of two and N*r small enough to check"
    return None


def verify_password(password: str, encoded: str) -> bool:
    if check_hash(encoded) is not None:
        return False
    _, n, r, p, salt, key = encoded.split("$")
    expected = base64.b64decode(key)
    got = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
        maxmem=_MAX_MEMORY,
    )
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf: str
    operator: str
    role: str
    expires_at: float
    #: The account's stamp at login (:func:`account_stamp`).
    account: str = ""

    def may_act(self) -> bool:
        return self.role in ("agent", "admin")

    def may_audit(self) -> bool:
        """Who reads what the operators did: the admin, not the agents whose steps it lists."""
        return self.role == "admin"


def session_key(token: str) -> str:
    """What the store keeps a session under: the cookie's hash, so that the store holds no live cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


def account_stamp(account: Account) -> str:
    """The account as it was at login: its role or password changed, the stamp differs."""
    return hashlib.sha256(f"{account.name}\0{account.role}\0{account.password_hash}".encode()).hexdigest()


def account_unchanged(session: Session, accounts: Mapping[str, Account]) -> bool:
    """Whether the session's account is still configured as it was at login (a reload may have removed
    it, or changed its role or password)."""
    account = accounts.get(session.operator)
    return account is not None and hmac.compare_digest(account_stamp(account), session.account)


class SessionStore(Protocol):
    """Where sessions are kept: the gateway's store (see :class:`gateway.store.base.StateStore`)."""

    async def keep_console_session(
        self, session: ConsoleSession, now: float, limit: int, per_operator: int = ...
    ) -> None: ...
    async def console_session(
        self, key: str, now: float, idle: float, *, touch: bool = True
    ) -> ConsoleSession | None: ...
    async def drop_console_session(self, key: str) -> None: ...


class Sessions:
    """Logins by cookie token, kept in the store: on Redis every worker and instance serving the console
    knows every session, so a browser may use any of them with one cookie. A session ends at
    ``lifetime`` seconds after login, after ``idle`` seconds unused, at logout, or at its next use once
    its account was removed or changed (role, password); beyond ``per_account`` logins of one account its
    oldest go, and beyond ``limit`` in all the ones ending first."""

    def __init__(
        self, store: SessionStore, lifetime: float, idle: float, limit: int = 1000, per_account: int = 10
    ) -> None:
        self.store, self.lifetime, self.idle, self.limit, self.per_account = store, lifetime, idle, limit, per_account

    async def open(self, account: Account, now: float) -> Session:
        token = secrets.token_urlsafe(32)
        kept = ConsoleSession(
            session_key(token),
            account.name,
            account.role,
            secrets.token_urlsafe(32),
            account_stamp(account),
            now,
            now,
            now + self.lifetime,
        )
        await self.store.keep_console_session(kept, now, self.limit, self.per_account)
        return Session(token, kept.csrf, kept.operator, kept.role, kept.expires_at, kept.account)

    async def get(self, token: str | None, now: float, *, touch: bool = True) -> Session | None:
        """The live session of ``token``; ``touch``: this is a use of it (a page, a form), not the live
        overview's refresh, which alone does not keep a session from lapsing when idle. Whether its
        account is still the same is :func:`account_unchanged`'s question."""
        if not token:
            return None
        kept = await self.store.console_session(session_key(token), now, self.idle, touch=touch)
        if kept is None:
            return None
        return Session(token, kept.csrf, kept.operator, kept.role, kept.expires_at, kept.account)

    async def close(self, token: str) -> None:
        await self.store.drop_console_session(session_key(token))


def same_token(sent: str | None, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest((sent or "").encode(), expected.encode())


class FailureCounts(Protocol):
    """Where failed logins are counted: the gateway's store (see :class:`gateway.store.base.StateStore`)."""

    async def failures(self, key: str, now: float, window: float) -> int: ...
    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int: ...
    async def clear_failures(self, key: str) -> None: ...


class Throttle:
    """At most ``failures`` failed logins per key (an account, a source address) within ``window``
    seconds; beyond that the key is refused until the oldest failure leaves the window.

    The counts live in the store: on Redis, every worker and instance serving the console counts
    against the same ones, so N of them do not give a guesser N times the tries."""

    PREFIX = "console.login:"

    def __init__(self, counts: FailureCounts, failures: int = 5, window: float = 300.0) -> None:
        self.counts, self.failures, self.window = counts, failures, window

    async def attempt(self, key: str, now: float) -> bool:
        """Count a login attempt against ``key`` before its password is checked; False when it is over
        the limit. Counting first, atomically, is what holds the limit against guesses sent at once:
        checking first and counting after the slow password check would let them all through."""
        counted = await self.counts.count_failure(self.PREFIX + key, now, self.window, self.failures + 1)
        return counted <= self.failures

    async def cleared(self, key: str) -> None:
        await self.counts.clear_failures(self.PREFIX + key)


def mask(number: str) -> str:
    """The number with the four digits before the last four hidden: 13800000001 -> 138****0001."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:-8] + "****" + number[-4:]
