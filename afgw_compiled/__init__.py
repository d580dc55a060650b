"""Compiled builds of a package's hot modules: taken when they are as new as their sources.

``make`` compiles the modules that run for every message (the SIP core, the rules engine's message
path) with mypyc, in place, as one group per package (``afgw_compiled.build``). Python prefers an
extension module to the ``.py`` file beside it, so a build left from before a source changed would run
in its place, silently, with the old behaviour. A package calls :func:`use_fresh_build` first thing:
when any compiled module in it is older than its source, every module of the package is then loaded
from its source, with a warning naming the fix. All of them, not only the stale one: the modules of a
group call each other's native classes directly, and a compiled module cannot use a class that its
neighbour now defines in Python.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType


class StaleBuildWarning(RuntimeWarning):
    """A compiled module is older than its source: the package runs from its sources instead."""


def stale_builds(package: Path) -> list[Path]:
    """The compiled modules of ``package`` that are older than their ``.py`` source."""
    stale = []
    for built in sorted(package.glob("*.so")):
        source = package / f"{built.name.split('.', 1)[0]}.py"
        if source.exists() and source.stat().st_mtime > built.stat().st_mtime:
            stale.append(built)
    return stale


class SourcesOnly(importlib.abc.MetaPathFinder):
    """Finds the direct submodules of one package in their ``.py`` sources, never in a build."""

    def __init__(self, package: str, directory: Path) -> None:
        self.package = package
        self.directory = directory

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        parent, _, leaf = fullname.rpartition(".")
        if parent != self.package:
            return None
        source = self.directory / f"{leaf}.py"
        if not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def use_fresh_build(package: str, directory: Path, make_target: str) -> bool:
    """Let ``package`` (its ``__name__``, in ``directory``) load its compiled modules only when none is
    stale; otherwise load it from its sources and warn. True when a build, if any, is used."""
    stale = stale_builds(directory)
    if not stale:
        return True
    if not any(isinstance(f, SourcesOnly) and f.package == package for f in sys.meta_path):
        sys.meta_path.insert(0, SourcesOnly(package, directory))
    names = ", ".join(p.name.split(".", 1)[0] for p in stale)
    warnings.warn(
        f"{package}: the compiled build of {names} is older than the source; running the Python sources "
        f"(slower) until `make {make_target}` builds it again, or `make clean-compiled` removes it",
        StaleBuildWarning,
        stacklevel=2,
    )
    return False
