"""Near-duplicate fingerprints of message texts, for finding one fraud template sent to many people.

A campaign sends one template again and again with the details changed (a name, an amount, a link, a
contact handle) and evasions sprinkled on (traditional forms, spaces, zero-width characters, full-width
letters, sound-alike characters, emoji). The fingerprint reads the homophone view (:mod:`rules.homophones`:
normalised, squeezed, sound-alikes folded), so the evasions are gone before it looks, and replaces every
run of characters other than hanzi (digits, letters, what is left of links and handles) by one ``#``, so
the details that vary are gone too. What remains is the template's wording.

The wording's character bigrams are hashed into a :class:`Sketch` of :data:`SLOTS` numbers by one
permutation hashing (each bigram's hash picks a slot by its top bits and the slot keeps the smallest
hash it was given; empty slots borrow from the next full one), which estimates the Jaccard similarity of
two texts' bigram sets as the share of slots in which their sketches agree, at the cost of one hash per
bigram rather than one per bigram per slot. The sketch is cut into :data:`BANDS` bands of
:data:`ROWS` slots: texts whose similarity is ``s`` share at least one band with probability
``1 - (1 - s**ROWS)**BANDS`` (0.99996 at 0.6, 0.94 at 0.4, 0.15 at 0.1), so a store finds the
candidates by looking up the bands, then compares sketches. Unrelated Chinese texts share almost no
bigrams (below 0.1); copies of one template with its names, amounts, endings and evasions varied
score 0.4 and more.

Hashes are computed here, not by Python's ``hash()`` (which is salted per process), so that every
gateway instance computes the same bands for the same text. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import operator
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from rules.compiler import ACTION_RANK
from rules.engine import Action, Risk, Verdict
from rules.homophones import fold_squeezed
from rules.model import Thresholds
from rules.normalise import normalise, squeeze_normalised

#: Slots of a sketch; bands of ``ROWS`` slots each.
SLOTS = 32
ROWS = 2
BANDS = SLOTS // ROWS
#: Texts with fewer hanzi than this (verification codes, "ok", links alone) get no fingerprint: too
#: little wording to tell a template from a coincidence.
MIN_HANZI = 12
#: Only the first characters of a long text are read: a bound on the cost, and a template shows early.
MAX_CHARS = 400
#: Every run of characters that are not hanzi: digits, letters, links and handles once squeezed.
_NOT_HANZI = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SLOT_BYTES = struct.Struct(f"<{SLOTS}I")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
_BAND_STARTS = tuple((f"{b:x}", b * 8 * ROWS) for b in range(BANDS))
_MIX = 0x9E3779B1  # 2**32 / golden ratio, odd: Knuth's multiplicative hash
_EMPTY = 1 << 32


@dataclass(frozen=True, slots=True)
class Sketch:
    """The fingerprint of one text: ``SLOTS`` 32-bit values, kept as ``8 * SLOTS`` hexadecimal digits
    (the form stores keep and compare), and the band keys a store indexes."""

    hex: str

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(_slot_values(self.hex))

    @property
    def bands(self) -> tuple[str, ...]:
        """One key per band: the band's number and its slots, in hexadecimal."""
        h = self.hex
        return tuple(name + h[start : start + 8 * ROWS] for name, start in _BAND_STARTS)

    @classmethod
    def from_slots(cls, slots: tuple[int, ...] | list[int]) -> Sketch:
        # each slot as four bytes, little-endian, in hexadecimal: one C call, where "%08x" per slot took
        # ten times as long
        return cls(_SLOT_BYTES.pack(*slots).hex())

    @classmethod
    def from_hex(cls, text: str) -> Sketch:
        if len(text) != 8 * SLOTS or not _HEX_DIGITS.fullmatch(text):
            raise ValueError(f"a sketch is {8 * SLOTS} hexadecimal digits")
        return cls(text.lower())

    def similarity(self, other: Sketch) -> float:
        """The estimated Jaccard similarity of the two texts' bigram sets: the share of agreeing slots."""
        return hex_similarity(self.hex, other.hex)


def shape(folded: str) -> str:
    """The wording of a homophone-view text: every run of characters other than hanzi becomes ``#``."""
    return _NOT_HANZI.sub("#", folded)


