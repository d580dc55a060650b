"""Compiling loaded rules into a RuleSet: Hyperscan databases, one per view, and condition closures.

Every literal and regular expression of every rule (and of the macros they use) becomes one Hyperscan
expression in the database of its view (raw, normalised, squeezed, homophone, domains); identical
expressions are
shared. Block mode, ``HS_FLAG_SINGLEMATCH`` (a pattern is reported once per scan, which is all a
condition needs), ``HS_FLAG_UTF8`` and, for regular expressions, ``HS_FLAG_UCP``. The explain path
compiles the same expressions again, lazily, with ``HS_FLAG_SOM_LEFTMOST`` to learn where they matched.

A selection becomes a closure over a per-message context: set operations on the matched pattern ids for
text and domains, comparisons for the other fields. Conditions become nested closures too. Rules whose
condition cannot hold unless one of their patterns matched (found by three-valued evaluation) are only
evaluated when one did; the others are evaluated for every message of their channel.

Hyperscan's compile errors name the expression at fault; they are reported at the ``file:line:col`` of
every value that produced it, and compilation goes on without it to find the next one.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from re import _constants as re_constants  # type: ignore[attr-defined]
from re import _parser as re_parser  # type: ignore[attr-defined]
from typing import Any

import hyperscan

from rules import condition as cond
from rules import native_scan, spec, squeeze_fold
from rules.dbcache import DatabaseCache, default_cache
from rules.homophones import fold_pattern, fold_squeezed, folder
from rules.loader import load_collecting
from rules.model import Rule, RuleCollection, Selection, Term, Value
from rules.normalise import URL_HINTS, normalise, normalise_domain, normaliser, squeeze, squeezer
from rules.predicates import (
    Predicate,
    field_exists,
    field_matches,
    has_domains,
    hits_all,
    hits_any,
    hits_one,
    minute_within,
    requiring,
    sender_kind_in,
    signal_at_least,
    signal_brand,
    signal_handle_kind,
    signal_is,
    velocity_at_least,
)
from rules.senders import sender_kind
from rules.signals import REQUIRED
from rules.yaml_source import Location, SourceError, SourceErrors

VIEWS = ("raw", "normalised", "squeezed", "homophone", "domains")
ACTION_RANK = {"pass": 0, "score": 0, "label": 1, "tag": 2, "warn": 3, "block": 4}
RISK_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}

_BASE_FLAGS = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH
#: What may stand before and after a ``|word`` keyword: not a letter or digit, nor a character that joins
#: tokens of a URL or an address (a dot only when a letter or digit follows it, as in vx.example.com).
_WORD_BEFORE = r"(?:^|[^A-Za-z0-9./@_\-])"
_WORD_AFTER = r"(?:$|[^A-Za-z0-9@_\-.]|\.(?:$|[^A-Za-z0-9]))"


@dataclass(frozen=True)
class Pattern:
    """One Hyperscan expression and every rule value it stands for."""

    id: int
    view: str
    expression: str
    flags: int
    literal: bool = False  # an escaped literal, which cannot fail to compile
    sources: list[tuple[str, Term, Value]] = field(default_factory=list, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledTerm:
    term: Term
    predicate: Predicate
    #: For text and domain terms: the pattern id of each value, in order. For signals: their hints.
    atoms: tuple[int, ...] = ()
    #: Patterns the predicate reads besides (a signal's required expressions, see signals.REQUIRED).
    reads: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledSelection:
    selection: Selection
    predicate: Predicate
    alternatives: tuple[tuple[CompiledTerm, ...], ...]
    gated: bool  # false whenever none of its patterns matched


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    index: int
    condition: Predicate
    selections: Mapping[str, CompiledSelection]
    atoms: frozenset[int]
    gated: bool
    action_rank: int
    risk_rank: int
    #: (message attribute, values): the rule can only be true when the attribute has one of the values.
    guard: tuple[str, frozenset[str]] | None = None
    #: True when any one of the rule's patterns makes it true (an or of plain keyword selections): the
    #: engine then takes the pattern that brought the rule up as the verdict, without evaluating.
    trivial: bool = False
    #: The views (indexes into VIEWS) whose deferred database holds patterns of this rule: scanned before
    #: the rule's condition is evaluated, and only then.
    deferred: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What to evaluate for one channel.

    ``by_atom``: rules that can only be true when one of their patterns matched, by pattern. ``by_field``:
    other rules that can only be true when a message field has one of a few values (``origin:
    international``, ``from: [12381, 96110]``), by field and value. ``always``: the rest.
    """

    always: tuple[int, ...]
    by_atom: Mapping[int, tuple[int, ...]]
    by_field: Mapping[str, Mapping[str, tuple[int, ...]]]
    velocity_by: tuple[str, ...]
    #: For each counter a rule reads (``src``, ``dst``): the windows its rules ask about, in seconds.
    velocity_windows: tuple[tuple[str, tuple[float, ...]], ...] = ()
    #: ``by_field`` as (how to read the value from a message, table) pairs, for the hot path.
    by_field_items: tuple[tuple[Callable[[Any], str | None], Mapping[str, tuple[int, ...]]], ...] = field(
        init=False, default=()
    )
    #: The keys of ``by_atom``: a message's matched patterns are intersected with it in one C call.
    triggers: frozenset[int] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_field_items", tuple((_READERS[k], table) for k, table in self.by_field.items()))
        object.__setattr__(self, "triggers", frozenset(self.by_atom))


