"""The ``http`` section: read, checked with file:line:col errors, documented in the shipped config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import ConfigError, HttpConfig, load

ROOT = Path(__file__).resolve().parents[3]


def test_the_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("http:\n  host: 10.0.0.5\n  port: 9102\n", encoding="utf-8")
    assert load(path).http == HttpConfig("10.0.0.5", 9102)


def test_defaults_are_loopback_and_8080(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("http: {}\n", encoding="utf-8")
    assert load(path).http == HttpConfig("127.0.0.1", 8080)


def test_without_the_section_there_is_no_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("smpp: {}\n", encoding="utf-8")
    assert load(path).http is None


def test_every_error_of_the_section_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("http:\n  host: metrics.example.cn\n  port: 80800\n  tls: on\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    p = str(path)
    assert info.value.errors == [
        f"{p}:2:9: host: 'metrics.example.cn' is not an IP address (hint: e.g. 127.0.0.1)",
        f"{p}:3:9: port: 80800 is not a TCP port (0..65535)",
        f"{p}:4:3: unknown field 'tls' (hint: allowed: console, host, port)",
    ]


def test_the_shipped_config_documents_the_section_and_its_defaults() -> None:
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    block = re.search(r"^# http:\n#   host: (\S+)\n#   port: (\d+)\n", text, re.MULTILINE)
    assert block is not None
    assert HttpConfig(block.group(1), int(block.group(2))) == HttpConfig()


def test_the_shipped_sample_console_section_loads_and_its_accounts_log_in(tmp_path: Path) -> None:
    from gateway.web.console.auth import verify_password

    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    block = re.search(r"^# http:\n(?:#   .*\n)+", text, re.MULTILINE)
    assert block is not None
    path = tmp_path / "gateway.yaml"
    path.write_text("\n".join(line[2:] for line in block.group(0).splitlines()) + "\n", encoding="utf-8")
    http = load(path).http
    assert http is not None
    assert http.console is not None
    agent, viewer = http.console.accounts
    assert (agent.name, agent.role, viewer.name, viewer.role) == ("duty-agent", "agent", "duty-viewer", "viewer")
    assert verify_password("demo-agent-2026", agent.password_hash)
    assert not verify_password("demo-agent-2027", agent.password_hash)


def test_console_errors_point_at_the_field(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "http:\n  console:\n    accounts:\n      - name: wang\n        role: boss\n"
        "        password_hash: plain-text\n    session_minutes: 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    p = str(path)
    assert info.value.errors == [
        f"{p}:5:15: role: 'boss' is not one of viewer, agent, admin",
        f"{p}:6:24: password_hash: expected scrypt$N$r$p$salt$key (made by `afgw console passwd`)",
        f"{p}:7:22: session_minutes: must be greater than zero, got 0.0",
    ]
