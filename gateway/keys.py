"""``afgw keys``: the anti-fraud centre's STIR certificate authority and signer.

- ``afgw keys init DIR [--labels FILE] [--x5u URL] [--days N] [--force]`` creates, in DIR:

  ===========================  ==========================================================
  ``ca.key``, ``ca.pem``       the root CA (P-256, CA:TRUE pathlen 0): a trust anchor
  ``signer.key``, ``signer.pem``  the signer (P-256), restricted to the labels file's numbers
                               and label texts (see ``protocols.stir.issue``)
  ``store/<name>``             ``signer.pem`` under the last path segment of its x5u URL, a
                               certificate store directory that labels.yaml's ``cert_store`` names
  ===========================  ==========================================================

  Private keys are PKCS#8 PEM with mode 0600, the directory 0700. Existing files are never
  overwritten without ``--force``. The x5u defaults to ``signing.x5u`` in the labels file.
- ``afgw keys spc DIR --spc CODE --x5u URL [--days N] [--force]``: a service provider's signer
  certificate under the CA in DIR, whose TNAuthList carries only the SPC CODE (as most SHAKEN
  certificates do): ``spc-CODE.key``, ``spc-CODE.pem`` and ``store/<last segment of URL>``. It
  verifies ordinary calls; it signs a label only for the numbers labels.yaml's ``delegations``
  give to CODE.
- ``afgw keys show CERT``: what a signer certificate authorises (TNAuthList, claim constraints).

Exit status: 0 done, 1 refused (files exist, bad arguments), 2 the labels file has errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.labels import LabelsError, build_registry, load_labels
from protocols.stir import LabelRegistry, load_certificates, store_file_name
from protocols.stir.authority import (
    OID_ENHANCED_JWT_CLAIM_CONSTRAINTS,
    OID_JWT_CLAIM_CONSTRAINTS,
    OID_TN_AUTH_LIST,
    ClaimConstraints,
    TnAuthList,
)
from protocols.stir.der import DerError
from protocols.stir.issue import authority_for, issue_ca, issue_signer, new_key

__all__ = ["add_parser", "init_keys", "issue_spc"]

EXIT_REFUSED = 1
EXIT_CONFIG = 2
CA_DAYS = 3650
CLOCK_SKEW = dt.timedelta(minutes=5)  # not_before is set back so a peer with a slow clock accepts


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Register ``afgw keys ...`` on the ``afgw`` subcommand parsers."""
    keys = sub.add_parser("keys", help="create and inspect the STIR CA and signer", parents=list(parents))
    commands = keys.add_subparsers(dest="keys_command", required=True)

    init = commands.add_parser("init", help="create a CA and a signer certificate restricted to the labels")
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--labels", default="config/labels.yaml", help="labels.yaml naming the numbers and texts")
    init.add_argument("--x5u", help="URL the signer certificate is published at (default: signing.x5u)")
    init.add_argument("--days", type=int, default=365, help="signer validity in days")
    init.add_argument("--force", action="store_true", help="replace existing keys and certificates")
    init.set_defaults(func=cmd_init)

    spc = commands.add_parser("spc", help="issue a signer certificate for a service provider code under the CA")
    spc.add_argument("directory", metavar="DIR", help="the directory of `afgw keys init` (ca.key, ca.pem)")
    spc.add_argument("--spc", required=True, help="the service provider code (letters and digits)")
    spc.add_argument("--x5u", required=True, help="URL the certificate is published at")
    spc.add_argument("--days", type=int, default=365, help="validity in days")
    spc.add_argument("--force", action="store_true", help="replace existing files")
    spc.set_defaults(func=cmd_spc)

    show = commands.add_parser("show", help="print what a signer certificate authorises")
    show.add_argument("certificate", metavar="CERT")
    show.set_defaults(func=cmd_show)


def cmd_init(args: argparse.Namespace) -> int:
    try:
        config = load_labels(args.labels)
    except LabelsError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    x5u = args.x5u or config.signing_x5u
    if not x5u:
        print("afgw keys init: give --x5u, or signing.x5u in the labels file", file=sys.stderr)
        return EXIT_REFUSED
    if args.days <= 0:
        print("afgw keys init: --days must be positive", file=sys.stderr)
        return EXIT_REFUSED
    try:
        written = init_keys(
            Path(args.directory),
            build_registry(config),
            x5u,
            now=dt.datetime.now(dt.UTC),
            days=args.days,
            force=args.force,
        )
    except FileExistsError as exc:
        print(f"afgw keys init: {exc}; use --force to replace", file=sys.stderr)
        return EXIT_REFUSED
    for path in written:
        print(f"wrote {path}")
    print(f"signer x5u: {x5u}")
    return 0


