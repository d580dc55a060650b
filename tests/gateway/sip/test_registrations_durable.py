"""Registrations outlive the gateway: a handset registered before a restart is called after it without
registering again, over UDP (where it registered from) and over TCP (the connection died with the old
process: the Contact is dialled). Removals and lapses are kept as well, on the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import logs as gateway_logs
from gateway.app import Gateway
from gateway.config import GatewayConfig, Listen, SipListen, SmppConfig, StoreConfig
from gateway.sip.proxy import SipProxy
from gateway.store import MemoryStore, Registration
from protocols.sip import Request, StreamParser
from simulator.handset import Handset
from simulator.ports import free_udp_tcp_port
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, answer, register, request, sip_config
from tests.gateway.sip.test_tcp import TcpPeer, tcp_register

USERS = (("8613800000001", "pw1"), ("8613800000002", "pw2"), ("8613800000003", "pw3"))
START = 1_800_000_000.0


@pytest.fixture
def info_logs():
    """Info lines reach capture_logs (the suite logs warnings only)."""
    gateway_logs.configure("console", "info")
    yield
    gateway_logs.configure("console", "warning")


class WallClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gateway_config(tmp_path: Path, port: int, *, auth: bool = True) -> GatewayConfig:
    sip = replace(sip_config(auth=auth, users=USERS), listen=SipListen("127.0.0.1", port, port))
    smpp = replace(SmppConfig(), listen=Listen("127.0.0.1", 0))  # not 2775: others may be running
    return GatewayConfig(smpp=smpp, sip=sip, store=StoreConfig(backend="sqlite", path=str(tmp_path / "afgw.db")))


@contextlib.asynccontextmanager
async def gateway(config: GatewayConfig, clock: WallClock) -> AsyncIterator[Gateway]:
    # No SMSC: the SMPP side retries in the background, the SIP side is what is tested.
    gw = Gateway(config, clock=clock)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@contextlib.asynccontextmanager
async def trunk_at(port: int) -> AsyncIterator[TrunkCaller]:
    trunk = TrunkCaller(("127.0.0.1", port))
    await trunk.start(TRUNK_HOST)
    try:
        yield trunk
    finally:
        await trunk.stop()


@pytest.mark.parametrize(("auth", "backend"), [(True, "sqlite"), (False, "sqlite"), (True, "redis")])
async def test_handsets_registered_over_udp_are_called_after_a_restart_without_registering_again(
    tmp_path, auth, backend, info_logs, request
):
    port = free_udp_tcp_port()
    config = gateway_config(tmp_path, port, auth=auth)
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        config = replace(config, store=StoreConfig(backend="redis", redis_url=url, redis_prefix="afgw-restart"))
    clock = WallClock()
    kept, lapsing, leaving = (
        Handset(user, ("127.0.0.1", port), password=password if auth else None) for user, password in USERS
    )
    for handset in (kept, lapsing, leaving):
        await handset.start()
    try:
        async with gateway(config, clock):
            assert (await kept.register(3600)).status == 200
            assert (await lapsing.register(60)).status == 200
            assert (await leaving.register(3600)).status == 200
            assert (await leaving.unregister()).status == 200
        clock.now += 120  # the gateway was down two minutes: ``lapsing``'s 60 s are over
        with capture_logs() as logs:
            async with gateway(config, clock), trunk_at(port) as trunk:
                rang = await trunk.call(kept.user, "02150001234", hold=0.05)
                lapsed = await trunk.call(lapsing.user, "02150001234")
                left = await trunk.call(leaving.user, "02150001234")
        assert (rang.status, rang.bye_status) == (200, 200)
        assert 180 in rang.provisional
        shown = kept.screen.find(rang.call_id)
        assert shown is not None
        assert shown.answered
        assert (lapsed.status, left.status) == (480, 480)
        assert lapsing.screen.find(lapsed.call_id) is None
        assert not [e for e in logs if e["event"] == "sip.register"]  # nobody registered again
        restored = [e for e in logs if e["event"] == "sip.registrations_restored"]
        assert [(e["users"], e["contacts"]) for e in restored] == [(1, 1)]
    finally:
        for handset in (kept, lapsing, leaving):
            await handset.stop()


async def test_a_registration_kept_across_a_restart_still_refuses_an_older_register(tmp_path):
    """The Call-ID and CSeq are kept too (RFC 3261 10.3 step 7): a replayed REGISTER stays stale."""
    port = free_udp_tcp_port()
    config = gateway_config(tmp_path, port, auth=False)
    clock = WallClock()
    handset = Handset(USERS[0][0], ("127.0.0.1", port))
    await handset.start()
    try:
        async with gateway(config, clock):
            for _ in range(3):
                assert (await handset.register(3600)).status == 200
        handset._cseq = 1  # an older REGISTER of the same registration, replayed
        async with gateway(config, clock):
            assert (await handset.register(3600)).status == 500
    finally:
        await handset.stop()


@pytest.mark.parametrize("with_user", [True, False])
async def test_a_handset_registered_over_tcp_is_dialled_at_its_contact_after_a_restart(tmp_path, with_user):
    arrived: asyncio.Queue[Request] = asyncio.Queue()

    async def handset_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = StreamParser()
        while data := await reader.read(65536):
            parser.receive_data(data)
            while (message := parser.next_message()) is not None:
                if isinstance(message, Request):
                    await arrived.put(message)
        writer.close()

    listen_port = free_udp_tcp_port()
    server = await asyncio.start_server(handset_listener, "127.0.0.1", listen_port)
    port = free_udp_tcp_port()
    config = gateway_config(tmp_path, port, auth=False)
    user = USERS[1][0]
    clock = WallClock()
    try:
        async with gateway(config, clock) as gw:
            assert gw.sip is not None
            peer = await TcpPeer.open(gw.sip.tcp_port)
            at = f"{user}@" if with_user else ""
            peer.send(tcp_register(peer, user, contact=f"<sip:{at}127.0.0.1:{listen_port};transport=tcp>"))
            assert (await peer.message()).status == 200
        assert await peer.closed()  # the registered connection went with the old process
        async with gateway(config, clock), trunk_at(port) as trunk:
            call = asyncio.create_task(trunk.call(user, "02150001234"))
            got = await asyncio.wait_for(arrived.get(), 5)
            call.cancel()
        assert got.method == "INVITE"
        assert got.uri.port == listen_port
        assert got.from_addr.uri.user == "02150001234"
    finally:
        server.close()


@pytest.fixture
def redis_url(tmp_path):
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


async def test_with_redis_a_handset_registered_through_one_gateway_is_called_through_another(tmp_path, redis_url):
    store = StoreConfig(backend="redis", redis_url=redis_url, redis_prefix="afgw-sipreg")
    ports = free_udp_tcp_port(), free_udp_tcp_port()
    one, other = (replace(gateway_config(tmp_path, port, auth=False), store=store) for port in ports)
    user, absent = USERS[0][0], USERS[1][0]
    clock = WallClock()
    handset = await UdpPeer.open()
    trunk = await UdpPeer.open(TRUNK_HOST)
    try:
        async with gateway(one, clock) as first, gateway(other, clock) as second:
            assert first.sip is not None
            assert second.sip is not None
            assert (await register(handset, first.sip.udp_port, user, expires=3600)).status == 200
            assert first.sip.stored_registrations is not None
            assert await first.sip.stored_registrations.flush()
            for callee, rings in ((user, True), (absent, False), (user, True)):
                invite = request("INVITE", f"sip:{callee}@127.0.0.1", trunk)
                trunk.send(invite, second.sip.udp_port)
                if not rings:
                    assert (await trunk.response(invite.call_id)).status == 480
                    continue
                got = await handset.request("INVITE", invite.call_id)
                # It came from the second gateway: the handset answers there (RFC 3261 18.2.2).
                handset.send(answer(got, 180), second.sip.udp_port)
                assert (await trunk.response(invite.call_id, 180)).status == 180
                handset.send(answer(got, 486), second.sip.udp_port)
                assert (await trunk.response(invite.call_id, 486)).status == 486
            # Gone through the first: the second stops calling it once what it read has aged out
            # (its copy is kept 30 s; the sweep is told a time past that, nothing waits for it).
            assert (await register(handset, first.sip.udp_port, user, expires=0)).status == 200
            assert await first.sip.stored_registrations.flush()
            second.sip.location.sweep(asyncio.get_running_loop().time() + 31)
            invite = request("INVITE", f"sip:{user}@127.0.0.1", trunk)
            trunk.send(invite, second.sip.udp_port)
            assert (await trunk.response(invite.call_id)).status == 480
    finally:
        handset.close()
        trunk.close()


class SlowStore(MemoryStore):
    """A shared store whose look-ups wait until the test lets them answer."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.asked = asyncio.Event()

    async def registrations(self, aor: str, now: float) -> list[Registration]:
        if self._registrations:  # not at start, when nothing is stored yet
            self.asked.set()
            await self.answer.wait()
        return await super().registrations(aor, now)


