"""Interop with secsipidx (asipto/secsipidx, Debian package), in both directions, offline.

- secsipidx signs, we verify: ``secsipidx -sign -fheader H -fpayload P -k KEY`` signs our JSON text as
  given (so a PASSporT with rcd can be made), and ``-sign-full -orig-tn ... -x5u ...`` builds its own
  SHAKEN claims; our Verifier checks both against our CA and certificate store.
- we sign, secsipidx verifies: ``secsipidx -check -fidentity FILE -p X5U -cache-dir STORE
  -cache-expire N -cert-verify 5 -ca-file CA -expire 60`` reads the signer certificate from a cache
  directory laid out as secsipidx names its cache files, checks its chain to
  our CA and its validity (-cert-verify 1|4), then our signature and iat.

x5u URLs here point at 127.0.0.1 port 9, so even a cache miss could not leave loopback. secsipidx
reads the real clock, so these tests sign with the current time and certificates valid around it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocols.stir import CallInfo, Rejected, Signer, TnAuthList, Verified
from protocols.stir.issue import issue_ca, new_key
from tests.conftest import require_peer

from .conftest import CALLEE, NOW, ORIGID, Pki, pem, when

LOOPBACK_X5U = "http://127.0.0.1:9/afc/signer.pem"
OTHER = "8613912345678"
DAY = 86400


@pytest.fixture
def secsipidx() -> str:
    return require_peer("secsipidx")


@pytest.fixture
def real_now() -> int:
    return int(time.time())


def _issue_now(pki: Pki, url: str, real_now: int, **kwargs: object) -> ec.EllipticCurvePrivateKey:
    """A signer valid around the real clock (the fixture's certificates are valid around NOW)."""
    offset = (real_now - NOW) / DAY
    pki.ca = issue_ca(
        pki.ca_key, common_name="Test STIR Root", not_before=when(offset - 2), not_after=when(offset + 30)
    )
    return pki.issue(url, not_before=offset - 1, not_after=offset + 10, **kwargs)  # type: ignore[arg-type]


def _key_file(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)


def test_secsipidx_signs_a_labelled_passport_we_verify(pki: Pki, secsipidx: str, tmp_path: Path) -> None:
    header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": LOOPBACK_X5U}
    payload = {
        "attest": "A",
        "crn": "反诈预警劝阻",
        "dest": {"tn": [CALLEE]},
        "iat": NOW,
        "orig": {"tn": "8696110"},
        "origid": ORIGID,
        "rcd": {"nam": "公安反诈专号"},
    }
    (tmp_path / "h.json").write_text(json.dumps(header))
    (tmp_path / "p.json").write_text(json.dumps(payload, ensure_ascii=False))
    key = pki.issue(LOOPBACK_X5U)
    result = _run(
        secsipidx, "-sign", "-fheader", str(tmp_path / "h.json"), "-fpayload", str(tmp_path / "p.json"),
        "-k", str(_key_file(tmp_path / "signer.key", key)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2
    value = f"{token};info=<{LOOPBACK_X5U}>;alg=ES256;ppt=shaken"
    outcome = pki.verifier().verify([value], CallInfo("sx-1", "+86 96110", CALLEE), NOW)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label == "公安反诈专号"
    assert outcome.crn == "反诈预警劝阻"


def test_secsipidx_sign_full_identity_header(pki: Pki, secsipidx: str, tmp_path: Path, real_now: int) -> None:
    # secsipidx builds its own SHAKEN claims (iat from its clock, no rcd): fine for an ordinary number
    # under an unconstrained certificate; refused (437) for 96110, whose certificate requires rcd.
    constrained = "http://127.0.0.1:9/afc/constrained.pem"
    carrier = _issue_now(pki, LOOPBACK_X5U, real_now, tn_auth=TnAuthList.for_numbers([OTHER]), constraints=None)
    afc = _issue_now(pki, constrained, real_now)
    values = {}
    for name, orig, key, url in (("carrier", OTHER, carrier, LOOPBACK_X5U), ("afc", "8696110", afc, constrained)):
        result = _run(
            secsipidx, "-sign-full", "-orig-tn", orig, "-dest-tn", CALLEE, "-attest", "A", "-orig-id", ORIGID,
            "-x5u", url, "-k", str(_key_file(tmp_path / f"{name}.key", key)),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        values[name] = result.stdout.strip()
    assert values["carrier"].endswith(f";info=<{LOOPBACK_X5U}>;alg=ES256;ppt=shaken")
    verifier = pki.verifier()
    outcome = verifier.verify([values["carrier"]], CallInfo("sx-2", OTHER, CALLEE), real_now)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label is None
    assert outcome.attest == "A"
    refused = verifier.verify([values["afc"]], CallInfo("sx-3", "96110", CALLEE), real_now)
    assert isinstance(refused, Rejected)
    assert refused.reason == 'STIR;cause=437;text="Unsupported Credential"'
    assert refused.error.detail == "certificate requires claim 'rcd'"


def _secsipidx_check(
    secsipidx: str, tmp_path: Path, identity: str, ca_pem: bytes, store: dict[str, bytes]
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "identity.txt").write_text(identity)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    cache = tmp_path / "store"
    cache.mkdir(exist_ok=True)
    for url, content in store.items():
        # secsipidx's own cache naming: the whole URL, with "://" and every "/" turned into "_".
        (cache / url.replace("://", "_").replace("/", "_")).write_bytes(content)
    return _run(
        secsipidx, "-check", "-fidentity", str(tmp_path / "identity.txt"), "-p", LOOPBACK_X5U,
        "-cache-dir", str(cache), "-cache-expire", "315360000", "-cert-verify", "5",
        "-ca-file", str(tmp_path / "ca.pem"), "-expire", "60", "-timeout", "1",
    )  # fmt: skip


def test_our_identity_header_passes_secsipidx_check(pki: Pki, secsipidx: str, tmp_path: Path, real_now: int) -> None:
    key = _issue_now(pki, LOOPBACK_X5U, real_now)
    identity = Signer(key, LOOPBACK_X5U).sign(
        orig="96110", dest=CALLEE, iat=real_now, label=pki.registry.lookup("96110")
    )
    result = _secsipidx_check(secsipidx, tmp_path, identity.serialise(), pem(pki.ca), pki.store)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")
    assert "not-ok" not in result.stdout


def test_secsipidx_check_refuses_what_it_should(pki: Pki, secsipidx: str, tmp_path: Path, real_now: int) -> None:
    # The same kind of header fails secsipidx's check under another CA, with a bad signature, or stale:
    # evidence that the passing check above really covered our chain, signature and iat.
    key = _issue_now(pki, LOOPBACK_X5U, real_now)
    signer = Signer(key, LOOPBACK_X5U)
    good = signer.sign(orig="96110", dest=CALLEE, iat=real_now, label=pki.registry.lookup("96110")).serialise()
    rogue = issue_ca(new_key(), common_name="Test STIR Root", not_before=when(-3650), not_after=when(3650))
    token, params = good.split(";", 1)
    forged = Signer(new_key(), LOOPBACK_X5U).sign(orig="96110", dest=CALLEE, iat=real_now).token
    cases = {
        "untrusted CA": (good, pem(rogue)),
        "bad signature": (f"{token.rsplit('.', 1)[0]}.{forged.rsplit('.', 1)[1]};{params}", pem(pki.ca)),
        "stale iat": (signer.sign(orig="96110", dest=CALLEE, iat=real_now - 600).serialise(), pem(pki.ca)),
    }
    for case, (identity, ca_pem) in cases.items():
        result = _secsipidx_check(secsipidx, tmp_path, identity, ca_pem, pki.store)
        assert result.returncode != 0, f"{case}: {result.stdout}"
        assert "not-ok" in result.stdout, case
