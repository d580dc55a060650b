"""The engine's verdicts equal those of a plain reference evaluation, over the whole corpus.

The engine takes shortcuts for speed: it scans only the views the rule set uses, brings up only the rules
whose trigger patterns matched (or whose guarded field has one of its values), takes a rule that one
keyword decides without evaluating it, extracts domains only when a hint says there is one, and caches
verdicts. The reference here takes none of them: it computes every view, scans every database in full,
extracts domains from every text, evaluates every rule of the channel from its selections with the
three-valued evaluator (two-valued here, since every selection is known) and decides. Any difference is a
shortcut that changed a decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import rules
from rules import condition as cond
from rules.compiler import CompiledRule, CompiledTerm, Context, RuleSet
from rules.engine import decide
from rules.homophones import fold_squeezed
from rules.message import DEFAULT_UTC_OFFSET_MINUTES
from rules.normalise import scrub, views
from tests.rules.helpers import NOW

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
NIGHT = NOW - 8 * 3600  # 02:00 Beijing time, for the night-time rules


def reference(rs: RuleSet, message: rules.Message, velocity: rules.MemoryVelocity) -> rules.Verdict:
    """The verdict of ``message`` with nothing skipped, no index and no cache."""
    channel_rules = [r for r in rs.rules if message.channel in r.rule.channels()]
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
    for by in sorted({t.term.velocity.by for r in channel_rules for t in _terms(r) if t.term.velocity}):
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
    )

    def holds(t: CompiledTerm) -> bool:
        if t.term.field in ("text", "domain") and t.atoms:
            found = [atom in hits for atom in t.atoms]
            return all(found) if "all" in t.term.modifiers else any(found)
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


@pytest.mark.parametrize("now", [NOW, NIGHT], ids=["day", "night"])
def test_engine_verdicts_equal_the_reference_over_the_corpus(packs: RuleSet, now: float) -> None:
    messages = corpus_messages() + inline_test_messages(packs)
    messages += [
        rules.Message("sms", src, "13800000001", text, origin)
        for text in ODD
        for src, origin in (("17012345678", "domestic"), ("+85212345678", "international"), ("10690000001", "domestic"))
    ]
    messages += [rules.Message("call", "+85212345678", "13800000001", "", "international")] * 3
    engine = rules.Engine(packs, velocity=rules.MemoryVelocity())
    velocity = rules.MemoryVelocity()
    differences = []
    for message in messages:
        message = replace(message, now=now if message.now is None else message.now)
        got = engine.evaluate(message)
        want = reference(packs, message, velocity)
        if got != want:
            differences.append(f"{message.as_dict()}\n  engine:    {got}\n  reference: {want}")
    assert len(messages) > 4000
    assert not differences, f"{len(differences)} of {len(messages)} differ; first:\n" + "\n".join(differences[:3])
