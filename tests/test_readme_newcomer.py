"""What the README tells a newcomer to type works as it says: the Python that runs the smpplib example,
``make PYTHON=...``, and the ``afgw smsc`` command lines."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from gateway.cli import build_parser
from simulator.smsc import MoMessage
from tests.conftest import require_peer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _step(number: int) -> str:
    start = README.index(f"\n{number}. ", README.index("## Running the gateway"))
    return README[start : README.index(f"\n{number + 1}. ", start)]


def test_the_smpplib_example_names_the_python_that_has_smpplib() -> None:
    step = " ".join(_step(3).split())
    assert "`.venv/bin/python esme.py`" in step
    assert "`make test` installed it into `.venv` with the test extras" in step
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(re.match(r"smpplib\b", requirement) for requirement in extras["test"])


@pytest.mark.parametrize("python", ["/usr/local/bin/python3.12", "python3.13", "/opt/py/bin/python3"])
def test_make_python_chooses_the_interpreter_that_creates_the_venv(tmp_path: Path, python: str) -> None:
    make = require_peer("make")
    assert "`make PYTHON=/usr/local/bin/python3.12 test`" in README
    venv = tmp_path / "v"
    done = subprocess.run(
        [
            make,
            "--no-print-directory",
            "-n",
            "-C",
            str(ROOT),
            f"PYTHON={python}",
            f"VENV={venv}",
            f"{venv}/.installed",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines()[0] == f"{python} -m venv {venv}"


def _smsc_commands() -> list[str]:
    return [line.strip() for line in README.splitlines() if line.strip().startswith(".venv/bin/afgw smsc")]


def test_the_readme_shows_afgw_smsc_with_an_mo() -> None:
    assert any("--mo" in command for command in _smsc_commands())


@pytest.mark.parametrize("command", _smsc_commands())
def test_every_afgw_smsc_line_in_the_readme_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command == "smsc"
    for mo in args.mo:
        assert isinstance(mo, MoMessage)
        assert mo.destination.startswith("10690")  # routed to the sample configuration's ESME bank
