"""Fixtures for the rule engine tests: rule sets built from inline YAML, and the shipped packs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import rules


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[..., Path]:
    """Write pack YAML to a file under tmp_path and return its path."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, "utf-8")
        return path

    return write


@pytest.fixture
def build(write_rules: Callable[..., Path]) -> Callable[..., rules.RuleSet]:
    """A RuleSet from rule items made by helpers.rule_yaml(), with an optional lists/macros header."""

    def make(*items: str, header: str = "") -> rules.RuleSet:
        return rules.build([write_rules(header + "rules:\n" + "".join(items))])

    return make


@pytest.fixture(scope="session")
def packs() -> rules.RuleSet:
    return rules.build([rules.DEFAULT_PACKS])