class RuleSet:
    """Compiled rules, immutable once built; the engine swaps whole rule sets atomically."""

    # slots: the message path reads a dozen of these per message, without a dictionary lookup each
    __slots__ = (
        "_explain",
        "by_id",
        "cache",
        "collection",
        "compile_seconds",
        "databases",
        "db_domains",
        "db_homophone",
        "db_normalised",
        "db_raw",
        "db_squeezed",
        "deferred_by_index",
        "deferred_databases",
        "hint_obfuscated",
        "hint_spaced",
        "needs_domains",
        "needs_normalised",
        "patterns",
        "plans",
        "rules",
        "to_homophone",
        "to_normalised",
        "to_squeezed",
        "url_hints",
        "uses_time",
        "verdicts",
    )

    def __init__(
        self,
        collection: RuleCollection,
        rules: tuple[CompiledRule, ...],
        patterns: list[Pattern],
        databases: Mapping[str, hyperscan.Database],
        plans: Mapping[str, Plan],
        *,
        deferred: Mapping[str, hyperscan.Database] | None = None,
        scanned: Mapping[str, Any] | None = None,
        scanned_deferred: Mapping[str, Any] | None = None,
        needs_domains: bool,
        uses_time: bool,
        url_hints: Mapping[str, int],
        compile_seconds: float,
        cache: DatabaseCache | None = None,
    ) -> None:
        self.collection = collection
        #: Where the explain path's databases are kept too.
        self.cache = cache
        self.rules = rules
        self.by_id = {r.rule.id: r for r in rules}
        self.patterns = patterns
        #: By view: the database of the patterns that bring rules up, scanned for every message ...
        self.databases = databases
        #: ... and that of the others, scanned only for a rule that reads them (see CompiledRule.deferred).
        self.deferred_databases: Mapping[str, hyperscan.Database] = deferred or {}
        #: ``deferred_databases`` by view index, for the hot path.
        #: What the message path scans: ``databases`` and ``deferred_databases`` themselves, or the same
        #: patterns compiled on the system's libhs (rules.native_scan).
        scanned = scanned if scanned is not None else databases
        scanned_deferred = scanned_deferred if scanned_deferred is not None else self.deferred_databases
        self.deferred_by_index = tuple(scanned_deferred.get(view) for view in VIEWS)
        self.plans = plans
        self.needs_domains = needs_domains
        self.uses_time = uses_time
        #: Patterns of the normalised view that a text with a URL matches (see normalise.URL_HINTS).
        self.url_hints = frozenset(url_hints.values())
        self.hint_obfuscated = url_hints.get("obfuscated", -1)
        self.hint_spaced = url_hints.get("spaced", -1)
        self.verdicts: dict[tuple[int, ...], Any] = {}
        self.compile_seconds = compile_seconds
        self.db_raw = scanned.get("raw")
        self.db_normalised = scanned.get("normalised")
        self.db_squeezed = scanned.get("squeezed")
        self.db_homophone = scanned.get("homophone")
        self.db_domains = scanned.get("domains")
        uses = {view for view in VIEWS if view in databases or view in self.deferred_databases}
        self.needs_normalised = bool(uses & {"normalised", "squeezed", "homophone"}) or needs_domains
        # the view functions with their tables bound, for the message path; a view no pattern is matched
        # on is never computed, and one that only deferred patterns use only for the messages that need it
        self.to_normalised: Callable[[str], str] | None = normaliser() if self.needs_normalised else None
        self.to_squeezed: Callable[[str], str] | None = squeezer() if uses & {"squeezed", "homophone"} else None
        self.to_homophone: Callable[[str], str] | None = folder() if "homophone" in uses else None
        if self.needs_normalised:
            squeeze_fold.prepare()
        self._explain: dict[str, tuple[hyperscan.Database | None, hyperscan.Database | None]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def all_databases(self) -> list[tuple[str, hyperscan.Database]]:
        """(view, database) for every database, the deferred ones too: what a full scan needs."""
        return [*self.databases.items(), *self.deferred_databases.items()]

    def explain_databases(self, view: str) -> tuple[hyperscan.Database | None, hyperscan.Database | None]:
        """Databases of ``view`` that report start offsets (and one for expressions SOM cannot handle)."""
        if view not in self._explain:
            chosen = [p for p in self.patterns if p.view == view]
            som = {p.id: (p.flags & ~hyperscan.HS_FLAG_SINGLEMATCH) | hyperscan.HS_FLAG_SOM_LEFTMOST for p in chosen}
            with_som, failures, _ = compile_traced(chosen, som, self.cache)
            without = [p for p, _ in failures]
            plain = {p.id: p.flags & ~hyperscan.HS_FLAG_SINGLEMATCH for p in without}
            self._explain[view] = (with_som, _database(without, plain, self.cache))
        return self._explain[view]


def _database(
    patterns: list[Pattern], flags: Mapping[int, int], cache: DatabaseCache | None = None
) -> hyperscan.Database | None:
    if not patterns:
        return None
    expressions = [p.expression.encode() for p in patterns]
    ids = [p.id for p in patterns]
    chosen = [flags[p.id] for p in patterns]
    mode = hyperscan.HS_MODE_BLOCK
    key = cache.key(expressions, ids, chosen, mode) if cache is not None else b""
    if cache is not None and (found := cache.load(key, mode)) is not None:
        return found
    db = hyperscan.Database(mode=mode)
    db.compile(expressions=expressions, ids=ids, flags=chosen)
    if cache is not None:
        cache.store(key, db)
    return db


def compile_traced(
    patterns: list[Pattern], flags: Mapping[int, int], cache: DatabaseCache | None = None
) -> tuple[hyperscan.Database | None, list[tuple[Pattern, str]], str | None]:
    """Compile ``patterns`` into one database, tracing a failure to the expressions at fault.

    Returns (database of the patterns that compile, [(pattern, Hyperscan's message)], a message for a
    failure no single expression explains). Hyperscan reports the first failure only, without saying
    which expression, so on failure each regular expression is compiled alone (literals are escaped here
    and cannot fail); the database is then built from the others. Only whole databases are kept in
    ``cache``: a failure is traced afresh each time.
    """
    try:
        return _database(patterns, flags, cache), [], None
    except hyperscan.error as exc:
        whole = str(exc)
    failures = []
    for p in patterns:
        if p.literal:
            continue
        try:
            _database([p], flags)
        except hyperscan.error as exc:
            failures.append((p, str(exc)))
    if not failures:
        return None, [], whole
    bad = {p.id for p, _ in failures}
    rest = [p for p in patterns if p.id not in bad]
    try:
        return _database(rest, flags, cache), failures, None
    except hyperscan.error as exc:
        return None, failures, str(exc)


def hyperscan_escape(text: str) -> str:
    """``text`` as a Hyperscan literal (ASCII punctuation and controls escaped; other characters as is)."""
    out = []
    for c in text:
        if not c.isascii() or c.isalnum():
            out.append(c)
        elif c.isprintable() and c != " ":
            out.append("\\" + c)
        else:
            out.append(f"\\x{ord(c):02x}")
    return "".join(out)


class _Compiler:
    def __init__(self, collection: RuleCollection, cache: DatabaseCache | None) -> None:
        self.collection = collection
        self.cache = cache
        self.patterns: list[Pattern] = []
        self.by_key: dict[tuple[str, str, int], Pattern] = {}
        self.errors: list[SourceError] = []
        self.velocity_by: dict[str, set[str]] = {"sms": set(), "call": set()}
        self.velocity_windows: dict[str, dict[str, set[float]]] = {"sms": {}, "call": {}}
        self.needs_domains = False
        self.uses_time = False
        self.selection_cache: dict[int, CompiledSelection] = {}

    def run(self) -> RuleSet:
        started = time.perf_counter()
        rules = tuple(self.rule(rule, i) for i, rule in enumerate(self.collection.rules))
        url_hints: dict[str, int] = {}
        if self.needs_domains:
            for name, hint in URL_HINTS.items():
                url_hints[name] = self.hint(hint, _BASE_FLAGS)
        plans = {}
        for channel in ("sms", "call"):
            always: list[int] = []
            by_atom: dict[int, list[int]] = {}
            by_field: dict[str, dict[str, list[int]]] = {}
            for r in rules:
                if channel not in r.rule.channels():
                    continue
                if r.gated:
                    for atom in r.atoms:
                        by_atom.setdefault(atom, []).append(r.index)
                elif r.guard is not None:
                    attr, values = r.guard
                    for value in values:
                        by_field.setdefault(attr, {}).setdefault(value, []).append(r.index)
                else:
                    always.append(r.index)
            plans[channel] = Plan(
                tuple(always),
                {atom: tuple(ids) for atom, ids in by_atom.items()},
                {attr: {v: tuple(ids) for v, ids in table.items()} for attr, table in by_field.items()},
                tuple(sorted(self.velocity_by[channel])),
                tuple((by, tuple(sorted(w))) for by, w in sorted(self.velocity_windows[channel].items())),
            )
        # Patterns that bring rules up (and the URL hints) are scanned for every message; the others are
        # only read by the conditions of rules already brought up, so they wait in a second database per
        # view, scanned for the messages that have such a rule. Common words that some rule only uses
        # beside a rarer one (您, 【...】) then cost nothing for the other messages.
        primary = set(url_hints.values()).union(*(plan.by_atom for plan in plans.values()))
        primary_patterns = [p for p in self.patterns if p.id in primary]
        deferred_patterns = [p for p in self.patterns if p.id not in primary]
        databases = self.databases(primary_patterns)
        deferred = self.databases(deferred_patterns)
        view_of = {p.id: VIEWS.index(p.view) for p in self.patterns if p.id not in primary}
        rules = tuple(
            replace(r, deferred=tuple(sorted({view_of[a] for a in _text_atoms(r) if a in view_of}))) for r in rules
        )
        if self.errors:
            raise SourceErrors(self.errors)
        return RuleSet(
            self.collection,
            rules,
            self.patterns,
            databases,
            plans,
            deferred=deferred,
            scanned=native_scan.twins(primary_patterns, databases),
            scanned_deferred=native_scan.twins(deferred_patterns, deferred),
            needs_domains=self.needs_domains,
            uses_time=self.uses_time,
            url_hints=url_hints,
            compile_seconds=time.perf_counter() - started,
            cache=self.cache,
        )

    # --- patterns -----------------------------------------------------------------------------------

    def pattern(self, view: str, expression: str, flags: int, owner: str, term: Term, value: Value) -> int:
        key = (view, expression, flags)
        found = self.by_key.get(key)
        if found is None:
            found = Pattern(len(self.patterns), view, expression, flags, literal=term.operator != "re")
            self.patterns.append(found)
            self.by_key[key] = found
        found.sources.append((owner, term, value))
        return found.id

    def hint(self, expression: str, flags: int) -> int:
        """A pattern of the normalised view that no rule value owns: a precondition of a signal or a URL."""
        key = ("normalised", expression, flags)
        found = self.by_key.get(key)
        if found is None:
            found = Pattern(len(self.patterns), "normalised", expression, flags, literal=True)
            self.patterns.append(found)
            self.by_key[key] = found
        return found.id

    def expression(self, term: Term, value: Value) -> tuple[str, str, int]:
        """(view, Hyperscan expression, flags) for one value of a text or domain term."""
        flags = _BASE_FLAGS
        if "nocase" in term.modifiers:
            flags |= hyperscan.HS_FLAG_CASELESS
        if term.field == "domain":
            flags |= hyperscan.HS_FLAG_MULTILINE
            if term.operator == "re":
                return "domains", value.text, flags | hyperscan.HS_FLAG_UCP
            domain = hyperscan_escape(normalise_domain(value.text))
            if term.operator == "suffix":
                return "domains", f"(?:^|\\.){domain}$", flags
            return "domains", domain, flags
        view = term.view
        if term.operator == "re":
            # hanzi in a pattern of the homophone view are folded like the text (syntax is ASCII)
            expression = fold_pattern(value.text) if view == "homophone" else value.text
            return view, expression, flags | hyperscan.HS_FLAG_UCP
        literal = value.text
        if view == "normalised":
            literal = normalise(literal)
        elif view == "squeezed":
            literal = squeeze(literal)
        elif view == "homophone":
            literal = fold_squeezed(squeeze(literal))
        escaped = hyperscan_escape(literal)
        if "word" in term.modifiers:
            # Hyperscan has no lookaround: the neighbours are matched (and shown by explain) instead
            if literal[:1].isascii() and literal[:1].isalnum() and term.operator != "startswith":
                escaped = _WORD_BEFORE + escaped
            if literal[-1:].isascii() and literal[-1:].isalnum() and term.operator != "endswith":
                escaped = escaped + _WORD_AFTER
        if term.operator == "startswith":
            return view, "^" + escaped, flags
        if term.operator == "endswith":
            return view, escaped + "$", flags
        return view, escaped, flags

    def databases(self, patterns: list[Pattern]) -> dict[str, hyperscan.Database]:
        """One database per view of ``patterns``; what Hyperscan refuses is reported at its values."""
        out: dict[str, hyperscan.Database] = {}
        for view in VIEWS:
            chosen = [p for p in patterns if p.view == view]
            if not chosen:
                continue
            db, failures, general = compile_traced(chosen, {p.id: p.flags for p in chosen}, self.cache)
            for culprit, message in failures:
                for owner, term, value in culprit.sources:
                    self.errors.append(
                        SourceError(
                            value.location,
                            f"{owner}: {term.key}: {value.text!r} cannot be compiled: {message}",
                            _compile_hint(message),
                        )
                    )
            if general is not None:
                first = next((p.sources[0][2].location for p in chosen if p.sources), Location("<rules>", 1, 1))
                self.errors.append(SourceError(first, f"the {view} patterns cannot be compiled: {general}"))
            if db is not None:
                out[view] = db
        return out

    # --- rules --------------------------------------------------------------------------------------

    def rule(self, rule: Rule, index: int) -> CompiledRule:
        selections = {name: self.selection(rule.id, sel) for name, sel in rule.selections.items()}
        condition = cond.compile_condition(rule.condition, {n: s.predicate for n, s in selections.items()})
        gated = cond.evaluate3(rule.condition, {n: (False if s.gated else None) for n, s in selections.items()})
        triggers = _triggers(rule.condition, selections) if gated is False else set(selections)
        atoms = frozenset(
            atom
            for name in triggers
            for alternative in selections[name].alternatives
            for term in alternative
            for atom in term.atoms
        )
        for sel in selections.values():
            for alternative in sel.alternatives:
                for t in alternative:
                    v = t.term.velocity
                    if v is not None:
                        for channel in rule.channels():
                            self.velocity_by[channel].add(v.by)
                            self.velocity_windows[channel].setdefault(v.by, set()).add(v.within)
        return CompiledRule(
            rule=rule,
            index=index,
            condition=condition,
            selections=selections,
            atoms=atoms,
            gated=gated is False,
            action_rank=ACTION_RANK[rule.action],
            risk_rank=RISK_RANK[rule.risk or "none"] if ACTION_RANK[rule.action] else 0,
            guard=None if gated is False else _guard(rule, selections),
            trivial=gated is False and _trivial(rule.condition, selections),
        )

    def selection(self, owner: str, sel: Selection) -> CompiledSelection:
        cached = self.selection_cache.get(id(sel))  # macros are shared by the rules that use them
        if cached is not None:
            return cached
        alternatives = tuple(tuple(self.term(owner, t) for t in alt) for alt in sel.alternatives)
        predicate = cond.any_of([cond.all_of([t.predicate for t in alt]) for alt in alternatives])
        gated = all(any(t.atoms for t in alt) for alt in alternatives)
        compiled = CompiledSelection(sel, predicate, alternatives, gated)
        self.selection_cache[id(sel)] = compiled
        return compiled

    def term(self, owner: str, term: Term) -> CompiledTerm:
        f = term.field
        if f == "text" or (f == "domain" and term.operator != "exists"):
            if f == "domain":
                self.needs_domains = True
            atoms = tuple(self.pattern(*self.expression(term, v), owner, term, v) for v in term.values)
            unique = frozenset(atoms)
            if "all" in term.modifiers:
                return CompiledTerm(term, hits_all(unique), atoms)
            if len(unique) == 1:
                (only,) = unique
                return CompiledTerm(term, hits_one(only), atoms)
            return CompiledTerm(term, hits_any(unique), atoms)
        if f == "domain":
            self.needs_domains = True
            want = term.flag
            return CompiledTerm(term, has_domains(want))
        if f == "time":
            self.uses_time = True
            start, end = term.minutes
            return CompiledTerm(term, minute_within(start, end))
        if f in spec.SIGNALS:
            predicate = _signal_predicate(term)
            reads: tuple[int, ...] = ()
            if f in REQUIRED:
                reads = tuple(self.hint(h, _BASE_FLAGS | hyperscan.HS_FLAG_UCP) for h in REQUIRED[f])
                predicate = requiring(frozenset(reads), predicate, term.operator == "is" and not term.flag)
            if (term.operator == "is" and not term.flag) or f not in SIGNAL_HINTS:
                return CompiledTerm(term, predicate, reads=reads)  # an absence, or no text to look for: not gated
            if f.startswith("url."):
                self.needs_domains = True
                hints = [*URL_HINTS.values(), *([SIGNAL_HINTS[f]] if SIGNAL_HINTS[f] else [])]
                atoms = tuple(self.hint(h, _BASE_FLAGS) for h in hints)
            else:
                atoms = (self.hint(SIGNAL_HINTS[f], _BASE_FLAGS | hyperscan.HS_FLAG_UCP),)
            # the signal cannot be present unless one of its hints matched, so the rule may wait for them
            return CompiledTerm(term, predicate, atoms, reads)
        if f == "velocity":
            v = term.velocity
            assert v is not None
            by, count, within = v.by, v.count, v.within
            return CompiledTerm(term, velocity_at_least(by, count, within))
        return CompiledTerm(term, _field_predicate(term))


def _text_atoms(r: CompiledRule) -> set[int]:
    """The patterns whose matches the rule's conditions read: those of text and domain terms, and the
    expressions a signal requires (its hints only bring the rule up; its predicate reads the text)."""
    return {
        atom
        for sel in r.selections.values()
        for alternative in sel.alternatives
        for t in alternative
        for atom in (t.atoms if t.term.field in ("text", "domain") else t.reads)
    }


def _triggers(expr: cond.Expr, selections: Mapping[str, CompiledSelection]) -> set[str]:
    """A set of pattern-gated selections of which at least one must hold for ``expr`` to hold, chosen to
    match as rarely as possible.

    Like Suricata's fast_pattern: the rule is evaluated only when a pattern of one of these matched, so
    the rarer they are, the fewer messages pay for the rule. A set will do when, with its selections
    false and everything else unknown, the condition is false. Of the sets that do, the one whose
    estimated odds of matching (:func:`_odds`) add up least is taken: every subset is tried when the rule
    has a dozen gated selections or fewer; otherwise, from all of them, the likeliest are dropped first
    for as long as the rest will do.
    """
    odds = {name: _selection_odds(sel) for name, sel in selections.items() if sel.gated}
    gated = sorted(odds, key=lambda n: -odds[n])

    def will_do(chosen: Iterable[str]) -> bool:
        trial = set(chosen)
        return cond.evaluate3(expr, {n: (False if n in trial else None) for n in selections}) is False

    if len(gated) <= 12:
        best: tuple[float, int] | None = None
        best_set: set[str] = set(gated)
        for mask in range(1, 1 << len(gated)):
            chosen = [name for bit, name in enumerate(gated) if mask >> bit & 1]
            cost = (sum(odds[n] for n in chosen), len(chosen))
            if (best is None or cost < best) and will_do(chosen):
                best, best_set = cost, set(chosen)
        return best_set
    kept = set(gated)
    for name in gated:
        if will_do(kept - {name}):
            kept.discard(name)
    return kept


def _selection_odds(sel: CompiledSelection) -> float:
    """Estimated odds that a message matches one of the selection's patterns."""
    return min(1.0, sum(_odds(t.term) for alternative in sel.alternatives for t in alternative if t.atoms))


#: The odds that one given character (or a class of a few) is at a given place, and the places of a
#: message: rough figures for Chinese SMS, enough to rank a keyword of one character (in most messages)
#: above one of two (in a few) and of four (in almost none), which is all they are used for.
_CHARACTER_ODDS = 0.02
_PLACES = 35


def _odds(term: Term) -> float:
    """Estimated odds that a message matches one of the term's values: a keyword of n characters
    ``35 * 0.02 ** n``; a regular expression the same over its literal characters, its branches added up (so
    ``账户|转账|家人`` counts three keywords) and a wide class, ``.`` or an optional part counting as
    nothing. An estimate, used only to choose which selections bring a rule up, never for what it
    matches."""
    if term.operator != "re":
        return min(1.0, sum(_PLACES * _CHARACTER_ODDS ** len(v.text) for v in term.values))
    return min(1.0, sum(_PLACES * _regex_odds(v.text) for v in term.values))


@functools.cache  # the same expressions come back for every rule and macro that uses them
def _regex_odds(expression: str) -> float:
    try:
        tree = re_parser.parse(expression)
    except (re.error, OverflowError, RecursionError):
        return 1.0  # a syntax Python's re does not read (Hyperscan's own): taken as matching everything
    return _sequence_odds(tree)


def _sequence_odds(tree: Any) -> float:
    odds = 1.0
    for op, arg in tree:
        if op is re_constants.LITERAL:
            odds *= _CHARACTER_ODDS
        elif op is re_constants.IN:
            if len(arg) <= 3 and all(kind is re_constants.LITERAL for kind, _ in arg):
                odds *= _CHARACTER_ODDS
        elif op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT):
            low, _, sub = arg
            odds *= _sequence_odds(sub) ** min(low, 8)
        elif op is re_constants.SUBPATTERN:
            odds *= _sequence_odds(arg[-1])
        elif op is re_constants.ATOMIC_GROUP:
            odds *= _sequence_odds(arg)
        elif op is re_constants.BRANCH:
            odds *= min(1.0, sum(_sequence_odds(branch) for branch in arg[1]))
    return odds


