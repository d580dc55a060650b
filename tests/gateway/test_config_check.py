"""``afgw config check``: every error of gateway.yaml and the files it names at file:line:col, then a
summary line; secrets from the environment or from files, never printed and never in a repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "esme": "Esm3Pw",  # SMPP passwords are at most 8 octets
    "smsc": "Smsc9Pw",
    "user": "handset-digest-secret-41",
    "mqtt": "mqtt-broker-secret-77",
    "redis": "redis-secret-53",
}


def secret_config(tmp_path: Path) -> Path:
    (tmp_path / "smsc.secret").write_text(SECRETS["smsc"] + "\n")
    (tmp_path / "redis.secret").write_text(SECRETS["redis"])
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """\
smpp:
  accounts:
    - system_id: bank
      password_env: AFGW_TEST_ESME_PASSWORD
  smsc:
    password_file: smsc.secret
sip:
  registrar:
    auth: on
    users:
      - user: "8613800000001"
        password_env: AFGW_TEST_USER_PASSWORD
store:
  backend: redis
  password_file: redis.secret
events:
  mqtt:
    username: afgw
    password_env: AFGW_TEST_MQTT_PASSWORD
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFGW_TEST_ESME_PASSWORD", SECRETS["esme"])
    monkeypatch.setenv("AFGW_TEST_USER_PASSWORD", SECRETS["user"])
    monkeypatch.setenv("AFGW_TEST_MQTT_PASSWORD", SECRETS["mqtt"])


def test_secrets_come_from_the_environment_and_from_files(tmp_path, secret_env):
    config = load(secret_config(tmp_path))
    assert config.smpp.accounts[0].password == SECRETS["esme"]
    assert config.smpp.smsc.password == SECRETS["smsc"]  # the file's trailing newline is not part of it
    assert config.sip is not None
    assert config.sip.registrar.users[0].password == SECRETS["user"]
    assert config.store.redis_password == SECRETS["redis"]
    assert config.events.mqtt is not None
    assert config.events.mqtt.password == SECRETS["mqtt"]
    text = repr(config)
    for secret in SECRETS.values():
        assert secret not in text


def test_config_check_prints_a_summary_and_no_secret(tmp_path, secret_env, capsys):
    path = secret_config(tmp_path)
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == f"{path}: ok"
    assert "accounts: bank" in out
    assert "1 handset users" in out
    assert "store: redis (redis://127.0.0.1:6379/0)" in out
    assert "events: mqtt 127.0.0.1:1883" in out
    for secret in SECRETS.values():
        assert secret not in out + err


def test_the_shipped_configuration_checks_ok(capsys):
    assert main(["config", "check", str(ROOT / "config" / "gateway.yaml")]) == 0
    out = capsys.readouterr().out
    assert "smsc: 127.0.0.1:2776 as 'afgw', 2 transceiver binds" in out
    assert re.search(r"^  rules: [1-9][0-9]* rules from the shipped packs$", out, re.M)
    assert "store: sqlite" in out
    assert "  sip: 127.0.0.1 udp 5060 tcp 5060, domain " in out


def test_config_check_names_the_workers_own_sip_port(tmp_path, capsys):
    path = tmp_path / "gateway.yaml"
    path.write_text("sip:\n  listen: {udp_port: 5060, tcp_port: 5060, worker_udp_port: 5070}\n")
    assert main(["config", "check", str(path)]) == 0
    assert "  sip: 127.0.0.1 udp 5060 tcp 5060 (workers' own udp from 5070), domain " in capsys.readouterr().out


def test_a_missing_secret_is_an_error_at_its_key(tmp_path, monkeypatch):
    monkeypatch.delenv("AFGW_TEST_NOT_SET", raising=False)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """\
smpp:
  accounts:
    - system_id: bank
      password_env: AFGW_TEST_NOT_SET
  smsc:
    password_file: nowhere.secret
store:
  password: inline
  password_file: also.secret
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.errors == [
        f"{path}:4:21: account 'bank': environment variable 'AFGW_TEST_NOT_SET' is not set",
        f"{path}:6:20: smsc: cannot read password_file 'nowhere.secret': no such file",
        f"{path}:9:18: store: give one of password, password_env, password_file, not password and password_file",
    ]


def test_every_error_of_the_configuration_and_its_files_then_a_count(tmp_path, capsys):
    pack = tmp_path / "bad_pack.yaml"
    pack.write_text("rules:\n  - id: x\n    nonsense: 1\n", encoding="utf-8")
    templates = tmp_path / "templates.yaml"
    templates.write_text("- not a mapping\n", encoding="utf-8")
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""\
smpp:
  listen: {{port: 99999}}
  colour: blue
rules:
  packs: [{pack}]
dissuasion:
  templates: {templates}
""",
        encoding="utf-8",
    )
    assert main(["config", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert lines[0].startswith(f"{path}:2:18: port: 99999")
    assert lines[1].startswith(f"{path}:3:3: ")
    assert "colour" in lines[1]
    # The companion files are checked in the same pass, each error at its own file:line:col.
    assert any(line.startswith(f"{templates}:1:") for line in lines[2:-1]), lines
    assert any(line.startswith(f"{pack}:") for line in lines[2:-1]), lines
    assert lines[-1] == f"{path}: {len(lines) - 1} errors"
