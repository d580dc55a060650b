"""The gateway's own view of who is at risk: a score per subscriber that grows with what was aimed at
them and fades with time (docs/dissuasion.md explains it with a worked example).

Each sighting (one SMS or one call to the subscriber, with the rules' verdict on it) is worth points:
a warned or blocked SMS, a call the rules flagged, a call from a number on the centre's list, any
contact from an international number, and a bonus when a rule that matched says ``dissuade: true``
(or is named, by id or category, in ``dissuasion.scoring.feed``). The score halves every
``half_life`` seconds without news. When a sighting lifts the score across a threshold into a higher
tier than the one it had just before, a trigger at that tier goes to the engine (source ``score``):
a case opens, or the open case's tier rises.

``score`` and ``points`` are pure (no store, no clock); ``RiskScorer`` reads and writes the store's
risk scores around them. Two sightings of one subscriber handled at once by two gateway instances may
each read the older score, so one of them is lost: an under-count of one sighting, never a second
case (the store opens at most one per subscriber).

The sightings that wait in the ``ScoreFeed`` are scored together, in order: one read of every
subscriber's stored score, one write of every score that changed, and then the triggers in the order
of the sightings that crossed; a store with ``get_risks`` and ``set_risks`` (Redis: one round trip
each) does each in one call, any other store one subscriber at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from gateway.dissuasion.triggers import Trigger, TriggerSink
from gateway.logs import get_logger
from gateway.store.base import TIERS, RiskScore
from gateway.tasks import cancel_and_wait

log = get_logger("afgw.dissuasion")

Channel = Literal["sms", "call"]
FLAGGED = frozenset({"tag", "warn", "block"})


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """``dissuasion.scoring`` in gateway.yaml."""

    #: Seconds after which a score without news is worth half.
    half_life: float = 86_400.0
    #: The least score of each tier, lowest tier first.
    thresholds: tuple[tuple[str, float], ...] = (("low", 40.0), ("medium", 70.0), ("high", 100.0))
    sms_warned: float = 20.0
    sms_blocked: float = 30.0
    call_flagged: float = 25.0
    call_listed: float = 40.0
    international: float = 5.0
    dissuade: float = 10.0
    #: Rule ids or categories that count as ``dissuade: true``.
    feed: tuple[str, ...] = ()
    #: Numbers on the anti-fraud centre's list: a call from one of them counts ``call_listed``.
    listed_numbers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sighting:
    """One SMS or call aimed at ``subscriber``, and what the rules made of it."""

    subscriber: str
    channel: Channel
    action: str = "pass"  # pass | tag | warn | block | label (the inspection decision)
    sender: str = ""  # the calling number or the SMS source
    origin: str = "domestic"  # or international
    rules: tuple[str, ...] = ()
    category: str | None = None
    dissuade: bool = False


@dataclass(frozen=True, slots=True)
class Scored:
    value: float
    tier: str | None  # the tier the score is in now
    crossed: str | None  # the tier entered by this sighting, when higher than the one before it
    points: float = 0.0
    reasons: tuple[str, ...] = field(default=())


def decay(value: float, elapsed: float, half_life: float) -> float:
    """``value`` after ``elapsed`` seconds; a clock that went backwards leaves it as it was."""
    return value * math.pow(0.5, max(elapsed, 0.0) / half_life)


def tier_of(value: float, config: ScoringConfig) -> str | None:
    reached = None
    for tier, least in config.thresholds:
        if value >= least:
            reached = tier
    return reached


def points(sighting: Sighting, config: ScoringConfig) -> tuple[float, tuple[str, ...]]:
    """What one sighting is worth, and why (the words the timeline shows)."""
    if not may_score(sighting.channel, sighting.action, sighting.sender, sighting.origin, config):
        return 0.0, ()
    flagged = sighting.action in FLAGGED
    total, reasons = 0.0, list[str]()
    if sighting.channel == "sms" and sighting.action == "block":
        total, reasons = total + config.sms_blocked, [*reasons, "sms blocked"]
    elif sighting.channel == "sms" and sighting.action == "warn":
        total, reasons = total + config.sms_warned, [*reasons, "sms warned"]
    elif sighting.channel == "call" and flagged:
        total, reasons = total + config.call_flagged, [*reasons, "call flagged"]
    if sighting.channel == "call" and sighting.sender and _listed(sighting.sender, config.listed_numbers):
        total, reasons = total + config.call_listed, [*reasons, "listed caller"]
    if sighting.origin == "international":
        total, reasons = total + config.international, [*reasons, "international"]
    # Only a flagged sighting can be fed: most are passes, which need not look at the feed.
    if flagged and (
        sighting.dissuade or any(r in config.feed for r in sighting.rules) or sighting.category in config.feed
    ):
        total, reasons = total + config.dissuade, [*reasons, "dissuade rule"]
    return total, tuple(reasons)


def may_score(channel: str, action: str, sender: str, origin: str, config: ScoringConfig) -> bool:
    """False when a sighting of this channel, action, sender and origin is worth no points, whatever
    else it carries: an unflagged SMS or call from home, from no listed caller (most of them). Asked
    before a sighting is even built."""
    return (
        action in FLAGGED
        or origin == "international"
        or (channel == "call" and bool(sender) and bool(config.listed_numbers))
    )


def _listed(number: str, listed: tuple[str, ...]) -> bool:
    # The centre writes numbers as it pleases (+86..., 0086..., national): compare without the prefixes.
    bare = _national(number)
    return any(_national(n) == bare for n in listed)


def _national(number: str) -> str:
    digits = number.strip().lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    return digits[2:] if digits.startswith("86") and len(digits) > 11 else digits


def score(previous: RiskScore | None, sighting: Sighting, now: float, config: ScoringConfig) -> Scored:
    """The subscriber's score after ``sighting`` at ``now``, and the tier it crossed into, if any."""
    before = decay(previous.value, now - previous.updated_at, config.half_life) if previous else 0.0
    worth, reasons = points(sighting, config)
    value = before + worth
    tier, was = tier_of(value, config), tier_of(before, config)
    crossed = tier if tier is not None and (was is None or TIERS.index(tier) > TIERS.index(was)) else None
    return Scored(value=value, tier=tier, crossed=crossed, points=worth, reasons=reasons)


