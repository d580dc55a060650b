"""The gateway's memory under an INVITE flood spread over many source addresses, all on loopback.

Starts ``afgw run`` (digest authentication on, one user), then sends ``--rate`` INVITEs per second
for ``--seconds`` from ``--sources`` addresses (127.0.1.1, 127.0.1.2, ...), each INVITE a new call
(new Call-ID and branch) to a user of the gateway, none with credentials: what a spoofer or a
scanner sends. It samples the gateway's resident set size (VmRSS) every half second and prints the
size before the flood, its peak, the size when the flood ends, and what came back (responses by
status, and how many datagrams in all: retransmitted answers count too).

``--trusted`` sends from addresses in trusted_peers instead (the trunk side, which does not
authenticate): then every INVITE costs a server transaction, and ``--max-transactions`` is the
bound that holds memory (503 past it).

``--tree`` runs the gateway from another checkout (for a before/after comparison); its config
uses only keys every version knows, unless --max-transactions is given.

    python bench/sip_flood.py [--rate 2000] [--sources 100] [--seconds 10] [--trusted]
                              [--max-transactions N] [--tree PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.ports import free_udp_tcp_port  # noqa: E402


def gateway_config(port: int, *, sources: int, trusted: bool, max_transactions: int | None) -> str:
    trusted_peers = '["127.0.1.0/24"]' if trusted else '["127.0.0.250"]'
    cap = f"  max_transactions: {max_transactions}\n" if max_transactions is not None else ""
    return f"""\
smpp:
  listen: {{host: 127.0.0.1, port: {free_udp_tcp_port()}}}
  smsc: {{host: 127.0.0.1, port: {free_udp_tcp_port()}}}
sip:
  listen: {{host: 127.0.0.1, udp_port: {port}, tcp_port: {port}}}
  domain: 127.0.0.1
  trusted_peers: {trusted_peers}
{cap}  rate_limit: {{rate: 1000, burst: 1000, hard_limit: 2000, max_sources: {max(sources, 1) * 2}}}
  registrar:
    auth: "on"
    users:
      - {{user: "8613800000001", password: bench-password}}
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Flood(asyncio.DatagramProtocol):
    def __init__(self, counts: collections.Counter[str]) -> None:
        self.counts = counts

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.counts["datagrams"] += 1
        first = data.split(b"\r\n", 1)[0].split(b" ")
        if len(first) > 1 and first[0] == b"SIP/2.0":
            self.counts[first[1].decode(errors="replace")] += 1


def invite(host: str, port: int, gateway: int) -> bytes:
    call_id = secrets.token_hex(8)
    return (
        f"INVITE sip:8613800000001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:8613800000002@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        "To: <sip:8613800000001@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:8613800000002@{host}:{port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def answers(port: int, within: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    counts: collections.Counter[str] = collections.Counter()
    transport, _ = await loop.create_datagram_endpoint(lambda: Flood(counts), local_addr=("127.0.0.1", 0))
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            host, own = transport.get_extra_info("sockname")
            options = invite(host, own, port).replace(b"INVITE", b"OPTIONS")
            transport.sendto(options, ("127.0.0.1", port))
            await asyncio.sleep(0.2)
            if counts["datagrams"]:
                return True
        return False
    finally:
        transport.close()


async def main(args: argparse.Namespace, tree: Path) -> int:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="afgw-flood-") as work:
        port = free_udp_tcp_port()
        config = Path(work) / "gateway.yaml"
        config.write_text(
            gateway_config(port, sources=args.sources, trusted=args.trusted, max_transactions=args.max_transactions)
        )
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, "-m", "gateway.cli", "--log-level", "error", "run", "-c", str(config)]
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=str(tree), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        counts: collections.Counter[str] = collections.Counter()
        transports: list[asyncio.DatagramTransport] = []
        try:
            if not await answers(port):
                raise SystemExit("the gateway did not start")
            await asyncio.sleep(1.0)
            baseline = rss_kib(proc.pid)
            for i in range(args.sources):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                sock.bind((f"127.0.1.{i + 1}", 0))
                transport, _ = await loop.create_datagram_endpoint(lambda: Flood(counts), sock=sock)
                transports.append(transport)
            peak = baseline
            samples: list[tuple[float, int]] = []
            tick = 0.01
            per_tick = args.rate * tick
            sent = 0
            start = loop.time()
            next_sample = start
            while (elapsed := loop.time() - start) < args.seconds:
                due = int(elapsed / tick + 1) * per_tick
                while sent < due:
                    transport = transports[sent % len(transports)]
                    host, own = transport.get_extra_info("sockname")
                    transport.sendto(invite(host, own, port), ("127.0.0.1", port))
                    sent += 1
                if loop.time() >= next_sample:
                    size = rss_kib(proc.pid)
                    samples.append((elapsed, size))
                    peak = max(peak, size)
                    next_sample += 0.5
                await asyncio.sleep(tick)
            at_end = rss_kib(proc.pid)
            peak = max(peak, at_end)
            await asyncio.sleep(2.0)  # what is still answered (retransmissions) after the flood
            after = rss_kib(proc.pid)
        finally:
            for transport in transports:
                transport.close()
            proc.terminate()
            await proc.wait()
    achieved = sent / args.seconds
    side = "trusted (trunk)" if args.trusted else "untrusted (must authenticate)"
    print(f"tree: {tree}")
    print(f"flood: {sent} INVITEs in {args.seconds:g} s ({achieved:.0f}/s) from {args.sources} {side} sources")
    print(f"RSS KiB: before {baseline}, peak {peak}, at end {at_end}, 2 s later {after}")
    growth = peak - baseline
    print(f"growth: {growth} KiB = {growth * 1024 / max(sent, 1):.0f} bytes per INVITE")
    statuses = {k: v for k, v in sorted(counts.items()) if k != "datagrams"}
    back = counts["datagrams"]
    print(f"answers: {statuses}; datagrams back {back} ({back / max(sent, 1):.2f} per INVITE)")
    print("RSS samples (s, KiB): " + ", ".join(f"{t:.1f}:{s}" for t, s in samples))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--trusted", action="store_true")
    parser.add_argument("--max-transactions", type=int, default=None)
    parser.add_argument("--tree", default=None)
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments, Path(arguments.tree).resolve() if arguments.tree else ROOT)))
