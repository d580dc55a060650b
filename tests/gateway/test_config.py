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
        f"{p}:4:7: account 'bank': give password, password_env or password_file",
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


def test_workers_own_udp_port_is_read_and_checked(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("sip:\n  listen: {udp_port: 5060, worker_udp_port: 5070}\n")
    sip = load(path).sip
    assert sip is not None
    assert sip.listen.worker_udp_port == 5070
    assert load(ROOT / "config" / "gateway.yaml").sip.listen.worker_udp_port == 0  # type: ignore[union-attr]
    path.write_text("sip:\n  listen: {udp_port: 5060, worker_udp_port: 65536}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.errors == [f"{path}:2:45: worker_udp_port: 65536 is not a UDP port (0..65535)"]


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
        f"{p}:9:9: user 'alice': give password, password_env or password_file (auth is on)",
        f"{p}:10:39: hard_limit: must be at least rate",
        f"{p}:11:3: unknown field 'dialogs'",
    ]
    errors = info.value.errors
    for prefix in expected_prefixes:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    assert len(errors) == len(expected_prefixes)


# --- how errors read on the terminal ------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from gateway.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("text", "where", "field"),
    [
        ("smpp:\n  accounts:\n    - password: x\n", "3:7", "system_id"),
        ("smpp:\n  accounts:\n    - {password: x, window: 5}\n", "3:7", "system_id"),
        ("sip:\n  registrar:\n    users:\n      - password: x\n", "4:9", "user"),
        ("sip:\n  registrar:\n    users:\n      - {user: a, password: x}\n      - {password: y}\n", "5:9", "user"),
    ],
)
def test_a_missing_required_field_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, field: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.errors == [f"{path}:{where}: missing required field {field!r}"]
    assert _run(["run", "-c", str(path)], capsys) == (2, "", f"{path}:{where}: missing required field {field!r}\n")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda d: d / "nope.yaml", "no such file"),
        (lambda d: d / "no-dir" / "gateway.yaml", "no such file"),
        (lambda d: d, "it is a directory"),
        (lambda d: (d / "f").write_text("x") and d / "f" / "gateway.yaml", "a part of the path is not a directory"),
    ],
)
def test_an_unreadable_config_file_says_why_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, why: str
) -> None:
    path = make(tmp_path)
    code, out, err = _run(["run", "-c", str(path)], capsys)
    assert (code, out, err) == (2, "", f"cannot read {path}: {why}\n")
    assert "Errno" not in err
    assert ":1:1:" not in err


def test_a_relative_missing_config_reads_as_given(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["run", "-c", "config/nope.yaml"], capsys) == (2, "", "cannot read config/nope.yaml: no such file\n")


@pytest.mark.parametrize(
    ("data", "where"), [(b"smpp: {}\n# caf\xe9\n", "2:6"), (b"\xff", "1:1"), (b"a: 1\nb: 2\nc: '\xc3'\n", "3:5")]
)
def test_a_config_that_is_not_utf8_points_at_the_first_bad_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, where: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(data)
    assert _run(["run", "-c", str(path)], capsys) == (2, "", f"{path}:{where}: not UTF-8 text\n")


def test_shipped_store_and_events_sections(tmp_path):
    config = load(ROOT / "config" / "gateway.yaml")
    assert config.store.backend == "sqlite"
    assert config.store.sqlite_path == str(ROOT / "config" / "data" / "afgw.db")
    assert config.events.jsonl is not None
    assert config.events.jsonl.path == str(ROOT / "config" / "data" / "events.jsonl")
    assert config.events.mqtt is None
    # A file without the sections keeps its state in SQLite next to it, and only logs events.
    bare = tmp_path / "gateway.yaml"
    bare.write_text("smpp: {}\n")
    config = load(bare)
    assert (config.store.backend, config.store.sqlite_path) == ("sqlite", str(tmp_path / "data" / "afgw.db"))
    assert config.events.jsonl is None


def test_mqtt_and_redis_settings(tmp_path, monkeypatch):
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "store: {backend: redis, redis_url: 'redis://127.0.0.1:6390/2', redis_prefix: gw2}\n"
        "events:\n  mqtt: {port: 1884, topic_prefix: op/afgw, client_id: gw-2, buffer: 50, password_env: MQ_PW}\n"
    )
    monkeypatch.setenv("MQ_PW", "pw")
    config = load(path)
    assert (config.store.backend, config.store.redis_url, config.store.redis_prefix) == (
        "redis",
        "redis://127.0.0.1:6390/2",
        "gw2",
    )
    mqtt = config.events.mqtt
    assert mqtt is not None
    assert (mqtt.port, mqtt.topic_prefix, mqtt.client_id, mqtt.buffer, mqtt.password) == (
        1884,
        "op/afgw",
        "gw-2",
        50,
        "pw",
    )
    assert "pw" not in repr(config)


