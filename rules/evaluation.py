"""Measuring a rule set on a labelled corpus: catch rate, ham blocked and touched, precision and recall.

A corpus is JSON Lines, one labelled message per line::

    {"text": "...", "from": "...", "to": "...", "channel": "sms", "label": "fraud", "category": "loan"}

``text``, ``label`` (``fraud`` or ``ham``) and ``category`` are required; ``from``, ``to``, ``channel``
(default sms), ``origin``, ``sender_id``, ``attestation``, ``now`` and ``tags`` (a list of strings, e.g. the evasion a
variant uses) are optional; any other key, and any line that is not such an object, is an error reported
as ``FILE:LINE: message``, because a misspelt key would otherwise silently change the figures.

What counts:

- a fraud message is **caught** when the verdict is ``block`` or ``warn`` (what the recipient notices);
- a ham message is **blocked** when the verdict is ``block`` and **touched** when it is anything but
  ``pass`` (a tag or a label also changes what is delivered);
- precision, recall and F1 treat "caught" as the positive prediction, over the whole corpus; per
  category, the verdict's category (the category of the rule that decided) is the predicted one, so a
  corpus whose categories use the rule categories' names gets a meaningful per-category table too.

Every message is evaluated on its own, with fresh velocity counters and at the time it names (or a fixed
time), so that the figures do not depend on the order of the lines or on the wall clock.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import spec
from rules.engine import Action, Engine, Verdict
from rules.message import DEFAULT_TEST_NOW, Message, parse_time
from rules.velocity import MemoryVelocity

LABELS = ("fraud", "ham")
REQUIRED_KEYS = ("text", "label", "category")
OPTIONAL_KEYS = ("from", "to", "channel", "origin", "sender_id", "attestation", "now", "tags")
CAUGHT = frozenset({Action.BLOCK, Action.WARN})
#: The confusion table's column for a message whose verdict is not block or warn.
NOT_CAUGHT = "(not caught)"


class CorpusError(ValueError):
    """A corpus line that is not a labelled message; ``str()`` is ``FILE:LINE: message``."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Sample:
    message: Message
    label: str
    category: str
    path: str
    line: int
    tags: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse_line(data: Any, path: str, line: int) -> Sample:
    """One corpus line (already decoded from JSON) as a Sample; CorpusError names what is wrong."""

    def fail(message: str) -> CorpusError:
        return CorpusError(path, line, message)

    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        known = ", ".join((*REQUIRED_KEYS, *OPTIONAL_KEYS))
        raise fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} (known: {known})")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise fail(f"missing {', '.join(map(repr, missing))}")
    for key in ("text", "category", "from", "to", "sender_id"):
        if key in data and not isinstance(data[key], str):
            raise fail(f"{key!r} must be a string, not {type(data[key]).__name__}")
    if data["label"] not in LABELS:
        raise fail(f"'label' must be fraud or ham, not {data['label']!r}")
    if not data["category"]:
        raise fail("'category' must not be empty")
    channel = data.get("channel", "sms")
    if channel not in spec.MESSAGE_CHANNELS:
        raise fail(f"'channel' must be one of {', '.join(spec.MESSAGE_CHANNELS)}, not {channel!r}")
    origin = data.get("origin", "domestic")
    if origin not in spec.ORIGINS:
        raise fail(f"'origin' must be one of {', '.join(spec.ORIGINS)}, not {origin!r}")
    attestation = data.get("attestation", "")
    if attestation not in (*spec.ATTESTATIONS, ""):
        raise fail(f"'attestation' must be one of {', '.join(spec.ATTESTATIONS)} or empty, not {attestation!r}")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("'tags' must be a list of strings")
    now = DEFAULT_TEST_NOW
    if data.get("now") is not None:
        try:
            now = parse_time(data["now"])
        except ValueError as exc:
            raise fail(f"'now': {exc}") from None
    message = Message(
        channel=channel,
        src=data.get("from", ""),
        dst=data.get("to", ""),
        text=data["text"],
        origin=origin,
        sender_id=data.get("sender_id"),
        now=now,
        attestation=attestation,
    )
    return Sample(message, data["label"], data["category"], path, line, tuple(tags))


