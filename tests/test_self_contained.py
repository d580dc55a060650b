"""A plain clone runs every test: no test reads anything outside the checkout.

The conformance vectors once lived in ../shared beside the checkout, and a fresh clone silently skipped
every test that read them. These checks look at the test sources themselves, so a new test that
reaches out of the tree fails here, in every checkout, not only in one that lacks the neighbour.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import VECTORS

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# This file names what it looks for, so it is not one of the sources it checks.
SOURCES = sorted(p for p in TESTS.rglob("*.py") if p != Path(__file__).resolve())

# A literal that names the neighbour directory: "../shared", "shared/vectors", / "shared".
_SHARED = re.compile(r"""\.\./shared\b|["']shared(?:/|["'])""")
# Path(__file__)...parents[N] followed by any number of .parent: how far up a test climbs.
_CLIMB = re.compile(r"parents\[(\d+)\]((?:\.parent)*)")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("source", SOURCES, ids=_rel)
def test_no_test_names_the_shared_directory(source: Path) -> None:
    hits = [
        f"{_rel(source)}:{n}: {line.strip()}"
        for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1)
        if _SHARED.search(line)
    ]
    assert not hits, "tests must read tests/vectors, not ../shared:\n" + "\n".join(hits)


@pytest.mark.parametrize("source", SOURCES, ids=_rel)
def test_no_test_climbs_out_of_the_checkout(source: Path) -> None:
    # parents[k] of tests/a/b.py is inside the checkout while k <= depth - 1 (parents[depth-1] is ROOT).
    depth = len(source.relative_to(ROOT).parts)
    hits = []
    for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        for match in _CLIMB.finditer(line):
            up = int(match.group(1)) + match.group(2).count(".parent")
            if "__file__" in line and up > depth - 1:
                hits.append(f"{_rel(source)}:{n}: {line.strip()}")
    assert not hits, "a test reaches above the checkout:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    ("directory", "names"),
    [
        ("sip/rfc4475", {"INDEX.yaml", "wsinv.dat", "unksm2.dat", "escnull.dat"}),
        ("stir/libstirshaken", {"passport.txt", "sp.pem", "sp.pub", "ca.pem", "wrongsp.pem", "LICENSE"}),
    ],
)
def test_the_vectors_are_in_the_tree_and_named_in_the_readme(directory: str, names: set[str]) -> None:
    present = {p.name for p in (VECTORS / directory).iterdir()}
    assert names <= present
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    assert f"## {directory}/" in readme
    if directory.startswith("stir"):
        for name in present - {"LICENSE"}:
            assert f"`{name}`" in readme, name
