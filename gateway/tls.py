"""TLS for the gateway's listeners and its outbound peers: the settings, their checks, the SSL contexts.

Guarantees:

- Nothing older than TLS 1.2 is spoken, in either direction (``min_version`` may raise it to 1.3).
- Outbound (towards the SMSC), the peer's certificate is verified against ``ca_file`` (the system's
  trust store when none is given) and its name against ``server_name`` (the peer's configured host
  when none is given). A failed verification is a failed connection: the gateway never falls back to
  plain TCP nor to an unverified session.
- Inbound, ``require_client_cert`` refuses every handshake without a certificate that ``ca_file``
  verifies; without it a certificate is asked for but not required.
- Files are checked when the configuration is read: a missing or unreadable file, a key that does not
  match its certificate, or a wrong key password is reported at the ``file:line:col`` of the setting,
  never at the first connection. The key's password is never kept in a repr nor logged.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from rules.yaml_source import LocatedDict, Reader

#: The keys a TLS block may hold (a listener adds its host and port to these).
TLS_KEYS = frozenset(
    {
        "cert_file",
        "key_file",
        "key_password_env",
        "key_password_file",
        "ca_file",
        "require_client_cert",
        "server_name",
        "min_version",
    }
)
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """One side's TLS: its own certificate (a listener must have one), and whom it trusts."""

    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)
    #: Certificates of the authorities that peers' certificates must chain to.
    ca_file: str | None = None
    #: A listener refuses clients without a certificate that ``ca_file`` verifies.
    require_client_cert: bool = False
    #: The name the peer's certificate must carry (outbound); None: the configured host.
    server_name: str | None = None
    min_version: str = "1.2"


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """The context of a listener: our chain and key, client certificates per ``require_client_cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    assert tls.cert_file is not None
    context.load_cert_chain(tls.cert_file, tls.key_file, _password(tls))
    if tls.ca_file is not None:
        context.load_verify_locations(cafile=tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """The context of an outbound connection: the peer's chain and name verified, always."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file, _password(tls))
    return context


def _password(tls: TlsConfig) -> str:
    # Never None: for an encrypted key, OpenSSL would then ask for the password on the terminal.
    return tls.key_password or ""


def parse(
    reader: Reader, d: LocatedDict, base: Path, *, listener: bool, extra: frozenset[str] = frozenset()
) -> TlsConfig:
    """A TLS block of gateway.yaml, its files checked; problems are reported through ``reader``.

    ``listener``: the block configures a server side, which must have a certificate and its key.
    """
    allowed = (TLS_KEYS - {"server_name"} if listener else TLS_KEYS - {"require_client_cert"}) | extra
    reader.keys(d, set(allowed), required=("cert_file", "key_file") if listener else ())
    files: dict[str, str | None] = {}
    for key in ("cert_file", "key_file", "ca_file"):
        files[key] = _readable(reader, d, key, base)
    version = str(reader.get(d, "min_version", str, "1.2"))
    if version not in _VERSIONS:
        reader.error(d.where("min_version"), f"min_version: {version!r} is not one of 1.2, 1.3")
        version = "1.2"
    require = bool(reader.get(d, "require_client_cert", bool, False))
    if require and "ca_file" not in d:
        reader.error(
            d.where("require_client_cert"),
            "require_client_cert: needs ca_file, the authorities client certificates must chain to",
        )
    if ("cert_file" in d) != ("key_file" in d):
        reader.error(d.location, "give cert_file and key_file together")
    tls = TlsConfig(
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        key_password=_key_password(reader, d, base),
        ca_file=files["ca_file"],
        require_client_cert=require,
        server_name=reader.get(d, "server_name", str, None),
        min_version=version,
    )
    _check_chain(reader, d, tls)
    return tls


def _readable(reader: Reader, d: LocatedDict, key: str, base: Path) -> str | None:
    if key not in d:
        return None
    name = reader.get(d, key, str, None)
    if name is None:
        return None
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        why = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or type(exc).__name__).lower()
        reader.error(d.where(key), f"{key}: cannot read {path}: {why}")
        return None
    return str(path)


def _key_password(reader: Reader, d: LocatedDict, base: Path) -> str | None:
    if "key_password_env" in d:
        name = reader.get(d, "key_password_env", str, "")
        value = os.environ.get(name or "")
        if value is None:
            reader.error(d.where("key_password_env"), f"key_password_env: environment variable {name!r} is not set")
        return value
    if "key_password_file" in d:
        path = _readable(reader, d, "key_password_file", base)
        if path is None:
            return None
        # One line: the trailing newline an editor adds is not part of the password.
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    return None


def _check_chain(reader: Reader, d: LocatedDict, tls: TlsConfig) -> None:
    """Load the files as a connection would, so that a bad one is reported now, where it is named."""
    if tls.ca_file is not None:
        try:
            ssl.create_default_context(cafile=tls.ca_file)
        except ssl.SSLError as exc:
            reader.error(d.where("ca_file"), f"ca_file: {tls.ca_file} holds no usable certificate ({_reason(exc)})")
    if tls.cert_file is None or tls.key_file is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, _password(tls))
    except ssl.SSLError as exc:
        reason = _reason(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper():
            reader.error(d.where("key_file"), f"key_file: the key does not match the certificate of {tls.cert_file}")
        elif "PEM" in reason.upper() and "cert" in reason.lower():
            reader.error(d.where("cert_file"), f"cert_file: {tls.cert_file} holds no PEM certificate ({reason})")
        else:
            reader.error(
                d.where("key_file"),
                f"key_file: cannot load {tls.key_file} with the certificate of {tls.cert_file} ({reason})",
                "a wrong or missing key password reads the same",
            )


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.args[-1] if exc.args else exc)
