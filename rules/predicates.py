"""What a rule's condition looks at for one message (:class:`Context`), and the predicates of its terms.

The compiler builds each term's predicate here, from values it knows once the rule set is compiled;
the engine calls them for every rule it evaluates. They are closures over those values, in a module of
their own so that mypyc compiles them with the engine (``make compile``): compiled, a predicate
reads the context's attributes in C rather than through the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rules.normalise import normalise, scrub
from rules.senders import sender_kind
from rules.signals import Signals
from rules.velocity import VelocityStore


class Context:
    """What a condition looks at for one message."""

    __slots__ = (
        "_domains",
        "_normalised",
        "_signals",
        "attestation",
        "channel",
        "dst",
        "has_domains",
        "hits",
        "keys",
        "minute",
        "now",
        "origin",
        "sender_id",
        "src",
        "text",
        "velocity",
    )

    def __init__(
        self,
        hits: set[int],
        channel: str,
        src: str,
        dst: str,
        sender_id: str,
        origin: str,
        minute: int,
        now: float,
        has_domains: bool,
        velocity: VelocityStore,
        keys: Mapping[str, str],
        text: str = "",
        normalised: str | None = None,
        domains: tuple[str, ...] | None = None,
        attestation: str = "",
    ) -> None:
        self.text = text
        self.attestation = attestation
        self._normalised = normalised
        self._domains = domains
        self._signals: Signals | None = None
        self.hits = hits
        self.channel = channel
        self.src = src
        self.dst = dst
        self.sender_id = sender_id
        self.origin = origin
        self.minute = minute
        self.now = now
        self.has_domains = has_domains
        self.velocity = velocity
        self.keys = keys

    def signals(self) -> Signals:
        """The message's structural signals, extracted on first use (only rules with signal selectors ask)."""
        if self._signals is None:
            norm = self._normalised if self._normalised is not None else normalise(scrub(self.text))
            self._signals = Signals(norm, self.src, self.origin, self._domains)
        return self._signals


Predicate = Callable[[Context], bool]


def hits_all(atoms: frozenset[int]) -> Predicate:
    """True when every pattern of ``atoms`` matched (``|all``)."""
    return lambda ctx: atoms <= ctx.hits


def hits_one(atom: int) -> Predicate:
    return lambda ctx: atom in ctx.hits


def hits_any(atoms: frozenset[int]) -> Predicate:
    return lambda ctx: not atoms.isdisjoint(ctx.hits)


def has_domains(want: bool) -> Predicate:
    return lambda ctx: ctx.has_domains == want


def minute_within(start: int, end: int) -> Predicate:
    """The local time of day in ``[start, end)`` minutes, a window that may span midnight."""
    if start < end:
        return lambda ctx: start <= ctx.minute < end
    return lambda ctx: ctx.minute >= start or ctx.minute < end


def velocity_at_least(by: str, count: int, within: float) -> Predicate:
    return lambda ctx: ctx.velocity.at_least(ctx.keys[by], count, within, ctx.now)


def requiring(required: frozenset[int], predicate: Predicate, absent: bool) -> Predicate:
    """``predicate``, or ``absent`` (its value when the signal is missing) unless every required
    expression matched: then the signal cannot be there, and nothing is extracted."""
    return lambda ctx: predicate(ctx) if required <= ctx.hits else absent


def signal_is(attr: str, want: bool) -> Predicate:
    return lambda ctx: bool(getattr(ctx.signals(), attr)) == want


def signal_at_least(attr: str, limit: float) -> Predicate:
    return lambda ctx: any(x >= limit for x in getattr(ctx.signals(), attr))


def signal_brand(members: frozenset[str]) -> Predicate:
    return lambda ctx: not members.isdisjoint(ctx.signals().lookalikes)


def signal_handle_kind(members: frozenset[str]) -> Predicate:
    return lambda ctx: any(kind in members for kind, _ in ctx.signals().handles)


def sender_kind_in(members: frozenset[str]) -> Predicate:
    return lambda ctx: sender_kind(ctx.src, ctx.origin) in members


def field_exists(attr: str, want: bool) -> Predicate:
    return lambda ctx: bool(getattr(ctx, attr)) == want


def field_matches(attr: str, operator: str, values: tuple[str, ...]) -> Predicate:
    """``from``/``to``/``sender_id``/``origin``/``attestation`` with ``startswith``, ``endswith`` or
    equal to one of ``values``."""
    # the source is what most such selectors read: read directly, not looked up by name
    if operator == "startswith":
        if attr == "src":
            return lambda ctx: ctx.src.startswith(values)
        return lambda ctx: bool(getattr(ctx, attr).startswith(values))
    if operator == "endswith":
        if attr == "src":
            return lambda ctx: ctx.src.endswith(values)
        return lambda ctx: bool(getattr(ctx, attr).endswith(values))
    members = frozenset(values)
    if attr == "src":
        return lambda ctx: ctx.src in members
    if attr == "dst":
        return lambda ctx: ctx.dst in members
    if attr == "origin":
        return lambda ctx: ctx.origin in members
    if attr == "attestation":
        return lambda ctx: ctx.attestation in members
    return lambda ctx: ctx.sender_id in members
