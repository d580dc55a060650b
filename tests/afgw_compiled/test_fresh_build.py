"""A package's compiled build is used only while it is as new as its sources (afgw_compiled)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import rules
from afgw_compiled import stale_builds

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
OLD = (1_000_000, 1_000_000)


def _package(root: Path) -> Path:
    """A package of two modules whose source says where it was loaded from, with a 'build' of one of
    them that is no real extension: importing it fails, which shows when the build was taken."""
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pathlib import Path\nfrom afgw_compiled import use_fresh_build\n"
        "FRESH = use_fresh_build(__name__, Path(__file__).parent, 'compile')\n"
    )
    (package / "engine.py").write_text("FROM = 'source'\n")
    (package / "other.py").write_text("FROM = 'source'\n")
    (package / f"engine{SUFFIX}").write_bytes(b"not an extension module")
    return package


def _import(root: Path, module: str) -> subprocess.CompletedProcess[str]:
    code = f"import {module} as m, pkg; print(m.FROM, pkg.FRESH)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(rules.__file__).parents[1])])}
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, env=env)


def test_a_build_older_than_its_source_is_not_used_and_the_package_runs_from_its_sources(tmp_path: Path) -> None:
    package = _package(tmp_path)
    os.utime(package / f"engine{SUFFIX}", OLD)
    done = _import(tmp_path, "pkg.engine")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["source", "False"]
    assert "StaleBuildWarning" in done.stderr
    assert "make compile" in done.stderr
    assert stale_builds(package) == [package / f"engine{SUFFIX}"]


def test_a_build_as_new_as_its_source_is_the_one_imported(tmp_path: Path) -> None:
    package = _package(tmp_path)
    os.utime(package / "engine.py", OLD)
    done = _import(tmp_path, "pkg.engine")
    assert done.returncode != 0  # the "extension" was loaded, and is none
    assert "not an extension" in done.stderr or "invalid ELF header" in done.stderr or "ImportError" in done.stderr
    assert "StaleBuildWarning" not in done.stderr
    assert stale_builds(package) == []


def test_every_module_of_a_package_with_a_stale_build_comes_from_its_source(tmp_path: Path) -> None:
    # the modules of a group use each other's native classes: none may stay compiled beside a Python one
    package = _package(tmp_path)
    (package / f"other{SUFFIX}").write_bytes(b"not an extension module")
    os.utime(package / f"engine{SUFFIX}", OLD)  # only engine's build is stale; other's is fresh
    done = _import(tmp_path, "pkg.other")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["source", "False"]


def test_the_group_library_has_no_source_and_is_never_taken_for_stale(tmp_path: Path) -> None:
    library = tmp_path / f"compiled__mypyc{SUFFIX}"
    library.write_bytes(b"")
    os.utime(library, OLD)
    assert stale_builds(tmp_path) == []
