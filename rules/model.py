"""Loaded rules: typed, validated, every reference resolved, every value with its source location."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.condition import Expr
from rules.message import Message
from rules.yaml_source import Location


@dataclass(frozen=True, slots=True)
class Value:
    """One value of a selector, with where it was written (in the rule, or in the shared list it came from)."""

    text: str
    location: Location
    list_name: str | None = None


@dataclass(frozen=True, slots=True)
class Velocity:
    by: str  # "src" or "dst"
    count: int
    within: float


@dataclass(frozen=True, slots=True)
class Term:
    """One ``field|operator|modifiers: value`` entry of a selection."""

    key: str
    field: str
    operator: str
    modifiers: frozenset[str]
    location: Location
    values: tuple[Value, ...] = ()
    #: For operators that take one argument: exists (bool), time between ((start, end) minutes), velocity.
    flag: bool = False
    minutes: tuple[int, int] = (0, 0)
    velocity: Velocity | None = None
    #: For ``at_least``.
    number: float = 0.0

    @property
    def view(self) -> str:
        if self.field == "domain":
            return "domains"
        if self.field != "text":
            return "fields"
        for view in ("raw", "squeezed", "homophone"):
            if view in self.modifiers:
                return view
        return "normalised"


@dataclass(frozen=True, slots=True)
class Selection:
    """Any alternative must hold; within an alternative, every term must."""

    name: str
    alternatives: tuple[tuple[Term, ...], ...]
    location: Location


@dataclass(frozen=True, slots=True)
class TestCase:
    expect_match: bool
    message: Message
    location: Location
    index: int
    repeat: int = 1
    interval: float = 1.0
    expect_action: str | None = None

    @property
    def label(self) -> str:
        return f"{'match' if self.expect_match else 'no_match'}[{self.index}]"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score totals at which a category's evidence tags, warns or blocks (None: that decision is not reached)."""

    tag: float | None = None
    warn: float | None = None
    block: float | None = None
    location: Location | None = None

    def action(self, total: float) -> str | None:
        """The strongest decision ``total`` reaches, or None."""
        for name in ("block", "warn", "tag"):
            limit = getattr(self, name)
            if limit is not None and total >= limit:
                return name
        return None


#: The action of a rule that only carries a score: it decides nothing alone.
SCORE_ONLY = "score"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    category: str
    channel: str
    action: str
    selections: Mapping[str, Selection]
    condition: Expr
    condition_text: str
    location: Location
    risk: str | None = None
    description: str = ""
    status: str = "experimental"
    author: str = ""
    template: str | None = None
    label: str | None = None
    dissuade: bool = False
    overrides: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tests: tuple[TestCase, ...] = ()
    #: Evidence points for the rule's category (None: the rule acts by its action alone).
    score: float | None = None
    score_location: Location | None = None

    def channels(self) -> tuple[str, ...]:
        return ("sms", "call") if self.channel == "both" else (self.channel,)


@dataclass(frozen=True)
class RuleCollection:
    """Every rule of a set of files, in load order (files sorted by path, rules in file order)."""

    rules: tuple[Rule, ...]
    macros: Mapping[str, Selection] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    #: Per category (or ``default``): the thresholds its score total is held to.
    scoring: Mapping[str, Thresholds] = field(default_factory=dict)

    def thresholds(self, category: str) -> Thresholds | None:
        return self.scoring.get(category) or self.scoring.get("default")
