"""SMPP throughput and added latency of the gateway, against the direct path, in one run.

Three processes on loopback: the simulated SMSC, the gateway (one process, so one core), and this
one, which plays N ESME binds with a raw, pre-encoded load generator (so that the generator is not
what limits the figures). The same load is sent straight to the SMSC simulator and through the
gateway, and the ratios are printed:

- throughput: every bind keeps its window full until ``--messages`` are answered; msg/s counts
  ESME_ROK answers only;
- latency: a paced load (``--rate`` msg/s, well below saturation) on both paths; the gateway's added
  latency is the difference of the percentiles.

With ``--pcap-cost``, a second gateway process runs beside the first with pcap capture on (to a
temporary file): the throughput of both, measured in turns, and the CPU time each gateway process spent
per message (read from /proc, which a busy machine disturbs less than a rate) print what recording
every segment costs.

    python bench/smpp_throughput.py [--binds 4] [--window 100] [--messages 60000] [--rate 2000] [--pcap-cost]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, cast

from protocols.smpp.codec import encode
from protocols.smpp.constants import CommandId
from protocols.smpp.pdu import BindTransceiver, SubmitSm, Tlv, Unbind

_HEADER = struct.Struct(">IIII")


def _run(coro_factory: object) -> None:
    try:
        import uvloop

        uvloop.run(coro_factory())  # type: ignore[operator]
    except ImportError:
        asyncio.run(coro_factory())  # type: ignore[operator]


# --- the two servers, each in its own process ---------------------------------------------------------


def smsc_process(ports: Any, stop: Any) -> None:
    from simulator.smsc import SimulatedSmsc

    async def main() -> None:
        smsc = SimulatedSmsc(system_id="afgw", password="secret", keep_messages=False, record=False, window=1000)
        await smsc.start("127.0.0.1", 0)
        ports.put(smsc.port)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await smsc.stop()

    _run(main)


def gateway_process(smsc_port: int, binds: int, window: int, ports: Any, stop: Any, pcap: str | None = None) -> None:
    from gateway import logs
    from gateway.app import Gateway
    from gateway.capture import CaptureConfig
    from gateway.config import EsmeAccount, GatewayConfig, Listen, SmppConfig, SmscPeer

    logs.configure("console", "warning")
    accounts = tuple(
        EsmeAccount(system_id=f"bench{i}", password="benchpw", throughput=1e9, window=window, max_binds=1)
        for i in range(binds)
    )
    config = GatewayConfig(
        smpp=SmppConfig(
            listen=Listen("127.0.0.1", 0),
            accounts=accounts,
            smsc=SmscPeer(
                port=smsc_port,
                system_id="afgw",
                password="secret",
                binds=4,
                window=max(100, binds * window // 2),
            ),
            enquire_link_interval=60,
        ),
        capture=CaptureConfig(pcap, pcap_size=1000.0, pcap_count=2) if pcap else None,
    )

    async def main() -> None:
        profile = os.environ.get("AFGW_BENCH_PROFILE")
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        async with Gateway(config) as gw:
            assert gw.smpp is not None
            await asyncio.wait_for(gw.smpp.pool.up.wait(), 10)
            while gw.smpp.pool.bound_count < 4:
                await asyncio.sleep(0.01)
            ports.put(gw.smpp.server.port)
            while not stop.is_set():
                await asyncio.sleep(0.1)
        if profile:
            profiler.disable()
            profiler.dump_stats(profile)

    _run(main)


# --- the load generator -------------------------------------------------------------------------------


@dataclass
class Tally:
    ok: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)


class LoadBind(asyncio.Protocol):
    """One ESME bind that sends pre-encoded submit_sm PDUs, patching only the sequence number."""

    def __init__(self, system_id: str, password: str, template: bytes, tally: Tally) -> None:
        self.system_id, self.password = system_id, password
        self.template = bytearray(template)
        self.tally = tally
        self.buffer = bytearray()
        self.sent_at: dict[int, float] = {}
        self.seq = 1
        self.bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.window_free = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(
            encode(BindTransceiver(sequence_number=0x7FFFFF00, system_id=self.system_id, password=self.password))
        )

    def send(self, count: int) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        chunks = []
        for _ in range(count):
            seq = self.seq
            self.seq += 1
            struct.pack_into(">I", self.template, 12, seq)
            chunks.append(bytes(self.template))
            self.sent_at[seq] = now
        self.transport.write(b"".join(chunks))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        now = time.perf_counter()
        pos = 0
        n = len(buf)
        while n - pos >= 16:
            length, command_id, status, seq = _HEADER.unpack_from(buf, pos)
            if n - pos < length:
                break
            pos += length
            if command_id == CommandId.SUBMIT_SM_RESP:
                sent = self.sent_at.pop(seq, None)
                if status == 0:
                    self.tally.ok += 1
                else:
                    self.tally.refused += 1
                if sent is not None:
                    self.tally.latencies.append(now - sent)
            elif command_id == CommandId.BIND_TRANSCEIVER_RESP:
                if status == 0:
                    self.bound.set_result(None)
                else:
                    self.bound.set_exception(RuntimeError(f"bind refused {status:#x}"))
            elif command_id == CommandId.ENQUIRE_LINK and self.transport is not None:
                self.transport.write(_HEADER.pack(16, CommandId.ENQUIRE_LINK_RESP, 0, seq))
        del buf[:pos]
        self.window_free.set()

    @property
    def in_flight(self) -> int:
        return len(self.sent_at)


def _template() -> bytes:
    text = "【某银行】您尾号1234的账户于11月23日转入人民币500.00元，余额8,888.00元。".encode("utf-16-be")
    return encode(
        SubmitSm(
            sequence_number=1,
            source_addr="10690000",
            destination_addr="8613800138000",
            data_coding=8,
            registered_delivery=0,
            short_message=text,
            tlvs=(Tlv(0x1400, b"vendor"),),
        )
    )


async def _connect(port: int, creds: list[tuple[str, str]], tally: Tally) -> list[LoadBind]:
    loop = asyncio.get_running_loop()
    binds = []
    for system_id, password in creds:

        def make(s: str = system_id, p: str = password) -> LoadBind:
            return LoadBind(s, p, _template(), tally)

        _t, proto = await loop.create_connection(make, "127.0.0.1", port)
        await asyncio.wait_for(proto.bound, 10)
        binds.append(proto)
    return binds


async def _close(binds: list[LoadBind]) -> None:
    for b in binds:
        if b.transport is not None:
            b.transport.write(encode(Unbind(sequence_number=0x7FFFFFF0)))
            b.transport.close()
    await asyncio.sleep(0.05)


async def saturate(port: int, creds: list[tuple[str, str]], window: int, total: int) -> tuple[float, Tally]:
    tally = Tally()
    binds = await _connect(port, creds, tally)
    per_bind = total // len(binds)

    async def pump(b: LoadBind) -> None:
        sent = 0
        while sent < per_bind:
            room = min(window - b.in_flight, per_bind - sent)
            if room > 0:
                b.send(room)
                sent += room
            b.window_free.clear()
            await b.window_free.wait()
        while b.in_flight:
            b.window_free.clear()
            await asyncio.wait_for(b.window_free.wait(), 30)

    start = time.perf_counter()
    await asyncio.gather(*(pump(b) for b in binds))
    elapsed = time.perf_counter() - start
    await _close(binds)
    return (tally.ok + tally.refused) / elapsed, tally


async def paced(port: int, creds: list[tuple[str, str]], rate: float, total: int) -> Tally:
    tally = Tally()
    binds = await _connect(port, creds, tally)
    tick = 0.002
    per_tick = rate * tick
    loop = asyncio.get_running_loop()
    sent, owed, i = 0, 0.0, 0
    next_at = loop.time()
    while sent < total:
        owed += per_tick
        k = int(owed)
        owed -= k
        for _ in range(min(k, total - sent)):
            binds[i % len(binds)].send(1)
            i += 1
            sent += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    deadline = loop.time() + 30
    while any(b.in_flight for b in binds) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await _close(binds)
    return tally


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux /proc), for a figure that a busy machine
    disturbs less than a rate: what the process itself spent."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pcap_cost(args: argparse.Namespace, off: tuple[int, int], on: tuple[int, int]) -> None:
    """Throughput and the gateway's CPU time per message, with and without capture, in alternating turns
    so that a busy machine weighs on both. ``off`` and ``on`` are (port, pid) of the two gateways."""
    creds = [(f"bench{i}", "benchpw") for i in range(args.binds)]
    await saturate(on[0], creds[:1], args.window, 2000)
    rates: dict[str, list[float]] = {"capture off": [], "capture on": []}
    cpu: dict[str, list[float]] = {"capture off": [], "capture on": []}
    for _ in range(args.rounds):
        for name, (port, pid) in (("capture off", off), ("capture on", on)):
            before = cpu_seconds(pid)
            rate, _tally = await saturate(port, creds, args.window, args.messages)
            rates[name].append(rate)
            cpu[name].append((cpu_seconds(pid) - before) / args.messages * 1e6)
    print(f"Cost of pcap capture: {args.rounds} rounds of {args.messages} messages on each gateway, in turns")
    rounds = "".join(f"{'round ' + str(i + 1):>10}" for i in range(args.rounds))
    for title, table, unit in (("msg/s", rates, ".0f"), ("gateway CPU us/msg", cpu, ".1f")):
        print(f"{title:<28}{rounds}{'median':>10}")
        for name, values in table.items():
            print(f"{name:<28}" + "".join(f"{v:>10{unit}}" for v in values) + f"{statistics.median(values):>10{unit}}")
    rate_ratio = statistics.median(rates["capture on"]) / statistics.median(rates["capture off"])
    cpu_ratio = statistics.median(cpu["capture on"]) / statistics.median(cpu["capture off"])
    print(f"ratio capture on/off: throughput {rate_ratio:.3f}, CPU per message {cpu_ratio:.3f}")


async def measure(args: argparse.Namespace, smsc_port: int, gw_port: int) -> None:
    direct_creds = [("afgw", "secret")] * args.binds
    gw_creds = [(f"bench{i}", "benchpw") for i in range(args.binds)]

    # Warm both paths so that the first figures do not pay for imports and allocation.
    await saturate(smsc_port, direct_creds[:1], args.window, 2000)
    await saturate(gw_port, gw_creds[:1], args.window, 2000)

    direct_rate, direct_tally = await saturate(smsc_port, direct_creds, args.window, args.messages)
    gw_rate, gw_tally = await saturate(gw_port, gw_creds, args.window, args.messages)
    lat_direct = await paced(smsc_port, direct_creds, args.rate, args.latency_messages)
    lat_gw = await paced(gw_port, gw_creds, args.rate, args.latency_messages)

    load = f"{args.binds} binds, window {args.window}, {args.messages} UCS2 submit_sm with a vendor TLV"
    print(f"SMPP throughput: {load}")
    print(f"{'path':<28}{'msg/s':>10}{'ok':>9}{'refused':>9}")
    print(f"{'ESMEs -> SMSC (direct)':<28}{direct_rate:>10.0f}{direct_tally.ok:>9}{direct_tally.refused:>9}")
    print(f"{'ESMEs -> gateway -> SMSC':<28}{gw_rate:>10.0f}{gw_tally.ok:>9}{gw_tally.refused:>9}")
    print(f"ratio gateway/direct: {gw_rate / direct_rate:.2f}   (target >= 0.5; gateway target >= 10000 msg/s)")
    print()
    print(f"Latency at a paced {args.rate:.0f} msg/s, {args.latency_messages} messages")
    print(f"{'path':<28}{'p50 ms':>10}{'p99 ms':>10}")
    for name, tally in (("direct", lat_direct), ("through gateway", lat_gw)):
        print(f"{name:<28}{pct(tally.latencies, 0.5):>10.3f}{pct(tally.latencies, 0.99):>10.3f}")
    added50 = pct(lat_gw.latencies, 0.5) - pct(lat_direct.latencies, 0.5)
    added99 = pct(lat_gw.latencies, 0.99) - pct(lat_direct.latencies, 0.99)
    print(f"{'added by the gateway':<28}{added50:>10.3f}{added99:>10.3f}")
    if lat_gw.latencies:
        print(f"(mean through gateway {statistics.fmean(lat_gw.latencies) * 1000:.3f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--messages", type=int, default=60000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--latency-messages", type=int, default=6000)
    parser.add_argument("--pcap-cost", action="store_true", help="also run a gateway that captures to a pcap file")
    parser.add_argument("--rounds", type=int, default=3, help="turns of the --pcap-cost comparison")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    smsc = ctx.Process(target=smsc_process, args=(ports, stop), daemon=True)
    smsc.start()
    smsc_port = ports.get(timeout=30)
    gw = ctx.Process(target=gateway_process, args=(smsc_port, args.binds, args.window, ports, stop), daemon=True)
    gw.start()
    gw_port = ports.get(timeout=30)
    capturing = None
    if args.pcap_cost:
        pcap = os.path.join(tempfile.mkdtemp(prefix="afgw-bench-"), "bench.pcap")
        capturing = ctx.Process(
            target=gateway_process, args=(smsc_port, args.binds, args.window, ports, stop, pcap), daemon=True
        )
        capturing.start()
        capturing_port = ports.get(timeout=30)
        gw_pid, capturing_pid = cast(int, gw.pid), cast(int, capturing.pid)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    try:
        _run(lambda: measure(args, smsc_port, gw_port))
        if capturing is not None:
            print()
            _run(lambda: pcap_cost(args, (gw_port, gw_pid), (capturing_port, capturing_pid)))
            time.sleep(0.5)  # the last batch reaches the file
            size = sum(os.path.getsize(p) for p in (pcap, pcap + ".1") if os.path.exists(p))
            print(f"({size / 1e6:.1f} MB of pcap written)")
    finally:
        stop.set()
        gw.join(5)
        if capturing is not None:
            capturing.join(5)
            shutil.rmtree(os.path.dirname(pcap), ignore_errors=True)
        smsc.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
