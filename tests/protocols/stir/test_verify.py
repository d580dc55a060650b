"""The verification service end to end: every outcome, every failure code and its Reason header."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.stir import (
    VERSTAT_FAILED,
    VERSTAT_NONE,
    VERSTAT_PASSED,
    CallInfo,
    ClaimConstraints,
    Label,
    PassportHeader,
    Rejected,
    TnAuthList,
    Unverified,
    Verified,
)
from protocols.stir.jose import b64url_encode
from protocols.stir.tn import CHINA, normalise_tn

from .conftest import CALLEE, NOW, ORIGID, X5U, Pki

REASON = {
    403: 'STIR;cause=403;text="Stale Date"',
    428: 'STIR;cause=428;text="Use Identity Header"',
    436: 'STIR;cause=436;text="Bad Identity Info"',
    437: 'STIR;cause=437;text="Unsupported Credential"',
    438: 'STIR;cause=438;text="Invalid Identity Header"',
}
OTHER = "8613912345678"  # a number that is not in the label registry


def call(orig: str = "96110", dest: str = CALLEE, *, call_id: str = "call-1@trunk", **kw: Any) -> CallInfo:
    return CallInfo(call_id=call_id, orig=orig, dest=dest, **kw)


def rejected(outcome: object, code: int) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.status == code, outcome.error.detail
    assert outcome.reason == REASON[code]
    return outcome


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attest": "A",
        "dest": {"tn": [CALLEE]},
        "iat": NOW,
        "orig": {"tn": "8696110"},
        "origid": ORIGID,
        "rcd": {"nam": "公安反诈专号"},
        "crn": "反诈预警劝阻",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# --- what passes -------------------------------------------------------------------------------


def test_registered_number_gets_its_label(pki: Pki) -> None:
    outcome = pki.verifier().verify([pki.sign()], call(display_name="公安反诈专号"), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label == "公安反诈专号"
    assert outcome.verstat == VERSTAT_PASSED == "TN-Validation-Passed"
    assert outcome.crn == "反诈预警劝阻"
    assert outcome.attest == "A"
    assert outcome.failures == ()


@pytest.mark.parametrize("spelling", ["96110", "+86 96110", "0086-96110", "8696110", "tel:+86-96110"])
def test_every_spelling_of_the_calling_number_matches(pki: Pki, spelling: str) -> None:
    outcome = pki.verifier().verify([pki.sign("96110")], call(spelling), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label == "公安反诈专号"


@pytest.mark.parametrize(("signed", "presented"), [("010 96110", "+861096110"), ("+86 21 96110", "021-96110")])
def test_area_code_forms_match_across_national_and_international(pki: Pki, signed: str, presented: str) -> None:
    outcome = pki.verifier().verify([pki.sign(signed)], call(presented, "+86 138 0000 0001"), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label == "公安反诈专号"


def test_unregistered_number_verifies_without_a_label(pki: Pki) -> None:
    key = pki.issue("https://carrier.example/sp.pem", tn_auth=TnAuthList.for_numbers([OTHER]), constraints=None)
    value = pki.sign(OTHER, key=key, x5u="https://carrier.example/sp.pem", label=None)
    outcome = pki.verifier().verify([value], call(OTHER, display_name="Zhang San"), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label is None
    assert outcome.verstat == VERSTAT_PASSED


def test_freshness_is_inclusive_and_configurable(pki: Pki) -> None:
    assert isinstance(pki.verifier().verify([pki.sign(iat=NOW - 60)], call(), NOW), Verified)
    stale = pki.sign(iat=NOW - 200)
    rejected(pki.verifier().verify([stale], call(), NOW), 403)
    assert isinstance(pki.verifier(freshness=300).verify([stale], call(), NOW), Verified)


# --- 428 -----------------------------------------------------------------------------------------


def test_registered_number_without_identity_is_428(pki: Pki) -> None:
    rejected(pki.verifier().verify([], call("+86 10 96110"), NOW), 428)


def test_label_in_display_name_without_identity_is_428(pki: Pki) -> None:
    rejected(pki.verifier().verify([], call(OTHER, display_name="【公安反诈专号】"), NOW), 428)


def test_ordinary_call_without_identity_goes_on_unverified(pki: Pki) -> None:
    outcome = pki.verifier().verify([], call(OTHER, display_name="Zhang San"), NOW)
    assert outcome == Unverified(VERSTAT_NONE)
    assert outcome.verstat == "No-TN-Validation"


# --- 436 -----------------------------------------------------------------------------------------


def test_x5u_not_in_local_store_is_436(pki: Pki) -> None:
    value = pki.sign(x5u="https://elsewhere.example/cert.pem")
    rejected(pki.verifier().verify([value], call(), NOW), 436)


def test_info_missing_or_different_from_x5u_is_436(pki: Pki) -> None:
    token = pki.sign().split(";", 1)[0]
    verifier = pki.verifier()
    rejected(verifier.verify([f"{token};alg=ES256;ppt=shaken"], call(), NOW), 436)
    rejected(verifier.verify([f"{token};info=<https://other.example/c.pem>;ppt=shaken"], call(), NOW), 436)
    rejected(verifier.verify([f"{token};info=https://no-brackets.example;ppt=shaken"], call(), NOW), 436)


def test_passport_without_x5u_is_436(pki: Pki) -> None:
    value = pki.sign_claims(claims(), header=PassportHeader(x5u=None))
    rejected(pki.verifier().verify([value], call(), NOW), 436)


# --- 437 -----------------------------------------------------------------------------------------


def test_untrusted_chain_is_437(pki: Pki) -> None:
    from protocols.stir.issue import issue_ca, new_key

    from .conftest import when

    rogue_key = new_key()
    rogue = issue_ca(rogue_key, common_name="Test STIR Root", not_before=when(-1), not_after=when(10))
    key = pki.issue("https://rogue.example/cert.pem", issuer=(rogue_key, rogue))
    value = pki.sign(key=key, x5u="https://rogue.example/cert.pem")
    rejected(pki.verifier().verify([value], call(), NOW), 437)


@pytest.mark.parametrize(("not_before", "not_after"), [(-30, -1), (1, 30)])
def test_certificate_outside_its_validity_is_437(pki: Pki, not_before: float, not_after: float) -> None:
    key = pki.issue("https://afc.example/old.pem", not_before=not_before, not_after=not_after)
    value = pki.sign(key=key, x5u="https://afc.example/old.pem")
    rejected(pki.verifier().verify([value], call(), NOW), 437)


def test_tn_auth_list_that_excludes_the_number_is_437(pki: Pki) -> None:
    key = pki.issue("https://afc.example/12381.pem", tn_auth=TnAuthList.for_numbers(["8612381"]))
    value = pki.sign("96110", key=key, x5u="https://afc.example/12381.pem")
    outcome = rejected(pki.verifier().verify([value], call(), NOW), 437)
    assert "not authorised for the calling number" in outcome.error.detail


def test_tn_auth_range_covers_its_numbers(pki: Pki) -> None:
    from protocols.stir import TnRange

    tn_auth = TnAuthList(ranges=(TnRange("8696100", 20),))
    key = pki.issue("https://afc.example/range.pem", tn_auth=tn_auth)
    value = pki.sign("96110", key=key, x5u="https://afc.example/range.pem")
    assert isinstance(pki.verifier().verify([value], call(), NOW), Verified)
    narrow = pki.issue("https://afc.example/narrow.pem", tn_auth=TnAuthList(ranges=(TnRange("8696100", 10),)))
    value = pki.sign("96110", key=narrow, x5u="https://afc.example/narrow.pem")
    rejected(pki.verifier().verify([value], call(), NOW), 437)


def test_signer_without_tn_auth_list_is_437(pki: Pki) -> None:
    key = pki.issue("https://afc.example/none.pem", tn_auth=None)
    value = pki.sign(key=key, x5u="https://afc.example/none.pem")
    rejected(pki.verifier().verify([value], call(), NOW), 437)


def test_claim_constraints_that_exclude_the_label_text_are_437(pki: Pki) -> None:
    only_miit = ClaimConstraints(("rcd",), (("rcd", ('{"nam":"工信部反诈预警"}',)),))
    key = pki.issue("https://afc.example/miit.pem", constraints=only_miit)
    value = pki.sign("96110", key=key, x5u="https://afc.example/miit.pem")
    outcome = rejected(pki.verifier().verify([value], call(), NOW), 437)
    assert "does not permit this value of claim 'rcd'" in outcome.error.detail


def test_claim_constraints_require_rcd(pki: Pki) -> None:
    value = pki.sign("96110", label=None)  # the centre's own key, but no rcd: mustInclude rcd
    outcome = rejected(pki.verifier().verify([value], call(), NOW), 437)
    assert "requires claim 'rcd'" in outcome.error.detail


def test_enhanced_constraints_must_exclude(pki: Pki) -> None:
    no_crn = ClaimConstraints(must_include=("rcd",), must_exclude=("crn",))
    key = pki.issue("https://afc.example/nocrn.pem", constraints=no_crn, enhanced=True)
    value = pki.sign(key=key, x5u="https://afc.example/nocrn.pem")  # the police label carries a crn
    outcome = rejected(pki.verifier().verify([value], call(), NOW), 437)
    assert "forbids claim 'crn'" in outcome.error.detail


def test_unsupported_alg_is_437(pki: Pki) -> None:
    header = b64url_encode(b'{"alg":"ES384","ppt":"shaken","typ":"passport","x5u":"' + X5U.encode() + b'"}')
    body = pki.sign().split(";", 1)[0].split(".", 1)[1]
    rejected(pki.verifier().verify([f"{header}.{body};info=<{X5U}>;ppt=shaken"], call(), NOW), 437)


# --- 438 -----------------------------------------------------------------------------------------


def test_bad_signature_is_438(pki: Pki) -> None:
    from protocols.stir.issue import new_key

    value = pki.sign(key=new_key())  # same x5u, wrong key
    rejected(pki.verifier().verify([value], call(), NOW), 438)


def test_altered_claims_are_438(pki: Pki) -> None:
    token, params = pki.sign().split(";", 1)
    header, _, signature = token.split(".")
    forged = b64url_encode(
        b'{"attest":"A","dest":{"tn":["8613800000002"]},"iat":%d,"orig":{"tn":"8696110"},"origid":"x"}' % NOW
    )
    rejected(pki.verifier().verify([f"{header}.{forged}.{signature};{params}"], call(), NOW), 438)


def test_orig_or_dest_not_matching_the_call_is_438(pki: Pki) -> None:
    value = pki.sign()
    outcome = rejected(pki.verifier().verify([value], call("+8612381"), NOW), 438)
    assert outcome.error.detail == "orig does not match the calling number"
    outcome = rejected(pki.verifier().verify([value], call(dest="8613800000002"), NOW), 438)
    assert outcome.error.detail == "dest does not contain the called number"


def test_nam_other_than_the_registered_label_is_438(pki: Pki) -> None:
    # A certificate that allows any text: the registry still decides what 96110 may show.
    key = pki.issue("https://afc.example/loose.pem", constraints=None)
    value = pki.sign(key=key, x5u="https://afc.example/loose.pem", label=Label("中国银行"))
    outcome = rejected(pki.verifier().verify([value], call(), NOW), 438)
    assert outcome.error.detail == "rcd nam is not the registered label of the calling number"


def test_protected_label_for_another_number_is_438(pki: Pki) -> None:
    key = pki.issue("https://carrier.example/sp.pem", tn_auth=TnAuthList.for_numbers([OTHER]), constraints=None)
    value = pki.sign(OTHER, key=key, x5u="https://carrier.example/sp.pem", label=Label("公安反诈专号"))
    rejected(pki.verifier().verify([value], call(OTHER), NOW), 438)


def test_display_name_label_with_another_numbers_identity_is_438(pki: Pki) -> None:
    key = pki.issue("https://carrier.example/sp.pem", tn_auth=TnAuthList.for_numbers([OTHER]), constraints=None)
    value = pki.sign(OTHER, key=key, x5u="https://carrier.example/sp.pem", label=None)
    rejected(pki.verifier().verify([value], call(OTHER, display_name="公安反诈专号"), NOW), 438)


@pytest.mark.parametrize(
    "bad",
    [
        {"orig": '{"tn":"8696110"}'},  # a JSON string where the object belongs (libstirshaken's tokens)
        {"dest": {"tn": "8613800000001"}},
        {"dest": {"tn": []}},
        {"iat": "1800000000"},
        {"iat": True},
        {"attest": "D"},
        {"origid": None},
        {"rcd": {"nam": ""}},
        {"rcd": "公安反诈专号"},
        {"crn": 5},
    ],
)
def test_malformed_claims_with_a_valid_signature_are_438(pki: Pki, bad: dict[str, Any]) -> None:
    value = pki.sign_claims(claims(**bad))
    rejected(pki.verifier().verify([value], call(), NOW), 438)


@pytest.mark.parametrize(
    ("header", "params"),
    [
        (PassportHeader(x5u=X5U, typ=None), "ppt=shaken"),
        (PassportHeader(x5u=X5U, ppt="div"), "ppt=div"),
        (PassportHeader(x5u=X5U), "ppt=rcd"),
        (PassportHeader(x5u=X5U), "alg=ES384;ppt=shaken"),
    ],
)
def test_header_and_parameters_must_agree(pki: Pki, header: PassportHeader, params: str) -> None:
    token = pki.sign_claims(claims(), header=header).split(";", 1)[0]
    rejected(pki.verifier().verify([f"{token};info=<{X5U}>;{params}"], call(), NOW), 438)


def test_garbage_identity_is_438(pki: Pki) -> None:
    rejected(pki.verifier().verify(["not a passport;info=<https://x.example/c.pem>"], call(), NOW), 438)
    rejected(pki.verifier().verify(["e30.e30.;info=<https://x.example/c.pem>"], call(), NOW), 438)


# --- 403 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-61, 61, -3600])
def test_iat_outside_the_window_is_403(pki: Pki, offset: int) -> None:
    outcome = rejected(pki.verifier().verify([pki.sign(iat=NOW + offset)], call(), NOW), 403)
    assert outcome.reason_phrase == "Stale Date"


# --- replay ------------------------------------------------------------------------------------


def test_replay_on_another_call_is_438_but_retransmission_passes(pki: Pki) -> None:
    verifier = pki.verifier()
    value = pki.sign()
    assert isinstance(verifier.verify([value], call(call_id="a@trunk"), NOW), Verified)
    assert isinstance(verifier.verify([value], call(call_id="a@trunk"), NOW + 1), Verified)
    outcome = rejected(verifier.verify([value], call(call_id="b@trunk"), NOW + 2), 438)
    assert outcome.error.detail == "PASSporT already used on another call"


def test_replay_with_a_malleated_signature_is_still_a_replay(pki: Pki) -> None:
    from protocols.stir.jose import b64url_decode

    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 group order
    verifier = pki.verifier()
    value = pki.sign()
    token, params = value.split(";", 1)
    head, body, sig = token.split(".")
    raw = b64url_decode(sig, "sig")
    flipped = raw[:32] + (order - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    twin = f"{head}.{body}.{b64url_encode(flipped)};{params}"
    assert isinstance(verifier.verify([value], call(call_id="a@trunk"), NOW), Verified)
    rejected(verifier.verify([twin], call(call_id="b@trunk"), NOW), 438)


def test_a_rejected_call_does_not_burn_its_token(pki: Pki) -> None:
    verifier = pki.verifier()
    value = pki.sign()
    rejected(verifier.verify([value], call(call_id="a@trunk", display_name="工信部反诈预警"), NOW), 438)
    assert isinstance(verifier.verify([value], call(call_id="b@trunk"), NOW), Verified)


# --- several Identity headers ------------------------------------------------------------------


def test_one_good_identity_among_bad_ones_verifies_and_reports_the_others(pki: Pki) -> None:
    bad = pki.sign(x5u="https://elsewhere.example/cert.pem")
    outcome = pki.verifier().verify([bad, pki.sign()], call(), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label == "公安反诈专号"
    (failure,) = outcome.failures
    signature = bad.split(";", 1)[0].rsplit(".", 1)[1]
    assert failure.reason == f'STIR;cause=436;text="Bad Identity Info";ppi="..{signature}"'


def test_all_identities_failing_rejects_with_the_first_failure_and_ppi(pki: Pki) -> None:
    first = pki.sign(iat=NOW - 500)
    second = pki.sign(x5u="https://elsewhere.example/cert.pem")
    outcome = pki.verifier().verify([first, second], call(), NOW)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 403
    signature = first.split(";", 1)[0].rsplit(".", 1)[1]
    assert outcome.reason == f'STIR;cause=403;text="Stale Date";ppi="..{signature}"'
    assert [f.error.code for f in outcome.failures] == [403, 436]


def test_unprotected_call_with_failing_identity_goes_on_with_reasons(pki: Pki) -> None:
    value = pki.sign(OTHER, x5u="https://elsewhere.example/cert.pem", label=None)
    outcome = pki.verifier().verify([value, f"junk;info=<{X5U}>"], call(OTHER), NOW)
    assert isinstance(outcome, Unverified)
    assert outcome.verstat == VERSTAT_FAILED == "TN-Validation-Failed"
    assert outcome.reasons[0].startswith('STIR;cause=436;text="Bad Identity Info";ppi="..')
    assert outcome.reasons[1] == 'STIR;cause=438;text="Invalid Identity Header"'  # no ppi: nothing to name


def test_headers_beyond_the_limit_are_ignored(pki: Pki) -> None:
    values = [f"junk;info=<{X5U}>"] * 4 + [pki.sign()]
    rejected(pki.verifier(max_identity_headers=4).verify(values, call(), NOW), 438)
    assert isinstance(pki.verifier(max_identity_headers=5).verify(values, call(), NOW), Verified)


# --- compact form and rcdi -----------------------------------------------------------------------


def test_compact_form_is_rebuilt_from_the_request(pki: Pki) -> None:
    from protocols.stir.jose import canonical_json, es256_sign

    url = "https://carrier.example/sp.pem"
    key = pki.issue(url, tn_auth=TnAuthList.for_numbers([OTHER]), constraints=None)
    header = {"alg": "ES256", "typ": "passport", "x5u": url}
    body = {"dest": {"tn": [CALLEE]}, "iat": NOW, "orig": {"tn": OTHER}}
    signing_input = b64url_encode(canonical_json(header)) + "." + b64url_encode(canonical_json(body))
    compact = ".." + b64url_encode(es256_sign(key, signing_input.encode()))
    value = f"{compact};info=<{url}>;alg=ES256"
    verifier = pki.verifier()
    outcome = verifier.verify([value], call("+86 139 1234 5678", date=NOW), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.identity.header.compact
    for bad_value, bad_call, detail in [
        (value, call(OTHER, date=NOW + 1, call_id="x"), "signature does not verify"),  # another Date
        (value, call(OTHER, call_id="y"), "compact form needs the Date header"),
        (f"{compact};info=<{url}>;ppt=shaken", call(OTHER, date=NOW), "compact form is not allowed for ppt 'shaken'"),
    ]:
        unverified = verifier.verify([bad_value], bad_call, NOW)
        assert isinstance(unverified, Unverified)
        assert [(f.error.code, f.error.detail) for f in unverified.failures] == [(438, detail)]


def test_rcdi_protects_the_icon(pki: Pki) -> None:
    icon_url = "https://afc.example/icons/police.png"
    icon = b"\x89PNG police badge"
    label = Label("公安反诈专号", crn="反诈预警劝阻", icon=icon_url)
    key = pki.issue("https://afc.example/icon.pem", constraints=None)
    signer_value = pki.sign(key=key, x5u="https://afc.example/icon.pem", label=None)
    del signer_value
    from protocols.stir import Signer

    value = Signer(key, "https://afc.example/icon.pem").sign(
        orig="96110", dest=CALLEE, iat=NOW, label=label, resources={icon_url: icon}
    )
    verified = pki.verifier(resources={icon_url: icon}).verify([value.serialise()], call(), NOW)
    assert isinstance(verified, Verified)
    assert verified.identity.icon == icon_url
    not_held = pki.verifier().verify([value.serialise()], call(), NOW)
    assert isinstance(not_held, Verified)
    assert not_held.identity.icon is None  # unverifiable here: shown without the icon
    tampered = pki.verifier(resources={icon_url: b"fraudster logo"}).verify([value.serialise()], call(), NOW)
    rejected(tampered, 438)


# --- attestation (RFC 8588): only A vouches for the number, so only A earns a label ------------------

LOOSE = "https://afc.example/loose.pem"
LOOSE_HEADER = PassportHeader(x5u=LOOSE)
ATTEST_438 = 'STIR;cause=438;text="Invalid Identity Header: attestation {} cannot vouch for a protected label"'


@pytest.mark.parametrize("attest", ["B", "C"])
@pytest.mark.parametrize(
    ("orig", "rcd"),
    [
        ("96110", {"nam": "公安反诈专号"}),  # the registered number with its own label
        ("010 96110", {"nam": "公安反诈专号"}),
        ("12381", {"nam": "工信部反诈预警"}),
        ("96110", {"nam": "Police"}),  # the registered number with any name at all
        (OTHER, {"nam": "【公安 反诈专号】"}),  # another number, decorated label
        (OTHER, {"nam": "Li Si", "jcd": ["vcard", [["fn", {}, "text", "公安 反诈 专号"]]]}),
        ("96110", {"nam": "x", "jcd": ["vcard", [["fn", {}, "text", "工信部反诈预警"]]]}),
        (OTHER, {"nam": "Li Si", "jcl": "https://afc.example/card.json"}),  # a jCard by reference
    ],
)
def test_b_or_c_carrying_a_label_is_438_naming_the_attestation(
    pki: Pki, attest: str, orig: str, rcd: dict[str, Any]
) -> None:
    numbers = [OTHER, "8696110", "861096110", "8612381"]
    key = pki.issue(LOOSE, tn_auth=TnAuthList.for_numbers(numbers), constraints=None)
    pki.store["https://afc.example/card.json"] = '["vcard",[["fn",{},"text","【公安反诈专号】"]]]'.encode()
    tn = normalise_tn(orig, CHINA)
    value = pki.sign_claims(claims(attest=attest, orig={"tn": tn}, rcd=rcd), header=LOOSE_HEADER, key=key, info=LOOSE)
    outcome = pki.verifier(resources=pki.store).verify([value], call(orig), NOW)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.status == 438
    assert outcome.reason == ATTEST_438.format(attest)


@pytest.mark.parametrize("attest", ["B", "C"])
@pytest.mark.parametrize(
    ("orig", "rcd"),
    [
        (OTHER, None),
        (OTHER, {"nam": "Zhang San"}),
        (OTHER, {"nam": "张三快递"}),
        ("96110", None),
        ("+86 10 96110", None),
    ],
)
def test_b_or_c_without_a_label_is_an_ordinary_verified_call(
    pki: Pki, attest: str, orig: str, rcd: dict[str, Any] | None
) -> None:
    key = pki.issue(LOOSE, tn_auth=TnAuthList.for_numbers([OTHER, "8696110", "861096110"]), constraints=None)
    claimed = claims(attest=attest, orig={"tn": normalise_tn(orig, CHINA)}, rcd=rcd, crn=None)
    value = pki.sign_claims(claimed, header=LOOSE_HEADER, key=key, info=LOOSE)
    outcome = pki.verifier().verify([value], call(orig), NOW)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label is None
    assert outcome.attest == attest
    assert outcome.verstat == VERSTAT_PASSED


def test_attestation_a_still_earns_the_label_from_the_same_certificate(pki: Pki) -> None:
    key = pki.issue(LOOSE, tn_auth=TnAuthList.for_numbers(["8696110"]), constraints=None)
    value = pki.sign_claims(claims(), header=LOOSE_HEADER, key=key, info=LOOSE)
    outcome = pki.verifier().verify([value], call(), NOW)
    assert isinstance(outcome, Verified)
    assert outcome.label == "公安反诈专号"


# --- service provider codes and delegations -----------------------------------------------------------

SPC_X5U = "https://cr.example/certs/sp-1234.pem"
SPC_HEADER = PassportHeader(x5u=SPC_X5U)


def spc_token(pki: Pki, orig: str, *, spcs: tuple[str, ...] = ("1234",), nam: str | None = "registry") -> str:
    key = pki.issue(SPC_X5U, tn_auth=TnAuthList(spcs=spcs), constraints=None)
    tn = normalise_tn(orig, CHINA)
    label = pki.registry.lookup(orig)
    chosen = (label.text if label is not None else None) if nam == "registry" else nam
    return pki.sign_claims(
        claims(orig={"tn": tn}, rcd={"nam": chosen} if chosen else None), header=SPC_HEADER, key=key, info=SPC_X5U
    )


@pytest.mark.parametrize("delegations", [None, {"1234": frozenset({"8696110"})}, {"9999": frozenset({OTHER})}])
def test_an_spc_certificate_verifies_ordinary_calls(pki: Pki, delegations: dict[str, frozenset[str]] | None) -> None:
    outcome = pki.verifier(delegations=delegations).verify([spc_token(pki, OTHER, nam=None)], call(OTHER), NOW)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label is None


@pytest.mark.parametrize(
    ("orig", "spcs", "delegations"),
    [
        ("96110", ("1234",), None),
        ("96110", ("1234",), {"1234": frozenset({"8612381"})}),  # delegated another number
        ("96110", ("1234",), {"5678": frozenset({"8696110"})}),  # the number, to another SPC
        ("12381", ("1234",), {"1234": frozenset({"8696110", "861096110"})}),
        ("010 96110", ("1234", "77"), {"1234": frozenset({"8696110"})}),
    ],
)
def test_an_spc_certificate_not_delegated_never_earns_a_label(
    pki: Pki, orig: str, spcs: tuple[str, ...], delegations: dict[str, frozenset[str]] | None
) -> None:
    outcome = pki.verifier(delegations=delegations).verify([spc_token(pki, orig, spcs=spcs)], call(orig), NOW)
    rejected(outcome, 437)
    assert isinstance(outcome, Rejected)
    assert outcome.error.detail == "an SPC certificate not delegated for this number cannot sign its label"


@pytest.mark.parametrize(
    ("orig", "spcs"), [("96110", ("1234",)), ("+86 10 96110", ("77", "1234")), ("12381", ("1234",))]
)
def test_a_delegated_spc_certificate_earns_the_label(pki: Pki, orig: str, spcs: tuple[str, ...]) -> None:
    delegations = {"1234": frozenset({"8696110", "861096110", "8612381"})}
    outcome = pki.verifier(delegations=delegations).verify([spc_token(pki, orig, spcs=spcs)], call(orig), NOW)
    assert isinstance(outcome, Verified), outcome
    assert outcome.label == pki.registry.lookup(orig).text  # type: ignore[union-attr]
