"""The rule engine: one synchronous ``evaluate(message) -> Verdict`` for the gateway's hot path.

Per message: the views its rules need are computed once (normalisation included), each view is scanned
once by its Hyperscan database, and only the rules that can be true are evaluated (those whose patterns
matched, and those, such as origin or velocity rules, that need no pattern). The decision follows a
fixed precedence, block > warn > tag > label > pass; ``action: pass`` rules that match cancel the rules
or categories they name in ``overrides`` (so official senders get through). Rules with a ``score`` add
it to their category's total, which the pack's ``scoring`` thresholds turn into tag, warn or block, so
that weak signals add up while a rule with an action still acts alone.

The rule set is swapped atomically (:meth:`Engine.install`): an evaluation uses the rule set it started
with, and a reload never leaves the engine without rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rules import native_scan, spec
from rules.compiler import ACTION_RANK, VIEWS, CompiledRule, CompiledTerm, Plan, RuleSet
from rules.homophones import fold_squeezed
from rules.message import DEFAULT_UTC_OFFSET_MINUTES, Message
from rules.model import Thresholds
from rules.normalise import Views, domains_hinted, scrub, views
from rules.predicates import Context
from rules.squeeze_fold import normalised_views_utf8, squeeze_fold_utf8
from rules.velocity import MemoryVelocity, Question, VelocityStore
from rules.yaml_source import Location


class Action(StrEnum):
    PASS = "pass"
    TAG = "tag"
    WARN = "warn"
    BLOCK = "block"
    LABEL = "label"


class Risk(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Match:
    """Why a selection held: which value matched where (``view`` fields for from/to/origin/time/velocity)."""

    rule: str
    selection: str
    key: str
    view: str
    pattern: str
    text: str
    start: int | None = None
    end: int | None = None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action = Action.PASS
    risk: Risk = Risk.NONE
    rules: tuple[str, ...] = ()
    category: str | None = None
    template: str | None = None
    dissuade: bool = False
    label: str | None = None
    #: The label of the rule that decided the action, if it has one (a warning names its own reason on
    #: the handset, never a label another rule lent the verdict).
    decided_label: str | None = None
    #: Rules that matched but an allow rule cancelled.
    overridden: tuple[str, ...] = ()
    #: Filled only by ``evaluate(..., explain=True)``.
    matches: tuple[Match, ...] = ()
    #: Every score that counted: (rule id, category, points), in rule-set order.
    contributions: tuple[tuple[str, str, float], ...] = ()
    #: The score total of each category that has contributions, in order of first contribution.
    totals: tuple[tuple[str, float], ...] = ()

    @property
    def score(self) -> float:
        """The total of the verdict's category (or the largest total, when no rule decided alone)."""
        found = dict(self.totals)
        if self.category in found:
            return found[self.category]
        return max(found.values(), default=0.0)

    def scan_record(self) -> dict[str, Any]:
        """The ``afgw rules scan`` output object, keys in the documented order."""
        return {
            "action": self.action.value,
            "risk": self.risk.value,
            "rules": list(self.rules),
            "category": self.category,
        }


PASS = Verdict()
#: Verdicts depend only on which rules matched; campaigns repeat, so they are cached per rule set.
_VERDICT_CACHE = 4096
_ACTIONS = {a.value: a for a in Action}
_RISKS = {r.value: r for r in Risk}
_NO_KEYS: dict[str, str] = {}  # the velocity keys of a plan with no velocity selector (never written)


def _on_match(pattern_id: int, start: int, end: int, flags: int, hits: Any) -> None:
    # compiled, a set is checked for once here and added to directly, not through a method looked up by
    # name; as Python the annotation costs nothing (a cast() would be a call per match)
    seen: set[int] = hits
    seen.add(pattern_id)


#: The callback each scan is given: that of rules/_hs.c where it is built (its databases then add the ids
#: in C, and the binding's call it as a function), else the one above.
_MATCH: Any = native_scan.add_to_set() or _on_match


@dataclass(slots=True)
class _Prepared:
    ctx: Context
    views: dict[str, str]


