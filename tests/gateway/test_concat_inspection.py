"""Holding the parts of a long message until it can be decided whole: the clock-free core."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.inspection import Action, Decision
from gateway.smpp.concat_inspection import Blocked, Complete, ConcatInspection, Held, Streaming, Throttled
from protocols.smpp import text
from protocols.smpp.pdu import SubmitSm, Tlv

METHODS = list(text.ConcatMethod)
BLOCK = Decision(action=Action.BLOCK, rules=("test.fraud",))
LONG = "您好，今天下午三点的会议改到明天上午，请大家相互转告，谢谢。" * 8


def parts(message: str, method: text.ConcatMethod, *, ref: int = 7, source: str = "10690") -> list[SubmitSm]:
    data_coding, segments = text.split(message, method=method, ref=ref)
    return [
        SubmitSm(
            source_addr=source,
            destination_addr="8613800000001",
            esm_class=0x40 if seg.esm_class_udhi else 0,
            data_coding=data_coding,
            short_message=seg.short_message,
            tlvs=tuple(Tlv(t, v) for t, v in seg.tlvs),
        )
        for seg in segments
    ]


@pytest.mark.parametrize("method", METHODS)
@given(order=st.permutations(range(4)))
def test_parts_are_held_until_the_last_then_given_back_whole_in_part_order(method, order):
    pdus = parts(LONG[:250], method)
    assert len(pdus) == 4
    concat: ConcatInspection[int] = ConcatInspection(hold=2.0)
    offers = [concat.offer("bank", pdus[i], i, now=10.0 + n * 0.1) for n, i in enumerate(order)]
    first, *middle, last = offers
    assert first == Held(first.key, 12.0)  # the deadline runs from the first part to arrive
    assert all(o == Held(first.key, None) for o in middle)
    assert isinstance(last, Complete)
    assert last.text == LONG[:250]
    assert last.parts == (0, 1, 2, 3)  # in part order, whatever the arrival order
    assert concat.held_parts == 0


@pytest.mark.parametrize("method", METHODS)
def test_at_the_deadline_what_arrived_is_released_and_later_parts_are_decided_one_by_one(method):
    pdus = parts(LONG[:250], method)
    concat: ConcatInspection[str] = ConcatInspection(hold=1.0)
    held = concat.offer("bank", pdus[0], "p1", now=0.0)
    assert isinstance(held, Held)
    released = concat.release(held.key, now=1.0)
    assert released is not None
    assert released.parts == ("p1",)
    assert concat.release(held.key, now=1.0) is None  # once only
    second = concat.offer("bank", pdus[1], "p2", now=1.5)
    assert isinstance(second, Streaming)
    assert LONG.startswith(second.text)
    assert len(second.text) > len(released.text)
    assert not second.complete
    concat.offer("bank", pdus[2], "p3", now=1.6)
    last = concat.offer("bank", pdus[3], "p4", now=1.7)
    assert isinstance(last, Streaming)
    assert last.complete
    assert last.text == LONG[:250]


@pytest.mark.parametrize("method", METHODS)
def test_once_blocked_every_later_part_is_refused(method):
    pdus = parts(LONG[:250], method)
    concat: ConcatInspection[int] = ConcatInspection(hold=1.0)
    held = concat.offer("bank", pdus[0], 0, now=0.0)
    assert isinstance(held, Held)
    concat.release(held.key, now=1.0)
    concat.block(held.key, BLOCK, now=1.0)
    assert [concat.offer("bank", p, 0, now=1.1) for p in pdus[1:]] == [Blocked(held.key, BLOCK)] * 3


def test_a_part_repeated_while_held_is_throttled_and_held_once():
    pdus = parts(LONG[:250], text.ConcatMethod.UDH8)
    concat: ConcatInspection[int] = ConcatInspection()
    concat.offer("bank", pdus[0], 0, now=0.0)
    assert isinstance(concat.offer("bank", pdus[0], 1, now=0.1), Throttled)
    assert concat.held_parts == 1


def test_held_messages_are_bounded_per_account_and_parts_in_all():
    concat: ConcatInspection[int] = ConcatInspection(max_held_per_account=2, max_held_parts=5)
    firsts = [parts(LONG[:250], text.ConcatMethod.UDH8, ref=ref)[0] for ref in range(4)]
    assert [type(concat.offer("bank", p, 0, now=0.0)) for p in firsts] == [Held, Held, Throttled, Throttled]
    # Another account is not shut out by the first one's messages ...
    assert isinstance(concat.offer("shop", firsts[2], 0, now=0.0), Held)
    # ... but the parts held over all accounts are bounded.
    seconds = [parts(LONG[:250], text.ConcatMethod.UDH8, ref=ref)[1] for ref in range(2)]
    assert [type(concat.offer("bank", p, 0, now=0.0)) for p in seconds] == [Held, Held]
    third = parts(LONG[:250], text.ConcatMethod.UDH8, ref=0)[2]
    assert isinstance(concat.offer("bank", third, 0, now=0.0), Throttled)
    assert concat.held_parts == 5
    # Releasing gives the room back.
    key = ConcatInspection.key_of("bank", firsts[0])
    assert key is not None
    concat.release(key[0], now=1.0)
    assert concat.held_parts == 3
    assert isinstance(concat.offer("bank", firsts[2], 0, now=1.0), Held)


def test_a_single_part_or_a_malformed_udh_is_not_held():
    concat: ConcatInspection[int] = ConcatInspection()
    (single,) = parts("短信", text.ConcatMethod.UDH8)
    assert concat.offer("bank", single, 0, now=0.0) is None
    bad = SubmitSm(source_addr="1", destination_addr="2", esm_class=0x40, short_message=b"\x05\x00\x03")
    assert concat.offer("bank", bad, 0, now=0.0) is None