def read_corpus(lines: Iterable[str], path: str) -> list[Sample]:
    """Every labelled message of a JSON Lines corpus (blank lines skipped); the first bad line raises."""
    samples = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CorpusError(path, number, f"not JSON: {exc}") from None
        samples.append(parse_line(data, path, number))
    return samples


# --- figures ------------------------------------------------------------------------------------------


def ratio(part: int, whole: int) -> float:
    """``part / whole``; NaN when there is nothing to divide (shown as ``-``, never as a perfect score)."""
    return part / whole if whole else math.nan


def f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        return math.nan if math.isnan(precision) or math.isnan(recall) else 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True, slots=True)
class Outcome:
    sample: Sample
    verdict: Verdict

    @property
    def caught(self) -> bool:
        return self.verdict.action in CAUGHT

    @property
    def blocked(self) -> bool:
        return self.verdict.action is Action.BLOCK

    @property
    def touched(self) -> bool:
        return self.verdict.action is not Action.PASS

    @property
    def predicted(self) -> str:
        """The confusion table's column: the deciding rule's category, when the message was caught."""
        return (self.verdict.category or "other") if self.caught else NOT_CAUGHT


@dataclass(frozen=True, slots=True)
class CategoryFigures:
    category: str
    label: str
    total: int
    caught: int
    blocked: int
    touched: int
    #: Messages of any category whose verdict named this category, and those of them that are this one.
    predicted: int
    predicted_right: int

    @property
    def catch_rate(self) -> float:
        return ratio(self.caught, self.total)

    @property
    def blocked_rate(self) -> float:
        return ratio(self.blocked, self.total)

    @property
    def touched_rate(self) -> float:
        return ratio(self.touched, self.total)

    @property
    def precision(self) -> float:
        return ratio(self.predicted_right, self.predicted)

    @property
    def recall(self) -> float:
        return ratio(self.predicted_right, self.total)

    @property
    def f1(self) -> float:
        return f1(self.precision, self.recall)


@dataclass
class Report:
    outcomes: list[Outcome]
    categories: list[CategoryFigures] = field(default_factory=list)
    #: (true category, predicted column) -> count.
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (tag, label) -> (total, caught or touched).
    tags: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fraud = [o for o in self.outcomes if o.sample.label == "fraud"]
        self.ham = [o for o in self.outcomes if o.sample.label == "ham"]
        self.confusion = Counter((o.sample.category, o.predicted) for o in self.outcomes)
        predicted = Counter(o.predicted for o in self.outcomes if o.caught)
        right = Counter(o.predicted for o in self.outcomes if o.caught and o.predicted == o.sample.category)
        by_category: dict[tuple[str, str], list[Outcome]] = {}
        for o in self.outcomes:
            by_category.setdefault((o.sample.label, o.sample.category), []).append(o)
        self.categories = [
            CategoryFigures(
                category,
                label,
                len(group),
                sum(o.caught for o in group),
                sum(o.blocked for o in group),
                sum(o.touched for o in group),
                predicted[category] if label == "fraud" else 0,
                right[category] if label == "fraud" else 0,
            )
            for (label, category), group in sorted(by_category.items())
        ]
        tags: dict[tuple[str, str], list[Outcome]] = {}
        for o in self.outcomes:
            for tag in o.sample.tags:
                tags.setdefault((tag, o.sample.label), []).append(o)
        self.tags = {
            key: (len(group), sum(o.caught if key[1] == "fraud" else o.touched for o in group))
            for key, group in sorted(tags.items())
        }

    # overall figures
    @property
    def catch_rate(self) -> float:
        return ratio(sum(o.caught for o in self.fraud), len(self.fraud))

    @property
    def ham_blocked(self) -> float:
        return ratio(sum(o.blocked for o in self.ham), len(self.ham))

    @property
    def ham_touched(self) -> float:
        return ratio(sum(o.touched for o in self.ham), len(self.ham))

    @property
    def precision(self) -> float:
        caught = [o for o in self.outcomes if o.caught]
        return ratio(sum(o.sample.label == "fraud" for o in caught), len(caught))

    @property
    def recall(self) -> float:
        return self.catch_rate

    @property
    def f1(self) -> float:
        return f1(self.precision, self.recall)

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.fraud if not o.caught]

    @property
    def false_positives(self) -> list[Outcome]:
        """Ham that was touched, the blocked first."""
        touched = [o for o in self.ham if o.touched]
        return sorted(touched, key=lambda o: not o.blocked)

    def summary(self) -> dict[str, Any]:
        return {
            "messages": len(self.outcomes),
            "fraud": len(self.fraud),
            "ham": len(self.ham),
            "catch_rate": _number(self.catch_rate),
            "ham_blocked": _number(self.ham_blocked),
            "ham_touched": _number(self.ham_touched),
            "precision": _number(self.precision),
            "recall": _number(self.recall),
            "f1": _number(self.f1),
        }


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def evaluate(engine: Engine, samples: Iterable[Sample], progress: Callable[[int], None] | None = None) -> Report:
    """Evaluate every sample; ``progress(n)`` is called after each message."""
    outcomes = []
    for n, sample in enumerate(samples, 1):
        engine.velocity = MemoryVelocity()  # each corpus line is a message of its own
        outcomes.append(Outcome(sample, engine.evaluate(sample.message)))
        if progress is not None:
            progress(n)
    return Report(outcomes)


