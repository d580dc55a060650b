"""Replay protection: a PASSporT is good for one call.

RFC 8224 section 12.1 asks verifiers to remember the PASSporTs they accepted for as long as they are
fresh: the same token arriving on another Call-ID is a replay (a captured INVITE from 96110 resent by
a fraudster to a victim) and is refused. The same token on the same Call-ID is a retransmission or a
spiral and is allowed.

Entries are keyed by a SHA-256 of the signed part of the token, not of the whole token: ECDSA
signatures are malleable (``(r, s)`` and ``(r, n - s)`` both verify), so a replayer could otherwise
mint a "new" token for free. An entry lives until its token would be stale anyway (iat plus the
freshness window); time comes from the caller's ``now``.

Memory is bounded: past ``max_entries`` the entry closest to expiry is dropped early and counted in
``evicted_live``, which should stay zero (size the cache for peak calls per freshness window) and is
exported so that operators see it if not.
"""

from __future__ import annotations

import hashlib
import heapq

__all__ = ["ReplayCache"]


class ReplayCache:
    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.evicted_live = 0
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._expiry: list[tuple[float, bytes]] = []  # a heap with one (expires, key) per entry

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(signing_input: bytes) -> bytes:
        return hashlib.sha256(signing_input).digest()

    def seen_elsewhere(self, key: bytes, call_id: str, now: float) -> bool:
        """True when ``key`` was accepted for another call and has not expired; does not record."""
        self._expire(now)
        entry = self._entries.get(key)
        return entry is not None and entry[0] != call_id and entry[1] > now

    def record(self, key: bytes, call_id: str, expires: float, now: float) -> None:
        self._expire(now)
        if key in self._entries:
            return  # the first call to use a token owns it until it expires
        while len(self._entries) >= self.max_entries:
            self._pop_earliest()
            self.evicted_live += 1
        self._entries[key] = (call_id, expires)
        heapq.heappush(self._expiry, (expires, key))

    def check_and_record(self, key: bytes, call_id: str, expires: float, now: float) -> bool:
        """Record the token for ``call_id``; False when it already belongs to another live call."""
        if self.seen_elsewhere(key, call_id, now):
            return False
        self.record(key, call_id, expires, now)
        return True

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            self._pop_earliest()

    def _pop_earliest(self) -> None:
        while self._expiry:
            expires, key = heapq.heappop(self._expiry)
            entry = self._entries.get(key)
            if entry is not None and entry[1] == expires:
                del self._entries[key]
                return
