"""Campaign detection: one fraud template sent to many people, caught as a whole.

Every SMS from the network side (``mt``) that is not from an allow-listed sender and has wording enough
(rules.campaign) is fingerprinted and shown to the store, which finds the cluster of near-duplicates it
belongs to and counts the cluster's distinct recipients within the window. When a cluster reaches the
configured number of recipients and at least one copy carried the rules' evidence (a verdict other
than pass or label: the rules caught one variant), the store opens a campaign: ``campaign.opened`` is
emitted and audited, and from that copy on every copy carries the campaign id in its decision, its
log line, a ``campaign.copy`` event, and (when refused) its ``sms.blocked`` event and audit record; it
has the configured points added to the campaign category's score (held to the pack's thresholds again)
and its action raised to at least the configured one, so the variants the rules miss are caught with
the ones they catch.

Allow-listed means: the sender's number starts with one of ``allow_senders``, or an allow rule of the
packs (``action: pass`` with ``overrides``) matched the message, so bank notices and the centre's own
reminders, however many people they reach, neither feed a cluster nor open a campaign.

The state lives in the store (gateway/store: memory, SQLite, Redis), so that gateways on one Redis
count one campaign together; its size is bounded there (``max_clusters``, and each cluster holds one
sketch, eight band keys and at most ``recipients`` short hashes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.events import EventSink
from gateway.logs import get_logger
from gateway.store import AuditRecord, CampaignCopy, CampaignPolicy, CampaignSeen, Store, recipient_key
from gateway.store.base import StateStore
from rules import Action, Engine, Verdict
from rules.campaign import Sketch, boosted, sketch_folded
from rules.homophones import fold_squeezed

log = get_logger("afgw.campaigns")

#: Verdicts that count as the rules' evidence against a copy.
_EVIDENCE = frozenset({Action.TAG, Action.WARN, Action.BLOCK})


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """``rules.campaigns`` in gateway.yaml: when near-duplicates make a campaign, and what it does."""

    #: Seconds within which the distinct recipients are counted (and an idle campaign is kept).
    window: float = 3600.0
    #: Distinct recipients of near-duplicates that open a campaign.
    recipients: int = 20
    #: Least estimated similarity of a message to a cluster's first one, 0..1.
    similarity: float = 0.4
    #: Points added to the campaign category's score for every copy once the campaign is open.
    score: float = 5.0
    #: The least action for a copy of an open campaign: tag, warn or block; None leaves it to the score.
    action: str | None = "warn"
    #: Open a campaign only when the rules caught at least one copy; False: volume alone opens one.
    needs_evidence: bool = True
    #: The category of a campaign opened on volume alone.
    category: str = "other"
    #: Sender number prefixes whose messages are never counted (bank and carrier service numbers ...).
    allow_senders: tuple[str, ...] = ()
    #: Clusters the store keeps at most.
    max_clusters: int = 100_000

    @property
    def policy(self) -> CampaignPolicy:
        return CampaignPolicy(
            window=self.window,
            recipients=self.recipients,
            similarity=self.similarity,
            needs_evidence=self.needs_evidence,
            max_clusters=self.max_clusters,
        )


@dataclass(frozen=True, slots=True)
class Judged:
    """A verdict after campaign detection: raised for a copy of an open campaign, with its id."""

    verdict: Verdict
    campaign: str | None = None


class CampaignTracker:
    def __init__(
        self,
        store: StateStore,
        engine: Engine,
        config: CampaignConfig,
        *,
        events: EventSink,
        audit: Store | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.engine = engine
        self.config = config
        self.policy = config.policy
        self.events = events
        self.audit = audit if audit is not None else store
        self.clock = clock
        self._least = Action(config.action) if config.action else None
        self._allow_rules: tuple[object, frozenset[str]] = (None, frozenset())

    def fingerprint(self, source: str, squeezed: str, verdict: Verdict) -> Sketch | None:
        """The sketch of a message that campaign detection counts, from its squeezed view; None for
        allow-listed senders, messages an allow rule let by, and texts with too little wording."""
        if source.startswith(self.config.allow_senders) and self.config.allow_senders:
            return None
        if verdict.rules and not self._allow_ids().isdisjoint(verdict.rules):
            return None
        return sketch_folded(fold_squeezed(squeezed))

    async def judge(self, found: Sketch, source: str, recipients: tuple[str, ...], verdict: Verdict) -> Judged:
        """Count the copy; its verdict raised when its campaign is open (and ``campaign.copy`` emitted)."""
        evidence = (verdict.category or self.config.category) if verdict.action in _EVIDENCE else ""
        now = self.clock()
        copy = CampaignCopy(found.hex, found.bands, tuple(recipient_key(r) for r in recipients), evidence, now)
        seen = await self.store.campaign_sighting(copy, self.policy)
        if seen.campaign is None:
            return Judged(verdict)
        if seen.opened:
            self._opened(seen, now)
        category = seen.category or self.config.category
        raised = boosted(verdict, category, self.config.score, self._least, self.engine.ruleset.collection.thresholds)
        self.events.emit(
            "campaign.copy",
            campaign=seen.campaign,
            action=raised.action.value,
            category=raised.category,
            rules=list(raised.rules),
            source=source,
            destination=recipients[0] if recipients else "",
        )
        return Judged(raised, seen.campaign)

    def _opened(self, seen: CampaignSeen, now: float) -> None:
        fields = {
            "campaign": seen.campaign,
            "category": seen.category or self.config.category,
            "recipients": seen.recipients,
            "copies": seen.copies,
            "window": self.config.window,
        }
        self.audit.audit(AuditRecord("campaign.opened", now, dict(fields)))
        self.events.emit("campaign.opened", **fields)

    def _allow_ids(self) -> frozenset[str]:
        """The ids of the allow rules of the rule set in use (recomputed when a reload swaps it)."""
        ruleset = self.engine.ruleset
        cached_for, ids = self._allow_rules
        if cached_for is not ruleset:
            ids = frozenset(r.rule.id for r in ruleset.rules if r.rule.action == "pass" and r.rule.overrides)
            self._allow_rules = (ruleset, ids)
        return ids
