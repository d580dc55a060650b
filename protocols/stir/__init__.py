"""STIR/SHAKEN for verified caller labels (反诈名片): sans-IO, no clock reads, no network.

- ``identity_header``: the SIP Identity header (RFC 8224), full and compact PASSporT forms
- ``passport``, ``rcd``, ``jose``: PASSporT (RFC 8225, 8588) with Rich Call Data (RFC 9795)
- ``tn``: telephone number normalisation (+86 / 0086 / 86 / 0xx / short codes)
- ``authority``, ``der``: TNAuthList and JWT Claim Constraints (RFC 8226, RFC 9118)
- ``certs``: x5u resolution from a local store, chain validation to trust anchors, with a cache
- ``registry``: authorised numbers and their labels; ``replay``: one token, one call
- ``verify``: the verification service and its outcomes; ``signer``: the authentication service
- ``issue``: the anti-fraud centre's CA and signer certificates
- ``errors``: every failure, carrying its SIP code and RFC 9410 Reason
"""

from protocols.stir.authority import ClaimConstraints, TnAuthList, TnRange
from protocols.stir.certs import Credential, CredentialResolver, UrlStore, load_certificates, store_file_name
from protocols.stir.errors import (
    BadIdentityInfo,
    InsufficientAttestation,
    InvalidIdentityHeader,
    StaleDate,
    StirError,
    TelephoneNumberError,
    UnsupportedCredential,
    UseIdentityHeader,
)
from protocols.stir.identity_header import COMPACT_NAME, HEADER_NAME, IdentityHeader, parse_identity
from protocols.stir.passport import (
    Passport,
    PassportClaims,
    PassportHeader,
    decode_passport,
    encode_passport,
    parse_claims,
    verify_signature,
)
from protocols.stir.rcd import Rcd
from protocols.stir.registry import Label, LabelRegistry
from protocols.stir.replay import ReplayCache
from protocols.stir.signer import Signer
from protocols.stir.tn import CHINA, NumberPlan, normalise_tn
from protocols.stir.verify import (
    VERSTAT_FAILED,
    VERSTAT_NONE,
    VERSTAT_PASSED,
    CallInfo,
    IdentityFailure,
    Outcome,
    Rejected,
    Unverified,
    Verified,
    VerifiedIdentity,
    Verifier,
)

__all__ = [
    "CHINA",
    "COMPACT_NAME",
    "HEADER_NAME",
    "VERSTAT_FAILED",
    "VERSTAT_NONE",
    "VERSTAT_PASSED",
    "BadIdentityInfo",
    "CallInfo",
    "ClaimConstraints",
    "Credential",
    "CredentialResolver",
    "IdentityFailure",
    "IdentityHeader",
    "InsufficientAttestation",
    "InvalidIdentityHeader",
    "Label",
    "LabelRegistry",
    "NumberPlan",
    "Outcome",
    "Passport",
    "PassportClaims",
    "PassportHeader",
    "Rcd",
    "Rejected",
    "ReplayCache",
    "Signer",
    "StaleDate",
    "StirError",
    "TelephoneNumberError",
    "TnAuthList",
    "TnRange",
    "UnsupportedCredential",
    "Unverified",
    "UrlStore",
    "UseIdentityHeader",
    "Verified",
    "VerifiedIdentity",
    "Verifier",
    "decode_passport",
    "encode_passport",
    "load_certificates",
    "normalise_tn",
    "parse_claims",
    "parse_identity",
    "store_file_name",
    "verify_signature",
]
