"""The verification service (RFC 8224 section 6.2) for calls that may carry a verified label.

``Verifier.verify`` takes the values of an INVITE's Identity header fields, what the call says about
itself (``CallInfo``) and the time, and returns one of three outcomes:

- ``Verified``: a PASSporT checked out. ``label`` is the registered 反诈名片 for the calling number
  (None for other numbers), ``verstat`` is ``TN-Validation-Passed`` (3GPP TS 24.229).
- ``Unverified``: the call goes on without any label; ``verstat`` says ``No-TN-Validation`` (no
  Identity) or ``TN-Validation-Failed`` (each failure is kept, with its RFC 9410 Reason value).
- ``Rejected``: answer ``status`` with ``reason`` in a Reason header. This happens only when the call
  is *protected*: its calling number is in the label registry, or its display name, or the rcd
  ``nam`` of any of its PASSporTs (verified or not), shows a protected label text. A protected
  call without Identity is a 428; one whose every Identity failed gets the first failure's code; one
  that verifies but shows a label its verified identity does not carry is a 438. Everything else
  follows local policy: the call continues, unlabelled (RFC 8224 section 6.2.2).

Each Identity header is checked in this order, and the first failure decides its code:

1. header grammar (438; 436 without a usable info); the PASSporT's JWS shape and JSON (438)
2. header ``typ`` passport and ``ppt`` equal to the Identity ``ppt`` (438); ``alg`` ES256 (437)
3. ``x5u`` present and equal to ``info`` (436); resolved in the local store (436)
4. certificate chain to a trust anchor, valid at ``now`` (437)
5. the signature (438); then the claims' shapes (438)
6. ``iat`` within ``freshness`` seconds of ``now``, either way (403)
7. ``orig`` equals the calling number and ``dest`` contains the called number, normalised (438)
8. TNAuthList and JWT Claim Constraints of the chain cover ``orig`` and the claims (437); a
   TNAuthList with a service provider code (SPC) covers any ``orig``, but signs a label number only
   when ``delegations`` gives that number to the SPC (437 otherwise)
9. ``rcd.nam`` equals the registered label of ``orig``; a protected label text for any other
   number is refused (438); rcdi digests against locally held content (438)
10. not already used on another Call-ID within its freshness (438)

A compact-form PASSporT (``..signature``) is rebuilt from the request (RFC 8225 section 7): ``orig``
from the calling number, ``dest`` from the called number, ``iat`` from the Date header. SHAKEN
requires the full form (RFC 8588), and a compact form cannot carry ``rcd``, so it never earns a label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.stir.certs import Credential, CredentialResolver, UrlStore
from protocols.stir.errors import (
    BadIdentityInfo,
    InsufficientAttestation,
    InvalidIdentityHeader,
    StaleDate,
    StirError,
    UnsupportedCredential,
    UseIdentityHeader,
)
from protocols.stir.identity_header import IdentityHeader, parse_identity
from protocols.stir.passport import (
    Passport,
    PassportClaims,
    PassportHeader,
    decode_passport,
    parse_claims,
    rebuild_compact,
    verify_signature,
)
from protocols.stir.rcd import check_rcdi
from protocols.stir.registry import Label, LabelRegistry
from protocols.stir.replay import ReplayCache
from protocols.stir.tn import normalise_tn

__all__ = [
    "VERSTAT_FAILED",
    "VERSTAT_NONE",
    "VERSTAT_PASSED",
    "CallInfo",
    "IdentityFailure",
    "Outcome",
    "Rejected",
    "Unverified",
    "Verified",
    "VerifiedIdentity",
    "Verifier",
]

VERSTAT_PASSED = "TN-Validation-Passed"
VERSTAT_FAILED = "TN-Validation-Failed"
VERSTAT_NONE = "No-TN-Validation"

_PPI_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the INVITE says about the call, as the gateway read it."""

    call_id: str
    orig: str  # calling number: the user part of P-Asserted-Identity, else From
    dest: str  # called number: the user part of the Request-URI (or To)
    display_name: str | None = None  # of the From (or PAI): checked for protected label texts
    date: int | None = None  # the Date header in epoch seconds; only compact forms need it


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    header: IdentityHeader
    claims: PassportClaims
    credential: Credential
    label: Label | None  # the registry's label for orig (equal to rcd nam), None for other numbers
    icon: str | None  # rcd icn, only when rcdi verified it against locally held content
    replay_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class IdentityFailure:
    """Why one Identity header failed, and how to name it in a Reason header (RFC 9410)."""

    error: StirError
    ppi: str | None  # the PASSporT's compact form, ``..signature``, when it could be read

    @property
    def reason(self) -> str:
        return self.error.reason(self.ppi)


