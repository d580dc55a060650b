"""The message object rules are evaluated on, and how it is read from JSON or from a rule's test case."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from rules import spec

#: Beijing time: the default local time for time-of-day selectors and for ISO times without an offset.
DEFAULT_UTC_OFFSET_MINUTES = 8 * 60
#: When a test case gives no time: Monday 3 June 2024, 10:00 Beijing time.
DEFAULT_TEST_NOW = datetime(2024, 6, 3, 10, 0, tzinfo=timezone(timedelta(hours=8))).timestamp()


class Message:
    """One SMS or call as the rule engine sees it.

    ``src``/``dst`` are the ``from``/``to`` of the JSON form. ``now`` is the message's time in epoch
    seconds; when None the engine asks its clock. ``attestation`` is A, B or C when the gateway verified
    a PASSporT for the calling number (STIR/SHAKEN), else empty. Any strings are accepted: an unknown
    channel simply matches no rule.

    Immutable (the attributes are Final), compared and hashed by value. A plain class rather than a
    frozen dataclass: compiled, a dataclass keeps the ``__init__`` the dataclasses module writes, which
    runs as Python and sets each field through ``object.__setattr__``; the gateway builds one of these
    for every message it inspects.
    """

    __slots__ = ("attestation", "channel", "dst", "now", "origin", "sender_id", "src", "text")

    def __init__(
        self,
        channel: str = "sms",
        src: str = "",
        dst: str = "",
        text: str = "",
        origin: str = "domestic",
        sender_id: str | None = None,
        now: float | None = None,
        attestation: str = "",
    ) -> None:
        self.channel: Final = channel
        self.src: Final = src
        self.dst: Final = dst
        self.text: Final = text
        self.origin: Final = origin
        self.sender_id: Final = sender_id
        self.now: Final = now
        self.attestation: Final = attestation

    def _fields(self) -> tuple[str, str, str, str, str, str | None, float | None, str]:
        return (self.channel, self.src, self.dst, self.text, self.origin, self.sender_id, self.now, self.attestation)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Message(channel={self.channel!r}, src={self.src!r}, dst={self.dst!r}, text={self.text!r}, "
            f"origin={self.origin!r}, sender_id={self.sender_id!r}, now={self.now!r}, "
            f"attestation={self.attestation!r})"
        )

    def at(self, now: float | None) -> Message:
        """The same message at another time."""
        return Message(self.channel, self.src, self.dst, self.text, self.origin, self.sender_id, now, self.attestation)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "from": self.src, "to": self.dst, "text": self.text}
        out["origin"] = self.origin
        if self.sender_id is not None:
            out["sender_id"] = self.sender_id
        if self.attestation:
            out["attestation"] = self.attestation
        if self.now is not None:
            out["now"] = self.now
        return out


class MessageError(ValueError):
    """A message object that does not have the documented shape; ``problems`` names each fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_ISO = re.compile(spec.ISO_TIME)


def parse_time(value: Any, utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES) -> float:
    """Epoch seconds from a number or an ISO 8601 string (local time at the offset when it names none)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected epoch seconds or an ISO 8601 time, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite time, got {value!r}")
        return float(value)
    if not _ISO.match(value):
        raise ValueError(f"{value!r} is not an ISO 8601 time such as 2024-06-03T23:30:00+08:00")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=utc_offset_minutes)))
    return moment.astimezone(UTC).timestamp()


_STRINGS = ("from", "to", "text", "sender_id")
_ATTESTATIONS = (*spec.ATTESTATIONS, "")


def message_from_mapping(
    data: Mapping[str, Any],
    *,
    default_now: float | None = None,
    default_channel: str = "sms",
    utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES,
) -> Message:
    """A Message from its JSON form; unknown keys are ignored, wrong types raise MessageError."""
    problems: list[str] = []
    for key in _STRINGS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{key!r} must be a string, not {type(value).__name__}")
    channel = data.get("channel", default_channel)
    if channel not in spec.MESSAGE_CHANNELS:
        problems.append(f"'channel' must be one of {', '.join(spec.MESSAGE_CHANNELS)}, not {channel!r}")
    origin = data.get("origin", "domestic")
    if origin not in spec.ORIGINS:
        problems.append(f"'origin' must be one of {', '.join(spec.ORIGINS)}, not {origin!r}")
    attestation = data.get("attestation", "")
    if attestation not in _ATTESTATIONS:
        problems.append(f"'attestation' must be one of {', '.join(spec.ATTESTATIONS)} or empty, not {attestation!r}")
    now = default_now
    if data.get("now") is not None:
        try:
            now = parse_time(data["now"], utc_offset_minutes)
        except ValueError as exc:
            problems.append(f"'now': {exc}")
    if problems:
        raise MessageError(problems)
    return Message(
        channel=channel,
        src=data.get("from") or "",
        dst=data.get("to") or "",
        text=data.get("text") or "",
        origin=origin,
        sender_id=data.get("sender_id"),
        now=now,
        attestation=attestation,
    )