def init_keys(
    directory: Path,
    registry: LabelRegistry,
    x5u: str,
    *,
    now: dt.datetime,
    days: int = 365,
    force: bool = False,
) -> list[Path]:
    """Create the CA, the signer and the store entry; returns the files written.

    Raises FileExistsError, naming the files, when any exists and ``force`` is not set.
    """
    targets = {
        "ca.key": directory / "ca.key",
        "ca.pem": directory / "ca.pem",
        "signer.key": directory / "signer.key",
        "signer.pem": directory / "signer.pem",
        "store": directory / "store" / _store_name(x5u),
    }
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"already exists: {', '.join(existing)}")
    tn_auth, constraints = authority_for(registry)
    ca_key, signer_key = new_key(), new_key()
    ca = issue_ca(
        ca_key,
        common_name="Anti-Fraud Centre STIR Root CA",
        not_before=now - CLOCK_SKEW,
        not_after=now + dt.timedelta(days=CA_DAYS),
    )
    signer = issue_signer(
        ca_key=ca_key,
        ca_cert=ca,
        public_key=signer_key.public_key(),
        common_name="Anti-Fraud Centre PASSporT Signer",
        not_before=now - CLOCK_SKEW,
        not_after=now + dt.timedelta(days=days),
        tn_auth=tn_auth,
        constraints=constraints,
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / "store").mkdir(mode=0o755, exist_ok=True)
    signer_pem = signer.public_bytes(serialization.Encoding.PEM)
    _write(targets["ca.key"], _private_pem(ca_key), 0o600)
    _write(targets["ca.pem"], ca.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(targets["signer.key"], _private_pem(signer_key), 0o600)
    _write(targets["signer.pem"], signer_pem, 0o644)
    _write(targets["store"], signer_pem, 0o644)
    return list(targets.values())


def _store_name(x5u: str) -> str:
    name = store_file_name(x5u)
    if name is None:
        raise ValueError(f"{x5u} does not end in a file name (letters, digits, '.', '_', '-')")
    return name


def cmd_spc(args: argparse.Namespace) -> int:
    if not (args.spc.isascii() and args.spc.isalnum()):
        print("afgw keys spc: --spc is letters and digits", file=sys.stderr)
        return EXIT_REFUSED
    if args.days <= 0 or not args.x5u.startswith(("https://", "http://")):
        print("afgw keys spc: --days must be positive and --x5u an http(s) URL", file=sys.stderr)
        return EXIT_REFUSED
    try:
        written = issue_spc(
            Path(args.directory), args.spc, args.x5u, now=dt.datetime.now(dt.UTC), days=args.days, force=args.force
        )
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"afgw keys spc: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for path in written:
        print(f"wrote {path}")
    print(f"spc {args.spc} x5u: {args.x5u}")
    return 0


def issue_spc(
    directory: Path, spc: str, x5u: str, *, now: dt.datetime, days: int = 365, force: bool = False
) -> list[Path]:
    """A signer certificate for SPC ``spc`` under the CA of ``directory``; returns the files written."""
    targets = {
        "key": directory / f"spc-{spc}.key",
        "pem": directory / f"spc-{spc}.pem",
        "store": directory / "store" / _store_name(x5u),
    }
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"already exists: {', '.join(existing)}; use --force to replace")
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("ca.key is not an EC key")
    key = new_key()
    cert = issue_signer(
        ca_key=ca_key,
        ca_cert=ca,
        public_key=key.public_key(),
        common_name=f"SHAKEN SPC {spc}",
        not_before=now - CLOCK_SKEW,
        not_after=now + dt.timedelta(days=days),
        tn_auth=TnAuthList(spcs=(spc,)),
        constraints=None,
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "store").mkdir(mode=0o755, exist_ok=True)
    _write(targets["key"], _private_pem(key), 0o600)
    _write(targets["pem"], pem, 0o644)
    _write(targets["store"], pem, 0o644)
    return list(targets.values())


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write via a new file created with ``mode`` and renamed over ``path``.

    The key never exists with wider permissions, not even for an instant (the umask can only narrow
    the creation mode, so it is set exactly with fchmod before any byte is written).
    """
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def cmd_show(args: argparse.Namespace) -> int:
    try:
        certificates = load_certificates(Path(args.certificate).read_bytes())
    except (OSError, ValueError) as exc:
        print(f"afgw keys show: cannot read {args.certificate}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for line in describe(certificates[0]):
        print(line)
    return 0


def describe(cert: x509.Certificate) -> list[str]:
    """Human-readable lines: subject, issuer, validity and the STIR authority extensions."""
    lines = [
        f"subject: {cert.subject.rfc4514_string()}",
        f"issuer: {cert.issuer.rfc4514_string()}",
        f"valid: {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z .. {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z",
    ]
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else None
        try:
            if oid == OID_TN_AUTH_LIST and raw is not None:
                tn_auth = TnAuthList.from_der(raw)
                lines.append(f"TNAuthList ({oid}): {', '.join(sorted(tn_auth.ones)) or '-'}")
                lines.extend(f"  range {r.start} count {r.count}" for r in tn_auth.ranges)
                lines.extend(f"  spc {spc}" for spc in tn_auth.spcs)
            elif oid in (OID_JWT_CLAIM_CONSTRAINTS, OID_ENHANCED_JWT_CLAIM_CONSTRAINTS) and raw is not None:
                constraints = ClaimConstraints.from_der(raw, enhanced=oid == OID_ENHANCED_JWT_CLAIM_CONSTRAINTS)
                lines.append(f"JWT claim constraints ({oid}):")
                if constraints.must_include:
                    lines.append(f"  mustInclude: {', '.join(constraints.must_include)}")
                for name, values in constraints.permitted:
                    lines.append(f"  permittedValues {name}: {' | '.join(values)}")
                if constraints.must_exclude:
                    lines.append(f"  mustExclude: {', '.join(constraints.must_exclude)}")
        except DerError as exc:
            lines.append(f"{oid}: unreadable ({exc.detail})")
    return lines
