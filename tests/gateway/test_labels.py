"""config/labels.yaml: the shipped file loads, mistakes are file:line:col in one pass, and it builds a verifier."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.cli import build_parser
from gateway.keys import init_keys
from gateway.labels import (
    DirectoryStore,
    LabelsError,
    build_registry,
    build_verifier,
    load_labels,
    load_signer,
    open_trust,
)
from protocols.stir import CallInfo, Rejected, Signer, Verified

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_labels_load() -> None:
    config = load_labels(ROOT / "config" / "labels.yaml")
    registry = build_registry(config)
    for spelling in ("96110", "+86 96110", "0086 96110", "010-96110", "+86 10 96110", "021 96110", "0755-96110"):
        label = registry.lookup(spelling)
        assert label is not None, spelling
        assert (label.text, label.crn) == ("公安反诈专号", "反诈预警劝阻")
    assert registry.lookup("12381") is not None
    assert registry.lookup("+86 138 0000 0001") is None
    assert registry.texts == {"公安反诈专号", "工信部反诈预警"}
    assert config.freshness == 60
    assert config.signing_x5u == "https://stir.afc.example.cn/shaken/signer.pem"
    assert [a.path for a in config.trust_anchors] == [(ROOT / "config" / ".." / "var/stir/ca.pem")]


BAD = """\
labels:
  - text: 公安反诈专号
    numbers:
      - "96110"
      - 96110
      - "96x110"
  - text: 冒充公检法
    numbers: ["+86 96110", "010 96110"]
  - text: ""
    numbers: ["12381"]
  - txt: oops
trust_anchors: []
cert_store: store
freshness: -5
signing:
  x5u: ftp://example/cert.pem
number_plan:
  country_code: "+86"
