"""CPU time the gateway's SMPP relay spends per message, in one process, without the other processes'
noise.

bench/smpp_throughput.py runs the load generator, the SMSC and the gateway as processes of their own
on the machine's cores; their CPU per message moves by a tenth from run to run with how the scheduler
places them, more than most changes to the relay weigh. Here the simulated SMSC, the gateway
(``gateway.app.Gateway``, as ``afgw run`` builds it, its store in memory) and the same pre-encoded load
run in one event loop, one after the other on one core: each round sends ``--messages`` straight to the
SMSC, then as many through the gateway, and the process's CPU time of each is read. The gateway's own
cost per message is the difference; the best of ``--rounds`` prints, with the median.

With ``--callgrind`` (run under ``valgrind --tool=callgrind --instr-atstart=no``, in the directory the
counts are to be written to), instrumentation is switched on for one direct round and one through the
gateway (``callgrind_control``), each is dumped, and the instructions of each print per message, with
the gateway's own: a figure that does not move with the machine's load (start-up, rule compilation
included, runs uninstrumented).

With ``--profile``, one direct round and one through the gateway run under cProfile: the gateway's
own Python-level calls per message (the direct round's subtracted; calls inside compiled modules are not
seen) and the share of its own profiled time by source file. cProfile's cost per call inflates every
figure; the shares say where the interpreter spends the relay's time, not how long it takes.

    python bench/smpp_inprocess.py [--messages 20000] [--rounds 5] [--rules on|off] [--binds 4]
    valgrind --tool=callgrind --instr-atstart=no python bench/smpp_inprocess.py --callgrind --messages 2000
    python bench/smpp_inprocess.py --profile --messages 20000 [--rules off]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smpp_throughput import _run, bank_notice, corpus_mix, free_port, relay_config, saturate  # noqa: E402

from gateway.app import Gateway, tune_gc  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.logs import configure  # noqa: E402
from simulator.smsc import SimulatedSmsc  # noqa: E402


def write_config(args: argparse.Namespace, smsc_port: int, directory: str) -> tuple[str, int]:
    port = free_port()
    doc = relay_config(args, smsc_port, port)
    doc["store"] = {"backend": "memory"}
    path = os.path.join(directory, "gateway.yaml")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)  # JSON is YAML
    return path, port


def callgrind(*command: str) -> None:
    subprocess.run(["callgrind_control", *command, str(os.getpid())], check=True, capture_output=True)


async def measure(args: argparse.Namespace, templates: list[bytes]) -> None:
    smsc = SimulatedSmsc(system_id="afgw", password="secret", keep_messages=False, record=False, window=1000)
    await smsc.start("127.0.0.1", 0)
    with tempfile.TemporaryDirectory(prefix="afgw-bench-") as directory:
        path, port = write_config(args, smsc.port, directory)
        gateway = Gateway(load(path))
        await gateway.start()
        assert gateway.smpp is not None
        await asyncio.wait_for(gateway.smpp.pool.up.wait(), 30)
        tune_gc()  # as afgw run does once it has started
        direct_creds = [("afgw", "secret")] * args.binds
        gw_creds = [(f"bench{i}", "benchpw") for i in range(args.binds)]

        async def straight() -> int:
            _rate, tally = await saturate(smsc.port, direct_creds, templates, args.window, args.messages)
            return tally.ok + tally.refused

        async def through() -> int:
            _rate, tally = await saturate(port, gw_creds, templates, args.window, args.messages)
            refused.append(tally.refused)
            return tally.ok + tally.refused

        refused: list[int] = []
        try:
            for creds, target in ((direct_creds, smsc.port), (gw_creds, port)):
                await saturate(target, creds, templates, args.window, 2000)  # warm-up
            if args.callgrind:
                await counted(straight, through)
            elif args.profile:
                await profiled(straight, through)
            else:
                await timed(args, straight, through)
            print(f"refused by the gateway: {refused[-1]} of {args.messages} in the last round")
        finally:
            await gateway.stop()
            await smsc.stop()


Round = Callable[[], Awaitable[int]]


async def timed(args: argparse.Namespace, straight: Round, through: Round) -> None:
    direct, via, own = [], [], []
    for _ in range(args.rounds):
        t0 = time.process_time()
        n = await straight()
        t1 = time.process_time()
        m = await through()
        t2 = time.process_time()
        direct.append((t1 - t0) / n * 1e6)
        via.append((t2 - t1) / m * 1e6)
        own.append(via[-1] - direct[-1])
    print(f"{'CPU us/msg, one process':<40}{'best':>10}{'median':>10}")
    for name, values in (("straight to the SMSC", direct), ("through the gateway", via), ("the gateway's own", own)):
        print(f"{name:<40}{min(values):>10.2f}{statistics.median(values):>10.2f}")


async def counted(straight: Round, through: Round) -> None:
    callgrind("-i", "on")
    callgrind("-z")
    n = await straight()
    callgrind("-d", "direct")
    m = await through()
    callgrind("-d", "gateway")
    callgrind("-i", "off")
    # Read once counting is off: reading a dump in between would be counted in the next one.
    totals = dump_totals()
    if len(totals) < 2:
        raise SystemExit(
            "--callgrind: no callgrind dump was written; run it under "
            "valgrind --tool=callgrind --instr-atstart=no, from the directory the dumps go to"
        )
    first, second = totals[-2:]
    direct, via = first / n, second / m
    print(f"{'instructions per message (callgrind)':<40}")
    for name, value in (
        ("straight to the SMSC", direct),
        ("through the gateway", via),
        ("the gateway's own", via - direct),
    ):
        print(f"{name:<40}{value:>12,.0f}")


async def profiled(straight: Round, through: Round) -> None:
    rounds = []
    for run in (straight, through):
        profile = cProfile.Profile()
        profile.enable()
        n = await run()
        profile.disable()
        rounds.append(by_file(pstats.Stats(profile), n))
    (direct_calls, direct_time), (via_calls, via_time) = rounds
    # A file the direct round spent more in (the SMSC's and the load's own, by chance) is left out.
    own = {name: t for name in via_time if (t := via_time[name] - direct_time.get(name, 0.0)) > 0}
    total = sum(own.values())
    calls = sum(via_calls.values()) - sum(direct_calls.values())
    print(f"the gateway's own Python-level calls per message (cProfile){calls:>12,.1f}")
    print("share of the gateway's own profiled time, by file")
    for name, value in sorted(own.items(), key=lambda item: -item[1])[:15]:
        print(f"{100 * value / total:>6.1f}%  {name}")


def by_file(stats: pstats.Stats, n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Calls and own time per message by source file; C functions under "builtins"."""
    calls: dict[str, float] = collections.defaultdict(float)
    times: dict[str, float] = collections.defaultdict(float)
    for (path, _line, _name), (_cc, count, own_time, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        name = "builtins" if path == "~" else _short(path)
        calls[name] += count / n
        times[name] += own_time / n
    return calls, times


def _short(path: str) -> str:
    # Installed packages first: the venv may lie inside the checkout.
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0] + " (installed)"
    if path.startswith(str(ROOT)):
        return str(Path(path).relative_to(ROOT))
    stdlib = sysconfig.get_paths()["stdlib"]
    if path.startswith(stdlib):
        return str(Path(path).relative_to(stdlib)) + " (standard library)"
    return path


def dump_totals() -> list[int]:
    """The instruction total of each dump of this process so far (callgrind.out.PID.N in the directory)."""
    totals = []
    for dump in sorted(Path.cwd().glob(f"callgrind.out.{os.getpid()}.*"), key=lambda p: int(p.suffix[1:])):
        with dump.open(encoding="utf-8", errors="replace") as f:
            total = next((int(line.split()[1]) for line in f if line.startswith(("totals:", "summary:"))), None)
        if total is None:
            raise SystemExit(f"{dump}: no totals line")
        totals.append(total)
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--rules", choices=("on", "off"), default="on")
    parser.add_argument("--fraud-share", type=float, default=0.1)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--callgrind", action="store_true", help="running under callgrind: count instructions")
    mode.add_argument("--profile", action="store_true", help="calls per message and time by file (cProfile)")
    args = parser.parse_args()
    configure(level="warning")
    templates = corpus_mix(args.fraud_share)[0] if args.rules == "on" else bank_notice(False)
    python = sys.version.split()[0]
    print(f"{args.messages} submit_sm a round over {args.binds} binds, rules {args.rules}; python {python}")
    _run(lambda: measure(args, templates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