class _FastPlan:
    """A channel's :class:`Plan` as fields of a compiled class (see :class:`_Fast`)."""

    def __init__(self, plan: Plan) -> None:
        self.always: tuple[int, ...] = plan.always
        self.by_atom: dict[int, tuple[int, ...]] = dict(plan.by_atom)
        self.triggers: frozenset[int] = plan.triggers
        self.by_field_items = plan.by_field_items
        self.velocity_by: tuple[str, ...] = plan.velocity_by


class _Fast:
    """What the message path reads of a rule set, as the fields of a compiled class: a field of a native
    class is read in C, where each slot of :class:`RuleSet` (a Python class) costs an attribute lookup,
    about forty per message. Built once per installed rule set; the verdict cache is the rule set's own."""

    def __init__(self, rs: RuleSet) -> None:
        self.rs = rs
        self.plans: dict[str, _FastPlan] = {channel: _FastPlan(plan) for channel, plan in rs.plans.items()}
        self.db_raw: Any = rs.db_raw
        self.db_normalised: Any = rs.db_normalised
        self.db_squeezed: Any = rs.db_squeezed
        self.db_homophone: Any = rs.db_homophone
        self.db_domains: Any = rs.db_domains
        self.deferred_by_index: tuple[Any, ...] = rs.deferred_by_index
        self.to_normalised: Callable[[str], str] | None = rs.to_normalised
        self.to_squeezed: Callable[[str], str] | None = rs.to_squeezed
        self.to_homophone: Callable[[str], str] | None = rs.to_homophone
        self.needs_domains: bool = rs.needs_domains
        self.url_hints: frozenset[int] = rs.url_hints
        self.hint_obfuscated: int = rs.hint_obfuscated
        self.hint_spaced: int = rs.hint_spaced
        self.uses_time: bool = rs.uses_time
        self.verdicts: dict[tuple[int, ...], Any] = rs.verdicts
        self.thresholds: Callable[[str], Thresholds | None] = rs.collection.thresholds
        self.rules: tuple[CompiledRule, ...] = rs.rules
        self.trivial: list[bool] = [rule.trivial for rule in rs.rules]
        self.deferred: list[tuple[int, ...]] = [rule.deferred for rule in rs.rules]
        self.conditions: list[Callable[[Context], bool]] = [rule.condition for rule in rs.rules]


