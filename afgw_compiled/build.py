"""Compiles modules of one package with mypyc, in place, as one group (run by ``make``).

    python -m afgw_compiled.build protocols/sip uri headers message parser transaction dialog

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
    from setuptools import setup  # type: ignore[import-untyped]  # no stubs: build time only

    package = Path(argv[0]).resolve()
    dotted = argv[0].strip("/").replace("/", ".")
    missing = [name for name in argv[1:] if not (package / f"{name}.py").is_file()]
    if missing:
        print(f"{argv[0]}: no such module(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    setup(
        name=f"afgw-{dotted.replace('.', '-')}-compiled",
        ext_modules=mypycify([str(package / f"{name}.py") for name in argv[1:]], group_name=f"{dotted}.compiled"),
        script_args=["build_ext", "--inplace"],
    )
    # Each module's extension is a shim over the group's library: its C never changes, so setuptools
    # copies the one built before with that build's time, which would look stale beside its source.
    for built in package.glob("*.so"):
        built.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
