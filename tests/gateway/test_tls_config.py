"""TLS settings in gateway.yaml: read and checked when the file is, every fault at file:line:col."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from tests.tls_certs import KEY_PASSWORD, Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def write(directory: Path, text: str) -> Path:
    path = directory / "gateway.yaml"
    path.write_text(text)
    return path


def test_listeners_and_the_smsc_peer_read_with_relative_paths(tmp_path, certs, monkeypatch):
    for name in ("server.crt", "server.key", "ca.crt", "server-encrypted.crt", "server-encrypted.key"):
        shutil.copy(certs.ca.parent / name, tmp_path / name)
    monkeypatch.setenv("AFGW_TLS_KEY_PASSWORD", KEY_PASSWORD)
    path = write(
        tmp_path,
        """\
smpp:
  tls_listen:
    port: 3550
    cert_file: server.crt
    key_file: server.key
    ca_file: ca.crt
    require_client_cert: true
  smsc:
    tls: {ca_file: ca.crt, server_name: smsc.test}
sip:
  listen: {tls_port: 5061}
  tls:
    cert_file: server-encrypted.crt
    key_file: server-encrypted.key
    key_password_env: AFGW_TLS_KEY_PASSWORD
    min_version: '1.3'
    ca_file: ca.crt
    trunk_names: [trunk.test]
""",
    )
    config = load(path)
    assert config.smpp.tls_listen is not None
    assert config.smpp.tls_listen.port == 3550
    assert config.smpp.tls is not None
    assert config.smpp.tls.require_client_cert
    assert config.smpp.tls.cert_file == str(tmp_path / "server.crt")
    assert config.smpp.smsc.tls is not None
    assert config.smpp.smsc.tls.server_name == "smsc.test"
    assert config.sip is not None
    assert config.sip.listen.tls_port == 5061
    assert config.sip.tls is not None
    assert config.sip.tls.min_version == "1.3"
    assert config.sip.tls_trunk_names == frozenset({"trunk.test"})
    assert KEY_PASSWORD not in repr(config)


def test_key_password_from_a_file(tmp_path, certs):
    (tmp_path / "key.pw").write_text(KEY_PASSWORD + "\n")
    path = write(
        tmp_path,
        f"""\
sip:
  listen: {{tls_port: 5061}}
  tls:
    cert_file: {certs.server_encrypted.cert}
    key_file: {certs.server_encrypted.key}
    key_password_file: key.pw
""",
    )
    sip = load(path).sip
    assert sip is not None
    assert sip.tls is not None
    assert sip.tls.key_password == KEY_PASSWORD


def test_every_tls_fault_at_its_place(tmp_path, certs):
    path = write(
        tmp_path,
        f"""\
smpp:
  tls_listen:
    cert_file: {certs.server.cert}
    key_file: {certs.client.key}
    require_client_cert: true
  smsc:
    tls:
      ca_file: missing-ca.crt
      min_version: '1.1'
      require_client_cert: true
sip:
  listen: {{tls_port: 5061}}
  tls:
    cert_file: {certs.server_encrypted.cert}
    key_file: {certs.server_encrypted.key}
""",
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    errors = info.value.errors
    p = str(path)
    expected = [
        f"{p}:4:15: key_file: the key does not match the certificate of {certs.server.cert}",
        f"{p}:5:26: require_client_cert: needs ca_file",
        f"{p}:8:16: ca_file: cannot read {tmp_path / 'missing-ca.crt'}: no such file",
        f"{p}:9:20: min_version: '1.1' is not one of 1.2, 1.3",
        f"{p}:10:7: unknown field 'require_client_cert'",
        f"{p}:15:15: key_file: cannot load {certs.server_encrypted.key}",
    ]
    for prefix in expected:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    assert len(errors) == len(expected), errors


def test_a_listener_needs_its_certificate(tmp_path):
    path = write(tmp_path, "smpp:\n  tls_listen:\n    port: 3550\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert [e for e in info.value.errors if "cert_file" in e and e.startswith(f"{path}:3:5:")], info.value.errors


def test_afgw_run_refuses_a_key_that_is_not_the_certificates(tmp_path, certs):
    path = write(
        tmp_path,
        f"smpp:\n  tls_listen:\n    cert_file: {certs.server.cert}\n    key_file: {certs.client.key}\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"{path}:4:15: key_file: the key does not match the certificate of {certs.server.cert}"
    )
