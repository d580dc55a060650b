"""Fuzzing: whatever arrives, the STIR core answers with its own error type and nothing else.

- ``parse_identity``: arbitrary text, every prefix of a valid header (fed one character at a time), and
  random edits of one; ``IdentityHeader`` or ``StirError``, and a parsed header serialises to a value
  that parses to the same header.
- ``decode_passport`` and ``parse_claims``: arbitrary text, edits of a real token, arbitrary JSON.
- ``Verifier.verify``: any list of header values gives an outcome and never raises.
- The DER readers raise only ``DerError``; the credential resolver, given any bytes as certificate
  content, raises only ``StirError``.

Set ``AFGW_FUZZ_EXAMPLES`` for a longer run than the default.
"""

from __future__ import annotations

import contextlib
import json
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocols.stir import (
    CallInfo,
    ClaimConstraints,
    CredentialResolver,
    IdentityHeader,
    Rejected,
    StirError,
    TnAuthList,
    Unverified,
    Verified,
    decode_passport,
    normalise_tn,
    parse_claims,
    parse_identity,
)
from protocols.stir.der import DerError

from .conftest import CALLEE, NOW, X5U, make_pki

EXAMPLES = int(os.environ.get("AFGW_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PKI = make_pki()
VALID = PKI.sign()
TOKEN = VALID.split(";", 1)[0]
VERIFIER = PKI.verifier()
CONSTRAINTS = ClaimConstraints(("rcd",), (("rcd", ('{"nam":"公安反诈专号"}',)),))
DER_SAMPLES = [TnAuthList.for_numbers(["8696110", "861096110"]).to_der(), CONSTRAINTS.to_der()]

edit = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=2), st.characters())


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for position, kind, char in edits:
        i = position % (len(text) + 1)
        if kind == 0:
            text = text[:i] + char + text[i:]
        elif kind == 1:
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + char + text[i + 1 :]
    return text


def _parse_or_error(value: str) -> IdentityHeader | None:
    try:
        header = parse_identity(value)
    except StirError:
        return None
    assert parse_identity(header.serialise()) == header
    return header


@FUZZ
@given(st.text())
@example(";info=<a:b>")
@example('x;info=<a:b>;ppt="\\')
def test_identity_header_arbitrary_text(value: str) -> None:
    _parse_or_error(value)


def test_identity_header_one_character_at_a_time() -> None:
    for end in range(len(VALID) + 1):
        _parse_or_error(VALID[:end])
    assert _parse_or_error(VALID) is not None


@FUZZ
@given(st.lists(edit, min_size=1, max_size=4))
def test_identity_header_edits(edits: list[tuple[int, int, str]]) -> None:
    _parse_or_error(_apply(VALID, edits))


@FUZZ
@given(st.one_of(st.text(), st.lists(edit, min_size=1, max_size=3).map(lambda e: _apply(TOKEN, e))))
def test_passport_decoding(token: str) -> None:
    with contextlib.suppress(StirError):
        parse_claims(decode_passport(token).claims)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
claim_keys = st.sampled_from(["iat", "orig", "dest", "attest", "origid", "rcd", "rcdi", "crn", "tn", "nam", "icn"])


@FUZZ
@given(st.dictionaries(claim_keys, json_values | st.dictionaries(claim_keys, json_values, max_size=3), max_size=8))
def test_claims_of_any_shape(claims: dict[str, object]) -> None:
    json.dumps(claims)
    with contextlib.suppress(StirError):
        parse_claims(claims)


@FUZZ
@given(
    st.lists(
        st.one_of(st.text(max_size=200), st.lists(edit, min_size=1, max_size=3).map(lambda e: _apply(VALID, e))),
        max_size=5,
    ),
    st.text(max_size=20),
)
def test_verifier_never_raises(values: list[str], display_name: str) -> None:
    outcome = VERIFIER.verify(values, CallInfo("fuzz", "96110", CALLEE, display_name=display_name), NOW)
    assert isinstance(outcome, Verified | Unverified | Rejected)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(DER_SAMPLES)
        .flatmap(lambda d: st.tuples(st.just(d), st.integers(0, len(d) - 1), st.integers(0, 255)))
        .map(lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :]),
    )
)
def test_der_readers_raise_only_der_error(data: bytes) -> None:
    for read in (TnAuthList.from_der, ClaimConstraints.from_der):
        with contextlib.suppress(DerError):
            read(data)
    with contextlib.suppress(DerError):
        ClaimConstraints.from_der(data, enhanced=True)


SIGNER_PEM = PKI.store[X5U]


@settings(max_examples=max(EXAMPLES // 4, 20), deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.tuples(st.integers(0, len(SIGNER_PEM) - 1), st.integers(0, 255)).map(
            lambda t: SIGNER_PEM[: t[0]] + bytes([t[1]]) + SIGNER_PEM[t[0] + 1 :]
        ),
    )
)
def test_credential_resolver_raises_only_stir_error(content: bytes) -> None:
    resolver = CredentialResolver([PKI.ca], {X5U: content})
    with contextlib.suppress(StirError):
        resolver.resolve(X5U, NOW)


@FUZZ
@given(st.text(max_size=30))
def test_normalise_tn(text: str) -> None:
    try:
        result = normalise_tn(text)
    except StirError:
        return
    assert result.isdigit()
    assert result.isascii()
    assert 1 <= len(result) <= 15
