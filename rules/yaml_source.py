"""Strict YAML loading that remembers where every value came from.

Mappings load as ``LocatedDict`` and sequences as ``LocatedList``, which keep the line and column of
each key and item, so that a later stage can say ``file:line:col: message`` about any value. Duplicate
keys are errors, not silent overrides. Scalars follow the YAML 1.2 core schema: only true/false are
booleans, so ``no``, ``on`` and ``y`` stay strings, ``012`` stays a decimal 12, and ``1:20`` stays a
string (YAML 1.1 would read them as false, true, 10 and 80).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class SourceError:
    """One problem in a source file, with where it is and, when useful, how to fix it."""

    location: Location
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class SourceErrors(Exception):
    """Every problem found in one pass over a source."""

    def __init__(self, errors: list[SourceError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class LocatedDict(dict[str, Any]):
    """A mapping that knows where it and each of its keys and values stand in the source."""

    location: Location
    key_locations: dict[str, Location]
    value_locations: dict[str, Location]

    def where(self, key: str) -> Location:
        return self.value_locations.get(key, self.location)

    def where_key(self, key: str) -> Location:
        return self.key_locations.get(key, self.location)


class LocatedList(list[Any]):
    location: Location
    item_locations: list[Location]

    def where(self, index: int) -> Location:
        return self.item_locations[index] if index < len(self.item_locations) else self.location


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one.

    Both give the same nodes and marks. Scalars are typed by :func:`_scalar` (YAML 1.2), so the loader's
    YAML 1.1 implicit resolver is replaced by one that only recognises merge keys, to refuse them.
    """

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _MERGE_TAG if value == "<<" and implicit[0] else _STR_TAG
        return "tag:yaml.org,2002:seq" if kind is SequenceNode else "tag:yaml.org,2002:map"


_LOADER: Any = _FastLoader

_INT = re.compile(r"[-+]?[0-9]+$|0x[0-9a-fA-F]+$|0o[0-7]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|[-+]?\.(inf|Inf|INF)$|\.(nan|NaN|NAN)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"~", "null", "Null", "NULL", ""}


def _scalar(node: ScalarNode) -> Any:
    value: str = node.value
    if node.style and node.style in "'\"|>":  # libyaml marks plain scalars with "", PyYAML with None
        return value
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.match(value):
        return int(value, 16 if value.startswith("0x") else 8 if value.startswith("0o") else 10)
    if _FLOAT.match(value):
        return float(value)
    return value


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[SourceError] = []

    def loc(self, node: Node) -> Location:
        return Location(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node) -> Any:
        if isinstance(node, MappingNode):
            return self._mapping(node)
        if isinstance(node, SequenceNode):
            items = LocatedList(self.build(child) for child in node.value)
            items.location = self.loc(node)
            items.item_locations = [self.loc(child) for child in node.value]
            return items
        if isinstance(node, ScalarNode):
            return _scalar(node)
        raise TypeError(node)  # pragma: no cover - the composer makes no other kind

    def _mapping(self, node: MappingNode) -> LocatedDict:
        result = LocatedDict()
        result.location = self.loc(node)
        result.key_locations = {}
        result.value_locations = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.errors.append(
                    SourceError(self.loc(key_node), "merge keys (<<) are not supported", "repeat the keys")
                )
                continue
            key = self.build(key_node)
            if not isinstance(key, str):
                self.errors.append(SourceError(self.loc(key_node), f"keys must be strings, not {type(key).__name__}"))
                continue
            if key in result:
                first = result.key_locations[key]
                self.errors.append(
                    SourceError(
                        self.loc(key_node),
                        f"duplicate key {key!r}",
                        f"first given at line {first.line}; a later one would silently replace it",
                    )
                )
                continue
            result[key] = self.build(value_node)
            result.key_locations[key] = self.loc(key_node)
            result.value_locations[key] = self.loc(value_node)
        return result


def load_text(text: str, path: str = "<string>", *, collect: list[SourceError] | None = None) -> Any:
    """Parse one YAML document into located containers.

    Structural problems (invalid YAML) raise SourceErrors. Problems that still leave a usable tree
    (duplicate keys, non-string keys) are appended to ``collect`` when given, so that later checks can
    report theirs in the same pass; without ``collect`` they raise.
    """
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceErrors([SourceError(Location(path, line, col), f"invalid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SourceErrors([SourceError(Location(path, 1, 1), f"invalid YAML: {exc}")]) from None
    if node is None:
        return None
    builder = _Builder(path)
    value = builder.build(node)
    if builder.errors:
        if collect is None:
            raise SourceErrors(builder.errors)
        collect.extend(builder.errors)
    return value


def load_file(path: str | Path, *, collect: list[SourceError] | None = None) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceErrors([SourceError(Location(str(p), 1, 1), f"cannot read: {exc}")]) from None
    return load_text(text, str(p), collect=collect)


_MISSING: Any = object()
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}


class Reader:
    """Typed access to located YAML values that collects every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[SourceError] = []

    def error(self, location: Location, message: str, hint: str | None = None) -> None:
        self.errors.append(SourceError(location, message, hint))

    def check(self) -> None:
        if self.errors:
            raise SourceErrors(sorted(self.errors, key=lambda e: (e.location.line, e.location.column)))

    def keys(self, d: LocatedDict, allowed: set[str] | frozenset[str], required: tuple[str, ...] = ()) -> None:
        for key in d:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(sorted(allowed))
                self.error(d.where_key(key), f"unknown field {key!r}", hint)
        for key in required:
            if key not in d:
                self.error(d.location, f"missing required field {key!r}")

    def get(self, d: LocatedDict, key: str, kind: type, default: Any = _MISSING) -> Any:
        """``d[key]`` checked to be of ``kind``; reports and returns ``default`` when absent or wrong."""
        if key not in d or d[key] is None:
            if default is _MISSING:
                self.error(d.location, f"missing required field {key!r}")
            return None if default is _MISSING else default
        value = d[key]
        if _is_kind(value, kind):
            return float(value) if kind is float else value
        self.error(
            d.where(key),
            f"{key}: expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}",
            _hint_for(value, kind),
        )
        return None if default is _MISSING else default

    def mapping(self, d: LocatedDict, key: str, *, required: bool = False) -> LocatedDict | None:
        if key not in d or d[key] is None:
            if required:
                self.error(d.location, f"missing required section {key!r}")
            return None
        value = d[key]
        if not isinstance(value, LocatedDict):
            self.error(d.where(key), f"{key}: expected a mapping of fields")
            return None
        return value

    def items(self, d: LocatedDict, key: str) -> list[tuple[Any, Location]]:
        if key not in d or d[key] is None:
            return []
        value = d[key]
        if not isinstance(value, LocatedList):
            self.error(d.where(key), f"{key}: expected a list")
            return []
        return [(item, value.where(i)) for i, item in enumerate(value)]


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _hint_for(value: Any, kind: type) -> str | None:
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        return f"quote it, as in '{value}', so that leading zeros and '+' survive"
    if kind is bool and isinstance(value, str) and value.lower() in {"yes", "no", "on", "off", "y", "n"}:
        return "write true or false; YAML 1.1 words such as yes/no/on/off are strings here"
    return None
