"""The rules section of gateway.yaml, and rule errors at start treated as configuration errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config import ConfigError, load


def test_rules_section_defaults_and_templates(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "rules:\n  warnings:\n    min_interval: 60\n    templates:\n      default: 当心诈骗\n", encoding="utf-8"
    )
    rules = load(path).rules
    assert rules is not None
    assert rules.packs == ()  # the shipped packs
    assert rules.tag_prefix == "【疑似诈骗】"
    assert rules.warning_interval == 60
    assert rules.warning_templates == (("default", "当心诈骗"),)


def test_rules_section_errors_point_at_the_value(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("rules:\n  packs: [missing/]\n  reload_interval: -1\n  tag: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    errors = info.value.errors
    assert any(e.startswith(f"{path}:2:11: packs: 'missing/' does not exist") for e in errors), errors
    assert any(e.startswith(f"{path}:3:20: reload_interval: must be 0 (off) or more") for e in errors), errors
    assert any(e.startswith(f"{path}:4:3: unknown field 'tag'") for e in errors), errors


def test_afgw_run_refuses_a_broken_rule_pack_with_its_location(tmp_path):
    pack = tmp_path / "bad.yaml"
    pack.write_text("rules:\n  - id: x\n    titel: oops\n", encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "smpp:\n  listen: {host: 127.0.0.1, port: 0}\n  smsc: {port: 9}\nrules:\n  packs: [bad.yaml]\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert f"{pack}:3:5: " in proc.stderr
    assert "titel" in proc.stderr
