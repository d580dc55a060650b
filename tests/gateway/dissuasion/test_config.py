"""dissuasion.scoring and the instruction topics under events.mqtt, as gateway.yaml gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.dissuasion.scoring import ScoringConfig

SHIPPED = Path(__file__).parents[3] / "config" / "gateway.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_scoring_is_the_documented_default():
    assert load(SHIPPED).scoring == ScoringConfig()


def test_scoring_and_instruction_topics_are_read(tmp_path):
    config = load(
        write(
            tmp_path,
            "events:\n"
            "  mqtt: {instructions_topic: centre/in, instruction_errors_topic: centre/err,"
            " instruction_max_bytes: 1000, instruction_references: 50, instruction_retention: 3600}\n"
            "dissuasion:\n"
            "  scoring:\n"
            "    half_life: 3600\n"
            "    thresholds: {low: 10, medium: 20, high: 30}\n"
            "    points: {sms_warned: 7, dissuade: 0}\n"
            "    feed: [loan.fee, investment]\n"
            '    listed_numbers: ["+85261234567"]\n',
        )
    )
    mqtt = config.events.mqtt
    assert mqtt is not None
    assert (mqtt.instructions_topic, mqtt.instruction_errors_topic) == ("centre/in", "centre/err")
    assert (mqtt.instruction_max_bytes, mqtt.instruction_references) == (1000, 50)
    assert mqtt.instruction_retention == 3600.0
    assert config.scoring == ScoringConfig(
        half_life=3600.0,
        thresholds=(("low", 10.0), ("medium", 20.0), ("high", 30.0)),
        sms_warned=7.0,
        dissuade=0.0,
        feed=("loan.fee", "investment"),
        listed_numbers=("+85261234567",),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dissuasion:\n  scoring:\n    half_life: 0\n", ":3:16: half_life: must be greater than zero"),
        ("dissuasion:\n  scoring:\n    thresholds: {low: 50, medium: 40, high: 100}\n", "need low < medium < high"),
        ("dissuasion:\n  scoring:\n    thresholds: {critical: 5}\n", "unknown field 'critical'"),
        ("dissuasion:\n  scoring:\n    points: {sms_warned: -1}\n", "sms_warned: must be 0 or more"),
        ("dissuasion:\n  scoring:\n    points: {sms_warn: 1}\n", "did you mean 'sms_warned'?"),
        ("dissuasion:\n  scoring:\n    listed_numbers: [13800000001]\n", "is not a phone number"),
        ("dissuasion:\n  scoring:\n    listed_numbers: [abc]\n", "is not a phone number"),
        ("dissuasion:\n  scorring: {}\n", ":2:3: unknown field 'scorring'"),
        ("events:\n  mqtt: {instructions_topic: 'afgw/+/in'}\n", "instructions_topic: 'afgw/+/in' is not a topic"),
        ("events:\n  mqtt: {instruction_errors_topic: '#'}\n", "instruction_errors_topic: '#' is not a topic"),
        ("events:\n  mqtt: {instruction_max_bytes: 0}\n", "instruction_max_bytes: must be greater than zero"),
    ],
)
def test_scoring_and_topic_errors_say_where(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    assert any(message in error and error.startswith(str(tmp_path)) for error in caught.value.errors), (
        caught.value.errors
    )
