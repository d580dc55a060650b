"""A PASSporT serves one call, whichever gateway sees it.

Each gateway's verifier remembers the tokens it accepted (``protocols.stir.ReplayCache``), which
catches a replay to the same process only. When several gateways (worker processes, or hosts) share
a store, every accepted token is also claimed there, atomically, for its call: a token already
claimed for another Call-ID is a replay and the call is refused as the local cache would refuse it
(438, ``PASSporT already used on another call``). The same Call-ID again (a retransmission, a
spiral through another gateway) keeps its claim. Claims lapse when the token would be stale anyway.

If the store cannot answer, the call goes on with the local check alone, and a warning is logged:
the store being down must not take every verified call down with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SharedReplay(Protocol):
    async def claim_passports(self, used: Sequence[tuple[bytes, float]], call_id: str, now: float) -> bool:
        """Claim every (replay key, stale time) for ``call_id``; False when one belongs to another call."""
        ...