class RiskStore(Protocol):
    async def get_risk(self, subscriber: str) -> RiskScore | None: ...
    async def set_risk(self, subscriber: str, value: float, now: float) -> None: ...


class BatchRiskStore(RiskStore, Protocol):
    """A store that reads and writes many subscribers' scores in one call each."""

    async def get_risks(self, subscribers: Sequence[str]) -> list[RiskScore | None]: ...
    async def set_risks(self, scores: Sequence[tuple[str, float, float]]) -> None: ...


class RiskScorer:
    """Scores each sighting against the stored score and triggers the engine on a crossing."""

    def __init__(self, store: RiskStore, sink: TriggerSink, config: ScoringConfig | None = None) -> None:
        self.store = store
        self.sink = sink
        self.config = config or ScoringConfig()

    async def observe(self, sighting: Sighting, now: float) -> Scored:
        previous = await self.store.get_risk(sighting.subscriber)
        scored = score(previous, sighting, now, self.config)
        if scored.points <= 0:
            # Nothing new to say: the stored value and its time stay, so the decay runs on from them.
            return scored
        await self.store.set_risk(sighting.subscriber, scored.value, now)
        await self._announce(sighting, scored, now)
        return scored

    async def observe_many(self, sightings: Sequence[tuple[Sighting, float]]) -> list[Scored | Exception]:
        """Score ``sightings`` (each with its time) in order, as ``observe`` one after the other would:
        each subscriber's score read once and written once. The answer of each, or the exception
        that was its alone (its trigger failed); an exception raised is every sighting's."""
        store = self.store
        if not (hasattr(store, "get_risks") and hasattr(store, "set_risks")):
            answers: list[Scored | Exception] = []
            for sighting, now in sightings:
                try:
                    answers.append(await self.observe(sighting, now))
                except Exception as exc:
                    answers.append(exc)
            return answers
        batch = cast(BatchRiskStore, store)
        subscribers = list(dict.fromkeys(sighting.subscriber for sighting, _ in sightings))
        stored = dict(zip(subscribers, await batch.get_risks(subscribers), strict=True))
        written: dict[str, tuple[float, float]] = {}
        scores: list[Scored] = []
        for sighting, now in sightings:
            scored = score(stored[sighting.subscriber], sighting, now, self.config)
            if scored.points > 0:
                stored[sighting.subscriber] = RiskScore(scored.value, now)
                written[sighting.subscriber] = (scored.value, now)
            scores.append(scored)
        if written:
            await batch.set_risks([(subscriber, value, now) for subscriber, (value, now) in written.items()])
        answers = []
        for (sighting, now), scored in zip(sightings, scores, strict=True):
            try:
                if scored.points > 0:
                    await self._announce(sighting, scored, now)
                answers.append(scored)
            except Exception as exc:
                answers.append(exc)
        return answers

    async def _announce(self, sighting: Sighting, scored: Scored, now: float) -> None:
        """The trigger of a sighting that lifted its subscriber's score into a higher tier."""
        if scored.crossed is None:
            return
        detail = f"score {scored.value:.1f}: {', '.join(scored.reasons)}"
        if sighting.rules:
            detail += f" (rules {', '.join(sighting.rules)})"
        log.info("risk.crossed", subscriber=sighting.subscriber, tier=scored.crossed, score=round(scored.value, 1))
        await self.sink.trigger(
            Trigger(
                subscriber=sighting.subscriber,
                tier=scored.crossed,
                fraud_type=sighting.category or "other",
                source="score",
                detail=detail,
            ),
            now,
        )


