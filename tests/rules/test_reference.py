"""The engine's verdicts equal those of a plain reference evaluation, over the whole corpus.

The engine takes shortcuts for speed: it scans only the views the rule set uses, brings up only the rules
whose trigger patterns matched (or whose guarded field has one of its values), takes a rule that one
keyword decides without evaluating it, extracts domains only when a hint says there is one, and caches
verdicts. The reference here takes none of them: it computes every view, scans every database in full,
extracts domains from every text, evaluates every rule of the channel from its selections with the
three-valued evaluator (two-valued here, since every selection is known), reads structural selectors
straight from the message's signals and decides. Any difference is a shortcut that changed a decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rules
from rules import condition as cond
from rules import spec
from rules.compiler import CompiledRule, CompiledTerm, RuleSet
from rules.engine import decide
from rules.homophones import fold_squeezed
from rules.message import DEFAULT_UTC_OFFSET_MINUTES
from rules.model import Term
from rules.normalise import scrub, views
from rules.predicates import Context
from rules.signals import Signals
from tests.rules.helpers import NOW

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
NIGHT = NOW - 8 * 3600  # 02:00 Beijing time, for the night-time rules


@dataclass(frozen=True)
class Channel:
    """The rules of one channel and the velocity keys they read: what the rule set says, gathered once
    for the whole corpus rather than for every message (it is the same for each)."""

    rules: tuple[CompiledRule, ...]
    velocity_by: tuple[str, ...]


def by_channel(rs: RuleSet) -> dict[str, Channel]:
    out = {}
    for channel in spec.MESSAGE_CHANNELS:
        mine = tuple(r for r in rs.rules if channel in r.rule.channels())
        by = {t.term.velocity.by for r in mine for t in _terms(r) if t.term.velocity}
        out[channel] = Channel(mine, tuple(sorted(by)))
    return out


def reference(
    rs: RuleSet, message: rules.Message, velocity: rules.MemoryVelocity, channels: dict[str, Channel]
) -> rules.Verdict:
    """The verdict of ``message`` with nothing skipped, no index and no cache."""
    channel = channels[message.channel]
    channel_rules = channel.rules
    text = scrub(message.text)
    v = views(text)
    data = {
        "raw": v.raw,
        "normalised": v.normalised,
        "squeezed": v.squeezed,
        "homophone": fold_squeezed(v.squeezed),
        "domains": "\n".join(v.domains),
    }
    hits: set[int] = set()
    for view, db in rs.all_databases():
        if data[view]:
            db.scan(data[view].encode(), lambda pattern_id, *_: hits.add(pattern_id))
    now = message.now if message.now is not None else NOW
    keys = {}
    for by in channel.velocity_by:
        keys[by] = f"{message.channel}|{by}|{message.src if by == 'src' else message.dst}"
        velocity.record(keys[by], now)
    minute = int((now + DEFAULT_UTC_OFFSET_MINUTES * 60) // 60) % 1440
    ctx = Context(
        hits,
        message.channel,
        message.src,
        message.dst,
        message.sender_id or "",
        message.origin,
        minute,
        now,
        bool(v.domains),
        velocity,
        keys,
        text,
        v.normalised,
        v.domains,
        message.attestation,
    )

    signals = Signals(v.normalised, message.src, message.origin, v.domains)

    def holds(t: CompiledTerm) -> bool:
        if t.term.field in ("text", "domain") and t.atoms:
            # every value's pattern matched (|all), or any one of them did
            return hits.issuperset(t.atoms) if "all" in t.term.modifiers else not hits.isdisjoint(t.atoms)
        if t.term.field in spec.SIGNALS:
            return signal_holds(t.term, signals)
        return t.predicate(ctx)

    matched = []
    for r in channel_rules:
        values: dict[str, bool | None] = {
            name: any(all(holds(t) for t in alternative) for alternative in sel.alternatives)
            for name, sel in r.selections.items()
        }
        if cond.evaluate3(r.rule.condition, values):
            matched.append(r)
    return decide(matched, rs.collection.thresholds)


SIGNAL_ATTRIBUTES = {
    "url.ip_literal": "ip_literal",
    "url.shortener": "shortener",
    "url.tld_rare": "tld_rare",
    "url.punycode": "punycode",
    "url.brand_lookalike": "lookalikes",
    "contact.handle": "handles",
    "money.amount": "amounts",
    "money.percent": "percents",
    "phone.in_text": "phones",
    "reminder.official": "official_reminder",
}


def signal_holds(term: Term, signals: Signals) -> bool:
    """A structural selector read straight from the message's signals, every family extracted."""
    members = {v.text for v in term.values}
    if term.field == "sender.kind":
        return signals.sender_kind in members
    found = getattr(signals, SIGNAL_ATTRIBUTES[term.field])
    if term.operator == "is":
        return bool(found) == term.flag
    if term.operator == "at_least":
        return any(x >= term.number for x in found)
    if term.operator == "brand":
        return bool(members & set(signals.lookalikes))
    assert term.operator == "kind"
    return any(kind in members for kind, _ in signals.handles)


