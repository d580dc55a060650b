"""Inspecting concatenated messages as the person will read them: whole, not part by part.

A fraud text split across parts (安全 | 账户) must still match, and a bank's reminder whose disclaimer
sits in one part and whose "安全账户" sits in the next must still pass. Each part is therefore inspected
against the text of every part of its message received so far, in order. Once a message is blocked,
its remaining parts are refused too. Earlier parts may already have been relayed by then: holding them
back would stall an ESME that sends one part at a time and waits for each answer.

Memory is bounded: at most ``max_messages`` messages in progress, each forgotten ``timeout`` seconds
after its first part.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from gateway.inspection import Decision
from protocols.smpp import text
from protocols.smpp.pdu import Pdu

Key = tuple[str, str, str, int, int]


@dataclass
class _Message:
    started: float
    parts: dict[int, str] = field(default_factory=dict)
    blocked: Decision | None = None


class ConcatInspection:
    def __init__(self, *, max_messages: int = 20_000, timeout: float = 300.0) -> None:
        self.max_messages = max_messages
        self.timeout = timeout
        self._messages: OrderedDict[Key, _Message] = OrderedDict()

    def part_of(self, system_id: str, pdu: Pdu, now: float) -> tuple[Key, str] | None:
        """For a part of a concatenated message: its message's key and the text received so far."""
        payload: bytes = getattr(pdu, "payload", b"")
        try:
            info, body = text.parse_concat(payload, getattr(pdu, "esm_class", 0), pdu.tlvs)
        except Exception:  # a malformed UDH: inspected as a message of its own
            return None
        if info is None or info.total < 2:
            return None
        key = (system_id, getattr(pdu, "source_addr", ""), getattr(pdu, "destination_addr", ""), info.ref, info.total)
        self._expire(now)
        message = self._messages.get(key)
        if message is None:
            message = self._messages[key] = _Message(now)
            while len(self._messages) > self.max_messages:
                self._messages.popitem(last=False)
        message.parts[info.seq] = text.decode(body, getattr(pdu, "data_coding", 0))
        whole = "".join(message.parts[seq] for seq in sorted(message.parts))
        if len(message.parts) == info.total and message.blocked is None:
            del self._messages[key]  # complete and allowed: nothing more will come
        return key, whole

    def blocked(self, key: Key) -> Decision | None:
        message = self._messages.get(key)
        return message.blocked if message is not None else None

    def block(self, key: Key, decision: Decision) -> None:
        message = self._messages.get(key)
        if message is not None:
            message.blocked = decision

    def _expire(self, now: float) -> None:
        messages = self._messages
        while messages:
            key, oldest = next(iter(messages.items()))
            if now - oldest.started < self.timeout:
                break
            del messages[key]
