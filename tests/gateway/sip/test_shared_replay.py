"""Two gateways on one Redis: a PASSporT accepted by one is a replay at the other."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.events import MemoryEvents
from gateway.sip.proxy import SipProxy
from gateway.store.redis_store import RedisStore
from simulator.antifraud_centre import AntiFraudCentre
from simulator.handset import Handset
from simulator.spoofer import Spoofer, SpoofKit, spoof_variants
from tests.e2e.labels_harness import Clock, LabelsPki, make_labels_pki
from tests.e2e.sip_harness import TRUNK_HOST, sip_config
from tests.gateway.store.redis_server import start_redis

VICTIM = "8613800000001"
USERS = ((VICTIM, "pw1"),)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("labels"))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    proc, port = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


@contextlib.asynccontextmanager
async def gateway(pki: LabelsPki, url: str, prefix: str, clock: Clock, *, share: bool) -> AsyncIterator[SipProxy]:
    """A SIP proxy on the Redis store; ``share``: claim accepted PASSporTs there too."""
    config = sip_config(auth=True, users=USERS)
    config = replace(config, labels=pki.labels)
    store = RedisStore(url, prefix=prefix)
    proxy = SipProxy(
        config,
        loop=asyncio.get_running_loop(),
        clock=clock,
        events=MemoryEvents(clock=clock),
        store=store,
        registrations=store,
        shared_registrations=True,
        shared_replay=store if share else None,
    )
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
        await store.close()


async def replayed_through_the_other(pki: LabelsPki, url: str, *, share: bool) -> tuple[int, int, bool]:
    """The centre calls through one gateway; the spoofer replays its Identity through the other.
    Returns the genuine call's status, the replay's status, and whether the replay rang."""
    clock = Clock(pki.now)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    one_gateway, other_gateway = (gateway(pki, url, prefix, clock, share=share) for _ in range(2))
    async with one_gateway as one, other_gateway as two:
        handset = Handset(VICTIM, ("127.0.0.1", one.udp_port), password="pw1")
        centre = AntiFraudCentre(("127.0.0.1", one.udp_port), pki.centre, pki.registry, clock=clock)
        spoofer = Spoofer(("127.0.0.1", two.udp_port))
        kit = SpoofKit(pki.registry, VICTIM, centre=pki.centre, rogue=pki.rogue, carrier=pki.carrier, clock=clock)
        try:
            await handset.start()
            assert (await handset.register(120)).status == 200
            assert one.stored_registrations is not None
            assert await one.stored_registrations.flush()
            await centre.start(TRUNK_HOST)
            await spoofer.start(TRUNK_HOST)
            genuine = await centre.place(VICTIM, hold=0.01)
            kit.captured.append(centre.sent[-1])
            (replay,) = [s for s in spoof_variants(kit) if s.name == "replay"]
            result = await spoofer.attempt(replay, VICTIM)
            if result.status == 438:
                assert result.reason == 'STIR;cause=438;text="Invalid Identity Header"'
            return genuine.status, result.status, handset.screen.rang(result.call_id)
        finally:
            for ua in (handset, centre, spoofer):
                await ua.stop()


async def test_a_passport_used_through_one_gateway_is_refused_as_a_replay_by_another(
    pki: LabelsPki, redis_url: str
) -> None:
    genuine, replayed, rang = await replayed_through_the_other(pki, redis_url, share=True)
    assert (genuine, replayed, rang) == (200, 438, False)


async def test_without_the_shared_claim_the_other_gateway_would_let_the_replay_ring(
    pki: LabelsPki, redis_url: str
) -> None:
    # What the shared claim is for: each gateway's own cache knows only the tokens it accepted.
    genuine, replayed, rang = await replayed_through_the_other(pki, redis_url, share=False)
    assert (genuine, replayed, rang) == (200, 200, True)
