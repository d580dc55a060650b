"""Back-pressure and loss: full windows, rate limits, an SMSC that is down or restarts under load.

The rule checked throughout: an ESME hears ESME_ROK only for what the SMSC accepted, and is told to
retry (ESME_RTHROTTLED, ESME_RMSGQFUL) otherwise; nothing answered ESME_ROK goes missing.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import EsmeAccount
from gateway.smpp.connection import ConnectionGone, ResponseTimeout
from gateway.smpp.smsc_pool import SmscPool
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import (
    LOCALHOST,
    HeldSmsc,
    SimSmsc,
    Smpp34Smsc,
    Smsc,
    eventually,
    gateway_port,
    make_config,
    running_gateway,
    start_smsc,
)

ESME_ROK, ESME_RMSGQFUL, ESME_RTHROTTLED = 0x00, 0x14, 0x58


def hold(smsc: Smsc) -> None:
    if isinstance(smsc, SimSmsc):
        assert isinstance(smsc.sim, HeldSmsc)
        smsc.sim.holding = True
    else:
        assert isinstance(smsc, Smpp34Smsc)
        smsc.policy = lambda ev: None


def held(smsc: Smsc) -> int:
    return len(smsc.sim.held) if isinstance(smsc, SimSmsc) else len(smsc.held)  # type: ignore[attr-defined]


def release(smsc: Smsc) -> None:
    if isinstance(smsc, SimSmsc):
        smsc.sim.release()  # type: ignore[attr-defined]
    else:
        assert isinstance(smsc, Smpp34Smsc)
        smsc.release(lambda ev: smsc.next_id())


def account(window: int = 50, throughput: float = 100000) -> tuple[EsmeAccount, ...]:
    return (EsmeAccount(system_id="bank", password="bankpw", throughput=throughput, window=window),)


async def submit_all(esme: SimulatedEsme, n: int, tag: str) -> list[tuple[str, Any]]:
    """n submits at once, each with its own text; (text, response) in sending order."""
    texts = [f"{tag}-{i}" for i in range(n)]
    tasks = [
        asyncio.ensure_future(
            esme.send(SubmitSm(source_addr="10690", destination_addr="8613800000031", short_message=t.encode()))
        )
        for t in texts
    ]
    return list(zip(texts, tasks, strict=True))  # type: ignore[arg-type]


def accepted_texts(smsc: Smsc) -> Counter[bytes]:
    if isinstance(smsc, SimSmsc):
        return Counter(sms.text.encode() for box in smsc.sim.inboxes.values() for sms in box)
    assert isinstance(smsc, Smpp34Smsc)
    return Counter(smsc.events[i].short_message for i in smsc.accepted)


@pytest.mark.parametrize("smsc_kind", ["sim", "smpp34"])
async def test_account_window_exceeded_is_throttled(smsc_kind, port_factory):
    smsc = await start_smsc(smsc_kind, port_factory())
    try:
        async with running_gateway(make_config(smsc.port, accounts=account(window=3))) as gw:
            esme = SimulatedEsme(LOCALHOST, gateway_port(gw), "bank", "bankpw", window=10)
            await esme.bind()
            hold(smsc)
            sent = await submit_all(esme, 8, "w")
            # Three wait at the SMSC; the other five are told at once to slow down.
            await eventually(lambda: held(smsc) == 3 and sum(f.done() for _, f in sent) == 5)
            assert [f.result().command_status for _, f in sent if f.done()] == [ESME_RTHROTTLED] * 5
            release(smsc)
            results = {text: (await f).command_status for text, f in sent}
            assert Counter(results.values()) == {ESME_ROK: 3, ESME_RTHROTTLED: 5}
            at_smsc = accepted_texts(smsc)
            assert {t.encode() for t, s in results.items() if s == ESME_ROK} == set(at_smsc)
            assert len(smsc.submits) == 3  # the throttled ones never reached the SMSC
            # The window is free again.
            ok = await esme.send(SubmitSm(source_addr="10690", destination_addr="8613800000031"))
            assert ok.command_status == ESME_ROK
            await esme.unbind()
    finally:
        await smsc.close()


async def test_account_throughput_exceeded_is_throttled(port_factory):
    smsc = await start_smsc("sim", port_factory())
    try:
        config = make_config(smsc.port, accounts=account(throughput=2))
        async with running_gateway(config) as gw:
            esme = SimulatedEsme(LOCALHOST, gateway_port(gw), "bank", "bankpw", window=20)
            await esme.bind()
            sent = await submit_all(esme, 12, "rate")
            results = {text: (await f).command_status for text, f in sent}
            counts = Counter(results.values())
            assert set(counts) == {ESME_ROK, ESME_RTHROTTLED}
            assert counts[ESME_ROK] >= 2  # the burst the bucket allows
            assert {t.encode() for t, s in results.items() if s == ESME_ROK} == set(accepted_texts(smsc))
            assert len(smsc.submits) == counts[ESME_ROK]
            await esme.unbind()
    finally:
        await smsc.close()


@pytest.mark.parametrize("smsc_kind", ["sim", "smpp34"])
async def test_smsc_windows_full_is_throttled(smsc_kind, port_factory):
    smsc = await start_smsc(smsc_kind, port_factory())
    try:
        config = make_config(smsc.port, binds=1, smsc_peer={"window": 2}, queue_timeout=0.2)
        async with running_gateway(config) as gw:
            esme = SimulatedEsme(LOCALHOST, gateway_port(gw), "bank", "bankpw", window=10)
            await esme.bind()
            hold(smsc)
            sent = await submit_all(esme, 5, "q")
            await eventually(lambda: held(smsc) == 2 and sum(f.done() for _, f in sent) == 3)
            assert [f.result().command_status for _, f in sent if f.done()] == [ESME_RTHROTTLED] * 3
            release(smsc)
            results = {text: (await f).command_status for text, f in sent}
            assert Counter(results.values()) == {ESME_ROK: 2, ESME_RTHROTTLED: 3}
            assert {t.encode() for t, s in results.items() if s == ESME_ROK} == set(accepted_texts(smsc))
            await esme.unbind()
    finally:
        await smsc.close()


@pytest.mark.parametrize("smsc_kind", ["sim", "smpp34"])
async def test_smsc_down_answers_msgqful_and_recovers(smsc_kind, port_factory):
    smsc = await start_smsc(smsc_kind, port_factory())
    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            assert gw.smpp is not None
            esme = SimulatedEsme(LOCALHOST, gateway_port(gw), "bank", "bankpw")
            await esme.bind()
            [before] = await esme.submit("10690", "8613800000032", "before")
            assert before.command_status == ESME_ROK

            await smsc.stop()
            await eventually(lambda: gw.smpp.pool.bound_count == 0)
            [during] = await esme.submit("10690", "8613800000032", "during")
            assert during.command_status == ESME_RMSGQFUL

            if isinstance(smsc, SimSmsc):
                await smsc.sim.start(LOCALHOST, smsc.sim.port)
            else:
                assert isinstance(smsc, Smpp34Smsc)
                await smsc.listen()
            await eventually(lambda: gw.smpp.pool.bound_count > 0)
            [after] = await esme.submit("10690", "8613800000032", "after")
            assert after.command_status == ESME_ROK
            assert set(accepted_texts(smsc)) == {b"before", b"after"}
            await esme.unbind()
    finally:
        await smsc.close()


# --- the SMSC restarts in the middle of the load --------------------------------------------------


class Load:
    """ESMEs that push messages with full windows and retry whatever was not answered ESME_ROK.

    Each attempt carries its own text (``<esme>-<n>-<attempt>``), so that "exactly once per ESME_ROK"
    can be checked at the SMSC even though a retried message may also have been stored unanswered.
    """

    def __init__(self) -> None:
        self.rok: list[tuple[str, str]] = []  # (text, message_id) of every ESME_ROK
        self.other: Counter[int | str] = Counter()

    async def push(self, esme: SimulatedEsme, tag: str, count: int) -> None:
        window = asyncio.Semaphore(esme.window)

        async def one(n: int) -> None:
            attempt = 0
            while True:
                text = f"{tag}-{n}-{attempt}"
                pdu = SubmitSm(source_addr="10690", destination_addr=f"86139{n % 50:08d}", short_message=text.encode())
                async with window:
                    try:
                        resp = await esme.send(pdu)
                    except (ConnectionGone, ResponseTimeout) as exc:
                        self.other[type(exc).__name__] += 1
                        resp = None
                if resp is not None and resp.command_status == ESME_ROK:
                    self.rok.append((text, resp.message_id))  # type: ignore[attr-defined]
                    return
                if resp is not None:
                    self.other[resp.command_status] += 1
                attempt += 1
                await asyncio.sleep(0.02)  # back off a little before the retry

        await asyncio.gather(*(one(n) for n in range(count)))


async def run_load(gw: Any, restart: Any, progress: Any, *, per_esme: int, restart_at: int) -> Load:
    port = gateway_port(gw)
    esmes = [
        SimulatedEsme(LOCALHOST, port, "bank", "bankpw", window=10),
        SimulatedEsme(LOCALHOST, port, "bank", "bankpw", window=10),
        SimulatedEsme(LOCALHOST, port, "shop", "shoppw", window=10),
    ]
    for esme in esmes:
        await esme.bind()
    load = Load()

    async def restart_mid_way() -> None:
        await eventually(lambda: progress() >= restart_at, within=30)
        await restart()

    restarter = asyncio.ensure_future(restart_mid_way())
    await asyncio.wait_for(asyncio.gather(*(load.push(e, f"e{i}", per_esme) for i, e in enumerate(esmes))), 60)
    await restarter
    for esme in esmes:
        await esme.unbind()
    return load


async def test_simulated_smsc_restart_mid_load_loses_nothing_answered_rok(port_factory):
    smsc = HeldSmsc(system_id="afgw", password="secret")
    await smsc.start(LOCALHOST, 0)
    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            load = await run_load(
                gw,
                lambda: smsc.restart(downtime=0.3),
                lambda: smsc.stats.submitted,
                per_esme=1000,
                restart_at=1000,
            )
        assert len(load.rok) == 3000
        assert load.other[ESME_RMSGQFUL] > 0, "the restart did not happen under load"
        stored = Counter(sms.text for box in smsc.inboxes.values() for sms in box)
        for text, message_id in load.rok:
            assert message_id in smsc.by_id, f"{text} answered ESME_ROK as {message_id}, unknown to the SMSC"
            assert smsc.by_id[message_id].text == text
            assert stored[text] == 1, f"{text} stored {stored[text]} times"
    finally:
        await smsc.stop()


async def test_smpp34_smsc_restart_mid_load_loses_nothing_answered_rok(port_factory):
    smsc = await Smpp34Smsc.start(port_factory())

    async def restart() -> None:
        await smsc.stop()
        await asyncio.sleep(0.3)  # the SMSC's downtime
        await smsc.listen()

    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            load = await run_load(gw, restart, lambda: len(smsc.events), per_esme=500, restart_at=500)
        assert len(load.rok) == 1500
        assert sum(load.other.values()) > 0, "the restart did not happen under load"
        accepted = Counter(smsc.events[i].short_message for i in smsc.accepted)
        id_of = {smsc.events[i].short_message: mid for i, mid in smsc.accepted.items()}
        for text, message_id in load.rok:
            assert accepted[text.encode()] == 1, f"{text} accepted {accepted[text.encode()]} times"
            assert id_of[text.encode()] == message_id
    finally:
        await smsc.close()


# --- stopping while the SMSC link comes up --------------------------------------------------------


async def test_gateway_stop_returns_when_the_smsc_answers_the_bind_as_it_begins(monkeypatch):
    """The SMSC's bind_resp is read in the same loop iteration in which stop() cancels the bind task.

    On Python 3.11 asyncio.wait_for swallows a cancel that races with its result: the task used to go
    on to park on the new connection, which nobody closes any more, and stop() never returned.
    """
    binds: list[tuple[asyncio.StreamWriter, int]] = []

    async def silent_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length, _, _, seq = struct.unpack(">IIII", await reader.readexactly(16))
        await reader.readexactly(length - 16)
        binds.append((writer, seq))
        await reader.read()

    server = await asyncio.start_server(silent_smsc, LOCALHOST, 0)
    conns: list[Any] = []
    connect = SmscPool._connect

    async def recording_connect(self: SmscPool) -> Any:
        conns.append(await connect(self))
        return conns[-1]

    monkeypatch.setattr(SmscPool, "_connect", recording_connect)
    gw = Gateway(make_config(server.sockets[0].getsockname()[1], binds=1))
    await gw.start()
    assert gw.smpp is not None
    pool = gw.smpp.pool
    try:
        await eventually(lambda: bool(binds))
        [conn] = conns
        stopping: list[asyncio.Task[None]] = []
        received = conn.data_received

        def data_received(data: bytes) -> None:
            received(data)  # the bind_resp resolves the bind request...
            stopping.append(asyncio.get_running_loop().create_task(pool.stop()))  # ...and stop() begins

        conn.data_received = data_received
        writer, seq = binds[0]
        writer.write(struct.pack(">IIII", 21, 0x80000009, 0, seq) + b"smsc\x00")
        await eventually(lambda: bool(stopping))
        await asyncio.wait_for(stopping[0], 5)
        assert pool.bound_count == 0
    finally:
        for task in pool._tasks:
            task.cancel()
        await gw.stop()
        for writer, _ in binds:
            writer.close()
        server.close()
