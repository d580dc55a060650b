"""The dissuasion engine at scale: 100,000 open cases, 1,000 attempts falling due each second.

For each backend (SQLite in a temporary directory, then Redis on a redis-server of its own on a free
loopback port), in a fresh process: ``--cases`` triggers go through the real ``DissuasionEngine``
(one case per subscriber, medium risk, no family contact), with due times spread so that ``--rate``
of them fall due each second one after another. Then the engine's own loop (``DissuasionEngine.run``,
the configuration the gateway ships with unless ``--poll`` or ``--batch`` say otherwise) drives them
on the wall clock for ``--seconds`` seconds: each due case is claimed with a lease, warned by flash
and robot call, its attempt recorded and the next one scheduled 5 minutes on, its events written to
a JSON Lines event log and logged, as in the gateway.

The flash sender and the robot caller are stubs that only note the time they were called: the SMPP
and SIP sides are measured by smpp_throughput.py and sip_cps.py. The lag of an attempt is the time
between its case's due time and the call of the flash sender. Printed side by side, with the targets:

- resident memory of this process (the engine, its store client, the event sinks) once the cases are
  open, and its peak by the end; for Redis, the server's own resident memory, separately;
- the lag p50, p99 and max over the attempts due in the measured stretch (one not made by its end
  counts as missed);
- the attempts made per second, and the CPU time this process spent per attempt while driving them
  (on a machine shared with other work, the figure that moves least);
- the longest pause of the garbage collector while driving them, and the machine's load average
  (1 min) at the start and at the end of each run, so that a reader can judge the noise.

Once the cases are open the garbage collector is tuned as ``afgw run`` tunes it once it has started
(``gateway.app.tune_gc``: what exists is frozen, collections are rarer): the objects made while
opening 100,000 cases are not scanned again at every full collection.

CPU per attempt without the wall clock (``--count``): the same engine and store drive ``--cases``
cases on a simulated clock whose sleeps return at once (a machine with nothing else to do), so
the CPU time per attempt is measured apart from the lag; ``--against DIR`` does it for this
checkout and another one, in turns, best of ``--repeat``, and prints the ratio. For instruction
counts, which the machine's load does not change, run the count under callgrind; only the driving
is counted, not the opening of the cases::

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        python bench/dissuasion_cases.py --count sqlite --cases 2000 [--root DIR]

    python bench/dissuasion_cases.py [--cases 100000] [--rate 1000] [--seconds 20] [--quick]
    python bench/dissuasion_cases.py --against ../main [--cases 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

# the checkout whose gateway is measured: this one, or the one a --count is told to load
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv[:-1] else str(Path(__file__).resolve().parents[1]),
)

from gateway import logs
from gateway.app import tune_gc
from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig, DissuasionEngine
from gateway.dissuasion.triggers import Trigger
from gateway.events import FanOut, JsonlEvents, MemoryEvents
from gateway.store import SqliteStore
from gateway.tasks import cancel_and_wait

TARGET_RSS_MB = 200.0
TARGET_P99_MS = 100.0
#: Due times start this far after the cases are open and the engine runs, so that it starts idle.
LEAD_S = 1.0
#: After the stretch's last due time, how long the engine may still take before the rest count as missed.
GRACE_S = 2.0


def run_loop(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """On uvloop where it is installed, as ``afgw run`` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def status_mb(pid: int | str, field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subscriber(i: int) -> str:
    return f"86{i:011d}"


class Schedule:
    """Case ``i`` (subscriber ``86`` + i) falls due at ``start + i / rate``: the due time of any attempt
    is known from its recipient, with nothing kept per case."""

    def __init__(self, start: float, rate: float, measured: int) -> None:
        self.start = start
        self.rate = rate
        self.measured = measured  # cases 0 .. measured-1 fall due in the measured stretch
        self.end = start + measured / rate

    def due(self, i: int) -> float:
        return self.start + i / self.rate


class FlashRecorder:
    """Notes when each first attempt of a measured case was sent; sends nothing."""

    def __init__(self, schedule: Schedule, clock: Callable[[], float]) -> None:
        self.schedule = schedule
        self.clock = clock
        self.sent_at = array("d", [float("nan")]) * schedule.measured
        self.calls = 0

    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        self.calls += 1
        i = int(recipient[2:])
        if i < self.schedule.measured and self.sent_at[i] != self.sent_at[i]:  # NaN: not sent yet
            self.sent_at[i] = self.clock()
        return format(self.calls, "x")


class CallRecorder:
    def __init__(self) -> None:
        self.calls = 0

    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        self.calls += 1


async def open_cases(engine: DissuasionEngine, schedule: Schedule, n: int, batch: int = 200) -> None:
    """Through the engine, ``batch`` triggers at a time."""
    for first in range(0, n, batch):
        await asyncio.gather(
            *(
                engine.trigger(
                    Trigger(subscriber(i), "medium", "刷单返利", "centre", reference=f"b{i}"), schedule.due(i)
                )
                for i in range(first, min(n, first + batch))
            )
        )


async def measure(backend: str, args: argparse.Namespace, tmp: Path, redis_url: str = "") -> dict[str, Any]:
    store: Any
    if backend == "sqlite":
        store = SqliteStore(tmp / "afgw.db")
    else:
        from gateway.store.redis_store import RedisStore

        store = RedisStore(redis_url, prefix="bench")
    jsonl = JsonlEvents(tmp / "events.jsonl")
    events = FanOut(MemoryEvents(), jsonl)
    # Due times a day on: opening the cases takes what it takes, then the engine's clock is set so
    # that the first falls due LEAD_S after it starts.
    schedule = Schedule(time.time() + 86400.0, args.rate, min(args.cases, int(args.rate * args.seconds)))
    offset = 0.0

    def clock() -> float:
        return time.time() + offset

    flash = FlashRecorder(schedule, clock)
    caller = CallRecorder()
    engine = DissuasionEngine(store, events, flash, caller, templates.load(templates.DEFAULT_PATH), config(args))
    opening = time.perf_counter()
    await open_cases(engine, schedule, args.cases)
    open_s = time.perf_counter() - opening
    rss_open = status_mb("self", "VmRSS")
    tune_gc()
    pauses = GcPauses()

    offset = schedule.start - time.time() - LEAD_S
    stop = asyncio.Event()
    load_start = os.getloadavg()[0]
    cpu = time.process_time()
    driver = asyncio.get_running_loop().create_task(engine.run(clock, stop=stop))
    while clock() < schedule.end + GRACE_S and not driver.done():
        await asyncio.sleep(0.1)
    stop.set()
    await cancel_and_wait(driver)
    cpu = time.process_time() - cpu
    pauses.stop()

    sent = [(at, i) for i, at in enumerate(flash.sent_at) if at == at]
    lags = sorted(at - schedule.due(i) for at, i in sent)
    first, last = (min(at for at, _ in sent), max(at for at, _ in sent)) if sent else (0.0, 0.0)
    result: dict[str, Any] = {
        "backend": backend,
        "cases": args.cases,
        "open_s": open_s,
        "rss_open_mb": rss_open,
        "rss_peak_mb": status_mb("self", "VmHWM"),
        "due": schedule.measured,
        "made": len(lags),
        "calls": caller.calls,
        "rate": (len(sent) - 1) / (last - first) if last > first else 0.0,
        "load_start": load_start,
        "load": os.getloadavg()[0],
        "cpu_ms": cpu / flash.calls * 1000 if flash.calls else float("nan"),
        "gc_max_ms": pauses.longest * 1000,
        "p50_ms": pct(lags, 0.50),
        "p95_ms": pct(lags, 0.95),
        "p99_ms": pct(lags, 0.99),
        "max_ms": pct(lags, 1.0),
    }
    if backend == "redis":
        result["server_pid"] = int((await store.redis.info("server"))["process_id"])
    await store.close()
    jsonl.close()
    return result


def config(args: argparse.Namespace) -> DissuasionConfig:
    """The shipped configuration, but for what the command line says (and no quiet hours: every
    attempt calls, whatever the hour the benchmark runs at)."""
    chosen: dict[str, Any] = {"quiet_hours": None}
    for name in ("poll_interval", "batch", "tick_gap"):
        value = getattr(args, name)
        # a checkout measured with --root may predate a setting: it then runs as it always did
        if value is not None and name in DissuasionConfig.__dataclass_fields__:
            chosen[name] = value
    return DissuasionConfig(**chosen)


class GcPauses:
    """The longest collection of the garbage collector while it is installed."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._began)

    def stop(self) -> None:
        gc.callbacks.remove(self._note)


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))] * 1000


def child(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    # Every case event is logged at info, as ``afgw run`` does by default; to nowhere, so that only its
    # cost shows.
    logs.configure("json", args.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    with tempfile.TemporaryDirectory() as where:
        tmp = Path(where)
        if backend == "sqlite":
            return dict(run_loop(lambda: measure(backend, args, tmp)))
        server = shutil.which("redis-server")
        if server is None:
            return {"backend": backend, "error": "skipped: redis-server is not installed"}
        port = free_port()
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", where],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            result = dict(run_loop(lambda: measure(backend, args, tmp, f"redis://127.0.0.1:{port}/0")))
            result["server_rss_mb"] = status_mb(proc.pid, "VmRSS")
            result.pop("server_pid", None)
            return result
        finally:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"dissuasion engine: {args.cases:,} open cases, {args.rate:,.0f} attempts due/s for {args.seconds:g} s;"
        f" flash sender and robot caller are stubs (SMPP and SIP are measured by smpp_throughput.py and sip_cps.py)"
    )
    print(f"targets: resident memory <= {TARGET_RSS_MB:.0f} MB, lag p99 <= {TARGET_P99_MS:.0f} ms")
    head = (
        "backend",
        "open",
        "RSS open",
        "RSS peak",
        "server RSS",
        "due",
        "made",
        "/s",
        "CPU/att",
        "GC max",
        "p50",
        "p95",
        "p99",
        "max",
    )
    print("{:8} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}".format(*head))
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:8} {r['error']}")
            continue
        server = f"{r['server_rss_mb']:.0f} MB" if "server_rss_mb" in r else "-"
        print(
            f"{r['backend']:8} {r['open_s']:6.1f}s {r['rss_open_mb']:6.0f} MB {r['rss_peak_mb']:6.0f} MB {server:>10}"
            f" {r['due']:7,} {r['made']:7,} {r['rate']:7,.0f} {r['cpu_ms']:6.3f}ms {r['gc_max_ms']:6.1f}ms"
            f" {r['p50_ms']:7.1f}ms {r['p95_ms']:7.1f}ms {r['p99_ms']:7.1f}ms {r['max_ms']:7.1f}ms"
        )
    loads = ", ".join(f"{r['backend']} {r['load_start']:.1f} -> {r['load']:.1f}" for r in rows if "load" in r)
    print(f"load average (1 min) at the start and the end of each run, on {os.cpu_count()} CPUs: {loads}")
    for r in rows:
        if "error" in r:
            continue
        missed = r["due"] - r["made"]
        print(
            f"{r['backend']}: memory {r['rss_peak_mb']:.0f} MB (target {TARGET_RSS_MB:.0f}) "
            f"{verdict(r['rss_peak_mb'] <= TARGET_RSS_MB)}; lag p99 {r['p99_ms']:.1f} ms (target {TARGET_P99_MS:.0f}) "
            f"{verdict(r['p99_ms'] <= TARGET_P99_MS and missed == 0)}"
            + (f"; {missed:,} due attempts not made by the end" if missed else "")
        )


def count(args: argparse.Namespace) -> dict[str, Any]:
    """``--count``: open ``--cases`` cases falling due ``--rate`` a second, then drive them all on a
    simulated clock (each sleep moves it on and returns at once); the CPU time of the driving alone."""
    logs.configure("json", args.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as where:
        tmp = Path(where)
        store: Any
        if args.count == "sqlite":
            store = SqliteStore(tmp / "afgw.db")
        else:
            from gateway.store.redis_store import RedisStore

            store = RedisStore(args.redis_url, prefix=f"bench{os.getpid()}")
        jsonl = JsonlEvents(tmp / "events.jsonl")
        schedule = Schedule(1.9e9, args.rate, args.cases)
        now = [schedule.start - LEAD_S]
        flash = FlashRecorder(schedule, lambda: now[0])
        engine = DissuasionEngine(
            store,
            FanOut(MemoryEvents(), jsonl),
            flash,
            CallRecorder(),
            templates.load(templates.DEFAULT_PATH),
            config(args),
        )
        # Few at a time: under callgrind, 200 at once would wait on the Redis connection pool too long.
        loop.run_until_complete(open_cases(engine, schedule, args.cases, batch=16))
        tune_gc()
        stop = asyncio.Event()

        async def sleep(seconds: float) -> None:
            now[0] += max(seconds, 1e-6)
            if now[0] > schedule.end + 1.0:
                stop.set()

        async def drive() -> None:
            await engine.run(lambda: now[0], sleep, stop)

        cpu = time.process_time()
        # Inside functools.reduce, a C function nothing else here calls: callgrind's --toggle-collect
        # counts the driving alone.
        functools.reduce(lambda _, step: loop.run_until_complete(step), [drive()], None)
        cpu = time.process_time() - cpu
        if args.count == "redis":
            loop.run_until_complete(forget_keys(store.redis, store.p))
        loop.run_until_complete(store.close())
        jsonl.close()
    loop.close()
    return {"attempts": flash.calls, "cpu_ms": cpu / max(flash.calls, 1) * 1000}


async def forget_keys(redis: Any, prefix: str) -> None:
    """The keys a ``--count redis`` wrote on a shared server, gone."""
    async for key in redis.scan_iter(match=prefix + "*", count=1000):
        await redis.delete(key)


def against(args: argparse.Namespace) -> None:
    """This checkout's CPU per attempt and that of ``--against``, runs taken in turn, best of ``--repeat``."""
    here = Path(__file__).resolve().parents[1]
    other = Path(args.against).resolve()
    print(f"this checkout: {here}\nagainst:       {other}")
    print(f"CPU per attempt on a simulated clock, {args.cases:,} cases due {args.rate:,.0f}/s, best of {args.repeat}")
    print(f"{'backend':8} {'this':>10} {'against':>10} {'ratio':>7}  load (1 min) start -> end")
    for backend in args.backends.split(","):
        best = {"this": float("inf"), "against": float("inf")}
        load_start = os.getloadavg()[0]
        for _ in range(args.repeat):
            for side, root in (("this", here), ("against", other)):
                command = [sys.executable, __file__, "--count", backend, "--root", str(root)]
                command += ["--cases", str(args.cases), "--rate", str(args.rate), "--redis-url", args.redis_url]
                if args.tick_gap is not None:
                    command += ["--tick-gap", str(args.tick_gap)]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                best[side] = min(best[side], json.loads(out.stdout.strip().splitlines()[-1])["cpu_ms"])
        print(
            f"{backend:8} {best['this']:8.3f}ms {best['against']:8.3f}ms {best['this'] / best['against']:7.2f}"
            f"  {load_start:.1f} -> {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000, help="open cases (default 100,000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="attempts falling due per second (default 1,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured stretch (default 20)")
    parser.add_argument("--poll", type=float, default=None, help="the engine's poll_interval (default: as shipped)")
    parser.add_argument("--batch", type=int, default=None, help="the engine's claim batch (default: as shipped)")
    parser.add_argument("--tick-gap", type=float, default=None, help="the engine's tick_gap (default: as shipped)")
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 cases, 500/s for 2 s")
    parser.add_argument("--count", choices=("sqlite", "redis"), help="CPU per attempt on a simulated clock")
    parser.add_argument("--against", metavar="DIR", help="another checkout to compare CPU per attempt with")
    parser.add_argument("--repeat", type=int, default=3, help="--against: runs of each, the best kept")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="--count redis: the server")
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.poll_interval = args.poll
    if args.quick:
        args.cases, args.rate, args.seconds = 2000, 500.0, 2.0
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    if args.count:
        print(json.dumps(count(args)))
        return
    if args.against:
        against(args)
        return
    rows = []
    for backend in args.backends.split(","):
        command = [sys.executable, __file__, "--child", backend, *sys.argv[1:]]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            rows.append({"backend": backend, "error": f"failed (exit {out.returncode})"})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report(rows, args)


if __name__ == "__main__":
    main()
