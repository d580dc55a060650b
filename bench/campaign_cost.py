"""The cost of campaign detection per SMS, side by side with the rules alone, in one run.

The traffic is bench/rules_throughput.py's generated SMS (``--messages``, about one in seven fraud),
each to its own recipient, plus a campaign of ``--copies`` templated variants among them; the rules are
the shipped packs. Printed, best of ``--repeat``:

- the rules inspector alone (``RulesInspector.inspect_sms``, what the proxy calls for an SMS);
- the same with campaign detection on, over the memory store and over SQLite (and Redis with
  ``--redis URL``), awaiting each decision as the proxy does;
- the fingerprint alone (``rules.campaign.sketch``: views and sketch) and the sketch from the
  homophone view given (what the inspector adds when it computes the views once for both);
- the extra cost per message, and the ratio to the rules alone.

    python bench/campaign_cost.py [--messages 20000] [--copies 2000] [--repeat 3] [--cpu 0] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rules
from bench.rules_throughput import messages
from gateway.campaigns import CampaignConfig, CampaignTracker
from gateway.events import MemoryEvents
from gateway.inspection import SmsMessage, decide
from gateway.logs import configure
from gateway.rules_hook import RulesInspector
from gateway.store import MemoryStore, SqliteStore
from protocols.smpp.pdu import SubmitSm
from rules.campaign import sketch, sketch_folded
from rules.homophones import fold_squeezed
from rules.normalise import normalise, squeeze_normalised

TEMPLATE = "{name}您好，您名下的{item}会员即将自动续费{amount}元，如需取消请于今日联系专员{handle}办理{tail}"


def traffic(count: int, copies: int, seed: int = 5) -> list[SmsMessage]:
    rnd = random.Random(seed)
    texts = [m.text for m in messages(count)]
    for _ in range(copies):
        texts.insert(
            rnd.randrange(len(texts)),
            TEMPLATE.format(
                name=rnd.choice("王李张刘陈杨黄赵") + rnd.choice("伟娜芳洋静磊敏强"),
                item=rnd.choice(("抖音", "快手", "京东", "美团")),
                amount=rnd.randint(99, 999),
                handle=f"vx:kf{rnd.randint(100, 999)}",
                tail=rnd.choice(("，逾期不予处理", "，过期不候", "退款，需开启屏幕共享配合操作")),
            ),
        )
    out = []
    for i, text in enumerate(texts):
        source, destination = f"170{rnd.randint(10**7, 10**8 - 1)}", f"139{i:08d}"
        pdu = SubmitSm(source_addr=source, destination_addr=destination)
        message = SmsMessage(pdu, direction="mt", system_id="b", source=source, destinations=(destination,), text=text)
        out.append(message)
    return out


def best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


async def _drop_keys(store: Any) -> None:
    async for key in store.redis.scan_iter(match=store.p + "*", count=1000):
        await store.redis.delete(key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--log-level", default="error", help="log lines cost as much as the rest: off by default")
    parser.add_argument("--redis", default=None, help="also measure over this Redis, e.g. redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    configure(fmt="json", level=args.log_level)
    engine = rules.Engine(rules.build([rules.DEFAULT_PACKS]))
    sms = traffic(args.messages, args.copies)
    n = len(sms)
    texts = [m.text for m in sms]
    folded = [fold_squeezed(squeeze_normalised(normalise(t))) for t in texts]
    plain = RulesInspector(engine)
    for message in sms[:2000]:  # warm the caches (normalisation tables, verdicts)
        plain.inspect_sms(message)

    def run_plain() -> None:
        for message in sms:
            plain.inspect_sms(message)

    def tracked(store: Any) -> RulesInspector:
        inspector = RulesInspector(engine)
        config = CampaignConfig(recipients=20, max_clusters=100_000)
        inspector.campaigns = CampaignTracker(store, engine, config, events=MemoryEvents(), clock=Clock())
        return inspector

    async def run_async(inspector: RulesInspector) -> None:
        for message in sms:
            await decide(inspector, message)

    loop = asyncio.new_event_loop()
    tmp = tempfile.TemporaryDirectory()
    stores: list[tuple[str, Callable[[], Any]]] = [
        ("with campaigns, memory store", MemoryStore),
        ("with campaigns, SQLite store", lambda: SqliteStore(Path(tmp.name) / f"{time.monotonic_ns()}.db")),
    ]
    if args.redis:
        from gateway.store.redis_store import RedisStore

        # a prefix of its own each run, deleted afterwards
        url = args.redis
        stores.append(("with campaigns, Redis store", lambda: RedisStore(url, prefix=f"bench{uuid.uuid4().hex}")))

    def run_tracked(make: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            store = make()
            inspector = tracked(store)
            loop.run_until_complete(run_async(inspector))
            notes[make] = loop.run_until_complete(store.campaign_clusters()), inspector
            if hasattr(store, "redis"):
                loop.run_until_complete(_drop_keys(store))
            loop.run_until_complete(store.close())

        return run

    notes: dict[Callable[[], Any], tuple[int, RulesInspector]] = {}
    measures: dict[str, Callable[[], None]] = {"rules inspector alone": run_plain}
    for name, make in stores:
        measures[name] = run_tracked(make)
    measures["fingerprint alone (views and sketch)"] = lambda: [sketch(t) for t in texts] and None
    measures["sketch alone, homophone view given"] = lambda: [sketch_folded(f) for f in folded] and None
    # Round-robin: each repeat runs every measure once, so that a change in the machine's load between
    # measures (it is shared) does not favour one of them; the best of each is reported.
    results = {name: float("inf") for name in measures}
    for _ in range(args.repeat):
        for name, fn in measures.items():
            results[name] = min(results[name], best(fn, 1))
    loop.close()
    tmp.cleanup()
    for name, make in stores:
        clusters, inspector = notes[make]
        events = inspector.campaigns.events if inspector.campaigns else None
        opened = len(events.named("campaign.opened")) if isinstance(events, MemoryEvents) else 0
        print(f"  ({name}: {clusters} clusters kept, {opened} campaigns opened)")

    base = results["rules inspector alone"]
    print(f"{n} SMS ({args.copies} of them copies of one template), shipped packs, best of {args.repeat}")
    for name, seconds in results.items():
        extra = ""
        if name.startswith("with campaigns"):
            extra = f"  (+{(seconds - base) / n * 1e6:.1f} µs, {seconds / base:.2f}x the rules alone)"
        print(f"{name:40s} {n / seconds:>10,.0f} msg/s  {seconds / n * 1e6:6.1f} µs/msg{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