def contributions(engine: Engine, sample: Sample) -> Verdict:
    """The verdict of ``sample`` with the matches of every rule that contributed (for the report)."""
    engine.velocity = MemoryVelocity()
    return engine.evaluate(sample.message, explain=True)


# --- thresholds ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_catch: float | None = None
    max_ham_blocked: float | None = None
    max_ham_touched: float | None = None
    min_precision: float | None = None
    min_f1: float | None = None
    #: Every fraud category's catch rate must reach this.
    min_category_catch: float | None = None


def failures(report: Report, limits: Thresholds) -> list[str]:
    """Every figure of ``report`` outside ``limits``, as a sentence; a figure that cannot be computed
    (no fraud, no ham) fails its limit, so that an empty corpus cannot pass CI."""
    out = []

    def at_least(name: str, value: float, limit: float | None) -> None:
        if limit is not None and (math.isnan(value) or value < limit):
            out.append(f"{name} {_shown(value)} is below {limit:.2%}")

    def at_most(name: str, value: float, limit: float | None) -> None:
        if limit is not None and (math.isnan(value) or value > limit):
            out.append(f"{name} {_shown(value)} is above {limit:.2%}")

    at_least("catch rate", report.catch_rate, limits.min_catch)
    at_most("ham blocked", report.ham_blocked, limits.max_ham_blocked)
    at_most("ham touched", report.ham_touched, limits.max_ham_touched)
    at_least("precision", report.precision, limits.min_precision)
    at_least("F1", report.f1, limits.min_f1)
    if limits.min_category_catch is not None:
        for c in report.categories:
            if c.label == "fraud":
                at_least(f"catch rate of {c.category}", c.catch_rate, limits.min_category_catch)
    return out


def _shown(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def percent(value: float) -> str:
    """A figure as the report prints it: ``97.25%``, or ``-`` when it cannot be computed."""
    return _shown(value)


def confusion_rows(report: Report) -> tuple[list[str], list[str], Mapping[tuple[str, str], int]]:
    """(row categories: fraud first then ham, column categories with not-caught last, counts)."""
    rows = [c.category for c in report.categories if c.label == "fraud"]
    rows += [c.category for c in report.categories if c.label == "ham" and c.category not in rows]
    columns = sorted({col for _, col in report.confusion if col != NOT_CAUGHT})
    columns.append(NOT_CAUGHT)
    return rows, columns, report.confusion
