"""The location service's write-through to the store: what is written, in which clock, in which order,
and what happens while the store is away."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sip.location import Binding, LocationService, StoredRegistrations, parse_flow
from gateway.sip.transport import Flow
from gateway.store import MemoryStore, Registration
from protocols.sip import parse_uri

UDP = Flow("UDP", "127.0.0.1", 5070)


def binding(contact: str, expires_at: float, *, flow: Flow = UDP, cseq: int = 1, q: float = 1.0) -> Binding:
    return Binding(parse_uri(contact.strip("<>")), flow, expires_at, "call-1", cseq, q, instance="<urn:uuid:1>")


def journalled(store: MemoryStore, wall: float, **kw) -> tuple[LocationService, StoredRegistrations]:
    journal = StoredRegistrations(store, asyncio.get_running_loop(), wall_clock=lambda: wall, **kw)
    return LocationService(journal=journal), journal


@pytest.mark.parametrize("wall", [1_800_000_000.0, 5.0, 0.0])
@pytest.mark.parametrize("lifetime", [10.0, 300.0, 86_400.0])
@pytest.mark.parametrize("flow", [UDP, Flow("TCP", "127.0.0.1", 40123), Flow("UDP", "::1", 5060)])
async def test_a_binding_is_stored_in_epoch_seconds_and_restored_with_the_same_lifetime_left(wall, lifetime, flow):
    store = MemoryStore()
    loop = asyncio.get_running_loop()
    location, journal = journalled(store, wall)
    location.update("alice", binding("<sip:alice@127.0.0.1:5070>", loop.time() + lifetime, flow=flow))
    assert await journal.flush()
    [stored] = (await store.all_registrations(wall))["alice"]
    assert stored.expires_at == pytest.approx(wall + lifetime, abs=0.05)
    assert (stored.flow, stored.call_id, stored.cseq, stored.instance) == (str(flow), "call-1", 1, "<urn:uuid:1>")

    later = wall + lifetime / 2  # the gateway was down for half the lifetime
    fresh = LocationService()
    restorer = StoredRegistrations(store, loop, wall_clock=lambda: later)
    assert await restorer.restore(fresh) == 1
    [back] = fresh.lookup("alice", loop.time())
    assert back.expires_at - loop.time() == pytest.approx(lifetime / 2, abs=0.05)
    assert (back.flow, str(back.contact), back.cseq) == (flow, "sip:alice@127.0.0.1:5070", 1)
    assert back.instance == "<urn:uuid:1>"
    # Past its lifetime it is not restored at all.
    too_late = StoredRegistrations(store, loop, wall_clock=lambda: wall + lifetime + 1)
    assert await too_late.restore(LocationService()) == 0


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("<sip:alice@127.0.0.1:5070>", "<sip:alice@127.0.0.1:5070>"),
        ("<sip:alice@LOCALHOST:5070>", "<sip:alice@localhost:5070>"),
        ("<sip:alice@127.0.0.1:5070>", "<sip:alice@127.0.0.1:5070;ob>"),
    ],
)
async def test_a_refresh_leaves_one_stored_contact_however_it_is_written(first, again):
    store = MemoryStore()
    now = asyncio.get_running_loop().time()
    location, journal = journalled(store, 1000.0)
    location.update("alice", binding(first, now + 60))
    location.update("alice", binding(again, now + 120, cseq=2))
    assert await journal.flush()
    [stored] = await store.registrations("alice", 1000.0)
    assert (stored.contact, stored.cseq) == (str(parse_uri(again.strip("<>"))), 2)


async def test_removals_reach_the_store_in_order():
    store = MemoryStore()
    now = asyncio.get_running_loop().time()
    location, journal = journalled(store, 1000.0)
    for port in (7001, 7002, 7003):
        location.update("alice", binding(f"<sip:alice@127.0.0.1:{port}>", now + 60))
    location.update("bob", binding("<sip:bob@127.0.0.1:7004>", now + 60))
    location.remove("alice", parse_uri("sip:alice@127.0.0.1:7002"))
    assert await journal.flush()
    assert [r.contact for r in await store.registrations("alice", 1000.0)] == [
        "sip:alice@127.0.0.1:7001",
        "sip:alice@127.0.0.1:7003",
    ]
    location.remove_all("alice")
    location.update("alice", binding("<sip:alice@127.0.0.1:7009>", now + 60))  # after the removal
    assert await journal.flush()
    regs = await store.all_registrations(1000.0)
    assert {aor: [r.contact for r in found] for aor, found in regs.items()} == {
        "alice": ["sip:alice@127.0.0.1:7009"],
        "bob": ["sip:bob@127.0.0.1:7004"],
    }


class FlakyStore(MemoryStore):
    """Refuses writes while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts = 0

    async def register(self, aor: str, registration: Registration) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionError("store away")
        await super().register(aor, registration)

    async def unregister(self, aor: str, contact: str) -> None:
        if self.down:
            raise ConnectionError("store away")
        await super().unregister(aor, contact)