BAD_STORE = """\
store:
  backend: postgres
  redis_url: http://127.0.0.1
  durable: yes
  cache: 1
events:
  jsonl: {max_bytes: 0, fsync_every: -1}
  mqtt:
    port: 70000
    topic_prefix: "afgw/#"
    buffer: 0
    bufer: 3
"""


def test_store_and_events_errors_in_one_pass(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD_STORE)
    with pytest.raises(ConfigError) as info:
        load(path)
    p = str(path)
    expected = [
        f"{p}:2:12: backend: 'postgres' is not one of memory, redis, sqlite",
        f"{p}:3:14: redis_url: 'http://127.0.0.1' is not a redis://",
        f"{p}:4:12: durable: expected",
        f"{p}:5:3: unknown field 'cache'",
        f"{p}:7:10: missing required field 'path'",
        f"{p}:7:22: max_bytes: must be greater than zero",
        f"{p}:7:38: fsync_every: must be 0",
        f"{p}:9:11: port: 70000 is not a TCP port",
        f"{p}:10:19: topic_prefix: 'afgw/#' is not a topic",
        f"{p}:11:13: buffer: must be greater than zero",
        f"{p}:12:5: unknown field 'bufer'",
    ]
    errors = info.value.errors
    for prefix in expected:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    assert len(errors) == len(expected)


def test_shipped_smpp_limits_load():
    smpp = load(ROOT / "config" / "gateway.yaml").smpp
    assert (smpp.max_connections, smpp.max_connections_per_address, smpp.unbound_pdus) == (512, 64, 10)
    assert (smpp.bind_rate, smpp.bind_burst, smpp.bind_rate_per_system_id, smpp.bind_burst_per_system_id) == (
        1.0,
        10,
        2.0,
        20,
    )
    assert (smpp.output_buffer, smpp.output_deadline, smpp.refusal_log_interval) == (1 << 20, 10.0, 10.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bind_rate: 0.05", "bind_rate: must be at least 1/session_init_timeout (0.1) per second"),
        ("bind_rate_per_system_id: 0.01", "bind_rate_per_system_id: must be at least 1/session_init_timeout"),
        ("max_connections: 0", "max_connections: must be greater than zero, got 0"),
        ("output_deadline: -1", "output_deadline: must be greater than zero"),
    ],
)
def test_smpp_limits_are_checked(tmp_path, line, message):
    path = tmp_path / "gateway.yaml"
    path.write_text(f"smpp:\n  session_init_timeout: 10\n  {line}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(message in e for e in info.value.errors), info.value.errors


def _sip_registrar(tmp_path: Path, algorithms: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sip:\n  overload_retry_after: 9\n  registrar:\n    digest_algorithms: {algorithms}\n")
    return path


@pytest.mark.parametrize(
    ("listed", "expected"),
    [("[SHA-256, MD5]", ("SHA-256", "MD5")), ("[md5, sha-256]", ("MD5", "SHA-256")), ("[MD5]", ("MD5",))],
)
def test_digest_algorithms_and_the_overload_retry_after_are_read(tmp_path, listed, expected):
    sip = load(_sip_registrar(tmp_path, listed)).sip
    assert sip is not None
    assert sip.registrar.digest_algorithms == expected
    assert sip.overload_retry_after == 9
    shipped = load(ROOT / "config" / "gateway.yaml").sip
    assert shipped is not None
    assert shipped.registrar.digest_algorithms == ("MD5",)  # what baresip 1.0 and sipp 3.6 answer


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("[SHA-512]", "4:25: digest_algorithms: 'SHA-512' is not one of SHA-256, MD5"),
        ("[MD5, md5]", "4:30: digest_algorithms: MD5 is listed twice"),
        ("[]", "4:24: digest_algorithms: name at least one of SHA-256, MD5"),
    ],
)
def test_digest_algorithms_errors_say_where(tmp_path, listed, message):
    path = _sip_registrar(tmp_path, listed)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(e.startswith(f"{path}:{message}") for e in info.value.errors), info.value.errors


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