def _trivial(expr: cond.Expr, selections: Mapping[str, CompiledSelection]) -> bool:
    """Whether ``expr`` holds exactly when one of its selections' patterns matched."""
    if isinstance(expr, cond.Or):
        return all(_trivial(e, selections) for e in expr.operands)
    if isinstance(expr, cond.Quantifier):
        return (expr.count == 1 or len(expr.names) == 1) and all(_plain(selections[n]) for n in expr.names)
    if isinstance(expr, cond.Name):
        return _plain(selections[expr.name])
    return False


def _plain(sel: CompiledSelection) -> bool:
    """Every alternative is one text or domain term that any one of its values satisfies."""
    return all(
        len(alt) == 1
        and alt[0].atoms
        and alt[0].term.field in ("text", "domain")
        and "all" not in alt[0].term.modifiers
        for alt in sel.alternatives
    )


#: (selector field, what the plan indexes it by): message attributes, and the sender's kind read from two
#: of them, so that a rule on ``sender.kind: virtual_operator`` is only evaluated for such senders.
_GUARD_FIELDS = (
    ("sender_id", "sender_id"),
    ("from", "src"),
    ("to", "dst"),
    ("origin", "origin"),
    ("sender.kind", "sender_kind"),
)
#: How the plan reads each indexed value from a message (C-level getters where there is one).
_READERS: dict[str, Callable[[Any], str | None]] = {
    "sender_id": attrgetter("sender_id"),
    "src": attrgetter("src"),
    "dst": attrgetter("dst"),
    "origin": attrgetter("origin"),
    "sender_kind": lambda message: sender_kind(message.src, message.origin),
}


