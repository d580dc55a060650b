"""``afgw keys init`` and ``afgw keys show``: files, permissions, refusal to overwrite, and what the signer may sign."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from gateway.cli import main
from protocols.stir import ClaimConstraints, TnAuthList
from protocols.stir.authority import OID_JWT_CLAIM_CONSTRAINTS, OID_TN_AUTH_LIST

ROOT = Path(__file__).resolve().parents[2]
LABELS = str(ROOT / "config" / "labels.yaml")
X5U = "https://stir.afc.example.cn/shaken/signer.pem"
FILES = ("ca.key", "ca.pem", "signer.key", "signer.pem")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw(cert: x509.Certificate, oid: str) -> bytes:
    value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def test_init_creates_a_restricted_signer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "stir"
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 0
    assert _mode(directory) == 0o700
    assert _mode(directory / "ca.key") == 0o600
    assert _mode(directory / "signer.key") == 0o600
    # Filed under the last segment of its x5u URL, signer.pem, as labels.yaml's cert_store expects.
    assert [p.name for p in (directory / "store").iterdir()] == ["signer.pem"]
    assert (directory / "store" / "signer.pem").read_bytes() == (directory / "signer.pem").read_bytes()
    assert f"signer x5u: {X5U}" in capsys.readouterr().out

    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    signer = x509.load_pem_x509_certificate((directory / "signer.pem").read_bytes())
    signer.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    tn_auth = TnAuthList.from_der(_raw(signer, OID_TN_AUTH_LIST))
    assert tn_auth.ones == {"8696110", "861096110", "862196110", "862096110", "8675596110", "8657196110", "8612381"}
    constraints = ClaimConstraints.from_der(_raw(signer, OID_JWT_CLAIM_CONSTRAINTS))
    assert constraints == ClaimConstraints(
        must_include=("rcd",),
        permitted=(
            ("rcd", ('{"nam":"公安反诈专号"}', '{"nam":"工信部反诈预警"}')),
            ("crn", ("反诈预警劝阻",)),
        ),
    )


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "stir"
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 0
    before = {name: (directory / name).read_bytes() for name in FILES}
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 1
    assert "already exists" in capsys.readouterr().err
    assert {name: (directory / name).read_bytes() for name in FILES} == before
    assert main(["keys", "init", str(directory), "--labels", LABELS, "--force"]) == 0
    after = {name: (directory / name).read_bytes() for name in FILES}
    assert all(after[name] != before[name] for name in FILES)
    assert _mode(directory / "signer.key") == 0o600
    assert not list(directory.glob(".*tmp*"))


def test_init_refuses_even_one_existing_file(tmp_path: Path) -> None:
    directory = tmp_path / "stir"
    directory.mkdir()
    (directory / "ca.key").write_text("precious")
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 1
    assert (directory / "ca.key").read_text() == "precious"
    assert not (directory / "signer.key").exists()


def test_init_reports_label_errors_with_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text("labels:\n  - text: x\n    numbers: [96110]\n", encoding="utf-8")
    assert main(["keys", "init", str(tmp_path / "k"), "--labels", str(labels)]) == 2
    assert f"{labels}:3:15: numbers: expected a quoted string, got 96110" in capsys.readouterr().err


def test_init_needs_an_x5u(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        'labels:\n  - text: x\n    numbers: ["96110"]\ntrust_anchors: [ca.pem]\ncert_store: store\n', encoding="utf-8"
    )
    assert main(["keys", "init", str(tmp_path / "k"), "--labels", str(labels)]) == 1
    assert "--x5u" in capsys.readouterr().err
    assert main(["keys", "init", str(tmp_path / "k"), "--labels", str(labels), "--x5u", "https://a.example/c.pem"]) == 0
    assert (tmp_path / "k" / "store" / "c.pem").exists()


def test_show_prints_what_the_signer_authorises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "stir"
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 0
    capsys.readouterr()
    assert main(["keys", "show", str(directory / "signer.pem")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        "TNAuthList (1.3.6.1.5.5.7.1.26): 861096110, 8612381, 862096110, 862196110, 8657196110, 8675596110, 8696110"
        in lines
    )
    assert "  mustInclude: rcd" in lines
    assert '  permittedValues rcd: {"nam":"公安反诈专号"} | {"nam":"工信部反诈预警"}' in lines


@pytest.mark.parametrize("x5u", ["https://cr.example/", "https://cr.example/a/..", "ftp://cr.example/a.pem"])
def test_spc_refuses_a_url_without_a_file_name(tmp_path: Path, x5u: str) -> None:
    directory = tmp_path / "stir"
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 0
    assert main(["keys", "spc", str(directory), "--spc", "1234", "--x5u", x5u]) == 1
    assert not (directory / "spc-1234.pem").exists()


def test_spc_issues_a_certificate_naming_only_its_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "stir"
    assert main(["keys", "init", str(directory), "--labels", LABELS]) == 0
    url = "https://cr.example/shaken/sp-77.pem"
    assert main(["keys", "spc", str(directory), "--spc", "77", "--x5u", url]) == 0
    assert _mode(directory / "spc-77.key") == 0o600
    assert (directory / "store" / "sp-77.pem").read_bytes() == (directory / "spc-77.pem").read_bytes()
    capsys.readouterr()
    assert main(["keys", "show", str(directory / "spc-77.pem")]) == 0
    out = capsys.readouterr().out
    assert "TNAuthList (1.3.6.1.5.5.7.1.26): -\n  spc 77\n" in out
    assert main(["keys", "spc", str(directory), "--spc", "77", "--x5u", url]) == 1  # exists: --force
