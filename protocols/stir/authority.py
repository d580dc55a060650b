"""What a STIR certificate authorises: TNAuthList (RFC 8226 section 9) and JWT Claim Constraints.

Both extensions are DER as RFC 8226's ASN.1 module defines them, with EXPLICIT tags::

    id-pe-TNAuthList OBJECT IDENTIFIER ::= { id-pe 26 }          -- 1.3.6.1.5.5.7.1.26
    TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
    TNEntry ::= CHOICE { spc [0] ServiceProviderCode,
                         range [1] TelephoneNumberRange,
                         one [2] TelephoneNumber }
    TelephoneNumberRange ::= SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX), ... }
    TelephoneNumber ::= IA5String (SIZE (1..15)) (FROM ("0123456789#*"))

    id-pe-JWTClaimConstraints OBJECT IDENTIFIER ::= { id-pe 27 }  -- 1.3.6.1.5.5.7.1.27
    JWTClaimConstraints ::= SEQUENCE {
      mustInclude [0] JWTClaimNames OPTIONAL,
      permittedValues [1] JWTClaimPermittedValuesList OPTIONAL }
    JWTClaimPermittedValuesList ::= SEQUENCE SIZE (1..MAX) OF JWTClaimPermittedValues
    JWTClaimPermittedValues ::= SEQUENCE { claim JWTClaimName, permitted SEQUENCE SIZE (1..MAX) OF UTF8String }
    JWTClaimNames ::= SEQUENCE SIZE (1..MAX) OF JWTClaimName
    JWTClaimName ::= IA5String

    id-pe-eJWTClaimConstraints OBJECT IDENTIFIER ::= { id-pe 33 } -- 1.3.6.1.5.5.7.1.33, RFC 9118
    EnhancedJWTClaimConstraints ::= SEQUENCE {
      mustInclude [0] JWTClaimNames OPTIONAL,
      permittedValues [1] JWTClaimValuesList OPTIONAL,
      mustExclude [2] JWTClaimNames OPTIONAL }

How they are enforced (a violation is a 437: the credential does not cover what the token claims):

- TNAuthList: the PASSporT's ``orig`` TN, normalised, must equal a ``one`` entry, or fall in a
  ``range`` (same number of digits, start <= tn < start + count). ``spc`` entries name a service
  provider, not numbers; this gateway has no SPC-to-number mapping, so they authorise nothing.
  A certificate without TNAuthList authorises no number.
- mustInclude: each named claim is present. mustExclude: none of them is.
- permittedValues: when the named claim is present, its value equals one of the listed strings. A
  string claim compares as itself; any other value (``rcd`` is an object) compares as its canonical
  JSON text (RFC 8225 section 9 rules), so ``{"nam":"公安反诈专号"}`` permits exactly that rcd.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.errors import LocalProtocolError
from protocols.stir import der
from protocols.stir.errors import UnsupportedCredential
from protocols.stir.jose import canonical_json

__all__ = [
    "OID_ENHANCED_JWT_CLAIM_CONSTRAINTS",
    "OID_JWT_CLAIM_CONSTRAINTS",
    "OID_TN_AUTH_LIST",
    "ClaimConstraints",
    "TnAuthList",
    "TnRange",
]

OID_TN_AUTH_LIST = "1.3.6.1.5.5.7.1.26"
OID_JWT_CLAIM_CONSTRAINTS = "1.3.6.1.5.5.7.1.27"
OID_ENHANCED_JWT_CLAIM_CONSTRAINTS = "1.3.6.1.5.5.7.1.33"

_TN_RE = re.compile(r"[0-9#*]{1,15}")
_SPC, _RANGE, _ONE = der.CONTEXT | 0, der.CONTEXT | 1, der.CONTEXT | 2


@dataclass(frozen=True, slots=True)
class TnRange:
    start: str
    count: int

    def __contains__(self, tn: object) -> bool:
        if not isinstance(tn, str) or len(tn) != len(self.start) or not (tn.isdigit() and self.start.isdigit()):
            return False
        return int(self.start) <= int(tn) < int(self.start) + self.count


@dataclass(frozen=True, slots=True)
class TnAuthList:
    ones: frozenset[str] = frozenset()
    ranges: tuple[TnRange, ...] = ()
    spcs: tuple[str, ...] = ()

    def authorises(self, tn: str) -> bool:
        return tn in self.ones or any(tn in r for r in self.ranges)

    def to_der(self) -> bytes:
        entries = [der.encode(_SPC, der.encode(der.IA5_STRING, spc.encode("ascii"))) for spc in self.spcs]
        for r in self.ranges:
            body = der.encode(der.IA5_STRING, r.start.encode("ascii")) + der.encode_integer(r.count)
            entries.append(der.encode(_RANGE, der.encode(der.SEQUENCE, body)))
        entries.extend(der.encode(_ONE, der.encode(der.IA5_STRING, tn.encode("ascii"))) for tn in sorted(self.ones))
        if not entries:
            raise LocalProtocolError("a TNAuthorizationList needs at least one entry")
        return der.encode(der.SEQUENCE, b"".join(entries))

    @classmethod
    def for_numbers(cls, tns: Iterable[str]) -> TnAuthList:
        ones = frozenset(tns)
        for tn in ones:
            if not _TN_RE.fullmatch(tn):
                raise LocalProtocolError(f"not a TelephoneNumber: {tn!r}")
        return cls(ones=ones)

    @classmethod
    def from_der(cls, data: bytes) -> TnAuthList:
        """Raises der.DerError (a 437) for anything but a well-formed TNAuthorizationList."""
        tag, content, end = der.read_tlv(data)
        if tag != der.SEQUENCE or end != len(data):
            raise der.DerError("TNAuthorizationList is not a SEQUENCE")
        ones: set[str] = set()
        ranges: list[TnRange] = []
        spcs: list[str] = []
        entries = der.read_sequence_of(content)
        if not entries:
            raise der.DerError("TNAuthorizationList is empty")
        for entry_tag, entry in entries:
            inner_tag, inner, inner_end = der.read_tlv(entry)
            if inner_end != len(entry):
                raise der.DerError("trailing bytes in a TNEntry")
            if entry_tag == _ONE and inner_tag == der.IA5_STRING:
                ones.add(_telephone_number(inner))
            elif entry_tag == _SPC and inner_tag == der.IA5_STRING:
                spcs.append(_ia5(inner))
            elif entry_tag == _RANGE and inner_tag == der.SEQUENCE:
                fields = der.read_sequence_of(inner)
                # The type is extensible ("..."): fields after start and count are ignored.
                if len(fields) < 2 or fields[0][0] != der.IA5_STRING or fields[1][0] != der.INTEGER:
                    raise der.DerError("bad TelephoneNumberRange")
                count = der.read_integer(fields[1][1])
                if count < 2:
                    raise der.DerError("TelephoneNumberRange count below 2")
                ranges.append(TnRange(_telephone_number(fields[0][1]), count))
            else:
                raise der.DerError("unknown TNEntry")
        return cls(frozenset(ones), tuple(ranges), tuple(spcs))


def _ia5(content: bytes) -> str:
    if not content.isascii():
        raise der.DerError("IA5String is not ASCII")
    return content.decode("ascii")


def _telephone_number(content: bytes) -> str:
    text = _ia5(content)
    if not _TN_RE.fullmatch(text):
        raise der.DerError("TelephoneNumber outside its alphabet or size")
    return text


@dataclass(frozen=True, slots=True)
class ClaimConstraints:
    must_include: tuple[str, ...] = ()
    permitted: tuple[tuple[str, tuple[str, ...]], ...] = ()
    must_exclude: tuple[str, ...] = ()

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise UnsupportedCredential when ``claims`` step outside the constraints."""
        for name in self.must_include:
            if name not in claims:
                raise UnsupportedCredential(f"certificate requires claim {name!r}")
        for name in self.must_exclude:
            if name in claims:
                raise UnsupportedCredential(f"certificate forbids claim {name!r}")
        for name, values in self.permitted:
            if name in claims and _claim_text(claims[name]) not in values:
                raise UnsupportedCredential(f"certificate does not permit this value of claim {name!r}")

    def to_der(self, *, enhanced: bool = False) -> bytes:
        """JWTClaimConstraints, or EnhancedJWTClaimConstraints when ``enhanced`` (needed for mustExclude)."""
        if self.must_exclude and not enhanced:
            raise LocalProtocolError("mustExclude needs EnhancedJWTClaimConstraints")
        body = b""
        if self.must_include:
            body += der.encode(der.CONTEXT | 0, _names(self.must_include))
        if self.permitted:
            items = b"".join(
                der.encode(
                    der.SEQUENCE,
                    der.encode(der.IA5_STRING, name.encode("ascii"))
                    + der.encode(der.SEQUENCE, b"".join(der.encode(der.UTF8_STRING, v.encode()) for v in values)),
                )
                for name, values in self.permitted
            )
            body += der.encode(der.CONTEXT | 1, der.encode(der.SEQUENCE, items))
        if self.must_exclude:
            body += der.encode(der.CONTEXT | 2, _names(self.must_exclude))
        if not body:
            raise LocalProtocolError("JWTClaimConstraints needs mustInclude, permittedValues or mustExclude")
        return der.encode(der.SEQUENCE, body)

    @classmethod
    def from_der(cls, data: bytes, *, enhanced: bool = False) -> ClaimConstraints:
        tag, content, end = der.read_tlv(data)
        if tag != der.SEQUENCE or end != len(data):
            raise der.DerError("JWTClaimConstraints is not a SEQUENCE")
        fields = der.read_sequence_of(content)
        allowed = (0, 1, 2) if enhanced else (0, 1)
        numbers = [t - der.CONTEXT for t, _ in fields]
        if not fields or any(n not in allowed for n in numbers) or numbers != sorted(set(numbers)):
            raise der.DerError("JWTClaimConstraints fields missing, unknown or out of order")
        result: dict[int, Any] = {}
        for (_tag, field), number in zip(fields, numbers, strict=True):
            inner_tag, inner, inner_end = der.read_tlv(field)
            if inner_tag != der.SEQUENCE or inner_end != len(field):
                raise der.DerError("JWTClaimConstraints field is not a SEQUENCE")
            result[number] = _read_permitted(inner) if number == 1 else _read_names(inner)
        return cls(result.get(0, ()), result.get(1, ()), result.get(2, ()))


