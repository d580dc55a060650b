"""Suggesting rule scores from a labelled corpus (``afgw rules tune``), off the message path.

The model is a logistic regression over rule hits whose intercept is fixed by the pack's thresholds:
for a message whose rules of category *c* total ``S_c`` points, ``P(fraud) = σ(k_c · (S_c − T_c))``, where
``T_c`` is the score at which category *c* starts to catch (its ``warn`` threshold, else ``block``) and
``k_c = 4 / T_c`` (a quarter of the threshold moves the log-odds by one). A message with evidence in
several categories takes the category nearest to catching it, as the engine does. Fitting the scores
by gradient descent with a small L2 penalty then gives points in the pack's own units: a rule whose
hits are nearly all fraud gets about ``T_c`` or more and acts alone, signals that are fraud only
together get less than ``T_c`` each and reach it together, and a rule that fires mostly on legitimate
messages drops to zero or below. Messages with no rule to tune carry no information about the scores
and are left out.

Only the standard library is used: the corpus is thousands of lines and the rules a few hundred, so
distinct hit patterns (counted once each with their weight) are few and plain Python is fast enough.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rules.engine import Engine
from rules.evaluation import Sample
from rules.model import Rule
from rules.velocity import MemoryVelocity

#: Suggested scores are rounded to this step, so that the diff reads like a person wrote it.
STEP = 0.5
ITERATIONS = 3000
LEARNING_RATE = 0.25
#: The L2 penalty, in messages: it weighs as much as this many messages' worth of evidence, so that a
#: rule seen on a handful of messages moves, and one seen on none stays where it is.
L2 = 0.05


@dataclass(frozen=True, slots=True)
class Suggestion:
    rule: Rule
    current: float | None
    suggested: float
    fraud_hits: int
    ham_hits: int


def candidates(engine: Engine, all_rules: bool) -> list[Rule]:
    """The rules to tune: those with a score, or (``all_rules``) every rule that is not an allow rule."""
    collection = engine.ruleset.collection
    out = []
    for rule in collection.rules:
        if rule.action == "pass" or collection.thresholds(rule.category) is None:
            continue
        if rule.score is not None or all_rules:
            out.append(rule)
    return out


def _threshold(engine: Engine, category: str) -> float:
    limits = engine.ruleset.collection.thresholds(category)
    assert limits is not None  # candidates() keeps only categories with thresholds
    for value in (limits.warn, limits.block, limits.tag):
        if value is not None:
            return value
    raise AssertionError(category)  # pragma: no cover - the format requires one threshold


def hits(engine: Engine, samples: Iterable[Sample], tuned: Sequence[Rule]) -> Counter[tuple[tuple[int, ...], bool]]:
    """(indices of the tuned rules a message matched, is fraud) -> how many messages."""
    index = {rule.id: i for i, rule in enumerate(tuned)}
    out: Counter[tuple[tuple[int, ...], bool]] = Counter()
    for sample in samples:
        engine.velocity = MemoryVelocity()
        verdict = engine.evaluate(sample.message)
        found = tuple(sorted(index[r] for r in verdict.rules if r in index))
        if found:
            out[(found, sample.label == "fraud")] += 1
    return out


def fit(
    patterns: Counter[tuple[tuple[int, ...], bool]],
    categories: Sequence[str],
    thresholds: dict[str, float],
    start: Sequence[float],
) -> list[float]:
    """Scores (one per tuned rule) that maximise the penalised likelihood of the corpus."""
    scores = list(start)
    total = sum(patterns.values()) or 1
    penalty = L2 / total
    slope = {c: 4.0 / t for c, t in thresholds.items()}
    data = [(rules, fraud, count / total) for (rules, fraud), count in patterns.items()]
    for step in range(ITERATIONS):
        # the penalty is on scores in threshold units, so that a pack's choice of scale changes nothing
        grad = [penalty * s / thresholds[c] ** 2 for s, c in zip(scores, categories, strict=True)]
        for rules, fraud, weight in data:
            sums: dict[str, float] = {}
            for i in rules:
                sums[categories[i]] = sums.get(categories[i], 0.0) + scores[i]
            # the category nearest to catching the message speaks for it
            category = max(sums, key=lambda c: slope[c] * (sums[c] - thresholds[c]))
            z = slope[category] * (sums[category] - thresholds[category])
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = weight * (p - (1.0 if fraud else 0.0)) * slope[category]
            for i in rules:
                if categories[i] == category:
                    grad[i] += g
        rate = LEARNING_RATE / math.sqrt(1 + step / 100)
        scale = max(thresholds.values()) ** 2  # step sizes in points, whatever the pack's scale
        scores = [s - rate * scale * g for s, g in zip(scores, grad, strict=True)]
    return scores


def suggest(engine: Engine, samples: Sequence[Sample], all_rules: bool = False) -> list[Suggestion]:
    tuned = candidates(engine, all_rules)
    if not tuned:
        return []
    categories = [r.category for r in tuned]
    thresholds = {c: _threshold(engine, c) for c in set(categories)}
    patterns = hits(engine, samples, tuned)
    start = [r.score if r.score is not None else thresholds[r.category] / 2 for r in tuned]
    fitted = fit(patterns, categories, thresholds, start)
    fraud_hits: Counter[int] = Counter()
    ham_hits: Counter[int] = Counter()
    for (rules, fraud), count in patterns.items():
        for i in rules:
            (fraud_hits if fraud else ham_hits)[i] += count
    out = []
    for i, rule in enumerate(tuned):
        seen = fraud_hits[i] + ham_hits[i]
        value = round(fitted[i] / STEP) * STEP if seen else (rule.score if rule.score is not None else 0.0)
        out.append(Suggestion(rule, rule.score, float(value) + 0.0, fraud_hits[i], ham_hits[i]))
    return out


def _relative(path: str) -> str:
    """``path`` relative to the working directory when it is under it (``patch -p0`` refuses absolute names)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def patch(suggestions: Iterable[Suggestion]) -> str:
    """A unified diff that sets each changed score in the rule files (``patch -p0`` applies it)."""
    by_file: dict[str, list[Suggestion]] = {}
    for s in suggestions:
        if s.current is None or s.suggested != s.current:
            by_file.setdefault(s.rule.location.path, []).append(s)
    out: list[str] = []
    for path, changes in sorted(by_file.items()):
        before = Path(path).read_text("utf-8").splitlines(keepends=True)
        after = list(before)
        inserts: list[tuple[int, str]] = []
        for s in changes:
            shown = f"{s.suggested:g}"
            where = s.rule.score_location
            if where is not None:
                line = after[where.line - 1]
                col = where.column - 1
                m = _NUMBER.match(line, col)
                if m is not None:
                    after[where.line - 1] = line[:col] + shown + line[m.end() :]
                continue
            id_line = before[s.rule.location.line - 1]
            key = id_line.find("id:")
            if key < 0 or "{" in id_line[:key]:
                continue  # a rule written as a flow mapping: left to the author
            inserts.append((s.rule.location.line, " " * key + f"score: {shown}\n"))
        for line_no, text in sorted(inserts, reverse=True):
            after.insert(line_no, text)
        shown = _relative(path)
        out.extend(difflib.unified_diff(before, after, fromfile=shown, tofile=shown))
    return "".join(out)
