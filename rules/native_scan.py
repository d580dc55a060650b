"""The message path's Hyperscan databases on the system's libhs, scanned without a Python call per match.

The Python binding (``hyperscan``) compiles, caches and explains every database; it also scans, but for
what the engine wants of a scan, the set of pattern ids that matched, most of its cost is its own: a
keyword parse per scan, the GIL dropped and taken again around the scan and for every match, and a call
of a Python function per match. ``make compile`` builds ``rules/_hs.c`` where libhyperscan-dev is
installed; the rule set then compiles the databases it scans for every message a second time with it
(:func:`twins`), and the engine scans those with :func:`add_to_set`, which adds the ids in C. Where the
extension is not built, where ``AFGW_NATIVE_SCAN=0``, or for a view whose patterns it refuses, the
binding's database is scanned, with the same result (tests/rules/test_native_scan.py).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class _Pattern(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def view(self) -> str: ...
    @property
    def expression(self) -> str: ...
    @property
    def flags(self) -> int: ...


def _load() -> Any:
    if os.environ.get("AFGW_NATIVE_SCAN", "1") == "0":
        return None
    try:
        return importlib.import_module("rules._hs")
    except ImportError:
        return None


_HS: Any = _load()


def available() -> bool:
    """Whether rule sets compiled now get databases on the system's libhs."""
    return _HS is not None


def add_to_set() -> Any:
    """The C callback that adds each matched id to the set given as context (None without the extension);
    the binding's databases call it like any other function."""
    return None if _HS is None else _HS.add_to_set


def version() -> str | None:
    """The libhs version the extension runs on, for ``afgw rules`` diagnostics."""
    return None if _HS is None else str(_HS.version())


def twins(patterns: Iterable[_Pattern], compiled: Mapping[str, Any]) -> dict[str, Any]:
    """For each view of ``compiled``: its patterns compiled again on libhs, exactly as the binding's
    database was (expressions, ids, flags), or the binding's database where that is not possible."""
    if _HS is None:
        return dict(compiled)
    by_view: dict[str, list[_Pattern]] = {}
    for p in patterns:
        if p.view in compiled:
            by_view.setdefault(p.view, []).append(p)
    out: dict[str, Any] = {}
    for view, db in compiled.items():
        chosen = by_view.get(view, [])
        try:
            out[view] = _HS.Database(
                [p.expression.encode() for p in chosen], [p.id for p in chosen], [p.flags for p in chosen]
            )
        except ValueError:  # a pattern this libhs refuses and the binding's accepts: keep the binding's
            out[view] = db
    return out
