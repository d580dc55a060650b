"""The examples of docs/rules.md: each marked pack passes its own inline tests, and the output shown is real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "rules.md").read_text("utf-8")
EXAMPLES = dict(re.findall(r"<!-- example: (\w+) -->\n```yaml\n(.*?)```", DOC, re.S))


def afgw(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_the_doc_has_its_examples():
    assert set(EXAMPLES) >= {"scoring"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_pack_passes_its_inline_tests(tmp_path, name):
    (tmp_path / "example.yaml").write_text(EXAMPLES[name], "utf-8")
    proc = afgw(tmp_path, "rules", "test", "example.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")


def shown_commands() -> list[tuple[str, list[str], list[str]]]:
    """(example name, argv, lines shown) of each ``$ afgw ...`` block marked with an output comment."""
    out = []
    for command, name, shown in re.findall(r"```\n\$ afgw (.*?)\n<!-- output: (\w+) -->\n(.*?)```", DOC, re.S):
        argv = [arg.replace("\\\n", "") for arg in re.findall(r'"[^"]*"|\S+', command.replace("\\\n", " "))]
        argv = [a.strip('"') for a in argv if a != "\\"]
        out.append((name, argv, shown.strip("\n").splitlines()))
    return out


@pytest.mark.parametrize(("name", "argv", "shown"), shown_commands())
def test_output_shown_is_what_the_command_prints(tmp_path, name, argv, shown):
    pack = next(a for a in argv if a.endswith(".yaml"))
    (tmp_path / pack).write_text(EXAMPLES[name], "utf-8")
    proc = afgw(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    for line in shown:
        assert line in printed, (line, proc.stdout)