class ScoreFeed:
    """Sightings from the proxies' hot path to the scorer, without making a message or a call wait.

    ``note`` is synchronous and cheap: a sighting worth no points is dropped at once; the others wait
    in a bounded queue (beyond ``bound`` they are counted in ``dropped``) for one task that scores
    them in order, so a slow store delays scores, never messages.
    """

    def __init__(
        self, scorer: RiskScorer, clock: Callable[[], float], *, bound: int = 10_000, batch: int = 500
    ) -> None:
        self.scorer = scorer
        self._clock = clock
        self.bound = bound
        #: The most sightings scored together.
        self.batch = batch
        self._queue: deque[tuple[Sighting, float]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.scored = self.dropped = self.failed = 0

    def wants(self, channel: str, action: str, sender: str, origin: str) -> bool:
        """Whether a sighting with these may be worth points: one that is not would be dropped by
        ``note``, so the caller need not build it."""
        return may_score(channel, action, sender, origin, self.scorer.config)

    def note(self, sighting: Sighting) -> None:
        if points(sighting, self.scorer.config)[0] <= 0:
            return
        if len(self._queue) >= self.bound:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("risk.sightings_dropped", dropped=self.dropped)
            return
        self._queue.append((sighting, self._clock()))
        self._drained.clear()
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, drain: float = 2.0) -> None:
        if self._queue and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain)
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            queue = self._queue
            if not queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            # Everything noted meanwhile, scored together (the sightings stay queued, and counted
            # against the bound, until they are).
            batch = [queue[i] for i in range(min(len(queue), self.batch))]
            try:
                answers = await self.scorer.observe_many(batch)
            except Exception as exc:
                answers = [exc] * len(batch)
            logged: Exception | None = None
            for (sighting, _at), answer in zip(batch, answers, strict=True):
                if not isinstance(answer, Exception):
                    self.scored += 1
                    continue
                # A store that is briefly away loses these sightings' points, not the gateway; one
                # line for the sightings that one failure cost.
                self.failed += 1
                if answer is not logged:
                    logged = answer
                    count = sum(1 for a in answers if a is answer)
                    log.error("risk.score_failed", subscriber=sighting.subscriber, sightings=count, error=str(answer))
            for _ in batch:
                queue.popleft()