"""


def test_every_mistake_is_reported_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        load_labels(path)
    assert caught.value.errors == [
        f"{path}:5:9: numbers: expected a quoted string, got 96110"
        " (hint: quote numbers so that leading zeros and '+' survive)",
        f"{path}:6:9: numbers: '96x110' is not a telephone number",
        f"{path}:8:15: numbers: '+86 96110' (normalised 8696110) already has the label '公安反诈专号'"
        " (hint: first given at line 4)",
        f"{path}:9:11: text: a label is 1 to 64 printable characters",
        f"{path}:11:5: unknown field 'txt' (hint: did you mean 'text'?)",
        f"{path}:11:5: missing required field 'text'",
        f"{path}:11:5: missing required field 'numbers'",
        f"{path}:12:16: trust_anchors: at least one CA certificate is needed",
        f"{path}:14:12: freshness: must be greater than zero, got -5.0",
        f"{path}:16:8: x5u: expected an http(s) URL, got 'ftp://example/cert.pem'",
        f"{path}:18:17: country_code: expected digits, got '+86'",
    ]


def test_invalid_yaml_and_missing_sections(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("labels: [\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"labels.yaml:\d+:\d+: invalid YAML"):
        load_labels(path)
    path.write_text("freshness: 60\n", encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        load_labels(path)
    assert f"{path}:1:1: missing required field 'labels'" in caught.value.errors


def _deploy(tmp_path: Path) -> Path:
    """labels.yaml naming keys made by `afgw keys init` for its own labels, valid now."""
    shipped = (ROOT / "config" / "labels.yaml").read_text(encoding="utf-8")
    labels = tmp_path / "config" / "labels.yaml"
    labels.parent.mkdir()
    labels.write_text(shipped, encoding="utf-8")
    config = load_labels(labels)
    init_keys(tmp_path / "var" / "stir", build_registry(config), config.signing_x5u or "", now=dt.datetime.now(dt.UTC))
    return labels


def test_keys_from_init_make_a_working_verifier(tmp_path: Path) -> None:
    config = load_labels(_deploy(tmp_path))
    verifier = build_verifier(config)
    signer = load_signer(config)
    now = int(time.time())
    identity = signer.sign(orig="010-96110", dest="13800000001", iat=now, label=verifier.registry.lookup("01096110"))
    outcome = verifier.verify([identity.serialise()], CallInfo("c1", "+861096110", "8613800000001"), now)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label == "公安反诈专号"
    spoofed = signer.sign(orig="13900000000", dest="13800000001", iat=now)
    outcome = verifier.verify(
        [spoofed.serialise()], CallInfo("c2", "13900000000", "8613800000001", "公安反诈专号"), now
    )
    assert isinstance(outcome, Rejected)
    assert outcome.reason == 'STIR;cause=437;text="Unsupported Credential"'  # TNAuthList: not its number


def test_missing_files_are_reported_at_the_line_naming_them(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    text = 'labels:\n  - text: 公安反诈专号\n    numbers: ["96110"]\n'
    text += "trust_anchors:\n  - nowhere/ca.pem\ncert_store: nostore\n"
    labels.write_text(text, encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        open_trust(load_labels(labels))
    assert caught.value.errors[0].startswith(f"{labels}:5:5: cannot read trust anchor {tmp_path}/nowhere/ca.pem")
    assert caught.value.errors[1].startswith(f"{labels}:6:13: cannot read certificate store {tmp_path}/nostore")


def test_directory_store_maps_urls_by_last_segment_and_table(tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_bytes(b"PEM")
    store = DirectoryStore(tmp_path, {"https://other.example/x/signer.pem": b"TABLE"})
    assert store.get("https://stir.afc.example.cn/shaken/signer.pem") == b"PEM"
    assert store.get("http://127.0.0.1:9/any/path/signer.pem?v=2") == b"PEM"
    assert store.get("https://other.example/x/signer.pem") == b"TABLE"  # the table first
    assert store.get("https://stir.afc.example.cn/other.pem") is None
    assert store.get("https://stir.afc.example.cn/shaken/") is None
    assert store.get("https://stir.afc.example.cn/a/..") is None
    assert len(store) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("https_")]


SPC_X5U = "https://cr.carrier.example/shaken/sp-1234.pem"


@pytest.mark.parametrize(
    ("delegations", "labelled"),
    [
        ("[]", False),
        ('[{spc: "1234", numbers: ["96110", "010 96110"]}]', True),
        ('[{spc: "1234", numbers: ["+86 10 96110"]}]', False),  # Beijing's, not the short code
        ('[{spc: "5678", numbers: ["96110"]}]', False),
    ],
)
def test_an_spc_certificate_from_afgw_keys_signs_a_label_only_when_delegated(
    tmp_path: Path, delegations: str, labelled: bool
) -> None:
    labels = _deploy(tmp_path)
    parser = build_parser()
    args = parser.parse_args(["keys", "spc", str(tmp_path / "var" / "stir"), "--spc", "1234", "--x5u", SPC_X5U])
    assert args.func(args) == 0
    assert (tmp_path / "var" / "stir" / "store" / "sp-1234.pem").is_file()
    text = labels.read_text(encoding="utf-8").replace("delegations: []\n", f"delegations: {delegations}\n", 1)
    labels.write_text(text, encoding="utf-8")
    config = load_labels(labels)
    verifier = build_verifier(config)
    key = serialization.load_pem_private_key((tmp_path / "var" / "stir" / "spc-1234.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signer = Signer(key, SPC_X5U)
    now = int(time.time())
    police = verifier.registry.lookup("96110")
    identity = signer.sign(orig="96110", dest="8613800000001", iat=now, label=police).serialise()
    outcome = verifier.verify([identity], CallInfo("c1", "96110", "8613800000001"), now)
    if labelled:
        assert isinstance(outcome, Verified), outcome
        assert outcome.label == "公安反诈专号"
    else:
        assert isinstance(outcome, Rejected), outcome
        assert outcome.reason == 'STIR;cause=437;text="Unsupported Credential"'
    # Any ordinary number it signs for verifies, unlabelled, delegated or not.
    ordinary = signer.sign(orig="13900000000", dest="8613800000001", iat=now).serialise()
    outcome = verifier.verify([ordinary], CallInfo("c2", "13900000000", "8613800000001"), now)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label is None


TRUST_BAD = """\
labels:
  - text: 公安反诈专号
    numbers: ["96110", "010 96110"]
trust_anchors: [ca.pem]
cert_store:
  directory: store
  files:
    ftp://x.example/a.pem: a.pem
    https://x.example/b.pem: 7
  size: 3
delegations:
  - spc: 1234
    numbers: ["96110"]
  - spc: "AB-1"
    numbers: ["96110"]
  - spc: "77"
    numbers: ["12381", "96x", 96110]
  - spc: "88"
    numbers: []
  - spc: "99"
    numbers: ["96110"]
  - spc: "99"
    numbers: ["010 96110"]
  - numbers: ["96110"]
  - "1234"
"""


def test_trust_mistakes_are_reported_with_their_location(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(TRUST_BAD, encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        load_labels(path)
    errors = [e.removeprefix(f"{path}:") for e in caught.value.errors]
    expected = [
        "8:5: files: 'ftp://x.example/a.pem' is not an http(s) URL",
        "9:30: files: the file for https://x.example/b.pem must be a path",
        "10:3: unknown field 'size'",
        "12:10: spc: expected a quoted service provider code (letters, digits), got 1234",
        "14:10: spc: expected a quoted service provider code (letters, digits), got 'AB-1'",
        "17:15: numbers: '12381' (normalised 8612381) is not one of the label numbers",
        "17:24: numbers: '96x' is not a telephone number",
        "17:31: numbers: expected a quoted string, got 96110",
        "19:14: numbers: list at least one label number",
        "22:10: spc: '99' is delegated twice; list all its numbers once",
        "24:5: missing required field 'spc'",
        "25:5: each delegation is a mapping with spc and numbers",
    ]
    assert len(errors) == len(expected), errors
    for line in expected:
        assert any(e.startswith(line) for e in errors), (line, errors)