@dataclass(frozen=True, slots=True)
class Verified:
    identity: VerifiedIdentity
    failures: tuple[IdentityFailure, ...] = ()  # other Identity headers of the request that failed
    verstat: str = VERSTAT_PASSED
    #: Every token recorded as used by this call: (replay key, when it goes stale), for a cache shared
    #: with other verifiers to claim as well.
    used: tuple[tuple[bytes, float], ...] = ()

    @property
    def label(self) -> str | None:
        """The 反诈名片 text to show (PAI display name), or None."""
        return self.identity.label.text if self.identity.label is not None else None

    @property
    def crn(self) -> str | None:
        return self.identity.claims.crn

    @property
    def attest(self) -> str | None:
        return self.identity.claims.attest


@dataclass(frozen=True, slots=True)
class Unverified:
    verstat: str
    failures: tuple[IdentityFailure, ...] = ()

    @property
    def reasons(self) -> list[str]:
        """Reason header values to send upstream in the next provisional or final response."""
        return [failure.reason for failure in self.failures]


@dataclass(frozen=True, slots=True)
class Rejected:
    error: StirError
    failures: tuple[IdentityFailure, ...] = ()

    @property
    def status(self) -> int:
        return self.error.code

    @property
    def reason_phrase(self) -> str:
        return self.error.text

    @property
    def reason(self) -> str:
        """The Reason header value for the rejection; ppi only when several Identity headers came."""
        if len(self.failures) > 1:
            return next((f.reason for f in self.failures if f.error is self.error), self.error.reason())
        return self.error.reason()


Outcome = Verified | Unverified | Rejected


