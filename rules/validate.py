"""Structural validation: the located YAML tree checked against the declarative spec.

Every problem is collected (never just the first), each with its ``file:line:col`` and, where there is
an obvious fix, a hint. Semantic checks that need more than one value at a time (references, regular
expressions, conditions, duplicate ids) are the loader's.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from rules import spec
from rules.yaml_source import LocatedDict, LocatedList, Location, SourceError

_KIND_NAMES: dict[type, str] = {str: "a string", bool: "true or false", list: "a list", dict: "a mapping"}


def describe(value: Any) -> str:
    if isinstance(value, LocatedDict):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def scalar_hint(value: Any, wanted: str) -> str | None:
    """How to write ``value`` so that YAML reads it as the string the author meant."""
    if isinstance(value, bool):
        word = "true" if value else "false"
        return f"quote it, as in '{word}', if you meant the word"
    if isinstance(value, int | float):
        return f"quote it, as in '{value}', so that leading zeros and '+' survive"
    if value is None:
        return "give a value, or quote '' for an empty string"
    return None


def bool_hint(value: Any) -> str | None:
    if isinstance(value, str) and value.lower() in {"yes", "no", "on", "off", "y", "n"}:
        return "write true or false; YAML 1.1 words such as yes/no/on/off are strings here"
    return None


def close_match(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {found[0]!r}?" if found else None


class Validator:
    """Walks a located tree against a spec node, collecting errors."""

    def __init__(self) -> None:
        self.errors: list[SourceError] = []

    def error(self, location: Location, message: str, hint: str | None = None) -> None:
        self.errors.append(SourceError(location, message, hint))

    def check(self, node: spec.Node, value: Any, where: Location, path: str) -> bool:
        """Validate ``value`` (found at ``where``, named ``path`` in messages); True when it is well-formed."""
        node = spec.resolve(node)
        before = len(self.errors)
        if isinstance(node, spec.Str):
            self._str(node, value, where, path)
        elif isinstance(node, spec.Enum):
            self._enum(node, value, where, path)
        elif isinstance(node, spec.Bool):
            if not isinstance(value, bool):
                self.error(where, f"{path}: expected true or false, got {describe(value)}", bool_hint(value))
        elif isinstance(node, spec.Int):
            self._int(node, value, where, path)
        elif isinstance(node, spec.Number):
            self._number(node, value, where, path)
        elif isinstance(node, spec.ListOf):
            self._list(node, value, where, path)
        elif isinstance(node, spec.Object):
            self._object(node, value, where, path)
        elif isinstance(node, spec.MapOf):
            self._map(node, value, where, path)
        elif isinstance(node, spec.OneOf):
            self._one_of(node, value, where, path)
        elif isinstance(node, spec.SelectionMap):
            self._selection(value, where, path)
        else:  # pragma: no cover - every node kind is handled above
            raise TypeError(node)
        return len(self.errors) == before

    # --- scalars ------------------------------------------------------------------------------------

    def _str(self, node: spec.Str, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, str):
            self.error(where, f"{path}: expected {node.what}, got {describe(value)}", scalar_hint(value, node.what))
            return
        if len(value) < node.min_length:
            self.error(where, f"{path}: expected {node.what}, got an empty string")
        elif node.pattern and not re.match(node.pattern, value):
            self.error(where, f"{path}: {value!r} is not {node.what}")

    def _enum(self, node: spec.Enum, value: Any, where: Location, path: str) -> None:
        if isinstance(value, str) and value in node.values:
            return
        allowed = ", ".join(v or '""' for v in node.values)  # an empty value is one: name it visibly
        hint = close_match(value, node.values) if isinstance(value, str) else scalar_hint(value, "")
        self.error(where, f"{path}: expected one of {allowed}, got {describe(value)}", hint or f"allowed: {allowed}")

    def _int(self, node: spec.Int, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(where, f"{path}: expected an integer, got {describe(value)}")
        elif node.minimum is not None and value < node.minimum:
            self.error(where, f"{path}: must be at least {node.minimum}, got {value}")
        elif node.maximum is not None and value > node.maximum:
            self.error(where, f"{path}: must be at most {node.maximum}, got {value}")

    def _number(self, node: spec.Number, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.error(where, f"{path}: expected a number, got {describe(value)}")
        elif node.minimum is not None and value < node.minimum:
            self.error(where, f"{path}: must be at least {node.minimum:g}, got {value}")
        elif node.exclusive_minimum is not None and value <= node.exclusive_minimum:
            self.error(where, f"{path}: must be more than {node.exclusive_minimum:g}, got {value}")
        elif node.maximum is not None and value > node.maximum:
            self.error(where, f"{path}: must be at most {node.maximum:g}, got {value}")

    # --- containers ---------------------------------------------------------------------------------

    def _list(self, node: spec.ListOf, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, LocatedList):
            self.error(where, f"{path}: expected a list, got {describe(value)}")
            return
        if len(value) < node.min_items:
            self.error(where, f"{path}: needs at least {node.min_items} item{'s' if node.min_items > 1 else ''}")
        if node.max_items is not None and len(value) > node.max_items:
            self.error(where, f"{path}: takes at most {node.max_items} items, got {len(value)}")
        for i, item in enumerate(value):
            self.check(node.item, item, value.where(i), f"{path}[{i}]")

    def check_object(
        self, node: spec.Object, value: Any, where: Location, path: str, skip: frozenset[str] = frozenset()
    ) -> bool:
        """Like :meth:`check`, leaving the values of the ``skip`` fields for the caller to check."""
        before = len(self.errors)
        self._object(node, value, where, path, skip)
        return len(self.errors) == before

    def _object(
        self, node: spec.Object, value: Any, where: Location, path: str, skip: frozenset[str] = frozenset()
    ) -> None:
        if not isinstance(value, LocatedDict):
            self.error(where, f"{path}: expected a mapping, got {describe(value)}")
            return
        names = [f.name for f in node.fields]
        for key, item in value.items():
            field = node.get(key)
            sub = f"{path}.{key}" if path else key
            if field is not None:
                if key in skip or (item is None and not field.required):
                    continue
                self.check(field.node, item, value.where(key), sub)
            elif node.extra is not None:
                if self._name(key, node.extra_keys, value.where_key(key), sub, names):
                    self.check(node.extra, item, value.where(key), sub)
            elif not node.open:
                hint = close_match(key, names) or "allowed: " + ", ".join(names)
                self.error(value.where_key(key), f"unknown field {key!r}" + (f" in {path}" if path else ""), hint)
        for f in node.fields:
            if f.required and value.get(f.name) is None:
                self.error(value.location, f"{path or 'document'}: missing required field {f.name!r}")
        if node.one_required and all(value.get(name) is None for name in node.one_required):
            wanted = " or ".join(repr(name) for name in node.one_required)
            self.error(value.location, f"{path or 'document'}: missing required field {wanted}")
        if node.min_properties and len(value) < node.min_properties:
            self.error(where, f"{path}: give at least one of " + ", ".join(names))
        for when in node.when:
            if when.field not in value or not when.applies(value[when.field]):
                continue
            shown = f"{when.field}: {value[when.field]}"
            for name in when.require:
                if value.get(name) is None:
                    self.error(value.location, f"{path}: {shown} needs the field {name!r}")
            for name in when.forbid:
                if name in value:
                    self.error(value.where_key(name), f"{path}: {name!r} is not allowed with {shown}")

    def _name(self, key: str, pattern: str, where: Location, path: str, known: list[str]) -> bool:
        if key in spec.RESERVED:
            self.error(where, f"{path}: {key!r} is a word of the condition language and cannot be a name")
            return False
        if not re.match(pattern, key):
            hint = close_match(key, known) if known else None
            self.error(where, f"{path}: {key!r} is not a valid name (letters, digits and _)", hint)
            return False
        return True

    def _map(self, node: spec.MapOf, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, LocatedDict):
            self.error(where, f"{path}: expected a mapping of names, got {describe(value)}")
            return
        for key, item in value.items():
            sub = f"{path}.{key}"
            if node.keys and key not in node.keys:
                hint = close_match(key, node.keys) or "allowed: " + ", ".join(node.keys)
                self.error(value.where_key(key), f"{sub}: unknown name {key!r}", hint)
            elif node.keys or self._name(key, node.key_pattern, value.where_key(key), sub, []):
                self.check(node.value, item, value.where(key), sub)

    def _one_of(self, node: spec.OneOf, value: Any, where: Location, path: str) -> None:
        for option in node.options:
            if _accepts(spec.resolve(option), value):
                self.check(option, value, where, path)
                return
        kinds = " or ".join(_kind(spec.resolve(o)) for o in node.options)
        self.error(where, f"{path}: expected {kinds}, got {describe(value)}", scalar_hint(value, ""))

    # --- selections ---------------------------------------------------------------------------------

    def _selection(self, value: Any, where: Location, path: str) -> None:
        if not isinstance(value, LocatedDict):
            self.error(where, f"{path}: expected a mapping of field|operator keys, got {describe(value)}")
            return
        if not value:
            self.error(where, f"{path}: an empty selection matches everything; give at least one field")
        for key, item in value.items():
            op = self.selector_key(key, value.where_key(key), path)
            if op is not None:
                self._selector_value(op, item, value.where(key), f"{path}.{key}")

    def selector_key(self, key: str, where: Location, path: str) -> spec.Operator | None:
        """The operator a ``field|operator|modifier`` key names, or None after reporting what is wrong."""
        parsed = spec.parse_key(key)
        if parsed is not None:
            return parsed[1]
        name, mods = spec.split_key(key)
        field = spec.FIELDS.get(name)
        if field is None:
            hint = close_match(name, list(spec.FIELDS)) or "fields: " + ", ".join(spec.FIELDS)
            self.error(where, f"{path}: unknown field {name!r}", hint)
            return None
        op = field.default
        modifiers = [m for m, _ in field.modifiers]
        ops = [o.name for o in field.operators]
        seen: set[str] = set()
        for i, mod in enumerate(mods):
            if mod in ops:
                if i != 0:
                    self.error(where, f"{path}: the operator {mod!r} must follow the field", f"write {name}|{mod}|...")
                    return None
                op = field.operator(mod) or op
            elif mod in modifiers:
                if mod in seen:
                    self.error(where, f"{path}: modifier {mod!r} given twice")
                    return None
                seen.add(mod)
            else:
                allowed = ops + modifiers
                hint = close_match(mod, allowed) or "allowed after " + name + ": " + ", ".join(allowed)
                self.error(where, f"{path}: unknown operator or modifier {mod!r} for {name}", hint)
                return None
        views = [m for m in spec.VIEW_MODIFIERS if m in seen]
        if len(views) > 1:
            self.error(where, f"{path}: {' and '.join(views)} are two views; choose one", "use two selections")
            return None
        return op

    def _selector_value(self, op: spec.Operator, value: Any, where: Location, path: str) -> None:
        if not op.many:
            self.check(op.value, value, where, path)
            return
        if isinstance(value, LocatedDict):
            self.check(spec.LIST_REF, value, where, path)
        elif isinstance(value, LocatedList):
            if not value:
                self.error(where, f"{path}: an empty list matches nothing")
            for i, item in enumerate(value):
                sub = f"{path}[{i}]"
                if isinstance(item, LocatedDict):
                    self.check(spec.LIST_REF, item, value.where(i), sub)
                else:
                    self.check(op.value, item, value.where(i), sub)
        else:
            self.check(op.value, value, where, path)


def _accepts(node: spec.Node, value: Any) -> bool:
    if isinstance(node, spec.ListOf):
        return isinstance(value, LocatedList)
    if isinstance(node, spec.Object | spec.MapOf | spec.SelectionMap):
        return isinstance(value, LocatedDict)
    if isinstance(node, spec.Str | spec.Enum):
        return isinstance(value, str)
    if isinstance(node, spec.Bool):
        return isinstance(value, bool)
    if isinstance(node, spec.Int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(node, spec.Number):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


def _kind(node: spec.Node) -> str:
    if isinstance(node, spec.ListOf):
        return "a list"
    if isinstance(node, spec.Object | spec.MapOf | spec.SelectionMap):
        return "a mapping"
    if isinstance(node, spec.Str):
        return node.what
    if isinstance(node, spec.Number | spec.Int):
        return "a number"
    return "a value"
