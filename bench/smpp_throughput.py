"""SMPP throughput and added latency of the gateway, against the direct path, in one run.

Processes on loopback: the simulated SMSC; a redis-server of the bench's own on a free port (the store
that several workers need; every gateway here uses it, under a key prefix of its own, so that one
worker and N workers run the same configuration); each gateway as ``afgw run`` (one process, or with
``--workers N`` a supervisor and N workers sharing the ESME port through SO_REUSEPORT); and this one,
which plays the ESME binds with a raw, pre-encoded load generator (so that the generator is not what
limits the figures).

- rules: with ``--rules on`` (the default) the gateways load the shipped packs as config/gateway.yaml
  does (its whole ``rules`` section, warnings to the recipients of blocked messages included) and the
  load is texts of the corpus's dev split, mostly ham with a share (``--fraud-share``) of fraud, some
  of which the rules block (answered ESME_RSUBMITFAIL, never relayed); with ``--rules off`` every
  message is the same bank notice and the gateway inspects nothing.
- throughput: every bind keeps its window full until ``--messages`` are answered; msg/s counts every
  answer (relayed, or refused by the rules). The direct path, the one-process gateway and the
  N-worker gateway take turns, ``--rounds`` times, so that a busy machine weighs on each; the medians
  print with their ratios to the direct path, the CPU time each gateway's processes spent per message
  (read from /proc, which a busy machine disturbs less than a rate), and the load average before and
  after. The CPU the load generator and the SMSC spend per message prints too, for every path: every
  process shares the machine's cores, so the direct path's figure says how much CPU per message is left
  for a gateway that is to carry half the direct path's rate (the "budget" line).
- receipts: with ``--receipts`` every submit_sm asks for a delivery receipt (registered_delivery 1), which
  the SMSC sends back through the gateway and the load generator answers; a round ends when every
  accepted message's receipt is in, so that the CPU figures count the receipts' relay too.
- latency: a paced load (``--rate`` msg/s, well below saturation) on the direct path and through the
  one-process gateway; the gateway's added latency is the difference of the percentiles.

With ``--baseline DIR``, the one-process gateway of another source tree (an export of an earlier commit,
say) takes its turns too: a change's effect measured side by side under the same load.

With ``--pcap-cost``, one more one-process gateway runs with pcap capture on (to a temporary file) and
takes turns with the plain one: the throughput of both and their CPU per message print what recording
every segment costs.

``AFGW_BENCH_PROFILE=FILE`` runs the one-process gateway under cProfile and writes its statistics to
FILE when it stops (``python -m pstats FILE``).

    python bench/smpp_throughput.py [--binds 4] [--window 100] [--messages 60000] [--rounds 3]
        [--rules on|off] [--fraud-share 0.1] [--workers 2] [--rate 2000] [--baseline DIR] [--pcap-cost]
        [--receipts]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocols.smpp.codec import encode  # noqa: E402
from protocols.smpp.constants import CommandId, CommandStatus  # noqa: E402
from protocols.smpp.pdu import BindTransceiver, SubmitSm, Tlv, Unbind  # noqa: E402

_HEADER = struct.Struct(">IIII")
#: A deliver_sm_resp: the header and an empty message_id.
_DELIVER_SM_RESP = struct.Struct(">IIIIB")
#: What a gateway answers while it cannot relay yet (no SMSC bind up, no room): try again.
_RETRY = {int(CommandStatus.ESME_RMSGQFUL), int(CommandStatus.ESME_RTHROTTLED)}
#: The longest short_message: 254 octets, 127 UCS2 characters; longer texts are left out of the mix.
_MAX_OCTETS = 254


def _run(coro_factory: object) -> None:
    try:
        import uvloop

        uvloop.run(coro_factory())  # type: ignore[operator]
    except ImportError:
        asyncio.run(coro_factory())  # type: ignore[operator]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the servers, each in its own process -------------------------------------------------------------


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


@contextlib.contextmanager
def private_redis(directory: str) -> Iterator[int]:
    """A redis-server of our own on a free loopback port, without persistence; its port."""
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(250):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.02)
        else:
            raise SystemExit("redis-server did not start")
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def shipped_rules() -> dict[str, Any]:
    """The ``rules`` section of config/gateway.yaml: the shipped packs with their tag and warnings."""
    with open(ROOT / "config" / "gateway.yaml", encoding="utf-8") as f:
        section: dict[str, Any] = yaml.safe_load(f)["rules"]
    return section


def gateway_config(
    args: argparse.Namespace, smsc_port: int, redis_port: int, name: str, directory: str
) -> tuple[str, int]:
    """Write the configuration of gateway ``name``: its path and its ESME port (fixed, as workers need)."""
    port = free_port()
    doc = relay_config(args, smsc_port, port)
    doc["store"] = {"backend": "redis", "redis_url": f"redis://127.0.0.1:{redis_port}/0", "redis_prefix": name}
    path = os.path.join(directory, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)  # JSON is YAML
    return path, port


def relay_config(args: argparse.Namespace, smsc_port: int, port: int) -> dict[str, Any]:
    """A gateway's SMPP section (the bench's accounts, ESMEs on ``port``, four binds to the SMSC) and,
    with ``--rules on``, the shipped rules: the configuration less its store."""
    accounts = [
        {"system_id": f"bench{i}", "password": "benchpw", "throughput": 1e9, "window": args.window, "max_binds": 1}
        for i in range(args.binds)
    ]
    doc: dict[str, Any] = {
        "smpp": {
            "listen": {"host": "127.0.0.1", "port": port},
            "accounts": accounts,
            "smsc": {
                "host": "127.0.0.1",
                "port": smsc_port,
                "system_id": "afgw",
                "password": "secret",
                "binds": 4,
                "window": max(100, args.binds * args.window // 2),
            },
            "enquire_link_interval": 60,
            "drain_timeout": 2,
        },
    }
    if args.rules == "on":
        doc["rules"] = shipped_rules()
    return doc


@dataclass
class GatewayProcess:
    """One ``afgw run``: a lone gateway, or a supervisor whose children are the workers."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int

    def pids(self) -> list[int]:
        """The processes that relay: the gateway itself, or the supervisor's workers."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children", encoding="ascii") as f:
                children = [int(pid) for pid in f.read().split()]
        except FileNotFoundError:
            children = []
        return children or [self.proc.pid]

    def cpu(self) -> list[float]:
        """CPU seconds so far of each relaying process, and of the supervisor last when there is one."""
        pids = self.pids()
        own = [] if pids == [self.proc.pid] else [cpu_seconds(self.proc.pid)]
        return [cpu_seconds(pid) for pid in pids] + own

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_gateway(
    config: str, port: int, name: str, workers: int, pcap: str | None = None, tree: Path = ROOT
) -> GatewayProcess:
    """``afgw run`` of the source tree ``tree`` (``python -m`` imports from the working directory)."""
    command = [sys.executable]
    profile = os.environ.get("AFGW_BENCH_PROFILE")
    if profile and workers == 1 and pcap is None:
        command += ["-m", "cProfile", "-o", profile]
    command += ["-m", "gateway.cli", "--log-level", "warning", "run", "-c", config]
    if workers > 1:
        command += ["--workers", str(workers)]
    if pcap is not None:
        command += ["--pcap", pcap]
    proc = subprocess.Popen(command, cwd=tree)
    return GatewayProcess(name, proc, port)


# --- the load generator -------------------------------------------------------------------------------


@dataclass
class Tally:
    ok: int = 0
    refused: int = 0
    receipts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


class LoadBind(asyncio.Protocol):
    """One ESME bind that sends pre-encoded submit_sm PDUs in turn, patching only the sequence number."""

    def __init__(self, system_id: str, password: str, templates: list[bytes], offset: int, tally: Tally) -> None:
        self.system_id, self.password = system_id, password
        self.templates = [bytearray(t) for t in templates]
        self.next_template = offset % len(templates)
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

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.bound.done():
            self.bound.set_exception(ConnectionError("closed before the bind was answered"))

    def send(self, count: int) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        chunks = []
        templates, n = self.templates, len(self.templates)
        for _ in range(count):
            seq = self.seq
            self.seq += 1
            template = templates[self.next_template]
            self.next_template = (self.next_template + 1) % n
            struct.pack_into(">I", template, 12, seq)
            chunks.append(bytes(template))
            self.sent_at[seq] = now
        self.transport.write(b"".join(chunks))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        now = time.perf_counter()
        pos = 0
        n = len(buf)
        answers = []
        while n - pos >= 16:
            length, command_id, status, seq = _HEADER.unpack_from(buf, pos)
            if n - pos < length:
                break
            pos += length
            if command_id == CommandId.SUBMIT_SM_RESP:
                sent = self.sent_at.pop(seq, None)
                self.tally.statuses[status] += 1
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
            elif command_id == CommandId.DELIVER_SM:
                self.tally.receipts += 1
                answers.append(_DELIVER_SM_RESP.pack(17, CommandId.DELIVER_SM_RESP, 0, seq, 0))
            elif command_id == CommandId.ENQUIRE_LINK:
                answers.append(_HEADER.pack(16, CommandId.ENQUIRE_LINK_RESP, 0, seq))
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))
        del buf[:pos]
        self.window_free.set()

    @property
    def in_flight(self) -> int:
        return len(self.sent_at)


def _submit(text: str, source: str, destination: str, receipts: bool = False) -> bytes:
    return encode(
        SubmitSm(
            sequence_number=1,
            source_addr=source,
            destination_addr=destination,
            data_coding=8,
            registered_delivery=1 if receipts else 0,
            short_message=text.encode("utf-16-be"),
            tlvs=(Tlv(0x1400, b"vendor"),),
        )
    )


def bank_notice(receipts: bool = False) -> list[bytes]:
    text = "【某银行】您尾号1234的账户于11月23日转入人民币500.00元，余额8,888.00元。"
    return [_submit(text, "10690000", "8613800138000", receipts)]


def corpus_mix(fraud_share: float, count: int = 400, seed: int = 7, receipts: bool = False) -> tuple[list[bytes], int]:
    """``count`` submit_sm of the dev split's SMS that fit one PDU, a ``fraud_share`` of them fraud, in a
    fixed shuffled order; and how many are fraud."""
    ham: list[dict[str, str]] = []
    fraud: list[dict[str, str]] = []
    with open(ROOT / "corpus" / "dev.jsonl", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            if item["channel"] == "sms" and len(item["text"].encode("utf-16-be")) <= _MAX_OCTETS:
                (fraud if item["label"] == "fraud" else ham).append(item)
    rng = random.Random(seed)
    frauds = round(count * fraud_share)
    chosen = rng.choices(ham, k=count - frauds) + rng.choices(fraud, k=frauds)
    rng.shuffle(chosen)
    return [_submit(i["text"], i["from"], i["to"], receipts) for i in chosen], frauds


async def _connect(port: int, creds: list[tuple[str, str]], templates: list[bytes], tally: Tally) -> list[LoadBind]:
    loop = asyncio.get_running_loop()
    binds = []
    for k, (system_id, password) in enumerate(creds):

        def make(s: str = system_id, p: str = password, offset: int = k * 97) -> LoadBind:
            return LoadBind(s, p, templates, offset, tally)

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


async def saturate(
    port: int,
    creds: list[tuple[str, str]],
    templates: list[bytes],
    window: int,
    total: int,
    receipts: bool = False,
) -> tuple[float, Tally]:
    tally = Tally()
    binds = await _connect(port, creds, templates, tally)
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
    # Every accepted message's receipt in before the round ends (its CPU counted in this round), or as
    # many as come: one that found the ESME's window full was refused for the SMSC to send again later,
    # which the simulated SMSC does not do.
    seen, quiet_since = -1, time.perf_counter()
    while receipts and tally.receipts < tally.ok and time.perf_counter() - quiet_since < 0.5:
        if tally.receipts != seen:
            seen, quiet_since = tally.receipts, time.perf_counter()
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    await _close(binds)
    return (tally.ok + tally.refused) / elapsed, tally


async def paced(port: int, creds: list[tuple[str, str]], templates: list[bytes], rate: float, total: int) -> Tally:
    tally = Tally()
    binds = await _connect(port, creds, templates, tally)
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


async def until_ready(
    gw: GatewayProcess, creds: list[tuple[str, str]], templates: list[bytes], window: int, receipts: bool = False
) -> None:
    """Wait until every bind of ``gw`` is relayed: no answer says to try again (before its SMSC binds are
    up a gateway answers ESME_RMSGQFUL; a worker still starting does not listen yet)."""
    deadline = time.monotonic() + 60
    last: object = "nothing"
    while True:
        if gw.proc.poll() is not None:
            raise SystemExit(f"gateway {gw.name} exited with status {gw.proc.returncode}")
        try:
            _rate, tally = await saturate(gw.port, creds, templates, window, 100 * len(creds), receipts)
            if tally.ok and not set(tally.statuses) & _RETRY:
                return
            last = {f"{status:#x}": n for status, n in tally.statuses.items()}
        except (OSError, RuntimeError, TimeoutError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise SystemExit(f"gateway {gw.name} did not relay within 60 s (last: {last!r})")
        await asyncio.sleep(0.2)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux /proc), for a figure that a busy machine
    disturbs less than a rate: what the process itself spent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


@dataclass
class Path_:
    """One path under test: where the ESMEs connect, and the gateway behind it if any."""

    name: str
    port: int
    creds: list[tuple[str, str]]
    gateway: GatewayProcess | None = None
    rates: list[float] = field(default_factory=list)
    cpu_per_msg: list[float] = field(default_factory=list)
    #: CPU time per message of the load generator (this process) and the SMSC while the path ran.
    peer_cpu_per_msg: list[float] = field(default_factory=list)
    #: CPU seconds of each process over all rounds (the workers', then the supervisor's).
    cpu_split: list[float] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


async def rounds(paths: list[Path_], templates: list[bytes], args: argparse.Namespace, smsc_pid: int) -> None:
    """Saturate each path in turn, ``args.rounds`` times."""
    for _ in range(args.rounds):
        for path in paths:
            before = path.gateway.cpu() if path.gateway is not None else []
            peers_before = cpu_seconds(os.getpid()) + cpu_seconds(smsc_pid)
            rate, tally = await saturate(path.port, path.creds, templates, args.window, args.messages, args.receipts)
            peers = cpu_seconds(os.getpid()) + cpu_seconds(smsc_pid) - peers_before
            path.peer_cpu_per_msg.append(peers / (tally.ok + tally.refused) * 1e6)
            path.rates.append(rate)
            path.tally.ok += tally.ok
            path.tally.refused += tally.refused
            path.tally.receipts += tally.receipts
            path.tally.statuses.update(tally.statuses)
            if path.gateway is not None:
                spent = [a - b for a, b in zip(path.gateway.cpu(), before, strict=False)]
                answered = tally.ok + tally.refused
                path.cpu_per_msg.append(sum(spent) / answered * 1e6)
                path.cpu_split = [a + b for a, b in zip(path.cpu_split or [0.0] * len(spent), spent, strict=False)]


def print_rounds(paths: list[Path_], title: str, args: argparse.Namespace) -> None:
    print(title)
    heads = "".join(f"{'round ' + str(i + 1):>10}" for i in range(args.rounds))
    print(f"{'msg/s':<34}{heads}{'median':>10}{'ratio':>8}{'ok':>9}{'refused':>9}")
    base = statistics.median(paths[0].rates)
    for p in paths:
        median = statistics.median(p.rates)
        cells = "".join(f"{v:>10.0f}" for v in p.rates)
        print(f"{p.name:<34}{cells}{median:>10.0f}{median / base:>8.2f}{p.tally.ok:>9}{p.tally.refused:>9}")
    print(f"{'gateway CPU us/msg (all processes)':<34}{heads}{'median':>10}")
    for p in paths:
        if p.gateway is not None:
            cells = "".join(f"{v:>10.1f}" for v in p.cpu_per_msg)
            split = ""
            if len(p.cpu_split) > 1:
                shares = ", ".join(f"{s:.1f}" for s in p.cpu_split[:-1])
                split = f"   (CPU s by worker: {shares}; supervisor {p.cpu_split[-1]:.2f})"
            print(f"{p.name:<34}{cells}{statistics.median(p.cpu_per_msg):>10.1f}{split}")
    print(f"{'load generator + SMSC CPU us/msg':<34}{heads}{'median':>10}")
    for p in paths:
        cells = "".join(f"{v:>10.1f}" for v in p.peer_cpu_per_msg)
        print(f"{p.name:<34}{cells}{statistics.median(p.peer_cpu_per_msg):>10.1f}")


def print_budget(direct: Path_) -> None:
    """What a gateway may spend per message to carry half the direct path's rate on this machine: the
    cores, less what the load generator and the SMSC spend at that rate, shared by that many messages."""
    half = statistics.median(direct.rates) / 2
    cores = os.cpu_count() or 1
    peers = statistics.median(direct.peer_cpu_per_msg) * half / 1e6
    budget = (cores - peers) / half * 1e6
    print(
        f"for 0.5 ({half:.0f} msg/s) on {cores} cores, of which the load generator and SMSC take {peers:.2f}: "
        f"a gateway may spend {budget:.1f} us of CPU per message"
    )


async def measure(
    args: argparse.Namespace, smsc_port: int, smsc_pid: int, gateways: list[GatewayProcess], templates: list[bytes]
) -> None:
    gw_creds = [(f"bench{i}", "benchpw") for i in range(args.binds)]
    direct = Path_("ESMEs -> SMSC (direct)", smsc_port, [("afgw", "secret")] * args.binds)
    paths = [direct]
    for gw in gateways:
        await until_ready(gw, gw_creds, templates, args.window, args.receipts)
        paths.append(Path_(gw.name, gw.port, gw_creds, gw))
    # Warm each path so that the first figures do not pay for imports and allocation.
    for path in paths:
        await saturate(path.port, path.creds[:1], templates, args.window, 2000, args.receipts)

    print(f"load average at start: {loadavg()}")
    mix = "rules on: shipped packs, corpus dev-split texts" if args.rules == "on" else "rules off: one bank notice"
    load = f"{args.binds} binds, window {args.window}, {args.messages} UCS2 submit_sm with a vendor TLV"
    if args.receipts:
        load += ", each with its delivery receipt"
    main_paths = [p for p in paths if p.name != "gateway, pcap capture on"]
    await rounds(main_paths, templates, args, smsc_pid)
    print_rounds(main_paths, f"SMPP throughput: {load}; {mix}; {args.rounds} rounds in turns", args)
    print("ratio = median msg/s / direct median   (target >= 0.5 with the rules on)")
    print_budget(direct)
    for p in main_paths[1:]:
        others = ", ".join(f"{status:#x}: {n}" for status, n in sorted(p.tally.statuses.items()) if status)
        print(f"{p.name}: refused by status {{{others}}}")
    if args.receipts:
        print("receipts relayed: " + ", ".join(f"{p.name} {p.tally.receipts}" for p in main_paths))
    one = main_paths[1]
    for other in main_paths[2:]:
        ratio = statistics.median(other.rates) / statistics.median(one.rates)
        cpu = statistics.median(other.cpu_per_msg) / statistics.median(one.cpu_per_msg)
        print(f"{other.name} / {one.name}: throughput {ratio:.2f}, CPU per message {cpu:.2f}")

    if args.latency_messages:
        lat_direct = await paced(smsc_port, direct.creds, templates, args.rate, args.latency_messages)
        lat_gw = await paced(main_paths[1].port, gw_creds, templates, args.rate, args.latency_messages)
        print()
        print(f"Latency at a paced {args.rate:.0f} msg/s, {args.latency_messages} messages")
        print(f"{'path':<34}{'p50 ms':>10}{'p99 ms':>10}")
        for name, tally in (("direct", lat_direct), (main_paths[1].name, lat_gw)):
            print(f"{name:<34}{pct(tally.latencies, 0.5):>10.3f}{pct(tally.latencies, 0.99):>10.3f}")
        added50 = pct(lat_gw.latencies, 0.5) - pct(lat_direct.latencies, 0.5)
        added99 = pct(lat_gw.latencies, 0.99) - pct(lat_direct.latencies, 0.99)
        print(f"{'added by the gateway':<34}{added50:>10.3f}{added99:>10.3f}")
        if lat_gw.latencies:
            print(f"(mean through the gateway {statistics.fmean(lat_gw.latencies) * 1000:.3f} ms)")

    capturing = [p for p in paths if p.name == "gateway, pcap capture on"]
    if capturing:
        plain = Path_(main_paths[1].name, main_paths[1].port, gw_creds, main_paths[1].gateway)
        pair = [plain, capturing[0]]
        await rounds(pair, templates, args, smsc_pid)
        print()
        print_rounds(pair, "Cost of pcap capture: the one-process gateway without and with it, in turns", args)
        cpu = statistics.median(capturing[0].cpu_per_msg) / statistics.median(plain.cpu_per_msg)
        print(f"CPU per message capture on/off: {cpu:.3f}")
    print(f"load average at end: {loadavg()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--messages", type=int, default=60000, help="answers per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="turns of the paths")
    parser.add_argument("--rules", choices=("on", "off"), default="on", help="the shipped rule packs (default: on)")
    parser.add_argument("--fraud-share", type=float, default=0.1, help="share of fraud texts with the rules on")
    parser.add_argument(
        "--workers", type=int, default=2, help="also run the gateway as this many workers (1: the lone process only)"
    )
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--latency-messages", type=int, default=6000, help="0: no latency measure")
    parser.add_argument("--pcap-cost", action="store_true", help="also run a gateway that captures to a pcap file")
    parser.add_argument(
        "--receipts", action="store_true", help="ask a delivery receipt for every message (relayed back, answered)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run the one-process gateway of another source tree (e.g. an export of an earlier commit), "
        "in turns with the others",
    )
    args = parser.parse_args()

    if args.rules == "on":
        templates, frauds = corpus_mix(args.fraud_share, receipts=args.receipts)
        print(f"message mix: {len(templates)} texts of corpus/dev.jsonl in turn, {frauds} of them fraud")
    else:
        templates = bank_notice(args.receipts)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")

    directory = tempfile.mkdtemp(prefix="afgw-bench-")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    smsc = ctx.Process(target=smsc_process, args=(ports, stop), daemon=True)
    smsc.start()
    gateways: list[GatewayProcess] = []
    try:
        smsc_port = ports.get(timeout=30)
        with private_redis(directory) as redis_port:
            specs: list[tuple[str, int, str | None, Path]] = [("gateway, 1 process", 1, None, ROOT)]
            if args.workers > 1:
                specs.append((f"gateway, {args.workers} workers", args.workers, None, ROOT))
            if args.baseline is not None:
                specs.append((f"{args.baseline.name}, 1 process", 1, None, args.baseline.resolve()))
            if args.pcap_cost:
                specs.append(("gateway, pcap capture on", 1, os.path.join(directory, "bench.pcap"), ROOT))
            for k, (name, workers, pcap, tree) in enumerate(specs):
                config, port = gateway_config(args, smsc_port, redis_port, f"gw{k}", directory)
                gateways.append(start_gateway(config, port, name, workers, pcap, tree))
            try:
                _run(lambda: measure(args, smsc_port, smsc.pid or 0, gateways, templates))
            finally:
                for gw in gateways:
                    gw.stop()
            if args.pcap_cost:
                pcap = os.path.join(directory, "bench.pcap")
                size = sum(os.path.getsize(p) for p in (pcap, pcap + ".1") if os.path.exists(p))
                print(f"({size / 1e6:.1f} MB of pcap written)")
    finally:
        stop.set()
        smsc.join(5)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
