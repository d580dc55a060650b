"""Log lines as people and machines read them: paths are plain strings in both formats."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest

from gateway import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logs.configure("console", "warning")  # what tests/conftest.py sets for the rest of the suite


CASES: list[tuple[Any, Any]] = [
    (Path("config/gateway.yaml"), "config/gateway.yaml"),
    (Path("/opt/afgw/rules/packs"), "/opt/afgw/rules/packs"),
    (PurePosixPath("rules/常用.yaml"), "rules/常用.yaml"),
    (PureWindowsPath("C:/afgw/rules"), "C:\\afgw\\rules"),
    ([Path("rules/packs"), "extra.yaml"], ["rules/packs", "extra.yaml"]),
    ((Path("a.yaml"), Path("b.yaml")), ["a.yaml", "b.yaml"]),
    ({"packs": [Path("p")], "n": 1}, {"packs": ["p"], "n": 1}),
    ({Path("k.yaml"): 2}, {"k.yaml": 2}),
    ({Path("b"), Path("a")}, ["a", "b"]),
]


@pytest.mark.parametrize(("value", "plain"), CASES)
def test_json_logs_carry_paths_as_strings(stream: io.StringIO, value: Any, plain: Any) -> None:
    logs.configure("json", "info", stream=stream)
    logs.get_logger("t").info("rules.loaded", packs=value, rules=3)
    line = stream.getvalue()
    assert "Path(" not in line
    record = json.loads(line)
    assert record["packs"] == plain
    assert record["rules"] == 3


@pytest.mark.parametrize(("value", "plain"), CASES)
def test_console_logs_carry_paths_as_strings(stream: io.StringIO, value: Any, plain: Any) -> None:
    logs.configure("console", "info", stream=stream)
    logs.get_logger("t").warning("rules.reload_failed", path=value)
    line = stream.getvalue()
    assert "Path(" not in line
    assert f"path={plain!r}" in line if not isinstance(plain, str) else f"path={plain}" in line


def test_values_without_paths_are_left_as_they_are(stream: io.StringIO) -> None:
    logs.configure("json", "info", stream=stream)
    logs.get_logger("t").info("x", rules=("a", "b"), n=1)
    assert json.loads(stream.getvalue())["rules"] == ["a", "b"]
