"""``afgw case open|list|show|close|stats``: the operator's view of dissuasion cases.

Every command works on the store that gateway.yaml names (``-c``), the same one a running gateway
uses, so an operator may run them beside it. ``open`` goes through the store exactly as the engine
does (one open case per subscriber: a second ``open`` updates it), due at once, so the engine's next
look at due cases makes the first attempt. ``close`` ends a case: a closed case is never due, so the
engine stops warning. Both are published as events (``case.opened``, ``case.updated``,
``case.closed``) to the configured event log and broker. A fault (unknown case, a case already
closed, a bad number, an unreadable configuration) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.dissuasion.engine import desk_step
from gateway.dissuasion.opener import CaseOpener
from gateway.dissuasion.triggers import Trigger
from gateway.store.base import CLOSED, ESCALATED, OPEN, TIERS, Case, StateStore, UnknownCase

NUMBER = re.compile(r"\+?[0-9]{3,20}")
STATE_ORDER = (OPEN, "handled", "escalated", CLOSED)


class CaseCommandError(Exception):
    """What the operator got wrong or what cannot be done, in one line."""


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Register ``afgw case ...`` on the ``afgw`` subcommand parsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="config/gateway.yaml", help="gateway.yaml naming the store")
    case = sub.add_parser("case", help="open, list, show, close and count dissuasion cases", parents=list(parents))
    commands = case.add_subparsers(dest="case_command", required=True)

    opening = commands.add_parser("open", help="open a case (or update the subscriber's open one)", parents=[common])
    opening.add_argument("subscriber", metavar="SUBSCRIBER", help="the person at risk, e.g. 8613800000001")
    opening.add_argument("--tier", choices=TIERS, required=True)
    opening.add_argument("--fraud-type", required=True, help="e.g. 冒充公检法 or police_impersonation")
    opening.add_argument(
        "--family", action="append", default=[], metavar="NUMBER", help="a family contact (亲情号); repeatable"
    )
    opening.add_argument("--note", default="", help="why; the event's detail")
    opening.set_defaults(func=cmd)

    listing = commands.add_parser("list", help="list cases (open ones unless --state says otherwise)", parents=[common])
    listing.add_argument("--state", choices=(*STATE_ORDER, "all"), default=OPEN)
    listing.add_argument("--json", action="store_true", help="one JSON array of cases")
    listing.set_defaults(func=cmd)

    show = commands.add_parser("show", help="one case with its whole timeline", parents=[common])
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd)

    close = commands.add_parser("close", help="close a case: no further attempts", parents=[common])
    close.add_argument("id", metavar="ID")
    close.add_argument("--outcome", required=True, help="what became of it, e.g. 'family confirmed, no transfer'")
    close.add_argument(
        "--operator",
        default=_login_name(),
        help="who closes it, one word, kept with the case and in the event (default: your login name)",
    )
    close.set_defaults(func=cmd)

    stats = commands.add_parser("stats", help="cases by state and tier, median attempts", parents=[common])
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd)


def cmd(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    from gateway.config import ConfigError, load

    try:
        config = load(args.config)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    try:
        out = asyncio.run(_run(args, config, clock))
    except CaseCommandError as exc:
        print(f"afgw case {args.case_command}: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


async def _run(args: argparse.Namespace, config: Any, clock: Callable[[], float]) -> str:
    from redis.exceptions import RedisError

    from gateway.app import build_store

    unreachable = (OSError, RedisError, sqlite3.Error)
    try:
        store = build_store(config)
    except unreachable as exc:
        raise CaseCommandError(f"cannot open the store: {exc}") from None
    try:
        handler = {"open": _open, "list": _list, "show": _show, "close": _close, "stats": _stats}[args.case_command]
        return await handler(args, config, store, clock())
    except unreachable as exc:
        raise CaseCommandError(f"cannot reach the store: {exc}") from None
    finally:
        with contextlib.suppress(*unreachable):
            await store.close()


async def _open(args: argparse.Namespace, config: Any, store: StateStore, now: float) -> str:
    for number in (args.subscriber, *args.family):
        if not NUMBER.fullmatch(number):
            raise CaseCommandError(f"{number!r} is not a phone number (digits, optional +)")
    if not args.fraud_type.strip():
        raise CaseCommandError("--fraud-type must not be empty")
    said = _Said()
    trigger = Trigger(
        subscriber=args.subscriber,
        tier=args.tier,
        fraud_type=args.fraud_type,
        source="operator",
        family=tuple(dict.fromkeys(args.family)),
        detail=args.note,
    )
    result = await CaseOpener(store, said).open(trigger, now)
    assert result is not None  # an operator's trigger never expires
    case, opened = result
    for name, fields in said.events:
        await _publish(config, name, now, **fields)
    verb = "opened" if opened else "updated (the subscriber already had this open case)"
    return f"case {case.id} {verb}: {case.subscriber}, tier {case.tier}, {', '.join(case.fraud_types)}"


class _Said:
    """Keeps the events the opener emits, to publish them once the command is done with the store."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, name: str, /, **fields: Any) -> None:
        self.events.append((name, fields))


