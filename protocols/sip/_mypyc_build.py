"""Compiles the SIP core with mypyc, in place (``make compile-sip``).

    python protocols/sip/_mypyc_build.py build_ext --inplace

The modules are compiled as one group whose shared library lives in this package
(``protocols/sip/compiled__mypyc...so``), not at the top of the checkout, where only a process with
the checkout on ``sys.path`` would find it: the installed ``afgw`` and the test runner import the
package from wherever it is. ``protocols/sip/_build.py`` refuses a build older than its source.
"""

from __future__ import annotations

from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup  # type: ignore[import-untyped]  # no stubs: build time only

#: What every message goes through: parsing, headers, URIs, the message, transactions and dialogs.
HOT = ("uri", "headers", "message", "parser", "transaction", "dialog")

if __name__ == "__main__":
    package = Path(__file__).resolve().parent
    setup(
        name="afgw-sip-compiled",
        ext_modules=mypycify([str(package / f"{name}.py") for name in HOT], group_name="protocols.sip.compiled"),
    )
    # Each module's extension is a shim over the group's library: its C never changes, so setuptools
    # copies the one built before with that build's time, which _build.py would take for stale.
    for built in package.glob("*.so"):
        built.touch()
