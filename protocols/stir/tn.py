"""Telephone numbers in the one form PASSporTs and certificates compare: E.164 digits without '+'.

RFC 8224 section 8.3 asks verifiers to canonicalise numbers before comparing them, since the same
line arrives as ``+86 10 96110``, ``0086-10-96110``, ``8610 96110`` or ``010 96110`` depending on who
wrote it. ``normalise_tn`` turns every such spelling into ``861096110``, given the numbering plan
of the country the gateway serves (China by default: country code 86, trunk prefix 0, international
prefix 00).

Short codes such as 96110 or 12381 are dialled without an area code and have no E.164 form of their
own; they are written country code + short code (``8696110``), which is also how ``+86 96110`` reads,
so the bare and the international spelling of a short code compare equal. The plan lists the short
codes it knows, because a bare five-digit string is otherwise indistinguishable from a local number.

Numbers that cannot be placed in the plan (a bare local number without its area code) are returned as
their digits: they still compare equal to themselves, and never to a national number.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocols.stir.errors import TelephoneNumberError

__all__ = ["CHINA", "NumberPlan", "normalise_tn"]

# Visual separators RFC 3966 allows in telephone-subscriber, plus the space people type.
_SEPARATORS_RE = re.compile(r"[\s\-.()]")
_DIGITS_RE = re.compile(r"[0-9]+")
MAX_E164_DIGITS = 15


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """How national numbers are written in the country the gateway serves."""

    country_code: str = "86"
    trunk_prefix: str = "0"
    international_prefix: str = "00"
    # Shortest and longest national significant number (area code + subscriber, or a mobile).
    nsn_lengths: tuple[int, int] = (7, 11)
    short_codes: frozenset[str] = field(default_factory=frozenset)

    def with_short_codes(self, codes: Iterable[str]) -> NumberPlan:
        return NumberPlan(
            self.country_code,
            self.trunk_prefix,
            self.international_prefix,
            self.nsn_lengths,
            self.short_codes | frozenset(codes),
        )


CHINA = NumberPlan(short_codes=frozenset({"96110", "12381", "110"}))


def normalise_tn(number: str, plan: NumberPlan = CHINA) -> str:
    """The E.164 digits (no '+') of ``number``, or its bare digits when the plan cannot place it.

    Accepts a ``tel:`` URI's global or local number as well (parameters after ';' are dropped).
    Raises TelephoneNumberError for anything that is not a telephone number.
    """
    if len(number) > 64:
        raise TelephoneNumberError(f"not a telephone number: {number[:40]!r}")
    return _normalise(number, plan)


# Every INVITE normalises the same few numbers several times (call, claims, registry); results are
# small and the input length is capped, so a bounded cache is cheap and cannot be grown without limit.
@functools.lru_cache(maxsize=4096)
def _normalise(number: str, plan: NumberPlan) -> str:
    text = number.strip()
    if text[:4].lower() == "tel:":
        text = text[4:].split(";", 1)[0]
    text = _SEPARATORS_RE.sub("", text)
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not _DIGITS_RE.fullmatch(digits) or len(digits) > MAX_E164_DIGITS + len(plan.international_prefix):
        raise TelephoneNumberError(f"not a telephone number: {number[:40]!r}")
    cc = plan.country_code
    if international:
        result = digits
    elif plan.international_prefix and digits.startswith(plan.international_prefix):
        result = digits[len(plan.international_prefix) :]
    elif plan.trunk_prefix and digits.startswith(plan.trunk_prefix):
        result = cc + digits[len(plan.trunk_prefix) :]
    elif digits in plan.short_codes:
        result = cc + digits
    elif digits.startswith(cc) and _is_national(digits[len(cc) :], plan):
        # E.164 written without '+', as SIP user parts and PASSporT claims usually carry it.
        result = digits
    elif _is_mobile(digits, plan):
        result = cc + digits
    else:
        result = digits
    if not 1 <= len(result) <= MAX_E164_DIGITS:
        raise TelephoneNumberError(f"not a telephone number: {number[:40]!r}")
    return result


def _is_national(nsn: str, plan: NumberPlan) -> bool:
    low, high = plan.nsn_lengths
    return nsn in plan.short_codes or (low <= len(nsn) <= high and not nsn.startswith(plan.trunk_prefix or "-"))


def _is_mobile(digits: str, plan: NumberPlan) -> bool:
    # Chinese mobile numbers: eleven digits starting with 1, dialled without a trunk prefix.
    return plan.country_code == "86" and len(digits) == 11 and digits.startswith("1")
