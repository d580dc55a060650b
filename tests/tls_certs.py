"""Test certificates made with `cryptography`: a CA, server and client certificates it signs, and an
untrusted CA with a client certificate of its own for the negative tests. Written as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "k3y-pass"


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    #: Names 127.0.0.1, localhost and smsc.test.
    server: Pair
    #: The same names, its key encrypted with KEY_PASSWORD.
    server_encrypted: Pair
    #: Signed by the CA but naming only wrong.test.
    wrong_name: Pair
    client: Pair
    #: A client certificate naming trunk.test (a SIP trunk identified by its certificate).
    trunk: Pair
    untrusted_ca: Path
    untrusted_client: Pair


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    directory: Path,
    stem: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | None,
    password: str | None = None,
) -> Pair:
    cert_path = directory / f"{stem}.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{stem}.key"
    if key is not None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        )
    return Pair(cert_path, key_path)


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("afgw test CA", ca_key, None, ca=True)
    ca = (ca_cert.subject, ca_key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_cert = _issue("someone else's CA", other_key, None, ca=True)
    other = (other_cert.subject, other_key)

    def leaf(
        stem: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey], password: str | None = None, **kw: object
    ) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        return _write(directory, stem, _issue(stem, key, issuer, **kw), key, password)  # type: ignore[arg-type]

    names = {"dns": ("localhost", "smsc.test"), "ips": ("127.0.0.1",)}
    return Certs(
        ca=_write(directory, "ca", ca_cert, None).cert,
        server=leaf("server", ca, **names),
        server_encrypted=leaf("server-encrypted", ca, KEY_PASSWORD, **names),
        wrong_name=leaf("wrong-name", ca, dns=("wrong.test",)),
        client=leaf("client", ca, client=True),
        trunk=leaf("trunk", ca, client=True, dns=("trunk.test",)),
        untrusted_ca=_write(directory, "untrusted-ca", other_cert, None).cert,
        untrusted_client=leaf("untrusted-client", other, client=True),
    )
