"""Dissuasion cases at scale: 100,000 open cases, 1,000 of them falling due each second.

For each backend (SQLite, then Redis on a redis-server of its own on a free loopback port), in a
fresh process: open ``--cases`` cases (one per subscriber); ``--rate`` per second of them are due
over ``--seconds`` seconds, the rest later. One driver claims due cases every ``--tick`` seconds
(lease 30 s), records an attempt and schedules the next one 5 minutes on, as the dissuasion loop
will. Printed side by side:

- resident memory of the gateway process after opening the cases and at the end (and, for Redis,
  the server's own ``used_memory_rss``);
- the lag between each case's due time and its claim: p50, p99, max;
- how long opening the cases took.

    python bench/store_cases.py [--cases 100000] [--rate 1000] [--seconds 10] [--tick 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store import SqliteStore


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def open_cases(store: Any, n: int, rate: float, seconds: float, start: float) -> None:
    due_count = int(rate * seconds)
    batch = 200
    for first in range(0, n, batch):
        calls = []
        for i in range(first, min(n, first + batch)):
            # the first rate*seconds cases fall due one after another at ``rate`` per second; the rest
            # are open but due an hour later, as most of a real campaign's cases are at any moment
            due = start + i / rate if i < due_count else start + 3600 + i
            calls.append(store.open_or_update_case(f"86{i:011d}", "medium", "investment", now=time.time(), due_at=due))
        await asyncio.gather(*calls)


async def drive(store: Any, rate: float, seconds: float, tick: float, offset: float) -> list[float]:
    """Claim and attempt due cases until the due window has passed; ``offset`` is added to the wall
    clock (the cases were given due times in the future, so that opening them takes what it takes)."""
    lags: list[float] = []
    end = time.time() + seconds + 2.0
    while time.time() < end:
        now = time.time() + offset
        for case in await store.claim_due("bench", now=now, lease_until=now + 30.0, limit=int(rate)):
            lags.append(time.time() + offset - case.due_at)
            await store.record_attempt(case.id, "bench", now=time.time() + offset, next_due=case.due_at + 300.0)
        await asyncio.sleep(max(0.0, tick - (time.time() + offset - now)))
    return lags


async def run(backend: str, args: argparse.Namespace, where: str) -> dict[str, Any]:
    if backend == "sqlite":
        store: Any = SqliteStore(Path(where) / "afgw.db")
    else:
        from gateway.store.redis_store import RedisStore

        store = RedisStore(where, prefix="bench")
    opened_at = time.perf_counter()
    start = time.time() + 3600 * 24  # due a day on: opening takes what it takes ...
    await open_cases(store, args.cases, args.rate, args.seconds, start)
    open_seconds = time.perf_counter() - opened_at
    rss_open = rss_mb()
    # ... then the driver's clock is set one second before the first due time.
    offset = start - time.time() - 1.0
    lags = await drive(store, args.rate, args.seconds, args.tick, offset)
    result = {
        "backend": backend,
        "open_s": open_seconds,
        "rss_open_mb": rss_open,
        "rss_end_mb": rss_mb(),
        "claimed": len(lags),
        "lags": sorted(lags),
    }
    if backend == "redis":
        info = await store.redis.info("memory")
        result["server_rss_mb"] = info["used_memory_rss"] / 1024 / 1024
    await store.close()
    return result


def child(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "redis":
            server = shutil.which("redis-server")
            if server is None:
                print(json.dumps({"backend": "redis", "error": "redis-server not installed"}))
                return
            port = free_port()
            proc = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            try:
                result = asyncio.run(run(backend, args, f"redis://127.0.0.1:{port}/0"))
            finally:
                proc.kill()
                proc.wait()
        else:
            result = asyncio.run(run(backend, args, tmp))
    print(json.dumps(result))


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tick", type=float, default=0.01)
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    rows = []
    for backend in args.backends.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", backend, *sys.argv[1:]], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.cases:,} open cases, {args.rate:,.0f} due/s for {args.seconds:g} s, tick {args.tick * 1000:g} ms")
    head = ("backend", "open", "RSS open", "RSS end", "server", "claimed", "p50", "p99", "max")
    print("{:8} {:>8} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}".format(*head))
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:8} {r['error']}")
            continue
        server = f"{r['server_rss_mb']:.0f} MB" if "server_rss_mb" in r else "-"
        print(
            f"{r['backend']:8} {r['open_s']:7.1f}s {r['rss_open_mb']:6.0f} MB {r['rss_end_mb']:5.0f} MB {server:>7} "
            f"{r['claimed']:8,} {pct(r['lags'], 0.5):6.1f}ms {pct(r['lags'], 0.99):6.1f}ms {pct(r['lags'], 1.0):6.1f}ms"
        )


if __name__ == "__main__":
    main()
