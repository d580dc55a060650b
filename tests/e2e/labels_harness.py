"""The anti-fraud centre's keys, a labels.yaml that uses them, and the certificates spoofers bring.

``make_labels_pki(directory)`` does what a carrier engineer does (``afgw keys init`` for the centre,
config/labels.yaml pointed at the result) and adds what the tests need around it:

- a second trust anchor, a carrier's CA, whose signer may sign only for ``OWN_NUMBER`` (an ordinary
  mobile number) and carries no label constraints: a valid, unlabelled PASSporT source (secsipidx signs
  with its key);
- in the certificate store, a look-alike of the centre's signer certificate under a rogue CA that is
  not a trust anchor (a token signed with it is a 437).

Certificates are valid around ``now`` (the real time by default), so that secsipidx, which reads
the real clock, accepts them too.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.keys import init_keys
from gateway.labels import LabelsConfig, build_registry, load_labels, load_signer
from protocols.stir import LabelRegistry, Signer, TnAuthList, normalise_tn
from protocols.stir.issue import issue_ca, issue_signer, new_key
from simulator.spoofer import OWN_NUMBER, rogue_signer

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_LABELS = ROOT / "config" / "labels.yaml"
CENTRE_X5U = "https://stir.afc.example.cn/shaken/signer.pem"
ROGUE_X5U = "https://stir.afc-example.cn/shaken/signer.pem"
# secsipidx would fetch an x5u missing from its cache: a loopback port where nothing listens.
CARRIER_X5U = "http://127.0.0.1:9/carrier/carrier-signer.pem"


@dataclass
class LabelsPki:
    directory: Path
    labels_path: Path
    labels: LabelsConfig
    registry: LabelRegistry
    centre: Signer
    rogue: Signer
    carrier: Signer
    carrier_key_path: Path
    now: int


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_labels_pki(directory: Path, *, now: int | None = None, freshness: int | None = None) -> LabelsPki:
    now = int(time.time()) if now is None else now
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    stir = directory / "stir"
    shipped = load_labels(SHIPPED_LABELS)
    init_keys(stir, build_registry(shipped), CENTRE_X5U, now=when)

    carrier_ca_key, carrier_key = new_key(), new_key()
    carrier_ca = issue_ca(
        carrier_ca_key,
        common_name="Carrier STIR Root",
        not_before=when - dt.timedelta(days=1),
        not_after=when + dt.timedelta(days=365),
    )
    carrier_cert = issue_signer(
        ca_key=carrier_ca_key,
        ca_cert=carrier_ca,
        public_key=carrier_key.public_key(),
        common_name="Carrier PASSporT Signer",
        not_before=when - dt.timedelta(days=1),
        not_after=when + dt.timedelta(days=30),
        tn_auth=TnAuthList.for_numbers([normalise_tn(OWN_NUMBER)]),
    )
    (stir / "carrier-ca.pem").write_bytes(carrier_ca.public_bytes(serialization.Encoding.PEM))
    (stir / "store" / "carrier-signer.pem").write_bytes(carrier_cert.public_bytes(serialization.Encoding.PEM))
    carrier_key_path = stir / "carrier.key"
    carrier_key_path.write_bytes(_pem_key(carrier_key))

    rogue, rogue_pem, _ = rogue_signer(build_registry(shipped), ROGUE_X5U, now=when)
    # Its URL ends in signer.pem like the centre's: it is filed by the explicit table instead.
    (stir / "rogue-signer.pem").write_bytes(rogue_pem)

    text = SHIPPED_LABELS.read_text(encoding="utf-8").replace("../var/stir/", "stir/")
    text = text.replace("  - stir/ca.pem\n", "  - stir/ca.pem\n  - stir/carrier-ca.pem\n")
    text = text.replace(
        "  directory: stir/store\n", f"  directory: stir/store\n  files:\n    {ROGUE_X5U}: stir/rogue-signer.pem\n"
    )
    if freshness is not None:
        text = text.replace("freshness: 60\n", f"freshness: {freshness}\n")
    labels_path = directory / "labels.yaml"
    labels_path.write_text(text, encoding="utf-8")
    labels = load_labels(labels_path)
    return LabelsPki(
        directory=directory,
        labels_path=labels_path,
        labels=labels,
        registry=build_registry(labels),
        centre=load_signer(labels),
        rogue=rogue,
        carrier=Signer(carrier_key, CARRIER_X5U, plan=labels.plan),
        carrier_key_path=carrier_key_path,
        now=now,
    )


class Clock:
    """A wall clock the test sets: the gateway's iat reference."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