async def test_writes_wait_for_a_store_that_is_away_and_are_applied_in_order_when_it_is_back():
    store = FlakyStore()
    now = asyncio.get_running_loop().time()
    location, journal = journalled(store, 1000.0, retry_interval=0.01)
    location.update("alice", binding("<sip:alice@127.0.0.1:7001>", now + 60))
    location.update("alice", binding("<sip:alice@127.0.0.1:7002>", now + 60))
    location.remove("alice", parse_uri("sip:alice@127.0.0.1:7001"))
    assert not await journal.flush(within=0.1)
    assert store.attempts > 1  # retried
    # The gateway keeps routing from memory meanwhile.
    assert [str(b.contact) for b in location.lookup("alice", now)] == ["sip:alice@127.0.0.1:7002"]
    store.down = False
    assert await journal.flush()
    assert [r.contact for r in await store.registrations("alice", 1000.0)] == ["sip:alice@127.0.0.1:7002"]
    await journal.close()


async def test_a_store_away_for_long_costs_the_oldest_writes_not_memory():
    store = FlakyStore()
    now = asyncio.get_running_loop().time()
    location, journal = journalled(store, 1000.0, retry_interval=0.01, max_pending=3)
    for port in range(7001, 7011):
        location.update(f"u{port}", binding(f"<sip:u@127.0.0.1:{port}>", now + 60))
    assert journal.dropped == 7
    store.down = False
    assert await journal.flush()
    assert sorted(await store.all_registrations(1000.0)) == ["u7008", "u7009", "u7010"]
    await journal.close()


@pytest.mark.parametrize("text", ["udp:127.0.0.1", "sctp:127.0.0.1:5060", "udp::5060", "tcp:127.0.0.1:port", ""])
def test_a_flow_that_cannot_be_read_is_refused(text):
    with pytest.raises(ValueError, match="not a flow"):
        parse_flow(text)


async def test_an_unreadable_stored_registration_is_skipped_and_the_rest_restored():
    store = MemoryStore()
    good = Registration("sip:alice@127.0.0.1:7001", 2000.0, "udp:127.0.0.1:7001")
    await store.register("alice", good)
    await store.register("bob", Registration("sip:bob@[bad", 2000.0, "udp:127.0.0.1:7002"))
    await store.register("carol", Registration("sip:carol@127.0.0.1:7003", 2000.0, "nonsense"))
    location = LocationService()
    restorer = StoredRegistrations(store, asyncio.get_running_loop(), wall_clock=lambda: 1000.0)
    assert await restorer.restore(location) == 1
    assert len(location) == 1


@pytest.mark.parametrize(("several_gateways", "kept"), [(False, []), (True, ["sip:alice@127.0.0.1:7001"])])
async def test_a_lapsed_binding_leaves_the_store_unless_other_gateways_write_there(several_gateways, kept):
    store = MemoryStore()
    now = asyncio.get_running_loop().time()
    journal = StoredRegistrations(store, asyncio.get_running_loop(), wall_clock=lambda: 1000.0, shared=several_gateways)
    location = LocationService(journal=journal)
    location.update("alice", binding("<sip:alice@127.0.0.1:7001>", now + 60))
    location.update("alice", binding("<sip:alice@127.0.0.1:7002>", now + 600))
    location.sweep(now + 61)
    assert await journal.flush()
    # Read at a time both were valid, to see what is still stored.
    assert [r.contact for r in await store.registrations("alice", 0.0)] == [*kept, "sip:alice@127.0.0.1:7002"]


