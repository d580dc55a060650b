"""Compiles the modules of the message path with mypyc, in place (``make compile-rules``).

    python rules/_mypyc_build.py build_ext --inplace

The modules are compiled as one group whose shared library lives in this package
(``rules/compiled__mypyc...so``) rather than beside the checkout: the gateway, its tests and its
benches import the package from wherever it is installed, and a library at the top of the checkout is
found only when the checkout is on ``sys.path``. The loader, compiler and YAML parts stay Python: they
run once per reload. ``rules/_build.py`` refuses a build older than its source.
"""

from __future__ import annotations

from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup  # type: ignore[import-untyped]  # no stubs: build time only

#: What runs for every message: evaluate, the term predicates and their context, the sender's kind, the
#: views, the conditions, the counters and the message.
HOT = ("engine", "predicates", "senders", "normalise", "homophones", "condition", "velocity", "message")

if __name__ == "__main__":
    package = Path(__file__).resolve().parent
    setup(
        name="afgw-rules-compiled",
        ext_modules=mypycify([str(package / f"{name}.py") for name in HOT], group_name="rules.compiled"),
    )
    # Each module's extension is a shim over the group's library: its C never changes, so setuptools
    # copies the one built before with that build's time, which rules/_build.py would take for stale.
    for built in package.glob("*.so"):
        built.touch()
