"""SIGTERM under load: ``afgw run`` in its own process between several full-window ESMEs and the
simulated SMSC. What a carrier needs from a stop: no message the ESME was told ESME_ROK for is lost,
none reaches the SMSC twice, and every other one was refused as retryable (or left unanswered when
the unbind came), so that the ESME may send it again without a duplicate."""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.smpp.connection import SmppConnection
from gateway.store import SqliteStore
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import BindTransceiver, Pdu, SubmitSm, SubmitSmResp, Unbind
from protocols.smpp.session import Role, SessionConfig, SmppSession
from simulator.smsc import SimulatedSmsc, StoredSms
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
RETRYABLE = {int(CommandStatus.ESME_RTHROTTLED), int(CommandStatus.ESME_RMSGQFUL)}
ESMES = 4
WINDOW = 50
#: ESME_ROK answers seen before the SIGTERM is sent: enough for the load to be steady.
BEFORE_SIGTERM = 6000


def config_text(gw_port: int, smsc_port: int, data: Path) -> str:
    accounts = "".join(
        f"""
    - system_id: esme{i}
      password: pw{i}
      throughput: 1000000
      window: {WINDOW}"""
        for i in range(ESMES)
    )
    return f"""
smpp:
  listen: {{host: 127.0.0.1, port: {gw_port}}}
  response_timeout: 5
  accounts:{accounts}
  smsc:
    port: {smsc_port}
    system_id: afgw
    password: secret
    binds: 2
    window: 100
store:
  backend: sqlite
  data_dir: {data}
events:
  jsonl: {{path: {data / "events.jsonl"}}}
"""


