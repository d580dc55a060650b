"""Loading rule packs: strict YAML, structural validation, then the semantic checks.

Every problem of every file is collected in one pass and reported as ``file:line:col: message (hint)``:
duplicate keys, unknown fields, wrong types, YAML 1.1 words, unknown list / macro / override references,
bad conditions, unused selections, duplicate ids, literals that normalise to nothing, and regular
expressions that the normalised view can never match. (Regular expressions the matcher cannot compile
are found when compiling, with the same kind of location.)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rules import condition as cond
from rules import spec
from rules.homophones import fold_pattern
from rules.message import DEFAULT_TEST_NOW, MessageError, message_from_mapping
from rules.model import SCORE_ONLY, Rule, RuleCollection, Selection, Term, TestCase, Thresholds, Value, Velocity
from rules.normalise import normalise, normalise_domain, squeeze
from rules.validate import Validator
from rules.yaml_source import LocatedDict, LocatedList, Location, SourceError, SourceErrors, load_text

RULE_SUFFIXES = (".yaml", ".yml")
DEFAULT_PACKS = Path(__file__).resolve().parent / "packs"


def _rule_field(name: str) -> spec.Field:
    found = spec.RULE.get(name)
    if found is None:  # pragma: no cover - the spec names both
        raise LookupError(name)
    return found


_DETECTION = _rule_field("detection")
_TESTS = _rule_field("tests")


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named by ``paths``: files as given, directories searched for *.yaml / *.yml."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix in RULE_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        if f not in seen:
            seen.add(f)
            unique.append(f)
    return unique


@dataclass
class _File:
    path: str
    lines: list[str]
    doc: LocatedDict


def load(paths: Iterable[str | Path]) -> RuleCollection:
    """Load and check every rule file under ``paths``; raises SourceErrors listing every problem."""
    collection, errors = load_collecting(paths)
    if errors:
        raise SourceErrors(errors)
    return collection


def load_collecting(paths: Iterable[str | Path]) -> tuple[RuleCollection, list[SourceError]]:
    """The rules that are well-formed, and every problem found (sorted by file and position)."""
    loader = _Loader()
    collection = loader.run(rule_files(paths))
    return collection, loader.sorted_errors()


def column_after_quote(lines: Sequence[str], location: Location, offset: int) -> Location:
    """The location ``offset`` characters into the scalar at ``location`` (past its opening quote)."""
    line = lines[location.line - 1] if 0 < location.line <= len(lines) else ""
    col = location.column
    if col - 1 < len(line) and line[col - 1] in "'\"":
        col += 1
    elif col - 1 < len(line) and line[col - 1] in "|>":
        return location
    return Location(location.path, location.line, col + offset)


class _Loader:
    def __init__(self) -> None:
        self.v = Validator()
        self.files: list[_File] = []
        self.lists: dict[str, tuple[tuple[Value, ...], Location]] = {}
        self.macros: dict[str, Selection] = {}
        self.order: list[str] = []
        self.override_at: dict[str, LocatedList] = {}
        self.scoring: dict[str, Thresholds] = {}

    def error(self, location: Location, message: str, hint: str | None = None) -> None:
        self.v.error(location, message, hint)

    def sorted_errors(self) -> list[SourceError]:
        rank = {path: i for i, path in enumerate(self.order)}
        return sorted(
            self.v.errors,
            key=lambda e: (rank.get(e.location.path, len(rank)), e.location.line, e.location.column),
        )

    # --- files --------------------------------------------------------------------------------------

    def run(self, paths: list[Path]) -> RuleCollection:
        for path in paths:
            self.order.append(str(path))
            self._read(path)
        for f in self.files:
            for name, values in _items(f.doc.get("lists")):
                self._list(f, name, values)
        for f in self.files:
            self._scoring(f)
        for f in self.files:
            macros = f.doc.get("macros")
            for name, raw in _items(macros):
                assert isinstance(macros, LocatedDict)
                where = macros.where_key(name)
                if name in self.macros:
                    first = self.macros[name].location
                    self.error(where, f"macro {name!r} is defined twice", f"first defined at {first}")
                    continue
                selection = self._selection(f, name, raw, macros.where(name), where)
                if selection is not None:
                    self.macros[name] = selection
        rules: list[Rule] = []
        first_seen: dict[str, Location] = {}
        for f in self.files:
            raw_rules = f.doc.get("rules")
            if raw_rules is None:
                continue
            if not isinstance(raw_rules, LocatedList):
                self.error(f.doc.where("rules"), "rules: expected a list of rules")
                continue
            for i, raw in enumerate(raw_rules):
                rule = self._rule(f, raw, raw_rules.where(i), i)
                if rule is None:
                    continue
                if rule.id in first_seen:
                    where = raw.where("id")
                    self.error(where, f"duplicate rule id {rule.id!r}", f"first defined at {first_seen[rule.id]}")
                    continue
                first_seen[rule.id] = rule.location
                rules.append(rule)
        self._check_overrides(rules)
        for rule in rules:
            if rule.score is not None and rule.category not in self.scoring and "default" not in self.scoring:
                self.error(
                    rule.score_location or rule.location,
                    f"rule {rule.id}: a score for {rule.category!r}, but no scoring thresholds for it",
                    f"set scoring: {{{rule.category}: {{warn: ..., block: ...}}}} (or default) in a pack",
                )
        lists = {name: tuple(v.text for v in values) for name, (values, _) in self.lists.items()}
        return RuleCollection(tuple(rules), dict(self.macros), lists, tuple(self.order), dict(self.scoring))

    def _scoring(self, f: _File) -> None:
        raw = f.doc.get("scoring")
        for category, limits in _items(raw):
            assert isinstance(raw, LocatedDict)
            where = raw.where_key(category)
            if not isinstance(limits, LocatedDict):
                continue
            if category in self.scoring:
                first = self.scoring[category].location
                self.error(where, f"scoring: thresholds for {category!r} are set twice", f"first set at {first}")
                continue
            numbers = {k: float(v) for k, v in limits.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            found = Thresholds(numbers.get("tag"), numbers.get("warn"), numbers.get("block"), where)
            given = [numbers[k] for k in spec.SCORED_ACTIONS if k in numbers]
            if given != sorted(given) or len(set(given)) != len(given):
                self.error(
                    where,
                    f"scoring.{category}: thresholds must rise from tag to warn to block, got "
                    + ", ".join(f"{k} {numbers[k]:g}" for k in spec.SCORED_ACTIONS if k in numbers),
                )
                continue
            self.scoring[category] = found

    def _read(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.error(Location(str(path), 1, 1), "no such file or directory")
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.error(Location(str(path), 1, 1), f"cannot read: {exc}")
            return
        try:
            doc = load_text(text, str(path), collect=self.v.errors)
        except SourceErrors as exc:
            self.v.errors.extend(exc.errors)
            return
        if doc is None:
            return  # an empty file holds no rules
        if not isinstance(doc, LocatedDict):
            self.error(Location(str(path), 1, 1), "a rule pack is a mapping with lists, macros and rules")
            return
        self.v.check_object(spec.PACK, doc, doc.location, "", skip=frozenset({"rules"}))
        self.files.append(_File(str(path), text.splitlines(), doc))

    def _list(self, f: _File, name: str, raw: Any) -> None:
        lists = f.doc["lists"]
        where = lists.where_key(name)
        if name in self.lists:
            self.error(where, f"list {name!r} is defined twice", f"first defined at {self.lists[name][1]}")
            return
        if isinstance(raw, LocatedList):
            values = tuple(Value(v, raw.where(i), name) for i, v in enumerate(raw) if isinstance(v, str) and v)
            self.lists[name] = (values, where)

    # --- rules --------------------------------------------------------------------------------------

    def _rule(self, f: _File, raw: Any, where: Location, index: int) -> Rule | None:
        """The rule, built whenever its detection is sound so that its patterns get checked too.

        A rule with errors in other fields is still returned (with neutral stand-ins for those fields), so
        that compiling finds the errors in its patterns in the same pass; the errors already reported keep
        such a collection from being used.
        """
        rid = raw.get("id") if isinstance(raw, LocatedDict) else None
        path = f"rule {rid}" if isinstance(rid, str) else f"rules[{index}]"
        self.v.check_object(spec.RULE, raw, where, path, skip=frozenset({"detection", "tests"}))
        if not isinstance(raw, LocatedDict):
            return None
        detection = raw.get("detection")
        detection_ok = detection is not None and self.v.check(_DETECTION.node, detection, raw.where("detection"), path)
        tests_ok = raw.get("tests") is None or self.v.check(_TESTS.node, raw["tests"], raw.where("tests"), path)
        if not isinstance(detection, LocatedDict) or not isinstance(detection.get("condition"), str):
            return None
        names = [name for name in detection if name != "condition"]
        text = detection["condition"]
        try:
            expr = cond.parse(text, names, lambda n: n in names or n in self.macros)
        except cond.ConditionError as exc:
            at = column_after_quote(f.lines, detection.where("condition"), exc.position)
            self.error(at, f"condition: {exc.message}", exc.hint)
            expr = None
        used = cond.names(expr) if expr is not None else set(names)
        for name in names:
            if name not in used:
                self.error(detection.where_key(name), f"selection {name!r} is not used by the condition")
        if not detection_ok:
            return None
        selections: dict[str, Selection] = {}
        for name in names:
            key_at = detection.where_key(name)
            if name in self.macros:
                self.error(key_at, f"selection {name!r} has the name of a shared macro", "rename the selection")
            selection = self._selection(f, name, detection[name], detection.where(name), key_at)
            if selection is not None:
                selections[name] = selection
        if expr is None or len(selections) < len(names):
            return None
        for name in used - selections.keys():
            selections[name] = self.macros[name]
        rule_id = rid if isinstance(rid, str) else f"rules[{index}]@{f.path}"
        score = raw.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool):
            score = None
        action = _choice(raw, "action", spec.ACTIONS, "tag" if score is None else SCORE_ONLY)
        rule = Rule(
            id=rule_id,
            title=_string(raw, "title", rule_id),
            category=_choice(raw, "category", spec.CATEGORIES, "other"),
            channel=_choice(raw, "channel", spec.CHANNELS, "sms"),
            action=action,
            selections=selections,
            condition=expr,
            condition_text=text,
            location=raw.where("id"),
            risk=_choice(raw, "risk", spec.RISKS, "medium" if action not in ("pass", SCORE_ONLY) else None),
            description=_string(raw, "description", ""),
            status=_choice(raw, "status", spec.STATUSES, "experimental"),
            author=_string(raw, "author", ""),
            template=_string(raw, "template", None),
            label=_string(raw, "label", None),
            dissuade=raw.get("dissuade") is True,
            overrides=_strings(raw, "overrides"),
            tags=_strings(raw, "tags"),
            score=None if score is None else float(score),
            score_location=raw.where("score") if score is not None else None,
        )
        if isinstance(raw.get("overrides"), LocatedList):
            self.override_at[rule.id] = raw["overrides"]
        if tests_ok and raw.get("tests") is not None:
            rule = replace(rule, tests=self._tests(rule, raw["tests"]))
        return rule

    def _tests(self, rule: Rule, raw: LocatedDict) -> tuple[TestCase, ...]:
        out: list[TestCase] = []
        channel = "sms" if rule.channel == "both" else rule.channel
        for kind in ("match", "no_match"):
            cases = raw.get(kind)
            if not isinstance(cases, LocatedList):
                continue
            for i, case in enumerate(cases):
                where = cases.where(i)
                try:
                    message = message_from_mapping(case, default_now=DEFAULT_TEST_NOW, default_channel=channel)
                except MessageError as exc:
                    for problem in exc.problems:
                        self.error(where, f"test {kind}[{i}]: {problem}")
                    continue
                expect = case.get("expect")
                out.append(
                    TestCase(
                        expect_match=kind == "match",
                        message=message,
                        location=where,
                        index=i,
                        repeat=case.get("repeat") or 1,
                        interval=float(case.get("interval") or 1.0),
                        expect_action=expect.get("action") if isinstance(expect, LocatedDict) else None,
                    )
                )
        return tuple(out)

    def _check_overrides(self, rules: list[Rule]) -> None:
        ids = {r.id for r in rules}
        known = sorted(ids | set(spec.CATEGORIES))
        for rule in rules:
            at = self.override_at.get(rule.id)
            for i, target in enumerate(rule.overrides):
                where = at.where(i) if at is not None else rule.location
                if target == rule.id:
                    self.error(where, f"rule {rule.id!r} overrides itself")
                elif target not in ids and target not in spec.CATEGORIES:
                    found = difflib.get_close_matches(target, known, n=1)
                    hint = f"did you mean {found[0]!r}?" if found else "name a rule id or a category"
                    self.error(where, f"overrides: unknown rule or category {target!r}", hint)

    # --- selections ---------------------------------------------------------------------------------

    def _selection(self, f: _File, name: str, raw: Any, where: Location, key_at: Location) -> Selection | None:
        if isinstance(raw, LocatedDict):
            alternatives_raw: list[tuple[Any, Location]] = [(raw, where)]
        elif isinstance(raw, LocatedList):
            alternatives_raw = [(item, raw.where(i)) for i, item in enumerate(raw)]
        else:
            return None
        alternatives: list[tuple[Term, ...]] = []
        for alt, _ in alternatives_raw:
            if not isinstance(alt, LocatedDict) or not alt:
                return None
            terms = []
            for key, value in alt.items():
                term = self._term(f, key, value, alt.where_key(key), alt.where(key))
                if term is None:
                    return None
                terms.append(term)
            alternatives.append(tuple(terms))
        return Selection(name, tuple(alternatives), key_at)

    def _term(self, f: _File, key: str, raw: Any, key_at: Location, where: Location) -> Term | None:
        parsed = spec.parse_key(key)
        if parsed is None:
            return None
        selector, op, mods = parsed
        term = Term(key, selector.name, op.name, mods, key_at)
        if not op.many:
            if op.name in ("exists", "is"):
                return replace(term, flag=raw) if isinstance(raw, bool) else None
            if op.name == "at_least":
                ok = isinstance(raw, int | float) and not isinstance(raw, bool)
                return replace(term, number=float(raw)) if ok else None
            if op.name == "between":
                return self._between(term, raw, where)
            if op.name == "count" and isinstance(raw, LocatedDict):
                try:
                    return replace(term, velocity=Velocity(raw["by"], int(raw["count"]), float(raw["within"])))
                except (KeyError, TypeError, ValueError):
                    return None
            return None
        values = self._values(raw, where)
        if values is None:
            return None
        ok = True
        for value in values:
            ok = self._check_value(f, term, value) and ok
        return replace(term, values=values) if ok else None

    def _between(self, term: Term, raw: Any, where: Location) -> Term | None:
        if not isinstance(raw, LocatedList) or len(raw) != 2 or not all(isinstance(v, str) for v in raw):
            return None
        try:
            start, end = (int(v[:2]) * 60 + int(v[3:5]) for v in raw)
        except ValueError:
            return None
        if start == end:
            self.error(where, f"{term.key}: the range {raw[0]}-{raw[1]} is empty", "use two different times")
            return None
        return replace(term, minutes=(start, end))

    def _values(self, raw: Any, where: Location) -> tuple[Value, ...] | None:
        items: list[tuple[Any, Location]] = [(raw, where)]
        if isinstance(raw, LocatedList):
            items = [(item, raw.where(i)) for i, item in enumerate(raw)]
        out: list[Value] = []
        ok = True
        for item, at in items:
            if isinstance(item, str):
                out.append(Value(item, at))
            elif isinstance(item, LocatedDict) and isinstance(item.get("list"), str):
                name = item["list"]
                found = self.lists.get(name)
                if found is None:
                    close = difflib.get_close_matches(name, list(self.lists), n=1)
                    self.error(
                        item.where("list"),
                        f"unknown list {name!r}",
                        f"did you mean {close[0]!r}?" if close else "define it under lists: in a pack",
                    )
                    ok = False
                else:
                    out.extend(found[0])
            else:
                ok = False  # the validator has reported it
        return tuple(out) if ok and out else None

    def _check_value(self, f: _File, term: Term, value: Value) -> bool:
        text = value.text
        via = f" (from list {value.list_name!r})" if value.list_name else ""
        allowed: tuple[str, ...] = ()
        op = spec.FIELDS[term.field].operator(term.operator)
        if op is not None and isinstance(op.value, spec.Enum) and value.list_name:  # inline: the validator's
            allowed = op.value.values
        elif term.field == "url.brand_lookalike":
            from rules.signals import data

            allowed = tuple(data().brands)
        if allowed and text not in allowed:
            hint = difflib.get_close_matches(text, list(allowed), n=1)
            self.error(
                value.location,
                f"{term.key}: {text!r}{via} is not one of {', '.join(allowed)}",
                f"did you mean {hint[0]!r}?" if hint else None,
            )
            return False
        if term.field == "text":
            view = term.view
            if "word" in term.modifiers and (term.operator == "re" or view in ("squeezed", "homophone")):
                what = "a regular expression (write the boundaries in it)" if term.operator == "re" else view
                self.error(term.location, f"{term.key}: |word does not apply to {what}", "use the normalised view")
                return False
            if term.operator == "re":
                return self._check_regex(term, value, view)
            if view == "raw":
                return True
            shown = squeeze(text) if view in ("squeezed", "homophone") else normalise(text)
            if not shown:
                self.error(value.location, f"{term.key}: {text!r}{via} is empty in the {view} view")
                return False
            return True
        if term.field == "domain":
            if term.operator == "re":
                return self._check_regex(term, value, "domains")
            domain = normalise_domain(text)
            if not domain or any(not (c.isascii() and (c.isalnum() or c in ".-")) for c in domain):
                self.error(value.location, f"{term.key}: {text!r}{via} is not a domain name", "write it as example.com")
                return False
        return True

    def _check_regex(self, term: Term, value: Value, view: str) -> bool:
        if view == "raw":
            return True
        nocase = "nocase" in term.modifiers
        for c in sorted(set(_regex_literals(value.text))):
            if c.isascii():
                if view in ("squeezed", "homophone") and c.isspace():
                    self.error(
                        value.location,
                        f"{term.key}: {c!r} in {value.text!r} never matches the {view} view, which has no spaces",
                        "remove it, or match the normalised view",
                    )
                    return False
                if c.isupper() and not nocase:
                    self.error(
                        value.location,
                        f"{term.key}: {c!r} in {value.text!r} never matches the {view} view, which is lower case",
                        "write it in lower case, or add |nocase",
                    )
                    return False
                continue
            seen = squeeze(c) if view in ("squeezed", "homophone") else normalise(c)
            if view == "homophone" and fold_pattern(seen) == fold_pattern(c):
                continue  # 帐 in a pattern is folded like 账 in the text
            if seen != c:
                becomes = f"{seen!r}" if seen else "nothing"
                self.error(
                    value.location,
                    f"{term.key}: {c!r} in {value.text!r} never matches the {view} view, where it becomes {becomes}",
                    f"write {seen!r} instead, or add |raw" if seen else "remove it, or add |raw",
                )
                return False
        return True


def _choice(raw: LocatedDict, key: str, allowed: tuple[str, ...], default: Any) -> Any:
    value = raw.get(key)
    return value if isinstance(value, str) and value in allowed else default


def _string(raw: LocatedDict, key: str, default: Any) -> Any:
    value = raw.get(key)
    return value if isinstance(value, str) else default


def _strings(raw: LocatedDict, key: str) -> tuple[str, ...]:
    value = raw.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, LocatedList) else ()


def _items(value: Any) -> list[tuple[str, Any]]:
    return list(value.items()) if isinstance(value, LocatedDict) else []


def _regex_literals(regex: str) -> Iterable[str]:
    """Characters of a regular expression that stand for themselves (escape sequences skipped)."""
    i = 0
    n = len(regex)
    while i < n:
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1 : i + 2]
            if nxt in ("p", "P", "x", "o", "N", "g", "k") and regex[i + 2 : i + 3] == "{":
                end = regex.find("}", i + 3)
                i = n if end < 0 else end + 1
            elif nxt == "Q":
                end = regex.find("\\E", i + 2)
                yield from regex[i + 2 : n if end < 0 else end]
                i = n if end < 0 else end + 2
            else:
                i += 2
            continue
        if c == "(" and regex[i + 1 : i + 2] == "?":
            i += 2  # group options and names: (?i) (?: (?= (?! (?<= (?P<name>
            while i < n and (regex[i].isalpha() or regex[i] in "<'-:=!>"):
                i += 1
                if regex[i - 1] in ":=!>":
                    break
            continue
        yield c
        i += 1
