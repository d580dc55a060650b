"""Compiles modules of one package with mypyc, in place, as one group (run by ``make``).

    python -m afgw_compiled.build protocols/sip uri headers message parser transaction dialog
    python -m afgw_compiled.build rules engine normalise ... _views.c _hs.c:hs

A name ending in ``.c`` is a C extension of the package written by hand (a loop that mypyc's output
cannot match), built in the same step: it has no ``.py`` twin, so the package's Python code imports it
where it exists and falls back where it does not. ``NAME.c:LIB`` links with the system library LIB; it
is built apart and only where LIB's headers are installed: without them, make says so and the rest of
the package is built all the same.

The group's shared library lives in the package (``protocols/sip/compiled__mypyc...so``), not at the
top of the checkout, where only a process with the checkout on ``sys.path`` would find it: the
installed ``afgw`` and the test runner import the package from wherever it is. The module lists live
in the Makefile.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m afgw_compiled.build PACKAGE_DIR MODULE [MODULE ...]", file=sys.stderr)
        return 2
    from mypyc.build import mypycify
    from setuptools import Extension, setup  # type: ignore[import-untyped]  # no stubs: build time only

    package = Path(argv[0]).resolve()
    dotted = argv[0].strip("/").replace("/", ".")
    modules = [name for name in argv[1:] if not name.endswith(".c") and ".c:" not in name]
    sources = [name for name in argv[1:] if name.endswith(".c")]
    linked = [tuple(name.split(":", 1)) for name in argv[1:] if ".c:" in name]
    missing = [f"{name}.py" for name in modules if not (package / f"{name}.py").is_file()]
    missing += [name for name in [*sources, *(source for source, _ in linked)] if not (package / name).is_file()]
    if missing:
        print(f"{argv[0]}: no such module(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    setup(
        name=f"afgw-{dotted.replace('.', '-')}-compiled",
        ext_modules=[
            *mypycify([str(package / f"{name}.py") for name in modules], group_name=f"{dotted}.compiled"),
            *(Extension(f"{dotted}.{name[:-2]}", [str(Path(argv[0]) / name)]) for name in sources),
        ],
        script_args=["build_ext", "--inplace"],
    )
    for source, library in linked:
        _build_linked(argv[0], dotted, source, library)
    # Each module's extension is a shim over the group's library: its C never changes, so setuptools
    # copies the one built before with that build's time, which would look stale beside its source.
    for built in package.glob("*.so"):
        built.touch()
    return 0


def _build_linked(directory: str, dotted: str, source: str, library: str) -> None:
    """Build one C extension linked with a system library; where that cannot be, say so and go on."""
    from setuptools import Extension, setup

    name = f"{dotted}.{source[:-2]}"
    try:
        setup(
            name=f"afgw-{name.replace('.', '-')}",
            ext_modules=[Extension(name, [str(Path(directory) / source)], libraries=[library])],
            script_args=["build_ext", "--inplace"],
        )
    except (SystemExit, Exception) as exc:  # setuptools reports a failed compiler as SystemExit
        print(f"not built: {name} (needs lib{library} and its headers: {exc})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