class Engine:
    """Evaluates messages against the installed rule set.

    ``velocity`` is the counter store (in memory by default); ``clock`` gives the time of a message that
    carries none; ``utc_offset_minutes`` is the local time zone of time-of-day selectors (Beijing time).
    """

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        velocity: VelocityStore | None = None,
        clock: Callable[[], float] = time.time,
        utc_offset_minutes: int = DEFAULT_UTC_OFFSET_MINUTES,
    ) -> None:
        self._fast = _Fast(ruleset)
        self.velocity: VelocityStore = velocity if velocity is not None else MemoryVelocity()
        self.clock = clock
        self.utc_offset = utc_offset_minutes * 60

    @property
    def ruleset(self) -> RuleSet:
        return self._fast.rs

    def install(self, ruleset: RuleSet) -> None:
        """Swap in a new rule set (one reference assignment: atomic for every caller)."""
        self._fast = _Fast(ruleset)

    # --- the hot path -------------------------------------------------------------------------------

    def velocity_questions(self, message: Message) -> tuple[Question, ...]:
        """The counters ``message`` touches and the windows the rules read from each (none: no velocity
        rule for its channel). For a caller whose counters live elsewhere: it records the message, fetches
        the counts and passes them to ``evaluate`` as ``velocity=Counted(...)``."""
        plan = self._fast.rs.plans.get(message.channel)
        if plan is None:
            return ()
        return tuple(Question(_velocity_key(message, by), windows) for by, windows in plan.velocity_windows)

    def evaluate(
        self,
        message: Message,
        *,
        explain: bool = False,
        views: Views | None = None,
        velocity: VelocityStore | None = None,
    ) -> Verdict:
        """The verdict for ``message``; ``explain`` adds where each selection matched.

        ``views`` may carry the message text's views when the caller already has them (a message to many
        destinations is normalised once). ``velocity`` replaces the engine's counters for this message.
        """
        fast = self._fast
        plan = fast.plans.get(message.channel)
        if plan is None:
            return PASS
        hits: set[int] = set()
        text = message.text
        norm: str | None = None
        found: tuple[str, ...] | None = None
        data = _NOTHING_SCANNED
        if views is not None:
            data = _scan_views(fast, views, hits)
            norm, found = views.normalised, views.domains
        elif text:
            try:
                norm, found, data = _scan_text(fast, text, hits)
            except UnicodeEncodeError:  # lone surrogates: no encoder takes them
                text = scrub(text)
                hits.clear()
                norm, found, data = _scan_text(fast, text, hits)
        now = message.now
        if now is None:
            now = self.clock()
        keys: dict[str, str] = _NO_KEYS
        if velocity is None:
            velocity = self.velocity
        if plan.velocity_by:
            keys = {}
            for by in plan.velocity_by:
                counter = keys[by] = _velocity_key(message, by)
                velocity.record(counter, now)
        # the rules that can be true: the pattern-triggered ones, those guarded by a field value, the rest
        candidates: set[int] = set()
        if hits:
            by_atom = plan.by_atom
            for atom in hits & plan.triggers:
                candidates.update(by_atom[atom])
        for read, table in plan.by_field_items:
            guarded = table.get(read(message) or "")
            if guarded:
                candidates.update(guarded)
        if plan.always:
            candidates.update(plan.always)
        if not candidates:
            return PASS
        ctx: Context | None = None
        trivial, deferred, conditions = fast.trivial, fast.deferred, fast.conditions
        indices: list[int] = []
        for i in sorted(candidates):
            if trivial[i]:  # brought up by one of its own patterns, which is all it needs
                indices.append(i)
                continue
            if ctx is None:
                ctx = self._context(message, hits, now, keys, velocity, fast.uses_time, text, norm, found)
            views_first = deferred[i]
            if views_first:
                data = _scan_deferred(fast, views_first, text, norm, data, hits)
            if conditions[i](ctx):
                indices.append(i)
        if not indices:
            return PASS
        key = tuple(indices)
        verdicts = fast.verdicts
        verdict: Verdict | None = verdicts.get(key)
        rules = fast.rules
        if verdict is None:
            verdict = decide([rules[i] for i in indices], fast.thresholds)
            if len(verdicts) >= _VERDICT_CACHE:
                verdicts.clear()
            verdicts[key] = verdict
        if explain:
            if ctx is None:
                ctx = self._context(message, hits, now, keys, velocity, fast.uses_time, text, norm, found)
            _scan_deferred(fast, _ALL_VIEWS, text, norm, data, hits)
            return _with_matches(verdict, fast.rs, [rules[i] for i in indices], ctx, text)
        return verdict

    def _context(
        self,
        message: Message,
        hits: set[int],
        now: float,
        keys: dict[str, str],
        velocity: VelocityStore,
        uses_time: bool,
        text: str,
        normalised: str | None,
        domains: tuple[str, ...] | None,
    ) -> Context:
        return Context(
            hits,
            message.channel,
            message.src,
            message.dst,
            message.sender_id or "",
            message.origin,
            _minute(now, self.utc_offset) if uses_time else 0,
            now,
            bool(domains),
            velocity,
            keys,
            text,
            normalised,
            domains,
            message.attestation,
        )

    def context(self, message: Message) -> Context:
        """The evaluation context of ``message`` without recording it (for diagnostics and tests)."""
        rs = self._fast.rs
        hits: set[int] = set()
        text = scrub(message.text)
        views = _views(text)
        for view, db in rs.all_databases():
            data = views[view]
            if data:
                db.scan(data.encode(), _MATCH, 0, hits)
        now = message.now if message.now is not None else self.clock()
        keys = {by: _velocity_key(message, by) for by in ("src", "dst")}
        return Context(
            hits,
            message.channel,
            message.src,
            message.dst,
            message.sender_id or "",
            message.origin,
            _minute(now, self.utc_offset),
            now,
            bool(views["domains"]),
            self.velocity,
            keys,
            text,
            attestation=message.attestation,
        )


#: What a message's scan leaves for its deferred scans: by view index (see compiler.VIEWS), the bytes its
#: database scanned, None for a view not computed yet, or a view's deferred database already scanned.
Scanned = list[bytes | None]
_NOTHING_SCANNED: Scanned = [b"", b"", b"", b"", b""]  # no text: nothing to scan (never written)
_ALL_VIEWS = tuple(range(len(VIEWS)))
_DONE = b""  # a view with nothing (more) to scan: empty, or its deferred database scanned already