def sketch_folded(folded: str) -> Sketch | None:
    """The sketch of a text given in its homophone view; None when it has too few hanzi."""
    wording = shape(folded)
    if len(wording) - wording.count("#") < MIN_HANZI:
        return None
    # Each character (hanzi and # are all in the Basic Multilingual Plane) as two bytes: every 4-byte
    # window is one bigram, read as one integer at C speed, in two passes (windows starting at even and
    # at odd characters); then one multiplicative hash each (the top bits of the product by an odd
    # constant), its top five bits the slot and the rest the value.
    data = wording[:MAX_CHARS].encode("utf-16-le")
    odd = data[2:]
    bigrams = struct.unpack(f"<{len(data) // 4}I", data[: len(data) // 4 * 4])
    bigrams += struct.unpack(f"<{len(odd) // 4}I", odd[: len(odd) // 4 * 4])
    mins = [_EMPTY] * SLOTS
    mix = _MIX
    for bigram in bigrams:
        h = (bigram * mix) & 0xFFFFFFFF
        slot = h >> 27
        if h < mins[slot]:
            mins[slot] = h
    return Sketch.from_slots(_densified(mins))


def _densified(mins: list[int]) -> tuple[int, ...]:
    """Empty slots take the value of the next full slot (circularly), shifted by the distance, so that
    two similar texts' empty slots agree about as often as their full ones do (rotation densification)."""
    if _EMPTY not in mins:
        return tuple(mins)
    out = list(mins)
    # One pass from the right, carrying the nearest full slot; the empty slots after the last full one
    # wrap around to the first.
    first = next(i for i, value in enumerate(mins) if value != _EMPTY)
    carry, at = mins[first], first + SLOTS
    for i in range(SLOTS - 1, -1, -1):
        value = mins[i]
        if value != _EMPTY:
            carry, at = value, i
        else:
            out[i] = (carry + (at - i) * 0x61C88647) & 0xFFFFFFFF
    return tuple(out)


def sketch(text: str) -> Sketch | None:
    """The sketch of a message text (its normalised, squeezed and homophone views computed here)."""
    return sketch_folded(fold_squeezed(squeeze_normalised(normalise(text))))


def hex_similarity(a: str, b: str) -> float:
    """:meth:`Sketch.similarity` of two sketches kept as :attr:`Sketch.hex` strings (0 for malformed ones)."""
    if len(a) != len(b) or not a:
        return 0.0
    try:
        agreeing: int = sum(map(operator.eq, _slot_values(a), _slot_values(b)))
    except (ValueError, struct.error):  # not hexadecimal, or not whole slots
        return 0.0
    return agreeing / (len(a) // 8)


@lru_cache(maxsize=4096)
def _slot_values(text: str) -> tuple[int, ...]:
    # cached: a store compares each copy with the first copies of a few clusters, the same ones again
    # and again while a campaign runs
    return struct.unpack(f"<{len(text) // 8}I", bytes.fromhex(text))


#: The rule id under which a campaign's points show among a verdict's contributions.
CAMPAIGN_RULE = "campaign"
_RISK_OF = {"tag": Risk.LOW, "warn": Risk.MEDIUM, "block": Risk.HIGH}
_RISK_RANK = {Risk.NONE: 0, Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3}


def boosted(
    verdict: Verdict,
    category: str,
    points: float,
    least: Action | None,
    thresholds: Callable[[str], Thresholds | None],
) -> Verdict:
    """``verdict`` for a copy of an open campaign: ``points`` added to ``category``'s total (and shown
    among the contributions as ``campaign``), the total held to the category's thresholds again, and the
    action raised to at least ``least``. A verdict never goes down: a blocked copy stays blocked."""
    totals = dict(verdict.totals)
    totals[category] = totals.get(category, 0.0) + points
    limits = thresholds(category)
    reached = limits.action(totals[category]) if limits is not None else None
    action, risk = verdict.action, verdict.risk
    for candidate in (reached, least.value if least is not None else None):
        if candidate is not None and ACTION_RANK[candidate] > ACTION_RANK[action.value]:
            action = Action(candidate)
        if candidate in _RISK_OF and _RISK_RANK[_RISK_OF[candidate]] > _RISK_RANK[risk]:
            risk = _RISK_OF[candidate]
    raised = action is not verdict.action
    return dataclasses.replace(
        verdict,
        action=action,
        risk=risk,
        rules=verdict.rules if CAMPAIGN_RULE in verdict.rules else (*verdict.rules, CAMPAIGN_RULE),
        # a copy the rules let by takes the campaign's category, and so its warning template
        category=category if raised and verdict.action in (Action.PASS, Action.LABEL) else verdict.category,
        contributions=(*verdict.contributions, (CAMPAIGN_RULE, category, points)),
        totals=tuple(totals.items()),
    )
