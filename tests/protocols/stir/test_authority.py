"""TNAuthList and JWT Claim Constraints: DER byte for byte (RFC 8226 with EXPLICIT tags) and their rules."""

from __future__ import annotations

import pytest

from protocols.errors import LocalProtocolError
from protocols.stir import ClaimConstraints, TnAuthList, TnRange, UnsupportedCredential
from protocols.stir.der import DerError


def test_tn_auth_list_one_entries_are_explicitly_tagged_ia5strings() -> None:
    der = TnAuthList.for_numbers(["8696110"]).to_der()
    # SEQUENCE { [2] { IA5String "8696110" } }
    assert der == bytes.fromhex("300b a209 1607") + b"8696110"


def test_tn_auth_list_all_three_entry_kinds() -> None:
    tn_auth = TnAuthList(ones=frozenset({"861096110"}), ranges=(TnRange("8696100", 20),), spcs=("AFC1",))
    der = tn_auth.to_der()
    expected = (
        bytes.fromhex("3025")  # 8 + 16 + 13 octets of entries
        + bytes.fromhex("a006 1604") + b"AFC1"  # spc [0]
        + bytes.fromhex("a10e 300c 1607") + b"8696100" + bytes.fromhex("020114")  # range [1] {start, count 20}
        + bytes.fromhex("a20b 1609") + b"861096110"  # one [2]
    )  # fmt: skip
    assert der == expected
    assert TnAuthList.from_der(der) == tn_auth


def test_tn_auth_list_authorises_ones_and_ranges_only() -> None:
    tn_auth = TnAuthList(ones=frozenset({"861096110"}), ranges=(TnRange("8696100", 20),), spcs=("AFC1",))
    assert tn_auth.authorises("861096110")
    assert tn_auth.authorises("8696110")
    assert tn_auth.authorises("8696119")
    assert not tn_auth.authorises("8696120")
    assert not tn_auth.authorises("86961100")  # a longer number is not in a range of 7-digit numbers
    assert not tn_auth.authorises("AFC1")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        bytes.fromhex("3000"),  # empty list
        bytes.fromhex("3009a2071605") + b"+8696",  # '+' is outside TelephoneNumber's alphabet
        bytes.fromhex("300ba2090c07") + b"8696110",  # UTF8String instead of IA5String
        bytes.fromhex("300b82091607") + b"8696110",  # IMPLICIT tagging
        bytes.fromhex("3009a1073005160138020101"),  # count below 2
        bytes.fromhex("160b") + b"ca.example/",  # libstirshaken's old URL form
        bytes.fromhex("30810ba2091607") + b"8696110",  # non-minimal length
        bytes.fromhex("300ca2091607") + b"8696110",  # length past the end
        bytes.fromhex("300ba2091607") + b"8696110" + b"\x00",  # trailing bytes
    ],
)
def test_malformed_tn_auth_list_raises_der_error(der: bytes) -> None:
    with pytest.raises(DerError) as caught:
        TnAuthList.from_der(der)
    assert caught.value.code == 437


def test_claim_constraints_der() -> None:
    constraints = ClaimConstraints(("rcd",), (("rcd", ('{"nam":"公安反诈专号"}',)),))
    nam = '{"nam":"公安反诈专号"}'.encode()
    expected = (
        bytes.fromhex("3034")  # 9 + 43 octets
        + bytes.fromhex("a007 3005 1603") + b"rcd"  # mustInclude [0] SEQUENCE OF IA5String
        + bytes.fromhex("a129 3027 3025 1603") + b"rcd"  # permittedValues [1] { { claim,
        + bytes.fromhex("301e 0c1c") + nam  # permitted SEQUENCE OF UTF8String } }; nam is 28 octets
    )  # fmt: skip
    assert constraints.to_der() == expected
    assert ClaimConstraints.from_der(expected) == constraints


def test_enhanced_claim_constraints_add_must_exclude() -> None:
    constraints = ClaimConstraints(must_exclude=("jcd",))
    der = constraints.to_der(enhanced=True)
    assert der == bytes.fromhex("3009 a207 3005 1603") + b"jcd"
    assert ClaimConstraints.from_der(der, enhanced=True) == constraints
    with pytest.raises(DerError):
        ClaimConstraints.from_der(der)  # [2] is not part of RFC 8226's JWTClaimConstraints
    with pytest.raises(LocalProtocolError, match="Enhanced"):
        constraints.to_der()


def test_constraints_compare_objects_as_canonical_json() -> None:
    constraints = ClaimConstraints(("rcd",), (("rcd", ('{"nam":"公安反诈专号"}',)), ("crn", ("反诈预警劝阻",))))
    constraints.check({"rcd": {"nam": "公安反诈专号"}, "crn": "反诈预警劝阻"})
    constraints.check({"rcd": {"nam": "公安反诈专号"}})  # crn absent: its permitted values do not apply
    for bad in (
        {"rcd": {"nam": "中国银行"}},
        {"rcd": {"nam": "公安反诈专号", "icn": "https://evil.example/logo.png"}},
        {"rcd": {"nam": "公安反诈专号"}, "crn": "退款"},
        {"crn": "反诈预警劝阻"},  # mustInclude rcd
    ):
        with pytest.raises(UnsupportedCredential):
            constraints.check(bad)


@pytest.mark.parametrize(
    "der",
    [
        bytes.fromhex("3000"),  # neither field
        bytes.fromhex("3007 a107 3005 1603") + b"rcd",  # permittedValues without values
        bytes.fromhex("300e a107 3005 1603") + b"rcd" + bytes.fromhex("a007 3005 1603") + b"rcd",  # out of order
    ],
)
def test_malformed_claim_constraints_raise_der_error(der: bytes) -> None:
    with pytest.raises(DerError):
        ClaimConstraints.from_der(der)


def test_our_own_mistakes_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        TnAuthList().to_der()
    with pytest.raises(LocalProtocolError):
        TnAuthList.for_numbers(["+8696110"])
    with pytest.raises(LocalProtocolError):
        ClaimConstraints().to_der()
