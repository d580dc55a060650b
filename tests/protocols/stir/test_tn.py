"""Telephone number normalisation: every spelling of a number compares equal, and nothing else does."""

from __future__ import annotations

import pytest

from protocols.stir import CHINA, NumberPlan, TelephoneNumberError, normalise_tn


@pytest.mark.parametrize(
    ("spelling", "e164"),
    [
        # the short code 96110 in every form it arrives in
        ("96110", "8696110"),
        ("+86 96110", "8696110"),
        ("+8696110", "8696110"),
        ("0086 96110", "8696110"),
        ("8696110", "8696110"),
        ("tel:+86-96110", "8696110"),
        ("tel:96110;phone-context=+86", "8696110"),
        # 96110 behind an area code: national (0 + area) and international forms
        ("010 96110", "861096110"),
        ("010-96110", "861096110"),
        ("(010) 96110", "861096110"),
        ("+86 10 96110", "861096110"),
        ("0086 10 96110", "861096110"),
        ("861096110", "861096110"),
        ("0755 96110", "8675596110"),
        ("+86 755 96110", "8675596110"),
        ("12381", "8612381"),
        # mobiles, with and without the country code
        ("13800000001", "8613800000001"),
        ("+86 138 0000 0001", "8613800000001"),
        ("8613800000001", "8613800000001"),
        ("008613800000001", "8613800000001"),
        # fixed lines
        ("021-6123 4567", "862161234567"),
        ("+86 21 6123 4567", "862161234567"),
        # foreign numbers keep their own country code
        ("+1 202 555 0143", "12025550143"),
        ("001 202 555 0143", "12025550143"),
    ],
)
def test_spellings_normalise_to_e164_digits(spelling: str, e164: str) -> None:
    assert normalise_tn(spelling) == e164


def test_local_numbers_the_plan_cannot_place_stay_as_they_are() -> None:
    assert normalise_tn("61234567") == "61234567"  # a Shanghai line without its area code
    assert normalise_tn("86123456") == "86123456"  # eight digits starting 86: local, not +86
    assert normalise_tn("95588") == "95588"  # a short code the plan does not list


def test_short_codes_come_from_the_plan() -> None:
    plan = CHINA.with_short_codes(["95588"])
    assert normalise_tn("95588", plan) == "8695588"
    assert normalise_tn("96110", NumberPlan()) == "96110"


@pytest.mark.parametrize("bad", ["", "+", "abc", "96110a", "+86 96110 ext 5", "1" * 18, "tel:", "٩٦١١٠"])
def test_non_numbers_raise_the_module_error(bad: str) -> None:
    with pytest.raises(TelephoneNumberError) as caught:
        normalise_tn(bad)
    assert caught.value.code == 438
