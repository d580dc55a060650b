"""The cost per SMS of velocity counters shared in Redis, side by side with the engine's own, in one run.

The traffic is bench/rules_throughput.py's generated SMS (``--messages``); the rules are the shipped
packs plus two SMS velocity rules (by source within a minute and an hour, by destination within ten
minutes), so every message touches two counters and three windows. Printed, best of ``--repeat``, the
measures taken in turn so that the shared machine's load falls on all alike:

- in memory: ``RulesInspector.inspect_sms`` with the engine's own counters (one process counts alone);
- Redis, one at a time: the same with ``RedisVelocity``, each message awaited before the next is sent
  (one round trip per message: the cost a lone, idle ESME sees);
- Redis, ``--burst`` at once: that many messages inspected concurrently, as the proxy does when the
  messages of a loop turn arrive together (one script call for all of them);
- the extra cost per message and the ratio to the in-memory counters, and the counters left in Redis.

Wall time on a loaded machine says little, so each line also gives the CPU time per message of this
process (``time.process_time``) and of the Redis server (``INFO cpu``, used_cpu_user + used_cpu_sys;
only meaningful when nothing else uses that Redis), the best of the repeats for each.

    python bench/velocity_cost.py --redis redis://127.0.0.1:6379/0 [--messages 5000] [--burst 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis

import rules
from bench.rules_throughput import messages
from gateway.inspection import SmsMessage, decide
from gateway.logs import configure
from gateway.rules_hook import RulesInspector
from gateway.store.redis_velocity import RedisVelocity
from protocols.smpp.pdu import SubmitSm

PACK = """rules:
  - {id: b.src-minute, title: b, category: other, risk: low, channel: sms, action: tag,
     detection: {sel: {velocity: {by: src, count: 30, within: 60}}, condition: sel}}
  - {id: b.src-hour, title: b, category: other, risk: low, channel: sms, action: tag,
     detection: {sel: {velocity: {by: src, count: 500, within: 3600}}, condition: sel}}
  - {id: b.dst-burst, title: b, category: other, risk: low, channel: sms, action: tag,
     detection: {sel: {velocity: {by: dst, count: 5, within: 600}}, condition: sel}}
"""


def traffic(count: int) -> list[SmsMessage]:
    out = []
    for m in messages(count):
        pdu = SubmitSm(source_addr=m.src, destination_addr=m.dst)
        out.append(SmsMessage(pdu, direction="mt", system_id="b", source=m.src, destinations=(m.dst,), text=m.text))
    return out


class Clock:
    """Message times 10 ms apart, as in the traffic generator: the windows fill as they would."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True, help="e.g. redis://127.0.0.1:6379/0 (keys under a fresh prefix)")
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    configure(fmt="json", level="error")
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "velocity.yaml"
        pack.write_text(PACK, encoding="utf-8")
        ruleset = rules.build([rules.DEFAULT_PACKS, pack])
    sms = traffic(args.messages)
    n = len(sms)
    loop = asyncio.new_event_loop()
    client = aioredis.Redis.from_url(args.redis, decode_responses=True)
    prefix = f"bench{uuid.uuid4().hex[:8]}"

    def inspector(shared: bool) -> RulesInspector:
        engine = rules.Engine(ruleset, clock=Clock())
        out = RulesInspector(engine)
        if shared:
            out.shared_velocity = RedisVelocity(client, prefix, uuid.uuid4().hex[:8])
        return out

    async def one_at_a_time(insp: RulesInspector) -> None:
        for message in sms:
            await decide(insp, message)

    async def in_bursts(insp: RulesInspector) -> None:
        for start in range(0, n, args.burst):
            await asyncio.gather(*(decide(insp, m) for m in sms[start : start + args.burst]))

    async def redis_cpu() -> float:
        info = await client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def timed(
        run: Callable[[RulesInspector], Awaitable[None]], shared: bool
    ) -> Callable[[], tuple[float, float, float]]:
        def measure() -> tuple[float, float, float]:
            insp = inspector(shared)
            server = loop.run_until_complete(redis_cpu())
            cpu, begin = time.process_time(), time.perf_counter()
            loop.run_until_complete(run(insp))
            wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
            return wall, cpu, loop.run_until_complete(redis_cpu()) - server

        return measure

    measures = {
        "in memory (each process alone)": timed(one_at_a_time, False),
        "Redis, one at a time": timed(one_at_a_time, True),
        f"Redis, {args.burst} at once": timed(in_bursts, True),
    }
    for message in sms[:500]:  # warm the caches (normalisation tables, verdicts), and the script
        inspector(False).inspect_sms(message)
    loop.run_until_complete(one_at_a_time(inspector(True)))
    results = {name: (float("inf"),) * 3 for name in measures}
    for _ in range(args.repeat):
        for name, measure in measures.items():
            results[name] = tuple(map(min, results[name], measure()))  # type: ignore[assignment]

    async def counters() -> int:
        return len([key async for key in client.scan_iter(match=prefix + ":vel:*", count=1000)])

    async def drop() -> None:
        async for key in client.scan_iter(match=prefix + ":*", count=1000):
            await client.delete(key)
        await client.aclose()

    keys = loop.run_until_complete(counters())
    loop.run_until_complete(drop())
    loop.close()
    base, base_cpu, _ = results["in memory (each process alone)"]
    print(f"{n} SMS, shipped packs + 3 velocity rules (2 counters, 3 windows a message), best of {args.repeat}")
    print(f"{'':34s} {'wall':>9s}  {'wall/msg':>10s}  {'CPU/msg':>9s}  {'Redis CPU/msg':>13s}")
    for name, (seconds, cpu, server) in results.items():
        extra = "" if seconds == base else f"  (CPU +{(cpu - base_cpu) / n * 1e6:.1f} µs, {cpu / base_cpu:.2f}x)"
        print(
            f"{name:34s} {n / seconds:>5,.0f}/s  {seconds / n * 1e6:7.1f} µs  {cpu / n * 1e6:6.1f} µs"
            f"  {server / n * 1e6:10.1f} µs{extra}"
        )
    print(f"({keys} counters in Redis, each expiring once idle for its largest window)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
