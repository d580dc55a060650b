"""Refuses a stale mypyc build of this package at import (see ``make compile-rules``).

Python prefers an extension module to the ``.py`` file beside it: after the source changes, a build
left from before would run in its place, silently, and give the verdicts of the old code. Importing
this module (the package does so first) raises ImportError instead, naming the fix.
"""

from __future__ import annotations

from pathlib import Path


def refuse_stale_builds(package: Path) -> None:
    """Raise ImportError when a compiled module in ``package`` is older than its ``.py`` source."""
    for built in package.glob("*.so"):
        source = package / f"{built.name.split('.', 1)[0]}.py"
        if source.exists() and source.stat().st_mtime > built.stat().st_mtime:
            raise ImportError(
                f"{built} is older than {source.name}: run `make compile-rules` again, or `make clean-compiled`"
            )


refuse_stale_builds(Path(__file__).parent)