def _scan_text(rs: _Fast, text: str, hits: set[int]) -> tuple[str | None, tuple[str, ...] | None, Scanned]:
    """Scan the views of ``text`` that bring rules up; (normalised text, domains, what was scanned).

    A view is computed only when a database is matched on it (or, for the normalised view, when the
    domains are needed), and scanned once by its database, all patterns of all rules together. The
    arguments of ``scan`` are positional: keywords cost the extension a dictionary and a lookup per call.
    """
    data: Scanned = [None, None, None, None, None]
    if rs.db_raw is not None:
        rs.db_raw.scan(raw := text.encode(), _MATCH, 0, hits)
        data[0] = raw
    to_normalised = rs.to_normalised
    if to_normalised is None:
        return None, None, data
    # in one pass where rules/_views.c is built and the text allows; else in Python, view by view
    fast = normalised_views_utf8(text)
    if fast is not None:
        norm, data[1], data[2], data[3] = fast
    else:
        norm = _views_in_python(rs, to_normalised, text, data)
    normalised_utf8, squeezed_utf8, homophone_utf8 = data[1], data[2], data[3]
    if rs.db_normalised is not None and normalised_utf8 is not None:
        rs.db_normalised.scan(normalised_utf8, _MATCH, 0, hits)
    if rs.db_squeezed is not None and squeezed_utf8 is not None:
        rs.db_squeezed.scan(squeezed_utf8, _MATCH, 0, hits)
    if rs.db_homophone is not None and homophone_utf8 is not None:
        rs.db_homophone.scan(homophone_utf8, _MATCH, 0, hits)
    if not rs.needs_domains:
        return norm, None, data
    if rs.url_hints.isdisjoint(hits):
        data[4] = b""
        return norm, (), data  # the hints find every text that has a domain
    found = domains_hinted(norm, obfuscated=rs.hint_obfuscated in hits, spaced=rs.hint_spaced in hits)
    data[4] = encoded = "\n".join(found).encode()
    if found and rs.db_domains is not None:
        rs.db_domains.scan(encoded, _MATCH, 0, hits)
    return norm, found, data


def _views_in_python(rs: _Fast, to_normalised: Callable[[str], str], text: str, data: Scanned) -> str:
    """The normalised view of ``text``, the encoded views its databases scan put in ``data``: for a text
    the one pass leaves to Python, or where rules/_views.c is not built."""
    norm = to_normalised(text)
    if rs.db_normalised is not None:
        data[1] = norm.encode()
    to_squeezed = rs.to_squeezed
    if to_squeezed is None or (rs.db_squeezed is None and rs.db_homophone is None):
        return norm
    both = squeeze_fold_utf8(norm)  # the squeezed and homophone views in one pass all the same
    if both is not None:
        data[2], data[3] = both
        return norm
    squeezed = to_squeezed(norm)
    data[2] = squeezed.encode()
    if rs.db_homophone is not None and rs.to_homophone is not None:
        data[3] = rs.to_homophone(squeezed).encode()
    return norm


def _scan_deferred(
    rs: _Fast, views: tuple[int, ...], text: str, norm: str | None, data: Scanned, hits: set[int]
) -> Scanned:
    """Scan the deferred databases of ``views`` that are not yet, computing a view first if need be."""
    deferred = rs.deferred_by_index
    for view in views:
        db = deferred[view]
        encoded = data[view]
        if db is None or encoded == _DONE:
            continue
        if encoded is None:
            encoded = _view_bytes(rs, view, text, norm)
        if encoded:
            db.scan(encoded, _MATCH, 0, hits)
        data[view] = _DONE
    return data


def _view_bytes(rs: _Fast, view: int, text: str, norm: str | None) -> bytes:
    """One view of ``text``, encoded: for a view that only deferred patterns use (computed when needed)."""
    name = VIEWS[view]
    if name == "raw":
        return text.encode()
    if norm is None:
        return b""
    if name == "normalised":
        return norm.encode()
    squeezed = rs.to_squeezed(norm) if rs.to_squeezed is not None else ""
    if name == "squeezed":
        return squeezed.encode()
    if name == "homophone" and rs.to_homophone is not None:
        return rs.to_homophone(squeezed).encode()
    return b""  # domains: extracted with the first scan whenever the rule set has a domain pattern


