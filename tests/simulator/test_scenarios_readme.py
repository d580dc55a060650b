"""simulator/scenarios/README.md says what the code does: its example loads, and it names every word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator import scenarios
from simulator.scenarios import model, spec
from simulator.scenarios.expectations import EXPECTATIONS

README = Path(scenarios.__file__).with_name("README.md").read_text("utf-8")


def test_the_example_scenario_loads() -> None:
    [example] = re.findall(r"```yaml\n(.*?)```", README, re.S)
    town = scenarios.loads(example, "README.md")
    assert town.name == "small-town"
    assert town.real_seconds == 36
    assert [p.name for p in town.population.profiles] == ["careful", "trusting"]
    assert town.traffic.spoofed_labels is not None
    assert town.traffic.spoofed_labels.kinds == model.SPOOF_KINDS


@pytest.mark.parametrize(
    "word",
    [
        *EXPECTATIONS,
        *scenarios.shipped(),
        *model.PATTERNS,
        *model.SMS_KINDS,
        *model.EVASIONS,
        *model.SENDER_KINDS,
        *model.CALLER_ID_SPOOFS,
        *model.SPOOF_KINDS,
        *spec.FRAUD_CATEGORIES,
    ],
)
def test_every_word_of_the_format_is_documented(word: str) -> None:
    assert f"`{word}`" in README