def _guard(rule: Rule, selections: Mapping[str, CompiledSelection]) -> tuple[str, frozenset[str]] | None:
    """A message attribute and the values it must have for the rule to be true, if there is one.

    A selection "requires" a field when every alternative has an equality term on it; assume every such
    selection false (the message's value is none of theirs): if the condition is then false, whatever the
    other selections say, the rule needs the field to have one of their values.
    """
    for field_name, attr in _GUARD_FIELDS:
        values: set[str] = set()
        assumed: dict[str, bool | None] = {}
        for name, sel in selections.items():
            needed = _required_values(sel, field_name)
            assumed[name] = None if needed is None else False
            values |= needed or set()
        if values and cond.evaluate3(rule.condition, assumed) is False:
            return attr, frozenset(values)
    return None


def _required_values(sel: CompiledSelection, field_name: str) -> set[str] | None:
    out: set[str] = set()
    for alternative in sel.alternatives:
        terms = [t.term for t in alternative if t.term.field == field_name and t.term.operator == "equals"]
        if not terms:
            return None
        # several equality terms on one field in one alternative must all hold: any one bounds the value
        out |= {v.text for v in terms[0].values}
    return out


#: For each signal found in the text: a Hyperscan expression that every text having it matches (a
#: superset of what rules.signals looks for), so that rules on signals are only evaluated, and signals
#: only extracted, for messages that may have them. URL signals use the URL hints.
SIGNAL_HINTS = {
    **{name: "" for name in spec.SIGNALS if name.startswith("url.")},
    "url.ip_literal": r"[0-9]\.[0-9]{1,3}(?::[0-9]{1,5})?/",  # 1.2.3.4/x has no URL hint
    "contact.handle": r"qq|扣扣|企鹅|微信|wechat|weixin|vx|wx|v信|薇信|威信|徽信|维信|卫星|t\.me/|telegram|tg"
    r"|飞机|电报|@|[+加]\s*[vwq]|[vq]\s*[:：]",
    "money.amount": r"¥|rmb|人民币|[0-9]\s*(?:万|千|w|k)?\s*(?:元|块)",
    "money.percent": r"%|百分之",
    "phone.in_text": REQUIRED["phone.in_text"][0],
    "reminder.official": REQUIRED["reminder.official"][0],
}