def _scan_views(rs: _Fast, views: Views, hits: set[int]) -> Scanned:
    data = [
        views.raw.encode("utf-8", "replace"),
        views.normalised.encode(),
        views.squeezed.encode(),
        fold_squeezed(views.squeezed).encode(),
        "\n".join(views.domains).encode(),
    ]
    databases = (rs.db_raw, rs.db_normalised, rs.db_squeezed, rs.db_homophone, rs.db_domains)
    for encoded, db in zip(data, databases, strict=True):
        if db is not None and encoded:
            db.scan(encoded, _MATCH, 0, hits)
    return list[bytes | None](data)


def _velocity_key(message: Message, by: str) -> str:
    """The counter of a message's source or destination on its channel (``sms|src|10690``)."""
    return f"{message.channel}|{by}|{message.src if by == 'src' else message.dst}"


def _minute(now: float, utc_offset: float) -> int:
    """Local minute of the day (0..1439); 0 for a time that is not a finite number."""
    try:
        return int((now + utc_offset) // 60) % 1440
    except (ValueError, OverflowError):
        return 0


_SCORED_RISK = {"tag": Risk.LOW, "warn": Risk.MEDIUM, "block": Risk.HIGH}
_RISK_RANK = {Risk.NONE: 0, Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3}


def decide(matched: list[CompiledRule], thresholds: Callable[[str], Thresholds | None] = lambda _: None) -> Verdict:
    """The verdict of the rules that matched (in rule-set order).

    Allow rules cancel first (cancelled rules neither act nor score); then the scores of the rest are
    added up per category and each total held to its category's thresholds; the strongest of the rules'
    own actions and the totals' decisions wins (block > warn > tag > label), a rule before a total at the
    same action and risk.
    """
    cancel_ids: set[str] = set()
    for r in matched:
        if r.rule.overrides:
            cancel_ids.update(r.rule.overrides)
    if cancel_ids:
        effective = [r for r in matched if r.rule.action == "pass" or not ({r.rule.id, r.rule.category} & cancel_ids)]
        overridden = tuple(r.rule.id for r in matched if r not in effective)
    else:
        effective = matched
        overridden = ()
    contributions = tuple((r.rule.id, r.rule.category, r.rule.score) for r in effective if r.rule.score is not None)
    totals: dict[str, float] = {}
    for _, category, points in contributions:
        totals[category] = totals.get(category, 0.0) + points
    # (action rank, risk rank, -1 for a rule / 0 for a total, category, the rules behind it)
    candidates: list[tuple[int, int, int, str, list[CompiledRule]]] = []
    for r in effective:
        if r.action_rank > 0:
            candidates.append((r.action_rank, r.risk_rank, -1, r.rule.category, [r]))
    for category, total in totals.items():
        limits = thresholds(category)
        reached = limits.action(total) if limits is not None else None
        if reached is not None:
            behind = sorted(
                (r for r in effective if r.rule.category == category and (r.rule.score or 0) > 0),
                key=lambda r: -(r.rule.score or 0),
            )
            candidates.append((ACTION_RANK[reached], _RISK_RANK[_SCORED_RISK[reached]], 0, category, behind))
    ids = tuple(r.rule.id for r in effective)
    if not candidates:
        return Verdict(rules=ids, overridden=overridden, contributions=contributions, totals=tuple(totals.items()))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2]))
    rank, _, _, category, behind = candidates[0]
    ranked = [r for c in candidates for r in c[4]]
    action = next(a for a, n in ACTION_RANK.items() if n == rank and a != "score")
    risk = max(c[1] for c in candidates)
    first = behind[0].rule if behind else None
    template = (first.template if first else None) or next((r.rule.template for r in ranked if r.rule.template), None)
    label = (first.label if first else None) or next((r.rule.label for r in ranked if r.rule.label), None)
    return Verdict(
        action=_ACTIONS[action],
        risk=(Risk.NONE, Risk.LOW, Risk.MEDIUM, Risk.HIGH)[risk],
        rules=ids,
        category=category,
        template=template,
        dissuade=any(r.rule.dissuade for r in ranked),
        label=label,
        decided_label=first.label if first else None,
        overridden=overridden,
        contributions=contributions,
        totals=tuple(totals.items()),
    )