@dataclass(eq=False)
class LoadEsme:
    """Keeps its window full of submit_sm until the gateway unbinds it; each text is unique."""

    system_id: str
    password: str
    sent: dict[str, asyncio.Future[Pdu]] = field(default_factory=dict)
    #: The texts whose answer had arrived when the gateway's unbind did.
    answered_before_unbind: set[str] | None = None
    rok: int = 0

    async def run(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        config = SessionConfig(window=WINDOW, inbound_window=WINDOW, response_timeout=30, enquire_link_interval=None)

        def make() -> SmppConnection:
            return SmppConnection(SmppSession(Role.ESME, clock=loop.time, config=config), self, loop)

        _transport, conn = await loop.create_connection(make, "127.0.0.1", port)
        resp = await conn.request(BindTransceiver(system_id=self.system_id, password=self.password))
        assert resp.command_status == 0
        room = asyncio.Event()
        while conn.is_open and conn.session.bound:
            while conn.session.window_available > 0 and conn.session.bound:
                text = f"{self.system_id}-{len(self.sent)}"
                fut = conn.request(
                    SubmitSm(source_addr="10690", destination_addr="8613800000001", short_message=text.encode())
                )
                fut.add_done_callback(lambda f: (self._answered(f), room.set()))
                self.sent[text] = fut
            room.clear()
            await room.wait()
        await conn.closed

    def _answered(self, fut: asyncio.Future[Pdu]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().command_status == 0:
            self.rok += 1

    def status(self, text: str) -> int | None:
        fut = self.sent[text]
        return fut.result().command_status if fut.done() and fut.exception() is None else None

    # Handler
    def connected(self, conn: SmppConnection) -> None:
        pass

    def closed(self, conn: SmppConnection) -> None:
        pass

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, Unbind):
            # The session answers it; what had been answered by now is what the ESME knows.
            self.answered_before_unbind = {t for t, f in self.sent.items() if f.done() and f.exception() is None}


def message_id(esme: LoadEsme, text: str) -> str:
    resp = esme.sent[text].result()
    assert isinstance(resp, SubmitSmResp)
    return resp.message_id


async def read_lines(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode("utf-8", "replace").rstrip("\n"))


@pytest.mark.parametrize("attempt", range(2))
async def test_sigterm_under_load_loses_nothing_and_delivers_nothing_twice(tmp_path, attempt):
    stored: collections.Counter[str] = collections.Counter()
    smsc = SimulatedSmsc(record=False, window=100)

    def on_stored(sms: StoredSms) -> None:
        stored[sms.text] += 1

    smsc.on_stored = on_stored
    await smsc.start()
    gw_port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(gw_port, smsc.port, tmp_path / "data"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway.cli", "--log-format", "json", "run", "-c", str(path)),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []
    reader = asyncio.ensure_future(read_lines(proc.stderr, log))
    esmes = [LoadEsme(f"esme{i}", f"pw{i}") for i in range(ESMES)]
    try:
        while not any('"smsc.bound"' in line for line in log):
            assert proc.returncode is None, log
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        runs = [asyncio.ensure_future(e.run(gw_port)) for e in esmes]
        started = loop.time()
        while sum(e.rok for e in esmes) < BEFORE_SIGTERM:
            assert not any(r.done() for r in runs), [r.exception() for r in runs if r.done()]
            await asyncio.sleep(0.01)
        rate = sum(e.rok for e in esmes) / (loop.time() - started)
        rok_at_sigterm = sum(e.rok for e in esmes)
        proc.send_signal(signal.SIGTERM)
        exit_status = await asyncio.wait_for(proc.wait(), 60)
        await asyncio.wait_for(asyncio.gather(*runs), 10)
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()

    statuses = collections.Counter(e.status(t) for e in esmes for t in e.sent)
    print(
        f"{rate:.0f} messages/s accepted before SIGTERM, {rok_at_sigterm} by then, "
        f"{sum(e.rok for e in esmes) - rok_at_sigterm} after; answers: {dict(statuses)}"
    )
    twice = {text: n for text, n in stored.items() if n > 1}
    assert not twice, f"reached the SMSC more than once: {twice}"
    accepted = {t for e in esmes for t in e.sent if e.status(t) == 0}
    missing = accepted - set(stored)
    assert not missing, f"told ESME_ROK but never reached the SMSC: {sorted(missing)[:10]}"
    unconfirmed = set(stored) - accepted
    assert not unconfirmed, f"reached the SMSC but the ESME was not told ESME_ROK: {sorted(unconfirmed)[:10]}"
    assert exit_status == 0, log[-20:]
    for esme in esmes:
        assert esme.answered_before_unbind is not None, f"{esme.system_id} never saw an unbind"
        refused = {t: esme.status(t) for t in esme.answered_before_unbind if esme.status(t) not in (0, *RETRYABLE)}
        assert not refused, f"{esme.system_id}: answered with a status that is not retryable: {refused}"
    # Whether the gateway still had submits of its own in flight when the signal came depends on who
    # was busiest at that instant (often the ESMEs' requests were still on the wire, and then cross
    # the unbind unanswered): the test with the slow SMSC below shows those answers passed back.
    # The store was flushed: a receipt for any accepted message finds its ESME after a restart.
    store = SqliteStore(tmp_path / "data" / "afgw.db")
    try:
        now = time.time()
        unrouted = [
            t
            for e in esmes
            for t in e.sent
            if e.status(t) == 0 and store.owner_of(message_id(e, t), now) != e.system_id
        ]
    finally:
        store.db.close()
    assert not unrouted, f"no receipt route stored for {unrouted[:10]}"
    assert any('"smpp.drained"' in line for line in log)
    assert '"afgw.stopped"' in log[-1]


class HeldSmsc(SimulatedSmsc):
    """Holds every submit_sm unanswered until ``release``, as a slow SMSC would."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.held: list[tuple[SmppConnection, Pdu]] = []
        self.holding = True
        self.three_held = asyncio.Event()

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if self.holding and isinstance(pdu, SubmitSm):
            self.held.append((conn, pdu))
            if len(self.held) == 3:
                self.three_held.set()
            return
        super().event(conn, pdu)

    def release(self) -> None:
        self.holding = False
        for conn, pdu in self.held:
            super().event(conn, pdu)


@dataclass(eq=False)
class WatchingEsme:
    """Records which of its requests had been answered when the gateway's unbind arrived."""

    answered_at_unbind: list[int | None] | None = None
    futures: list[asyncio.Future[Pdu]] = field(default_factory=list)

    def connected(self, conn: SmppConnection) -> None:
        pass

    def closed(self, conn: SmppConnection) -> None:
        pass

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, Unbind):
            self.answered_at_unbind = [
                f.result().command_status if f.done() and f.exception() is None else None for f in self.futures
            ]


def sms(text: bytes) -> SubmitSm:
    return SubmitSm(source_addr="10690", destination_addr="8613800000001", short_message=text)


async def test_a_drain_passes_back_the_slow_smscs_answers_before_it_unbinds():
    from tests.e2e.smpp_harness import gateway_port, make_config, running_gateway

    smsc = HeldSmsc(system_id="afgw", password="secret")
    await smsc.start()
    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            assert gw.smpp is not None
            port = gateway_port(gw)
            loop = asyncio.get_running_loop()
            esme = WatchingEsme()
            config = SessionConfig(window=10, inbound_window=10, enquire_link_interval=None)
            _t, conn = await loop.create_connection(
                lambda: SmppConnection(SmppSession(Role.ESME, clock=loop.time, config=config), esme, loop),
                "127.0.0.1",
                port,
            )
            assert (await conn.request(BindTransceiver(system_id="bank", password="bankpw"))).command_status == 0
            for i in range(3):
                esme.futures.append(conn.request(sms(b"%d" % i)))
            await asyncio.wait_for(smsc.three_held.wait(), 10)

            drain = asyncio.ensure_future(gw.drain())
            await asyncio.sleep(0)  # the drain has begun: no listener, new submits refused
            late = await conn.request(sms(b"late"))
            assert late.command_status == CommandStatus.ESME_RTHROTTLED
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
            assert not drain.done()
            assert esme.answered_at_unbind is None  # no unbind while the SMSC owes answers

            smsc.release()
            await asyncio.wait_for(drain, 10)
            await asyncio.wait_for(conn.closed, 10)
            # Every answer reached the ESME before the unbind did.
            assert esme.answered_at_unbind == [0, 0, 0]
            assert sorted(s.text for box in smsc.inboxes.values() for s in box) == ["0", "1", "2"]
    finally:
        await smsc.stop()