class Verifier:
    """Checks Identity headers against trust anchors, a local certificate store and the label registry."""

    def __init__(
        self,
        *,
        credentials: CredentialResolver,
        registry: LabelRegistry,
        replay: ReplayCache | None = None,
        freshness: float = 60.0,
        max_identity_headers: int = 4,
        resources: UrlStore | None = None,
        delegations: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.credentials = credentials
        self.registry = registry
        self.replay = replay if replay is not None else ReplayCache()
        self.freshness = freshness
        # More Identity headers than this are ignored: each costs a signature check.
        self.max_identity_headers = max_identity_headers
        self.resources: UrlStore = resources if resources is not None else {}
        # SPC -> the label numbers (E.164) a certificate carrying that SPC may sign for.
        self.delegations: Mapping[str, frozenset[str]] = delegations or {}

    def verify(self, identities: Sequence[str], call: CallInfo, now: float) -> Outcome:
        """The outcome for an initial INVITE carrying ``identities`` (Identity header values, in order)."""
        protected = self.registry.lookup(call.orig) is not None
        # Protected label texts the call shows in its display name...
        shown = set(self.registry.labels_in(call.display_name))
        values = list(identities)[: self.max_identity_headers]
        if not values:
            if protected or shown:
                return Rejected(UseIdentityHeader("a protected number or label needs an Identity header"))
            return Unverified(VERSTAT_NONE)
        verified: list[VerifiedIdentity] = []
        failures: list[IdentityFailure] = []
        for value in values:
            names: list[str] = []
            try:
                verified.append(self._verify_identity(value, call, now, names))
            except StirError as exc:
                failures.append(IdentityFailure(exc, _ppi(value)))
                # ...or in the rcd of a PASSporT, valid or not: either way the call claims the label.
                for name in names:
                    shown |= self.registry.labels_in(name)
        if verified:
            best = next((v for v in verified if v.label is not None), verified[0])
            if shown and not (best.label is not None and shown == {best.label.text}):
                error = InvalidIdentityHeader("the call shows a label its verified identity does not carry")
                return Rejected(error, (*failures, IdentityFailure(error, _ppi(best.header.token))))
            used = tuple((identity.replay_key, identity.claims.iat + self.freshness) for identity in verified)
            for key, expires in used:
                self.replay.record(key, call.call_id, expires, now)
            return Verified(best, tuple(failures), used=used)
        if protected or shown:
            return Rejected(failures[0].error, tuple(failures))
        return Unverified(VERSTAT_FAILED, tuple(failures))

    def verify_identity(self, value: str, call: CallInfo, now: float) -> VerifiedIdentity:
        """Check one Identity header value; raises the StirError that decides its answer.

        Does not record the token as used: ``verify`` does that once the call is accepted.
        """
        return self._verify_identity(value, call, now, [])

    def _verify_identity(self, value: str, call: CallInfo, now: float, names: list[str]) -> VerifiedIdentity:
        header = parse_identity(value)
        passport = self._rebuild(header, call) if header.compact else decode_passport(header.token)
        rcd = passport.claims.get("rcd")
        if isinstance(rcd, dict) and isinstance(rcd.get("nam"), str):
            names.append(rcd["nam"])  # what the token would show, before anything vouches for it
        card = _jcard_text(rcd, self.resources)
        if card is not None:
            names.append(card)
        x5u = self._check_header(header, passport.header)
        credential = self.credentials.resolve(x5u, now)
        verify_signature(passport, credential.public_key)
        claims = parse_claims(passport.claims, shaken=passport.header.ppt == "shaken")
        if abs(now - claims.iat) > self.freshness:
            raise StaleDate(f"iat is {now - claims.iat:.0f} s from now")
        plan = self.registry.plan
        orig = normalise_tn(claims.orig_tn, plan)
        if orig != normalise_tn(call.orig, plan):
            raise InvalidIdentityHeader("orig does not match the calling number")
        if normalise_tn(call.dest, plan) not in {normalise_tn(tn, plan) for tn in claims.dest_tns}:
            raise InvalidIdentityHeader("dest does not contain the called number")
        credential.check_authority(orig, passport.claims)
        label = self.registry.lookup_normalised(orig)
        nam = claims.rcd.nam if claims.rcd is not None else None
        if claims.attest != "A":
            # RFC 8588: B and C say the signer could not vouch for the number, so a label in the
            # token (rcd nam, an inline jCard) is refused, and without one the call is an ordinary
            # verified call: it keeps its PASSporT's verdict but never shows the number's label.
            claimed = self.registry.claims_label(nam) or (label is not None and nam is not None)
            if claimed or self.registry.labels_in(_jcard_text(rcd, self.resources)):
                raise InsufficientAttestation(claims.attest)
            label = None
        elif label is not None and not self._may_label(credential, orig):
            raise UnsupportedCredential("an SPC certificate not delegated for this number cannot sign its label")
        elif label is not None and nam != label.text:
            raise InvalidIdentityHeader("rcd nam is not the registered label of the calling number")
        if label is None and self.registry.claims_label(nam):
            raise InvalidIdentityHeader("rcd nam shows a protected label for an unregistered number")
        icon = None
        if claims.rcd is not None and claims.rcdi is not None:
            held = check_rcdi(claims.rcd, claims.rcdi, self.resources)
            icon = claims.rcd.icn if claims.rcd.icn in held else None
        key = ReplayCache.key(passport.signing_input)
        if self.replay.seen_elsewhere(key, call.call_id, now):
            raise InvalidIdentityHeader("PASSporT already used on another call")
        return VerifiedIdentity(header, claims, credential, label, icon, key)

    def _may_label(self, credential: Credential, orig: str) -> bool:
        """A label number is signed by a certificate listing it, or by one whose SPC it is delegated to."""
        if credential.lists_number(orig):
            return True
        return any(orig in self.delegations.get(spc, ()) for spc in credential.spcs)

    def _rebuild(self, header: IdentityHeader, call: CallInfo) -> Passport:
        if header.ppt is not None:
            raise InvalidIdentityHeader(f"compact form is not allowed for ppt {header.ppt!r}")
        if call.date is None:
            raise InvalidIdentityHeader("compact form needs the Date header")
        plan = self.registry.plan
        rebuilt = PassportHeader(alg=header.alg or "ES256", ppt=None, typ="passport", x5u=header.info)
        claims: dict[str, Any] = {
            "dest": {"tn": [normalise_tn(call.dest, plan)]},
            "iat": call.date,
            "orig": {"tn": normalise_tn(call.orig, plan)},
        }
        return rebuild_compact(header.token, rebuilt, claims)

    @staticmethod
    def _check_header(header: IdentityHeader, passport: PassportHeader) -> str:
        if passport.typ != "passport":
            raise InvalidIdentityHeader("PASSporT typ is not passport")
        if passport.ppt != header.ppt:
            raise InvalidIdentityHeader("Identity ppt does not match the PASSporT's ppt")
        if passport.ppt not in (None, "shaken"):
            raise InvalidIdentityHeader(f"unsupported ppt {passport.ppt!r}")
        if passport.alg != "ES256":
            raise UnsupportedCredential(f"unsupported alg {passport.alg[:20]!r}")
        if header.alg is not None and header.alg != passport.alg:
            raise InvalidIdentityHeader("Identity alg does not match the PASSporT's alg")
        if not passport.x5u:
            raise BadIdentityInfo("PASSporT has no x5u")
        if passport.x5u != header.info:
            raise BadIdentityInfo("PASSporT x5u differs from the Identity info")
        return passport.x5u


def _jcard_text(rcd: Any, resources: UrlStore | None = None) -> str | None:
    """The jCard of an rcd claim as text, for a label search: inline (``jcd``), or by reference
    (``jcl``) when the local store holds it; None without one."""
    if not isinstance(rcd, dict):
        return None
    texts = []
    if "jcd" in rcd:
        texts.append(json.dumps(rcd["jcd"], ensure_ascii=False))
    jcl = rcd.get("jcl")
    if resources is not None and isinstance(jcl, str):
        content = resources.get(jcl)
        if content is not None:
            texts.append(content.decode("utf-8", "replace"))
    return "\n".join(texts) or None


def _ppi(value: str) -> str | None:
    """The compact form of the PASSporT in ``value``, if it has a well-formed signature part.

    Only base64url characters are echoed back: a Reason header must not carry attacker bytes.
    """
    token = value.split(";", 1)[0].strip()
    signature = token.rsplit(".", 1)[-1] if token.count(".") == 2 else ""
    return ".." + signature if _PPI_RE.fullmatch(signature) else None