def _claim_text(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value).decode()


def _names(names: tuple[str, ...]) -> bytes:
    return der.encode(der.SEQUENCE, b"".join(der.encode(der.IA5_STRING, n.encode("ascii")) for n in names))


def _read_names(content: bytes) -> tuple[str, ...]:
    items = der.read_sequence_of(content)
    if not items or any(tag != der.IA5_STRING for tag, _ in items):
        raise der.DerError("JWTClaimNames is not a non-empty SEQUENCE OF IA5String")
    return tuple(_ia5(value) for _, value in items)


def _read_permitted(content: bytes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    result = []
    items = der.read_sequence_of(content)
    if not items:
        raise der.DerError("empty permittedValues")
    for tag, item in items:
        fields = der.read_sequence_of(item) if tag == der.SEQUENCE else []
        if len(fields) != 2 or fields[0][0] != der.IA5_STRING or fields[1][0] != der.SEQUENCE:
            raise der.DerError("bad JWTClaimPermittedValues")
        values = der.read_sequence_of(fields[1][1])
        if not values or any(t != der.UTF8_STRING for t, _ in values):
            raise der.DerError("permitted values are not a non-empty SEQUENCE OF UTF8String")
        try:
            texts = tuple(v.decode("utf-8") for _, v in values)
        except UnicodeDecodeError:
            raise der.DerError("UTF8String is not UTF-8") from None
        result.append((_ia5(fields[0][1]), texts))
    return tuple(result)
