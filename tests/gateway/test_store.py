"""Receipts find their ESME whatever form the SMSC quotes the message id in."""

from __future__ import annotations

import pytest

from gateway.store import MemoryStore


@pytest.mark.parametrize(
    ("answered", "quoted"),
    [
        ("1A2F", "1A2F"),
        ("1A2F", "1a2f"),  # letter case
        ("1A2F", str(0x1A2F)),  # hexadecimal answered, decimal quoted
        ("6703", format(6703, "x")),  # decimal answered, hexadecimal quoted
        ("0001A2F", "1a2f"),  # leading zeros
        ("abc-123", "ABC-123"),  # free-form ids
        ("12345", "12345\x00"),  # a NUL left from a C-octet string
    ],
)
def test_message_id_forms(answered, quoted):
    store = MemoryStore()
    store.remember_message(answered, "bank", now=0.0)
    assert store.owner_of(quoted, now=1.0) == "bank"


def test_unknown_and_expired_ids_have_no_owner():
    store = MemoryStore(ttl=10.0)
    store.remember_message("FF", "bank", now=0.0)
    assert store.owner_of("FE", now=1.0) is None
    assert store.owner_of("FF", now=11.0) is None


def test_bounded_oldest_first():
    store = MemoryStore(max_entries=3)
    for i in range(5):
        store.remember_message(f"id{i}", f"esme{i}", now=0.0)
    assert store.owner_of("id0", 0.0) is None
    assert store.owner_of("id4", 0.0) == "esme4"