_USERS = ("alice", "bob")
_OPS = st.one_of(
    st.tuples(
        st.just("update"),
        st.sampled_from(_USERS),
        st.integers(7001, 7004),
        st.sampled_from(["127.0.0.1", "LocalHost", "localhost"]),
        st.sampled_from(["", ";ob", ";transport=udp"]),
        st.integers(10, 3600),
    ),
    st.tuples(st.just("remove"), st.sampled_from(_USERS), st.integers(7001, 7004)),
    st.tuples(st.just("remove_all"), st.sampled_from(_USERS)),
)


def _view(location: LocationService, now: float) -> dict[str, list[tuple[object, ...]]]:
    return {
        user: sorted((str(b.contact), b.cseq, b.flow, round(b.expires_at - now)) for b in location.lookup(user, now))
        for user in _USERS
    }


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_OPS, max_size=25))
def test_what_a_restart_restores_is_what_the_registrar_last_had(ops):
    """Any sequence of registrations, refreshes (the contact written another way or not) and removals:
    a gateway restarted on the store has the bindings the old one had, no more, no fewer."""

    async def scenario() -> None:
        store = MemoryStore()
        loop = asyncio.get_running_loop()
        location, journal = journalled(store, 1_000_000.0)
        now = loop.time()
        for cseq, op in enumerate(ops, 1):
            if op[0] == "update":
                _, user, port, host, params, expires = op
                contact = f"<sip:{user}@{host}:{port}{params}>"
                location.update(user, binding(contact, now + expires, cseq=cseq, flow=Flow("UDP", "127.0.0.1", port)))
            elif op[0] == "remove":
                location.remove(op[1], parse_uri(f"sip:{op[1]}@127.0.0.1:{op[2]}"))
            else:
                location.remove_all(op[1])
        assert await journal.flush()
        restarted = LocationService()
        await StoredRegistrations(store, loop, wall_clock=lambda: 1_000_000.0).restore(restarted)
        assert _view(restarted, loop.time()) == _view(location, loop.time())

    asyncio.run(scenario())


@pytest.mark.parametrize("several_gateways", [True, False])
async def test_a_contact_lapsed_in_the_store_is_deleted_there_by_the_gateways_expiry(several_gateways):
    store = MemoryStore()
    wall = [1000.0]
    loop = asyncio.get_running_loop()
    journal = StoredRegistrations(store, loop, wall_clock=lambda: wall[0], shared=several_gateways)
    location = LocationService(journal=journal)
    location.update("alice", binding("<sip:alice@127.0.0.1:7001>", loop.time() + 60))
    location.update("bob", binding("<sip:bob@127.0.0.1:7002>", loop.time() + 600))
    assert await journal.flush()
    wall[0] = 1059.0
    assert await journal.expire_lapsed() == 0
    wall[0] = 1061.0
    assert await journal.expire_lapsed() == 1
    # Deleted, not merely out of date: even asked as of before it lapsed, the store has only bob.
    assert list(await store.all_registrations(0.0)) == ["bob"]
    await journal.close()


async def test_the_expiry_sweeps_a_backlog_larger_than_one_batch_and_survives_a_store_error():
    store = FlakyStore()
    store.down = False
    loop = asyncio.get_running_loop()
    for n in range(2500):
        await store.register(f"u{n}", Registration(f"sip:u{n}@127.0.0.1:7000", 10.0 + n, "udp:127.0.0.1:7000"))
    journal = StoredRegistrations(store, loop, wall_clock=lambda: 5000.0)

    async def away(now: float, limit: int = 1000) -> int:
        raise ConnectionError("store away")

    real, store.expire_registrations = store.expire_registrations, away  # type: ignore[method-assign]
    assert await journal.expire_lapsed() == 0
    store.expire_registrations = real  # type: ignore[method-assign]
    assert await journal.expire_lapsed() == 2500
    assert await store.all_registrations(0.0) == {}
    await journal.close()
