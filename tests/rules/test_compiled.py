"""The optional mypyc build of the message path (``make compile-rules``): a stale build is refused, and
the package finds its data whether its modules run compiled or as Python."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rules
from rules._build import refuse_stale_builds
from rules.homophones import TABLE, fold_squeezed
from rules.normalise import domains, normalise


def test_a_compiled_module_older_than_its_source_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "engine.py"
    built = tmp_path / "engine.cpython-311-x86_64-linux-gnu.so"
    built.write_bytes(b"")
    source.write_text("")
    os.utime(built, (1_000_000, 1_000_000))
    with pytest.raises(ImportError, match=r"engine\.py.*make compile-rules"):
        refuse_stale_builds(tmp_path)
    os.utime(built, None)
    os.utime(source, (1_000_000, 1_000_000))
    refuse_stale_builds(tmp_path)  # built after its source: loaded as it is


def test_the_group_library_has_no_source_and_is_not_taken_for_stale(tmp_path: Path) -> None:
    (tmp_path / "compiled__mypyc.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    os.utime(tmp_path / "compiled__mypyc.cpython-311-x86_64-linux-gnu.so", (1_000_000, 1_000_000))
    refuse_stale_builds(tmp_path)


def test_the_data_files_are_found_beside_the_package() -> None:
    # a compiled module's __file__ is not its own path: the tables are found from the package's
    assert Path(rules.__file__).resolve().parent / "homophones.json" == TABLE
    assert TABLE.exists()
    assert fold_squeezed("安全帐户") == fold_squeezed("鞍全账护")
    assert domains(normalise("登录 pay-refund.buzz 领取")) == ("pay-refund.buzz",)  # a TLD of data/signals.json
