"""A hostile ESME on the ESME port: bind guessing, connection floods, unbound floods, peers that never read.

Each test also checks that an honest ESME, binding from another loopback address, is served meanwhile.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections import Counter
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.config import EsmeAccount
from protocols.smpp.pdu import SubmitSm
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import (
    RawPeer,
    eventually,
    gateway_port,
    make_config,
    raw_bind,
    raw_pdu,
    raw_submit,
    running_gateway,
)

ROOT = Path(__file__).resolve().parents[2]
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM_RESP = 0x80000004
ENQUIRE_LINK = 0x00000015
ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RTHROTTLED = 0x0D, 0x0E, 0x58


def submits(smsc: SimulatedSmsc) -> list[SubmitSm]:
    return [p for p in smsc.received if isinstance(p, SubmitSm)]


async def bind(port: int, system_id: str, password: str, source: str) -> tuple[int, RawPeer]:
    peer = await RawPeer.connect(port, source)
    await peer.send(raw_bind(BIND_TRANSCEIVER, 1, system_id, password))
    command_id, status, seq, _ = await peer.read_pdu()
    assert (command_id, seq) == (BIND_TRANSCEIVER_RESP, 1)
    return status, peer


async def honest_submit(port: int, source: str, text: bytes, system_id: str = "bank", password: str = "bankpw") -> None:
    status, peer = await bind(port, system_id, password, source)
    assert status == 0
    await peer.send(raw_submit(2, "10690", "8613800000077", text))
    assert (await peer.read_pdu())[:3] == (SUBMIT_SM_RESP, 0, 2)
    peer.close()


@pytest.mark.parametrize(("burst", "attempts"), [(3, 10), (5, 40), (8, 100)])
async def test_bind_guesses_from_one_address_are_throttled_at_once(smsc, burst, attempts):
    config = make_config(
        smsc.port, bind_burst=burst, bind_rate=1.0, refusal_log_interval=60.0, max_connections_per_address=500
    )
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with capture_logs() as logs:
            # All at once, in parallel: each is counted when it arrives, not when it is answered.
            results = await asyncio.gather(*(bind(port, "mallory", "guess", "127.0.0.2") for _ in range(attempts)))
        elapsed = loop.time() - started
        statuses = Counter(status for status, _ in results)
        assert statuses == {ESME_RINVPASWD: burst, ESME_RBINDFAIL: attempts - burst}
        # Answered, not held: the old back-off held the tenth answer for 16 s, past session_init_timeout.
        assert elapsed < 5.0
        for _, peer in results:
            assert await peer.closed_by_peer()
            peer.close()
        # One line for the throttled binds of this interval, not one per bind.
        throttled = [e for e in logs if e["event"] == "esme.bind_throttled"]
        assert len(throttled) == 1
        assert throttled[0]["address"] == "127.0.0.2"

        # A correct bind from another address is not affected...
        await honest_submit(port, "127.0.0.3", b"from elsewhere")
        # ...and the guessing address itself gets a token back within 1/rate, well within session_init_timeout.
        status, peer = await bind(port, "bank", "bankpw", "127.0.0.2")
        assert status == ESME_RBINDFAIL
        peer.close()
        await asyncio.sleep(1.05)
        await honest_submit(port, "127.0.0.2", b"after the lock-out")
        assert [p.short_message for p in submits(smsc)] == [b"from elsewhere", b"after the lock-out"]


@pytest.mark.parametrize("guessers", [6, 25])
async def test_guesses_at_one_system_id_from_many_addresses_are_throttled(smsc, guessers):
    config = make_config(smsc.port, bind_burst_per_system_id=5, bind_rate_per_system_id=2.0)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        results = [await bind(port, "bank", "guess", f"127.0.1.{i + 1}") for i in range(guessers)]
        statuses = [status for status, _ in results]
        assert statuses == [ESME_RINVPASWD] * 5 + [ESME_RBINDFAIL] * (guessers - 5)
        for _, peer in results:
            peer.close()
        # Another account from a fresh address binds at once; bank itself within 1/rate.
        await honest_submit(port, "127.0.2.1", b"shop is fine", "shop", "shoppw")
        await asyncio.sleep(0.55)
        await honest_submit(port, "127.0.2.2", b"bank again")


async def test_correct_binds_do_not_use_up_the_attempts(smsc):
    config = make_config(smsc.port, bind_burst=2, bind_burst_per_system_id=2)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        for i in range(6):
            await honest_submit(port, "127.0.0.4", f"rebind {i}".encode())


@pytest.mark.parametrize(("per_address", "total"), [(3, 100), (100, 4)])
async def test_connection_caps_refuse_and_log_as_a_rate(smsc, per_address, total):
    config = make_config(
        smsc.port, max_connections_per_address=per_address, max_connections=total, refusal_log_interval=0.3
    )
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        limit = min(per_address, total)
        with capture_logs() as logs:
            held = [await RawPeer.connect(port, "127.0.0.5") for _ in range(limit)]
            extra = [await RawPeer.connect(port, "127.0.0.5") for _ in range(20)]
            for peer in extra:
                assert await peer.closed_by_peer()
                peer.close()
            await asyncio.sleep(0.5)
        refused = [e for e in logs if e["event"] == "esme.connection_refused"]
        # The first refusal at once, the other 19 counted in one line at the end of the interval.
        assert [e["count"] for e in refused] == [1, 19]
        # The connections within the cap still work.
        await held[0].send(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
        assert (await held[0].read_pdu())[:2] == (BIND_TRANSCEIVER_RESP, 0)
        for peer in held:
            peer.close()
        if per_address < total:
            await honest_submit(port, "127.0.0.6", b"another address")
        else:
            await asyncio.sleep(0.1)  # the closes above free room under the total cap
            await honest_submit(port, "127.0.0.6", b"room again")


@pytest.mark.parametrize("pdus", [11, 50, 5000])
async def test_a_connection_that_streams_before_bind_is_closed(smsc, pdus):
    config = make_config(smsc.port, unbound_pdus=10)
    async with running_gateway(config) as gw:
        peer = await RawPeer.connect(gateway_port(gw))
        with capture_logs() as logs:
            await peer.send(b"".join(raw_pdu(ENQUIRE_LINK, i + 1) for i in range(pdus)))
            answers = 0
            try:
                while True:
                    await peer.read_pdu()
                    answers += 1
            except (asyncio.IncompleteReadError, ConnectionResetError):
                pass
        assert answers <= 10
        assert [e["event"] for e in logs if e["event"] == "smpp.unbound_flood"] == ["smpp.unbound_flood"]
        peer.close()


@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
async def test_honest_esmes_are_served_while_100_connections_flood(smsc, bound):
    # Bound flooders (a compromised account) are not cut off by the budget before bind: only the
    # bound on the work per connection per turn keeps the loop turning for the others.
    accounts = (
        EsmeAccount(system_id="bank", password="bankpw", throughput=100000, window=50),
        EsmeAccount(system_id="evil", password="evilpw", throughput=100000, window=50, max_binds=1000),
    )
    config = make_config(smsc.port, accounts=accounts, max_connections_per_address=1000, max_connections=2000)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e.smpp_flood",
            str(port),
            "100",
            "12",
            *(["evil", "evilpw"] if bound else []),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.sleep(1.0)
            loop = asyncio.get_running_loop()
            for i in range(3):
                started = loop.time()
                # Generous against a slow shared machine, far below the half-minute freeze.
                await asyncio.wait_for(honest_submit(port, "127.0.0.7", f"during flood {i}".encode()), 8.0)
                assert loop.time() - started < 8.0
            assert flood.returncode is None  # the flood was still on
        finally:
            if flood.returncode is None:
                flood.terminate()
            await flood.communicate()
        assert [p.short_message for p in submits(smsc)] == [f"during flood {i}".encode() for i in range(3)]


async def test_a_peer_that_never_reads_is_stopped_and_then_aborted(smsc):
    config = make_config(smsc.port, output_buffer=64 * 1024, output_deadline=1.0)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        chunk = b"".join(raw_pdu(ENQUIRE_LINK, i + 2) for i in range(4096))
        sent = 0
        aborted = False
        with capture_logs() as logs:
            deadline = loop.time() + 20.0
            while loop.time() < deadline:
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    await asyncio.sleep(0.05)  # the gateway stopped reading: our side fills up
                except (ConnectionResetError, BrokenPipeError):
                    aborted = True
                    break
                else:
                    await asyncio.sleep(0)
        sock.close()
        assert aborted
        assert any(e["event"] == "smpp.peer_not_reading" for e in logs)
        # The gateway stopped reading long before the replies to all that was sent were queued.
        assert sent < 50 * 1024 * 1024
        await honest_submit(port, "127.0.0.8", b"still serving")


async def test_closing_does_not_wait_for_ever_on_a_peer_that_never_reads(smsc):
    # A high-water mark beyond what is sent: the only bound left is the deadline after close.
    config = make_config(smsc.port, output_buffer=256 * 1024 * 1024, output_deadline=1.0)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(raw_bind(BIND_TRANSCEIVER, 1, "bank", "bankpw"))
        sock.setblocking(False)
        chunk = b"".join(raw_pdu(ENQUIRE_LINK, i + 2) for i in range(4096))
        sent = 0
        with capture_logs() as logs:
            while sent < 8 * 1024 * 1024:
                try:
                    sent += sock.send(chunk[: 8 * 1024 * 1024 - sent])
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            # A broken header makes the gateway close; megabytes of replies are still unsent.
            sock.setblocking(True)
            sock.sendall(struct.pack(">IIII", 8, 0x00000004, 0, 7))
            sock.setblocking(False)
            await eventually(lambda: any(e["event"] == "smpp.output_abandoned" for e in logs), within=30.0)
        sock.close()
        (abandoned,) = [e for e in logs if e["event"] == "smpp.output_abandoned"]
        assert abandoned["unsent"] > 0


@pytest.mark.parametrize("submits_sent", [30, 150])
async def test_throughput_refusals_are_logged_as_a_rate(smsc, submits_sent):
    accounts = (EsmeAccount(system_id="bank", password="bankpw", throughput=5, window=200),)
    async with running_gateway(make_config(smsc.port, accounts=accounts, refusal_log_interval=0.3)) as gw:
        status, peer = await bind(gateway_port(gw), "bank", "bankpw", "127.0.0.9")
        assert status == 0
        with capture_logs() as logs:
            await peer.send(b"".join(raw_submit(i + 2, "10690", "8613800000078", b"x") for i in range(submits_sent)))
            answers = Counter([(await peer.read_pdu())[1] for _ in range(submits_sent)])
            throttled = answers[ESME_RTHROTTLED]
            assert throttled >= submits_sent - 10
            await asyncio.sleep(0.5)
        lines = [e for e in logs if e["event"] == "sms.throttled"]
        assert len(lines) == 2
        assert sum(e["count"] for e in lines) == throttled
        peer.close()


@pytest.mark.parametrize("errors", [20, 300])
async def test_errors_answered_by_the_session_are_logged_as_a_rate(smsc, errors):
    async with running_gateway(make_config(smsc.port, refusal_log_interval=0.3)) as gw:
        # Captured from the connection on: its logger is bound when it opens.
        with capture_logs() as logs:
            status, peer = await bind(gateway_port(gw), "bank", "bankpw", "127.0.0.9")
            assert status == 0
            await peer.send(b"".join(raw_submit(0, "10690", "8613800000079", b"x") for _ in range(errors)))
            for _ in range(errors):
                assert (await peer.read_pdu())[:3] == (0x80000000, 0xFF, 0)
            await asyncio.sleep(0.5)
        lines = [e for e in logs if e["event"] == "smpp.error_answered"]
        assert [e["count"] for e in lines] == [1, errors - 1]
        peer.close()


@pytest.mark.parametrize("wrong_per_correct", [1, 2, 3])
async def test_guesses_between_correct_binds_still_run_out(smsc, wrong_per_correct):
    # A correct bind gives back its own token only: it does not wipe out the guesses before it.
    config = make_config(smsc.port, bind_burst=4, bind_rate=0.2, session_init_timeout=10.0)
    async with running_gateway(config) as gw:
        port = gateway_port(gw)
        statuses = []
        for _ in range(8):
            for _ in range(wrong_per_correct):
                status, peer = await bind(port, "bank", "guess", "127.0.0.10")
                statuses.append(status)
                peer.close()
            status, peer = await bind(port, "bank", "bankpw", "127.0.0.10")
            statuses.append(status)
            peer.close()
        assert statuses.count(ESME_RINVPASWD) <= 4 + 1  # the burst, plus at most one token regained
        assert ESME_RBINDFAIL in statuses