def _views(text: str) -> dict[str, str]:
    v = views(text)
    return {
        "raw": v.raw,
        "normalised": v.normalised,
        "squeezed": v.squeezed,
        "homophone": fold_squeezed(v.squeezed),
        "domains": "\n".join(v.domains),
    }


def _with_matches(verdict: Verdict, rs: RuleSet, matched: list[CompiledRule], ctx: Context, text: str) -> Verdict:
    views = _views(text)
    positions = locate(rs, views)
    matches: list[Match] = []
    for r in matched:
        for name, sel in r.selections.items():
            if not sel.predicate(ctx):
                continue
            for alternative in sel.alternatives:
                if all(t.predicate(ctx) for t in alternative):
                    for t in alternative:
                        matches.extend(_term_matches(r.rule.id, name, t, ctx, views, positions))
                    break
    return Verdict(
        action=verdict.action,
        risk=verdict.risk,
        rules=verdict.rules,
        category=verdict.category,
        template=verdict.template,
        dissuade=verdict.dissuade,
        label=verdict.label,
        decided_label=verdict.decided_label,
        overridden=verdict.overridden,
        matches=tuple(matches),
        contributions=verdict.contributions,
        totals=verdict.totals,
    )


def locate(rs: RuleSet, views: dict[str, str]) -> dict[int, tuple[int | None, int]]:
    """Pattern id -> (start, end) character offsets of its leftmost match in its view."""
    found: dict[int, tuple[int | None, int]] = {}
    for view in dict.fromkeys(view for view, _ in rs.all_databases()):
        data = views[view].encode()
        if not data:
            continue
        with_som, without = rs.explain_databases(view)
        spans: dict[int, tuple[int | None, int]] = {}
        if with_som is not None:
            with_som.scan(data, _first_span, context=spans)
        if without is not None:
            without.scan(data, _first_end, context=spans)
        for pattern_id, (start, end) in spans.items():
            char_end = len(data[:end].decode("utf-8", "replace"))
            char_start = None if start is None else len(data[:start].decode("utf-8", "replace"))
            found[pattern_id] = (char_start, char_end)
    return found


def _first_span(pattern_id: int, start: int, end: int, flags: int, spans: Any) -> None:
    if pattern_id not in spans:
        spans[pattern_id] = (start, end)


def _first_end(pattern_id: int, start: int, end: int, flags: int, spans: Any) -> None:
    if pattern_id not in spans:
        spans[pattern_id] = (None, end)


def _term_matches(
    rule: str,
    selection: str,
    t: CompiledTerm,
    ctx: Context,
    views: dict[str, str],
    positions: dict[int, tuple[int | None, int]],
) -> list[Match]:
    term = t.term
    if term.field in spec.SIGNALS:
        pattern = ", ".join(v.text for v in term.values) or term.key
        shown_signal = ctx.signals().show(term.field)
        return [Match(rule, selection, term.key, "signals", pattern, shown_signal, location=term.location)]
    if not t.atoms:
        shown = {
            "from": ctx.src,
            "to": ctx.dst,
            "sender_id": ctx.sender_id,
            "origin": ctx.origin,
            "attestation": ctx.attestation or "none",
            "time": f"{ctx.minute // 60:02d}:{ctx.minute % 60:02d}",
            "domain": views["domains"].replace("\n", " "),
            "velocity": ctx.keys.get(term.velocity.by, "") if term.velocity else "",
        }[term.field]
        pattern = ", ".join(v.text for v in term.values) or term.key
        return [Match(rule, selection, term.key, "fields", pattern, shown, location=term.location)]
    out = []
    view = "domains" if term.field == "domain" else term.view
    for atom, value in zip(t.atoms, term.values, strict=True):
        if atom not in ctx.hits:
            continue
        start, end = positions.get(atom, (None, 0))
        # the homophone view maps each character to one, so its offsets are the squeezed view's: show what
        # the sender wrote there rather than the representatives
        data = views["squeezed" if view == "homophone" else view]
        shown = data[start:end] if start is not None else data[max(0, end - len(value.text)) : end]
        out.append(Match(rule, selection, term.key, view, value.text, shown, start, end, value.location))
    return out
