"""gateway.yaml: the shipped sample loads, and every mistake is reported as file:line:col in one pass."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_loads():
    config = load(ROOT / "config" / "gateway.yaml")
    bank, centre = config.smpp.accounts
    assert centre.system_id == "fzzx"
    assert centre.authorised_senders == ("12381",)
    assert config.smpp.reserved_senders == ("12381", "96110")
    assert bank.system_id == "bank"
    assert bank.allowed_networks == (ipaddress.ip_network("127.0.0.0/8"),)
    assert bank.mo_prefixes == ("10690",)
    assert config.smpp.listen.port == 2775
    assert config.smpp.smsc.port == 2776


def test_passwords_stay_out_of_reprs():
    config = load(ROOT / "config" / "gateway.yaml")
    assert "bankpw" not in repr(config)
    assert "secret" not in repr(config)


BAD = """\
smpp:
  listen: {host: 127.0.0.1, port: 99999}
  accounts:
    - system_id: bank
      pasword: x
      throughput: fast
      bind_types: [tx]
      allowed_networks: [10.0.0.300/8]
      mo_prefixes: [10690]
  smsc:
    port: 2776
    port: 2777
"""


def test_every_error_of_a_file_in_one_pass(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load(path)
    errors = info.value.errors
    p = str(path)
    expected_prefixes = [
        f"{p}:2:35: port: 99999 is not a TCP port",
        f"{p}:4:7: account 'bank': give password or password_env",
        f"{p}:5:7: unknown field 'pasword'",
        f"{p}:6:19: throughput: expected a number",
        f"{p}:7:20: bind_types: 'tx' is not one of",
        f"{p}:8:26: allowed_networks: '10.0.0.300/8' is not an address or network",
        f"{p}:9:21: mo_prefixes: expected a string",
        f"{p}:12:5: duplicate key 'port'",
    ]
    for prefix in expected_prefixes:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    assert len(errors) == len(expected_prefixes)


def test_password_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "gateway.yaml"
    path.write_text("smpp:\n  accounts:\n    - system_id: bank\n      password_env: BANK_PW\n")
    with pytest.raises(ConfigError, match="BANK_PW"):
        load(path)
    monkeypatch.setenv("BANK_PW", "s3cret")
    assert load(path).smpp.accounts[0].password == "s3cret"


def test_afgw_run_exits_2_and_prints_locations(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 8
    assert all(line.startswith(f"{path}:") for line in lines)


def test_shipped_sip_section_loads():
    sip = load(ROOT / "config" / "gateway.yaml").sip
    assert sip is not None
    assert (sip.listen.udp_port, sip.listen.tcp_port) == (5060, 5060)
    assert sip.registrar.auth
    assert [u.user for u in sip.registrar.users] == ["8613800000001", "8613800000002"]
    assert sip.is_trusted("127.0.0.2")
    assert not sip.is_trusted("127.0.0.1")
    assert "handset1pw" not in repr(sip)


SIP_BAD = """\
sip:
  listen: {host: localhost, udp_port: 70000}
  trusted_peers: [10.0.0.300]
  registrar:
    auth: yes
    min_expires: 600
    max_expires: 60
    users:
      - user: alice
  rate_limit: {rate: 100, hard_limit: 10}
  dialogs: 5
"""


def test_sip_section_errors_in_one_pass(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(SIP_BAD)
    with pytest.raises(ConfigError) as info:
        load(path)
    p = str(path)
    expected_prefixes = [
        f"{p}:2:18: host: 'localhost' is not an IP address",
        f"{p}:2:39: udp_port: 70000 is not a UDP port",
        f"{p}:3:19: trusted_peers: '10.0.0.300' is not an address or network",
        f"{p}:5:5: registrar: need min_expires <= default_expires <= max_expires",
        f"{p}:5:11: auth: 'yes' is not one of on, off",
        f"{p}:9:9: user 'alice': give password or password_env (auth is on)",
        f"{p}:10:39: hard_limit: must be at least rate",
        f"{p}:11:3: unknown field 'dialogs'",
    ]
    errors = info.value.errors
    for prefix in expected_prefixes:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    assert len(errors) == len(expected_prefixes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_tcp_per_source: 8\n  tcp_message_timeout: 2.5", (8, 2.5)),
        ("max_tcp_connections: 100", (64, 10.0)),
    ],
)
def test_tcp_limits_per_source_and_message_deadline_are_configurable(tmp_path, text, expected):
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sip:\n  {text}\n")
    sip = load(path).sip
    assert sip is not None
    assert (sip.max_tcp_per_source, sip.tcp_message_timeout) == expected


def test_shipped_config_states_the_tcp_limits():
    sip = load(ROOT / "config" / "gateway.yaml").sip
    assert sip is not None
    assert (sip.max_tcp_per_source, sip.tcp_message_timeout, sip.tcp_idle_timeout) == (64, 10.0, 600.0)
