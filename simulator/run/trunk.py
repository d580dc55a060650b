"""The town's trunk: calls into the gateway that ring out as a caller would give up, on the
simulation's clock, and the time each INVITE took to get its first answer.

A caller who hears nobody pick up after ``ring_timeout`` simulated seconds hangs up: a CANCEL
(RFC 3261 9.1) sent in its own transaction, and the INVITE ends with 487. An answered call is
acknowledged and hung up ``hold`` simulated seconds later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocols.sip import ClientNonInviteTransaction, Dialog, Response, build_cancel
from simulator.clock import SimClock
from simulator.trunk import TrunkCaller

__all__ = ["Rung", "TownTrunk"]


class _Stamped(list[Response]):
    """Provisional responses, and when the first one came (perf_counter seconds)."""

    first_at: float | None = None
    #: Called once, when the callee's phone rings (the gateway has checked the call by then).
    on_ringing: Callable[[], None] | None = None

    def append(self, response: Response) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        if response.status == 180 and self.on_ringing is not None:
            self.on_ringing()
            self.on_ringing = None
        super().append(response)


@dataclass(frozen=True, slots=True)
class Rung:
    call_id: str
    status: int
    reason_phrase: str
    #: Milliseconds from the INVITE leaving to the first response (100 Trying, or the final one).
    first_answer_ms: float


class TownTrunk(TrunkCaller):
    def __init__(self, proxy: tuple[str, int], clock: SimClock, *, domain: str = "127.0.0.1") -> None:
        super().__init__(proxy, domain=domain)
        self.clock = clock
        #: Call-IDs this trunk placed (a handset ringing with any other call rings for the robot).
        self.placed: set[str] = set()
        #: Signed calls not yet answered by the gateway: their PASSporT's iat ages with the clock.
        self.signed_in_flight = 0

    async def ring(
        self,
        callee: str,
        caller: str,
        *,
        ring_timeout: float = 30.0,
        hold: float = 20.0,
        display: str | None = None,
        from_uri: str | None = None,
        identity: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> Rung:
        invite = self._invite(
            callee, caller, display, None, from_uri=from_uri, identity=tuple(identity), headers=headers
        )
        self.placed.add(invite.call_id)
        provisional = _Stamped()
        started = time.perf_counter()
        signed = bool(identity)
        self.signed_in_flight += signed
        provisional.on_ringing = self._verified if signed else None
        answer = self.send_request(invite, provisional=provisional)

        def give_up() -> None:
            if not answer.done():
                cancel = build_cancel(invite)
                txn = ClientNonInviteTransaction(cancel)
                self._clients[txn.key] = (txn, self.loop.create_future(), [])
                self._client_events(txn, txn.send_request(self.loop.time()))

        timer = self.clock.call_later(ring_timeout, give_up)
        try:
            final = await answer
        finally:
            if provisional.on_ringing is not None:
                provisional.on_ringing()
        timer.cancel()
        first = provisional.first_at or time.perf_counter()
        rung = Rung(invite.call_id, final.status, final.reason, (first - started) * 1000.0)
        if not final.is_success:
            return rung
        dialog = Dialog.from_uac(invite, final)
        ack = dialog.create_request("ACK", cseq=invite.cseq.number)
        ack.headers.insert("Via", self.via())
        self._acks[invite.call_id] = ack
        self.send(ack)
        done = asyncio.Event()
        self.clock.call_later(hold, done.set)
        await done.wait()
        if invite.call_id not in self.hung_up:
            await self.send_request(dialog.create_request("BYE"))
        self._acks.pop(invite.call_id, None)
        return rung

    def _verified(self) -> None:
        self.signed_in_flight -= 1