def _terms(r: CompiledRule) -> Iterator[CompiledTerm]:
    for sel in r.selections.values():
        for alternative in sel.alternatives:
            yield from alternative


def corpus_messages() -> list[rules.Message]:
    out = []
    for name in ("dev", "test"):
        for line in (CORPUS / f"{name}.jsonl").read_text("utf-8").splitlines():
            row = json.loads(line)
            out.append(rules.message_from_mapping(row))
    return out


def inline_test_messages(rs: RuleSet) -> list[rules.Message]:
    return [case.message for r in rs.rules for case in r.rule.tests]


ODD = [
    "",
    "\ud800 lone surrogate 安全账户",
    "安\u200b全\u200d账\u2060户 h t t p : / / 1 2 3 . 4 5 . 6 7 . 8 9 / x",
    "ＡＢＣ１２３ 點擊 bank-cn[.]top 領取 +V: abc123456 ¥5000 百分之30 13912345678",
    "【国家反诈中心】谨防冒充客服退款诈骗，切勿点击陌生链接",
]


#: Scored rules on every structural selector (the shipped packs may not use them all), with thresholds,
#: so that the signals' hints, required expressions and the sender-kind index are held to the reference.
SIGNALS_PACK = """\
scoring:
  default: {tag: 3, warn: 5, block: 8}
rules:
"""
SIGNAL_SELECTORS = [
    "url.ip_literal: true",
    "url.shortener: true",
    "url.tld_rare: true",
    "url.punycode: true",
    "url.brand_lookalike: true",
    "url.brand_lookalike|brand: [icbc, alipay]",
    "contact.handle: true",
    "contact.handle: false",
    "contact.handle|kind: [qq, telegram]",
    "money.amount|at_least: 1000",
    "money.percent|at_least: 10",
    "phone.in_text: true",
    "phone.in_text: false",
    "sender.kind: [virtual_operator, international]",
    "sender.kind: mobile",
    "reminder.official: true",
    "reminder.official: false",
]


@pytest.fixture(scope="module")
def with_signals(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    lines = [SIGNALS_PACK.rstrip("\n")]
    for n, selector in enumerate(SIGNAL_SELECTORS):
        lines += [
            f"  - id: signal.r{n}",
            f"    title: signal {n}",
            "    category: other",
            "    channel: sms",
            f"    score: {n % 5 - 1}",
            "    detection:",
            f"      sel: {{{selector}}}",
            "      condition: sel",
        ]
    path = tmp_path_factory.mktemp("signals") / "signals.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return rules.build([rules.DEFAULT_PACKS, path])


@pytest.mark.parametrize("now", [NOW, NIGHT], ids=["day", "night"])
def test_engine_verdicts_equal_the_reference_over_the_corpus(packs: RuleSet, now: float) -> None:
    _compare(packs, now)


def test_with_every_structural_selector_too(with_signals: RuleSet) -> None:
    _compare(with_signals, NOW)


def _compare(packs: RuleSet, now: float) -> None:
    messages = corpus_messages() + inline_test_messages(packs)
    messages += [
        rules.Message("sms", src, "13800000001", text, origin)
        for text in ODD
        for src, origin in (("17012345678", "domestic"), ("+85212345678", "international"), ("10690000001", "domestic"))
    ]
    messages += [rules.Message("call", "+85212345678", "13800000001", "", "international")] * 3
    engine = rules.Engine(packs, velocity=rules.MemoryVelocity())
    velocity = rules.MemoryVelocity()
    channels = by_channel(packs)
    differences = []
    for message in messages:
        message = message.at(now if message.now is None else message.now)
        got = engine.evaluate(message)
        want = reference(packs, message, velocity, channels)
        if got != want:
            differences.append(f"{message.as_dict()}\n  engine:    {got}\n  reference: {want}")
    assert len(messages) > 4000
    assert not differences, f"{len(differences)} of {len(messages)} differ; first:\n" + "\n".join(differences[:3])