async def test_a_call_cancelled_while_the_shared_store_is_asked_ends_with_487_and_rings_nobody():
    store = SlowStore()
    handset = await UdpPeer.open()
    user = USERS[0][0]
    trunk = await UdpPeer.open(TRUNK_HOST)
    proxy = SipProxy(
        sip_config(users=USERS), loop=asyncio.get_running_loop(), registrations=store, shared_registrations=True
    )
    await proxy.start()
    # Written by another gateway after this one started: the call is what asks the store.
    contact, flow = f"sip:{user}@127.0.0.1:{handset.port}", f"udp:127.0.0.1:{handset.port}"
    await store.register(user, Registration(contact, 2e9, flow))
    try:
        invite = request("INVITE", f"sip:{user}@127.0.0.1", trunk)
        trunk.send(invite, proxy.udp_port)
        await asyncio.wait_for(store.asked.wait(), 5)
        cancel = request("CANCEL", f"sip:{user}@127.0.0.1", trunk, call_id=invite.call_id)
        cancel.headers.set("Via", invite.headers.get("Via") or "")
        trunk.send(cancel, proxy.udp_port)
        assert (await trunk.response(invite.call_id, 200)).headers.get("CSeq") == "1 CANCEL"
        assert (await trunk.response(invite.call_id, 487)).status == 487
        store.answer.set()
        with pytest.raises(TimeoutError):
            await handset.request("INVITE", within=0.3)
    finally:
        await proxy.stop()
        handset.close()
        trunk.close()


class HeldStore(MemoryStore):
    """Holds every registration write until the test releases it (or forever)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def register(self, aor: str, registration: Registration) -> None:
        await self.release.wait()
        await super().register(aor, registration)


@pytest.mark.parametrize("store_back", [True, False], ids=["stored", "store-away"])
async def test_a_register_is_answered_once_its_binding_is_stored(monkeypatch, store_back):
    monkeypatch.setattr("gateway.sip.proxy._SAVE_WAIT", 0.5)
    store = HeldStore()
    peer = await UdpPeer.open()
    proxy = SipProxy(sip_config(), loop=asyncio.get_running_loop(), registrations=store)
    await proxy.start()
    try:
        reg = request("REGISTER", "sip:127.0.0.1", peer, from_user="alice", to_user="alice")
        peer.send(reg, proxy.udp_port)
        with pytest.raises(TimeoutError):
            await peer.response(reg.call_id, within=0.2)
        if store_back:
            store.release.set()
        ok = await peer.response(reg.call_id, within=5.0)
        assert ok.status == 200
        assert [c.uri.port for c in ok.contacts] == [peer.port]
        assert bool(await store.registrations("alice", 0.0)) is store_back
    finally:
        store.release.set()
        await proxy.stop()
        peer.close()
