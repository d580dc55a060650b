"""The ``dissuasion:`` section of gateway.yaml: defaults, and every bad value reported where it stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.dissuasion import templates

ROOT = Path(__file__).parents[3]  # the repository


def test_shipped_config_has_the_engine_with_its_templates():
    config = load(ROOT / "config" / "gateway.yaml")
    d = config.dissuasion
    assert d is not None
    assert d.interval == 300.0
    assert d.lease < d.interval
    assert d.quiet_hours is not None
    assert (d.quiet_hours.start, d.quiet_hours.end, d.quiet_hours.utc_offset) == (22 * 60, 7 * 60, 8.0)
    assert d.templates is not None
    assert d.templates.template_for("冒充公检法").fraud_type == "police_impersonation"


def test_no_section_no_engine(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("store: {backend: memory}\n")
    assert load(path).dissuasion is None


def test_defaults_use_the_built_in_templates(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("dissuasion: {opt_out: ['8613900000001']}\n")
    d = load(path).dissuasion
    assert d is not None
    assert (d.interval, d.max_attempts, d.quiet_hours) == (300.0, 6, None)
    assert d.opt_out == frozenset({"8613900000001"})
    assert d.templates_path == str(templates.DEFAULT_PATH)
    assert d.templates is not None


def test_tick_gap_is_read_and_zero_allowed(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("dissuasion: {tick_gap: 0}\n")
    d = load(path).dissuasion
    assert d is not None
    assert d.tick_gap == 0.0


def test_own_templates_relative_to_the_config(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "templates:\n  default:\n    victim: 请勿转账。咨询96110\n    family: 请劝阻亲属（尾号{tail}）转账\n",
        encoding="utf-8",
    )
    path = tmp_path / "gateway.yaml"
    path.write_text("dissuasion: {templates: mine.yaml}\n")
    d = load(path).dissuasion
    assert d is not None
    assert d.templates is not None
    assert d.templates.render("loan", "family", "8613900001234") == "请劝阻亲属（尾号1234）转账"


@pytest.mark.parametrize(
    ("section", "where", "why"),
    [
        ("  interval: 0\n", "2:13", "interval: must be greater than zero"),
        ("  interval: 60\n  lease: 90\n", "3:10", "must be shorter than the interval"),
        ("  max_attempts: -1\n", "2:17", "max_attempts: must be greater than zero"),
        ("  max_attempts_per_day: -2\n", "2:25", "must be 0 (no cap) or more"),
        ("  quiet_hours: {start: '25:00', end: '07:00'}\n", "2:24", "'25:00' is not a time of day"),
        ("  quiet_hours: {start: '22:00', end: '7'}\n", "2:38", "'7' is not a time of day"),
        ("  quiet_hours: {start: '22:00'}\n", "2:16", "missing required field 'end'"),
        ("  quiet_hours: {start: '22:00', end: '07:00', utc_offset: 30}\n", "2:59", "is not a time zone"),
        ("  opt_out: [8613900000001]\n", "2:13", "opt_out: expected a string"),
        ("  tick_gap: 2\n", "2:13", "tick_gap: 2.0 s must be from 0 to 1"),
        ("  intervall: 300\n", "2:3", "unknown field 'intervall'"),
    ],
)
def test_bad_values_are_located(tmp_path, section, where, why):
    path = tmp_path / "gateway.yaml"
    path.write_text("dissuasion:\n" + section)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(e.startswith(f"{path}:{where}: ") and why in e for e in info.value.errors), info.value.errors


def test_a_bad_template_stops_the_start_pointing_into_the_templates_file(tmp_path):
    templates = tmp_path / "t.yaml"
    templates.write_text(
        "templates:\n  default:\n    victim: 请回复验证码\n    family: 详见 http://127.0.0.1/\n", encoding="utf-8"
    )
    path = tmp_path / "gateway.yaml"
    path.write_text("dissuasion: {templates: t.yaml}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert [e.split(": ")[0] for e in info.value.errors] == [f"{templates}:3:13", f"{templates}:4:13"]
