"""Inspecting concatenated messages as the person will read them: whole, and before any part goes on.

A fraud text split across parts (安全 | 账户) must still match, and a bank's reminder whose disclaimer
sits in one part and whose "安全账户" sits in the next must still pass. So the parts of a message are
held (neither relayed nor answered) until every part is in, and the message is decided once, on its
whole text: blocked, no part reaches the SMSC and every part is refused; allowed, every part goes on in
order. An ESME that waits for each answer before it sends the next part would wait for ever, so holding
ends at a short deadline after the first part: what arrived is decided on, and from then on each later
part is decided as it comes, against the text of every part received so far, in order. Once a message
is blocked, its remaining parts are refused too.

Memory is bounded: at most ``max_held_per_account`` messages held per account and ``max_held_parts``
parts held in all (further parts are throttled, so the ESME retries them); a message holds at most its
``total`` parts (255), one copy of each; at most ``max_messages`` released or blocked messages are
remembered, each forgotten ``timeout`` seconds after its first part.

No clock is read and no timer armed here: the caller passes ``now`` and arms the deadline it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.inspection import Decision
from protocols.smpp import text
from protocols.smpp.pdu import Pdu

Key = tuple[str, str, str, int, int]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Held:
    """The part is held; when ``deadline`` is set, the caller releases the message then."""

    key: Key
    deadline: float | None


@dataclass(frozen=True, slots=True)
class Complete(Generic[T]):
    """Every part is in: decide on ``text`` and answer every one of ``parts`` (in part order)."""

    key: Key
    text: str
    parts: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class Streaming:
    """The message was released earlier: decide this part alone on ``text``, all parts so far."""

    key: Key
    text: str
    complete: bool


@dataclass(frozen=True, slots=True)
class Blocked:
    """The message this part belongs to was blocked: refuse the part."""

    key: Key
    decision: Decision


@dataclass(frozen=True, slots=True)
class Throttled:
    """Holding the part would pass a bound (or it repeats a held part): the ESME should retry later."""

    reason: str


Offer = Held | Complete[T] | Streaming | Blocked | Throttled


@dataclass
class _Holding(Generic[T]):
    started: float
    total: int
    parts: dict[int, tuple[str, T]] = field(default_factory=dict)


@dataclass
class _Message:
    started: float
    parts: dict[int, str] = field(default_factory=dict)
    blocked: Decision | None = None


class ConcatInspection(Generic[T]):
    def __init__(
        self,
        *,
        hold: float = 1.0,
        max_held_per_account: int = 100,
        max_held_parts: int = 10_000,
        max_messages: int = 20_000,
        timeout: float = 300.0,
    ) -> None:
        self.hold = hold
        self.max_held_per_account = max_held_per_account
        self.max_held_parts = max_held_parts
        self.max_messages = max_messages
        self.timeout = max(timeout, hold)
        self._held: dict[Key, _Holding[T]] = {}
        self._held_parts = 0
        self._held_by_account: dict[str, int] = {}
        self._messages: OrderedDict[Key, _Message] = OrderedDict()

    @property
    def held_parts(self) -> int:
        return self._held_parts

    @staticmethod
    def key_of(system_id: str, pdu: Pdu) -> tuple[Key, int, str] | None:
        """A part's message key, its seq and its text; None for a message of one part (or a bad UDH)."""
        payload: bytes = getattr(pdu, "payload", b"")
        try:
            info, body = text.parse_concat(payload, getattr(pdu, "esm_class", 0), pdu.tlvs)
        except Exception:  # a malformed UDH: inspected as a message of its own
            return None
        if info is None or info.total < 2:
            return None
        source, destination = getattr(pdu, "source_addr", ""), getattr(pdu, "destination_addr", "")
        key = (system_id, source, destination, info.ref, info.total)
        return key, info.seq, text.decode(body, getattr(pdu, "data_coding", 0))

    def offer(self, system_id: str, pdu: Pdu, item: T, now: float) -> Offer[T] | None:
        """Take one part; None when ``pdu`` is not a part of a concatenated message."""
        found = self.key_of(system_id, pdu)
        if found is None:
            return None
        key, seq, part_text = found
        self._expire(now)
        holding = self._held.get(key)
        if holding is not None:
            if seq in holding.parts:
                return Throttled("a part already held")
            if self._held_parts >= self.max_held_parts:
                return Throttled("too many parts held")
            holding.parts[seq] = (part_text, item)
            self._held_parts += 1
            if len(holding.parts) < holding.total:
                return Held(key, None)
            self._unhold(key, holding)
            return Complete(key, _joined({s: t for s, (t, _) in holding.parts.items()}), _items(holding))
        message = self._messages.get(key)
        if message is not None:
            if message.blocked is not None:
                return Blocked(key, message.blocked)
            message.parts[seq] = part_text
            return Streaming(key, _joined(message.parts), len(message.parts) == key[4])
        if self._held_by_account.get(system_id, 0) >= self.max_held_per_account:
            return Throttled("too many messages held for the account")
        if self._held_parts >= self.max_held_parts:
            return Throttled("too many parts held")
        self._held[key] = _Holding(now, key[4], {seq: (part_text, item)})
        self._held_parts += 1
        self._held_by_account[system_id] = self._held_by_account.get(system_id, 0) + 1
        return Held(key, now + self.hold)

    def release(self, key: Key, now: float) -> Complete[T] | None:
        """At the deadline: what arrived of a message still held, from now on decided part by part."""
        holding = self._held.get(key)
        if holding is None:
            return None
        self._unhold(key, holding)
        parts = {s: t for s, (t, _) in holding.parts.items()}
        self._remember(key, _Message(holding.started, parts))
        return Complete(key, _joined(parts), _items(holding))

    def block(self, key: Key, decision: Decision, now: float) -> None:
        """Refuse every later part of the message."""
        message = self._messages.get(key)
        if message is None:
            self._remember(key, _Message(now, blocked=decision))
        else:
            message.blocked = decision

    def blocked(self, key: Key) -> Decision | None:
        message = self._messages.get(key)
        return message.blocked if message is not None else None

    def forget(self, key: Key) -> None:
        """A message complete and allowed: nothing more will come."""
        self._messages.pop(key, None)

    def _unhold(self, key: Key, holding: _Holding[T]) -> None:
        del self._held[key]
        self._held_parts -= len(holding.parts)
        left = self._held_by_account[key[0]] - 1
        if left:
            self._held_by_account[key[0]] = left
        else:
            del self._held_by_account[key[0]]

    def _remember(self, key: Key, message: _Message) -> None:
        self._messages[key] = message
        while len(self._messages) > self.max_messages:
            self._messages.popitem(last=False)

    def _expire(self, now: float) -> None:
        messages = self._messages
        while messages:
            key, oldest = next(iter(messages.items()))
            if now - oldest.started < self.timeout:
                break
            del messages[key]


def _joined(parts: dict[int, str]) -> str:
    return "".join(parts[seq] for seq in sorted(parts))


def _items(holding: _Holding[T]) -> tuple[T, ...]:
    return tuple(holding.parts[seq][1] for seq in sorted(holding.parts))