_FLAGS = {
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


def _signal_predicate(term: Term) -> Predicate:
    f, op = term.field, term.operator
    if op == "is":
        return signal_is(_FLAGS[f], term.flag)
    if op == "at_least":
        return signal_at_least(_FLAGS[f], term.number)
    members = frozenset(v.text for v in term.values)
    if op == "brand":
        return signal_brand(members)
    if op == "kind":
        return signal_handle_kind(members)
    return sender_kind_in(members)  # sender.kind equals: no text needed


_ATTRIBUTES = {"from": "src", "to": "dst", "sender_id": "sender_id", "origin": "origin", "attestation": "attestation"}


def _field_predicate(term: Term) -> Predicate:
    attr = _ATTRIBUTES[term.field]
    if term.operator == "exists":
        return field_exists(attr, term.flag)
    return field_matches(attr, term.operator, tuple(v.text for v in term.values))


def _compile_hint(message: str) -> str | None:
    lowered = message.lower()
    if "back-reference" in lowered or "backreference" in lowered or "assertion" in lowered:
        return "Hyperscan has no backreferences or lookaround; rewrite it, or split it into two selections"
    if "empty" in lowered:
        return "a pattern that can match an empty string matches every message; make it need at least one character"
    return None


# --- entry points -------------------------------------------------------------------------------------


def compile_collection(collection: RuleCollection, *, cache: DatabaseCache | None = None) -> RuleSet:
    """Compile loaded rules; raises SourceErrors naming each pattern Hyperscan refused.

    Databases compiled before are read from ``cache`` (None: the user's, see :mod:`rules.dbcache`)."""
    return _Compiler(collection, cache if cache is not None else default_cache()).run()


def build(paths: Iterable[str | Path], *, cache: DatabaseCache | None = None) -> RuleSet:
    """Load, check and compile every rule file under ``paths``; SourceErrors lists every problem found."""
    collection, errors = load_collecting(paths)
    try:
        ruleset = compile_collection(collection, cache=cache)
    except SourceErrors as exc:
        errors = errors + exc.errors
        ruleset = None
    if errors or ruleset is None:
        order = {p: i for i, p in enumerate(collection.files)}
        errors.sort(key=lambda e: (order.get(e.location.path, len(order)), e.location.line, e.location.column))
        raise SourceErrors(errors)
    return ruleset


def check(paths: Iterable[str | Path]) -> list[SourceError]:
    """Every problem in the rule files under ``paths`` (empty when they load and compile)."""
    try:
        build(paths)
    except SourceErrors as exc:
        return exc.errors
    return []