async def _list(args: argparse.Namespace, config: Any, store: StateStore, now: float) -> str:
    cases = await store.open_cases() if args.state == OPEN else await store.all_cases()
    if args.state not in (OPEN, "all"):
        cases = [c for c in cases if c.state == args.state]
    if args.json:
        return json.dumps([_doc(c) for c in cases], ensure_ascii=False)
    if not cases:
        return f"no {'' if args.state == 'all' else args.state + ' '}cases"
    rows: list[tuple[str, ...]] = [
        ("ID", "SUBSCRIBER", "STATE", "TIER", "ATTEMPTS", "OPENED", "NEXT DUE", "FRAUD TYPES")
    ]
    rows += [
        (
            c.id,
            c.subscriber,
            c.state,
            c.tier,
            str(c.attempts),
            _when(c.opened_at),
            _when(c.due_at) if c.due_at is not None else "-",
            ", ".join(c.fraud_types),
        )
        for c in cases
    ]
    return _table(rows)


async def _show(args: argparse.Namespace, config: Any, store: StateStore, now: float) -> str:
    case = await _case(store, args.id)
    if args.json:
        return json.dumps(_doc(case), ensure_ascii=False)
    lines = [
        f"case {case.id}: {case.subscriber}",
        f"  state: {case.state}   tier: {case.tier}   attempts: {case.attempts}",
        f"  fraud types: {', '.join(case.fraud_types) or '-'}",
        f"  family contacts: {', '.join(case.family) or '-'}",
        f"  opened: {_when(case.opened_at)}   next due: {_when(case.due_at) if case.due_at is not None else '-'}",
        "  timeline:",
    ]
    lines += [f"    {_when(t.at)}  {t.event:<15} {t.detail}".rstrip() for t in case.transitions]
    return "\n".join(lines)


async def _close(args: argparse.Namespace, config: Any, store: StateStore, now: float) -> str:
    case = await _case(store, args.id)
    if case.state not in (OPEN, ESCALATED):
        raise CaseCommandError(f"case {case.id} is already {case.state}")
    if not args.outcome.strip():
        raise CaseCommandError("--outcome must say what became of the case")
    said = _Said()
    try:
        # The console's step: the same store change and the same case.closed event, whoever closes it.
        closed = await desk_step(store, said, case.id, CLOSED, now, args.operator, args.outcome)
    except ValueError as exc:  # closed by the engine or another operator since it was read
        raise CaseCommandError(str(exc)) from None
    for name, fields in said.events:
        await _publish(config, name, now, **fields)
    return f"case {closed.id} closed after {closed.attempts} attempt(s): {args.outcome}"


async def _stats(args: argparse.Namespace, config: Any, store: StateStore, now: float) -> str:
    cases = await store.all_cases()
    by_state = Counter(c.state for c in cases)
    by_tier = Counter(c.tier for c in cases)
    grid = Counter((c.state, c.tier) for c in cases)
    handled = [c.attempts for c in cases if c.state == "handled"]
    doc: dict[str, Any] = {
        "cases": len(cases),
        "by_state": {s: by_state[s] for s in STATE_ORDER},
        "by_tier": {t: by_tier[t] for t in TIERS},
        "by_state_and_tier": {s: {t: grid[(s, t)] for t in TIERS} for s in STATE_ORDER},
        "median_attempts": statistics.median(c.attempts for c in cases) if cases else None,
        "median_attempts_to_handle": statistics.median(handled) if handled else None,
    }
    if args.json:
        return json.dumps(doc)
    rows: list[tuple[str, ...]] = [("STATE", *TIERS, "ALL")]
    rows += [(s, *(str(grid[(s, t)]) for t in TIERS), str(by_state[s])) for s in STATE_ORDER]
    rows.append(("all", *(str(by_tier[t]) for t in TIERS), str(len(cases))))
    median, to_handle = doc["median_attempts"], doc["median_attempts_to_handle"]
    return "\n".join(
        [
            _table(rows),
            f"median attempts: {'-' if median is None else median}",
            f"median attempts until handled: {'-' if to_handle is None else to_handle}",
        ]
    )


async def _case(store: StateStore, case_id: str) -> Case:
    try:
        return await store.get_case(case_id.strip())
    except UnknownCase:
        raise CaseCommandError(f"no case {case_id!r}") from None


def _login_name() -> str:
    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        return "operator"
    return "".join(name.split()) or "operator"


def _doc(case: Case) -> dict[str, Any]:
    doc = case.to_doc()
    doc["transitions"] = [{"event": t.event, "at": t.at, "detail": t.detail} for t in case.transitions]
    return doc


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


async def _publish(config: Any, name: str, now: float, **fields: Any) -> None:
    """The event, to the configured event log and broker; a broker that cannot be reached is said,
    not fatal: the case itself is already in the store."""
    from gateway.events.jsonl import JsonlEvents
    from gateway.events.wire import event_json

    events = config.events
    if events.jsonl is not None:
        j = events.jsonl
        log = JsonlEvents(j.path, max_bytes=j.max_bytes, keep=j.keep, fsync_every=j.fsync_every, clock=lambda: now)
        log.emit(name, **fields)
        log.close()
    if events.mqtt is not None:
        import aiomqtt

        m = events.mqtt
        try:
            async with aiomqtt.Client(
                m.host,
                m.port,
                identifier=f"{m.client_id}-case-cli",
                username=m.username or None,
                password=m.password or None,
                timeout=5.0,
            ) as client:
                topic = f"{m.topic_prefix.rstrip('/')}/{name}"
                await client.publish(topic, event_json(name, now, fields, m.client_id), qos=1, timeout=5.0)
        except (aiomqtt.MqttError, OSError) as exc:
            print(f"afgw case: the event {name} was not published (broker: {exc})", file=sys.stderr)
