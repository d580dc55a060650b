"""Verified caller labels (反诈名片) on the SIP side: strip what a caller may not assert, verify, stamp.

Every initial request the proxy routes to a handset passes :meth:`StirPolicy.screen` (and every
in-dialog request :meth:`StirPolicy.strip_in_dialog`). Three steps:

1. **Strip.** Nothing a caller sends can make a handset show a label or a verified badge: the
   P-Asserted-Identity, P-Preferred-Identity, Call-Info and Identity header fields are removed, and
   so are the vendor headers of ``sip.stir.strip_headers`` (X-Caller-Label and the like). A
   ``verstat`` parameter is removed wherever it appears in From, To or Contact (user part, URI or
   header parameter), and any other header field that mentions verstat is dropped.
2. **Look and verify.** A From or P-Asserted-Identity display name that reads as a protected number
   (:class:`gateway.label_text.ProtectedNumbers`: 九六一一零, 9611O, +86 10 96110) from any other
   number is refused 428 at once. Then every header value, whatever its name (kept or stripped,
   percent-decoded, data: URIs decoded), and a MESSAGE body, is searched for the protected label
   texts in any disguise (:mod:`gateway.label_text`); an all-ASCII request skips the search when no
   label could be ASCII. The verifier is asked only when there is something to verify (so that
   ordinary calls cost a few microseconds): an Identity header came, the calling number is
   authorised (in labels.yaml), or a label shows. ``protocols.stir.Verifier`` checks signature, chain
   to a trust anchor, iat freshness, orig (the From number) and dest (the Request-URI number)
   normalised to E.164, attestation A for any label, ``nam`` against the registry's label for the
   number, and replays.
3. **Decide and stamp.**

   =====================================  ====================================================
   outcome                                 what the gateway does
   =====================================  ====================================================
   verified, label L, nothing else shown  P-Asserted-Identity ``"L" <sip:+TN;verstat=TN-Valida
                                           tion-Passed@domain;user=phone>`` and Call-Info (a
                                           jCard naming L, with the call reason; the rcd icon
                                           when rcdi vouched for it); L as the From display
                                           name too (``label_in_from``, URI and tag kept)
   verified, ordinary number or a         the same PAI without a display name; no Call-Info
   label-less attestation B or C
   verified, but shows a label it does    438 Invalid Identity Header
   not carry, or a label under B or C     (the Reason text names the attestation)
   a display name reading as a protected  428, before any verification
   number, from another number
   a label shown without verification     428 with no Identity, else the Identity's own failure
                                           (436, 437, 438, 403 stale)
   authorised number, Identity missing    ``unverified_authorised: reject`` (default): the same
   or failing, no label shown              codes; ``deliver``: PAI with verstat=TN-Validation-
                                           Failed and no display name
   ordinary number, Identity failing      delivered, PAI with verstat=TN-Validation-Failed
   ordinary number, no Identity            delivered as it came (minus what step 1 removed)
   =====================================  ====================================================

   Every refusal carries ``Reason: STIR;cause=NNN;text="..."`` (RFC 9410). Identity headers never
   reach a handset.

The wall clock for iat comes from the caller (the proxy's injected clock), never from here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from gateway.config import SipStir
from gateway.label_text import LabelMatcher, NormalisingRegistry, ProtectedNumbers
from gateway.labels import LabelsConfig, open_trust
from protocols.errors import RemoteProtocolError
from protocols.sip import NameAddr, Request, SipUri, parse_name_addr, split_list
from protocols.sip.headers import quote_string
from protocols.stir import (
    VERSTAT_FAILED,
    VERSTAT_PASSED,
    CallInfo,
    CredentialResolver,
    InvalidIdentityHeader,
    Rejected,
    ReplayCache,
    StirError,
    TelephoneNumberError,
    UseIdentityHeader,
    Verified,
    Verifier,
    normalise_tn,
)

__all__ = ["ALWAYS_STRIPPED", "REPLAYED", "Admit", "Refuse", "StirPolicy", "build_call_verifier"]

#: Removed from every request towards a handset, whatever the configuration says.
ALWAYS_STRIPPED = ("P-Asserted-Identity", "P-Preferred-Identity", "Call-Info", "Identity")
# Header fields left alone even if they mention verstat: they route the message, nobody displays them.
_ROUTING = frozenset(
    {"via", "call-id", "cseq", "max-forwards", "route", "record-route", "content-length", "content-type"}
)
_ADDRESSES = ("From", "To", "Contact")
# A MESSAGE body is read this far for labels (a page-mode message is small; RFC 3428 says 1300 bytes).
_MAX_BODY = 65536
_VERSTAT = re.compile("verstat", re.IGNORECASE)
_ASSERTED = frozenset({"p-asserted-identity", "p-preferred-identity"})
_MAX_DATA_URI = 8192


@dataclass(frozen=True, slots=True)
class Admit:
    """The request goes on; with ``verstat`` set, :meth:`StirPolicy.stamp` asserts the caller."""

    verstat: str | None = None
    number: str | None = None  # E.164 digits, no '+'
    label: str | None = None
    crn: str | None = None
    icon: str | None = None
    #: The verified PASSporT's attestation (A, B or C) when it vouched for the calling number, else None.
    attest: str | None = None
    #: The PASSporTs this call used, (replay key, stale time): claimed in a shared store when several
    #: gateways must agree that a token serves one call only. Bookkeeping, not part of the verdict.
    used: tuple[tuple[bytes, float], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Refuse:
    """The request is answered ``status`` with ``reason`` in a Reason header (RFC 9410)."""

    status: int
    reason_phrase: str
    reason: str
    detail: str  # for logs and the audit trail only: it may quote what the caller sent
    claims: frozenset[str]

    @classmethod
    def of(cls, error: StirError, claims: frozenset[str], reason: str | None = None) -> Refuse:
        return cls(error.code, error.text, reason or error.reason(), error.detail, claims)


PLAIN = Admit()
#: What a PASSporT already used on another call is told, here or by a gateway sharing the store.
REPLAYED = "PASSporT already used on another call"


@dataclass(slots=True)
class Stripped:
    identities: list[str]
    shown: list[str]  # values of removed header fields a handset could have displayed
    asserted: list[str] = field(default_factory=list)  # removed P-Asserted/P-Preferred-Identity values
    kept: list[str] = field(default_factory=list)  # values of the header fields left in place


def build_call_verifier(labels: LabelsConfig) -> Verifier:
    """``gateway.labels.build_verifier`` with a registry that sees through disguised label texts."""
    anchors, store = open_trust(labels)
    return Verifier(
        credentials=CredentialResolver(anchors, store),
        registry=NormalisingRegistry(labels.labels, labels.plan),
        replay=ReplayCache(max_entries=labels.replay_cache_entries),
        freshness=labels.freshness,
        max_identity_headers=labels.max_identity_headers,
        resources=store,
        delegations=labels.delegations,
    )


class StirPolicy:
    def __init__(self, config: SipStir, verifier: Verifier | None, *, domain: str) -> None:
        self.config = config
        self.verifier = verifier
        self.domain = domain
        self._strip = {name.lower() for name in (*ALWAYS_STRIPPED, *config.strip_headers)}
        self._deliver_unverified = config.unverified_authorised == "deliver"
        self.matcher: LabelMatcher | None = None
        self._numbers: ProtectedNumbers | None = None
        if verifier is not None:
            # The verifier asks its registry whether display names and rcd nams show a label: make
            # sure it asks in the normalising way, whoever built it.
            registry = NormalisingRegistry.of(verifier.registry)
            verifier.registry = registry
            self.matcher = registry.matcher
            self._numbers = registry.protected_numbers
        # Stamped values by what they say: the same few numbers and labels call again and again.
        self._cards: dict[tuple[str, str, str | None], str] = {}
        self._asserted: dict[tuple[str, str, str | None], str] = {}

    # --- step 1 ----------------------------------------------------------------------------------------

    def strip(self, request: Request) -> Stripped:
        """Remove every header field and parameter through which a caller could assert an identity.

        Cheap when there is nothing to remove (the usual case): one pass over the header names, one
        search of all the values for ``verstat`` and ``%`` (an escaped verstat in a URI user part)."""
        headers = request.headers
        items = headers.fields()
        strip = self._strip
        doomed: set[str] = set()
        result = Stripped([], [])
        for name, _ in items:
            if name.lower() in strip:
                doomed.add(name)
        values = "\n".join([value for _, value in items])
        verstat = _VERSTAT.search(values) is not None
        if verstat:
            for name, value in items:
                if name not in _ADDRESSES and name.lower() not in _ROUTING and _VERSTAT.search(value):
                    doomed.add(name)
        for name in doomed:
            removed = headers.get_all(name)
            lname = name.lower()
            if lname == "identity":
                result.identities.extend(removed)
            else:
                result.shown.extend(removed)
                if lname in _ASSERTED:
                    result.asserted.extend(removed)
            headers.remove(name)
        if verstat or "%" in values:
            for name in _ADDRESSES:
                _clean_addresses(request, name)
        # What stays is looked at too, whatever its name: a label in P-Caller-Label, X-Label or any
        # vendor's header would reach the handset (the matcher answers an ASCII value at once).
        matcher = self.matcher
        quiet = values.isascii() and "%" not in values and "data:" not in values
        if not (matcher is not None and matcher.ascii_safe and quiet):
            result.kept = [value for name, value in items if name not in doomed]
        return result

    def strip_in_dialog(self, request: Request) -> None:
        """Inside a call only the header fields go: the dialog's From and To were screened already.

        So does any other header field that shows a label (a re-INVITE or an UPDATE cannot be refused
        without upsetting the call, but it must not carry the label to the handset either)."""
        headers = request.headers
        items = headers.fields()
        strip = self._strip
        doomed = {name for name, _ in items if name.lower() in strip}
        matcher = self.matcher
        values = "\n".join([value for _, value in items])
        quiet = values.isascii() and "%" not in values and "data:" not in values
        if matcher and not (matcher.ascii_safe and quiet):
            for name, value in items:
                lname = name.lower()
                if name in _ADDRESSES or lname in _ROUTING or name in doomed:
                    continue
                if matcher.labels_in_any(_shown_texts(None, [value])):
                    doomed.add(name)
        for name in doomed:
            headers.remove(name)

    # --- steps 2 and 3 ---------------------------------------------------------------------------------

    def screen(self, request: Request, callee: str, now: float) -> Admit | Refuse:
        """Strip, verify if there is anything to verify, and decide. ``now``: wall-clock epoch seconds."""
        stripped = self.strip(request)
        verifier, matcher = self.verifier, self.matcher
        if verifier is None or matcher is None:
            return PLAIN
        caller_addr = request.from_addr
        caller = _number(caller_addr.uri)
        display = caller_addr.display
        refused = self._reads_as_protected(caller, display, stripped.asserted)
        if refused is not None:
            return refused
        seen = [*stripped.shown, *stripped.kept]
        if request.method == "MESSAGE" and request.body:
            seen.append(request.body[:_MAX_BODY].decode("utf-8", "replace"))
        shown = matcher.labels_in_any(_shown_texts(caller_addr, seen))
        identities = stripped.identities
        authorised = verifier.registry.lookup(caller) is not None
        if not identities and not shown and not authorised:
            return PLAIN
        call = CallInfo(request.call_id, caller, _number_text(callee), display, _date(request) if identities else None)
        outcome = verifier.verify(identities, call, now)
        if isinstance(outcome, Verified):
            identity = outcome.identity
            label = identity.label
            if shown - ({label.text} if label is not None else set()):
                error = InvalidIdentityHeader("the call shows a label its verified identity does not carry")
                return Refuse.of(error, shown)
            number = _e164(identity.claims.orig_tn, verifier)
            # Attestation B or C reaches here only without a label (the verifier refuses a label under
            # it). Its verstat is still TN-Validation-Passed: 3GPP TS 24.229 defines verstat as the
            # result of verifying the signature and the number against the PASSporT, with three values
            # only (Passed, Failed, No-TN-Validation) and none per attestation level; RFC 8588 leaves
            # what to show for B and C to local policy. Some carriers send TN-Validation-Passed-B/-C,
            # which no 3GPP handset knows, so we do not. What B and C never get is a name: no display
            # name in the PAI, no Call-Info, no From rewrite.
            attest = identity.claims.attest
            if label is None:
                return Admit(VERSTAT_PASSED, number, attest=attest, used=outcome.used)
            crn = identity.claims.crn or label.crn
            return Admit(VERSTAT_PASSED, number, label.text, crn, identity.icon, attest, used=outcome.used)
        if isinstance(outcome, Rejected):
            if self._deliver_unverified and authorised and not shown:
                return Admit(VERSTAT_FAILED, _e164(caller, verifier))
            return Refuse(outcome.status, outcome.reason_phrase, outcome.reason, outcome.error.detail, shown)
        # Unverified: the verifier saw no protected number and no label in the From display name or
        # any rcd; the label may still show in a header it was not given.
        if shown:
            if not outcome.failures:
                return Refuse.of(UseIdentityHeader("a protected label needs an Identity header"), shown)
            first = outcome.failures[0]
            # As the verifier does: the PASSporT is named (ppi) only when several came.
            return Refuse.of(first.error, shown, first.reason if len(outcome.failures) > 1 else None)
        if outcome.failures:
            try:
                return Admit(VERSTAT_FAILED, _e164(caller, verifier))
            except TelephoneNumberError:
                return PLAIN
        return PLAIN

    def _reads_as_protected(self, caller: str, display: str | None, asserted: list[str]) -> Refuse | None:
        """428 when the From or P-Asserted-Identity display name reads as a protected number (96110 as
        九六一一零, 9611O, +86 10 96110, ...) other than the caller's own: a handset would show it as if
        the centre called. The centre's own number is left to verification."""
        numbers = self._numbers
        if not numbers:
            return None
        displays = [display] if display else []
        for value in asserted:
            with contextlib.suppress(RemoteProtocolError):
                displays.extend(a.display for a in map(parse_name_addr, split_list(value)) if a.display)
        if not displays:
            return None
        for text in displays:
            number = numbers.read(text)
            if number is not None and not numbers.is_protected(caller):
                error = UseIdentityHeader(f"the display name reads as the protected number +{number}")
                return Refuse.of(error, frozenset({f"+{number}"}))
        return None

    def stamp(self, request: Request, admit: Admit) -> None:
        """Tell the handset what was verified: P-Asserted-Identity with verstat, and Call-Info."""
        if admit.verstat is None or admit.number is None:
            return
        key = (admit.number, admit.verstat, admit.label)
        asserted = self._asserted.get(key)
        if asserted is None:
            user = f"+{admit.number};verstat={admit.verstat}"
            uri = SipUri(user=user, host=self.domain, params=(("user", "phone"),))
            asserted = str(NameAddr(uri=uri, display=admit.label))
            if len(self._asserted) < 4096:
                self._asserted[key] = asserted
        request.headers.set("P-Asserted-Identity", asserted)
        if admit.label is None:
            return
        if self.config.label_in_from:
            caller = request.from_addr
            if caller.display != admit.label:
                request.headers.set("From", str(NameAddr(caller.uri, admit.label, caller.params)))
        request.headers.add("Call-Info", self._card(admit.label, admit.number, admit.crn))
        if admit.icon is not None:
            request.headers.add("Call-Info", f"<{admit.icon}>;purpose=icon")

    def _card(self, label: str, number: str, crn: str | None) -> str:
        """Call-Info (RFC 9796) with purpose=jcard: a jCard (RFC 7095) naming the label, inline as a data:
        URI, and the call reason (rcd ``crn``) as ``call-reason``."""
        key = (label, number, crn)
        value = self._cards.get(key)
        if value is None:
            card = [
                "vcard",
                [["version", {}, "text", "4.0"], ["fn", {}, "text", label], ["tel", {}, "uri", f"tel:+{number}"]],
            ]
            data = base64.b64encode(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode()).decode()
            value = f"<data:application/vcard+json;base64,{data}>;purpose=jcard"
            if crn:
                value += f";call-reason={quote_string(crn)}"
            if len(self._cards) < 1024:
                self._cards[key] = value
        return value


# --- helpers ---------------------------------------------------------------------------------------------


def _clean_addresses(request: Request, name: str) -> None:
    """Remove ``verstat`` from the name-addrs of ``name`` (From, To, Contact), if any carries it."""
    values = request.headers.get_all(name)
    if not any(_VERSTAT.search(v) or "%" in v for v in values):
        return
    try:
        addrs = [parse_name_addr(item) for v in values for item in (split_list(v) if name == "Contact" else [v])]
    except RemoteProtocolError:
        return  # validated before it came here (From, To); a Contact that does not parse is never shown
    cleaned = [_without_verstat(a) for a in addrs]
    if cleaned != addrs:
        request.headers.set(name, ", ".join(str(a) for a in cleaned))


def _without_verstat(addr: NameAddr) -> NameAddr:
    uri = addr.uri
    user = uri.user
    if user is not None and ";" in user:
        number, *params = user.split(";")
        kept = [p for p in params if p.split("=", 1)[0].strip().lower() != "verstat"]
        uri = replace(uri, user=";".join([number, *kept]))
    if uri.has_param("verstat"):
        uri = uri.without_param("verstat")
    if addr.has_param("verstat"):
        addr = NameAddr(addr.uri, addr.display, tuple(p for p in addr.params if p[0].lower() != "verstat"))
    return addr if uri is addr.uri else NameAddr(uri, addr.display, addr.params)


def _number(uri: SipUri) -> str:
    """The calling number: a tel URI's number, or a SIP URI's user part without its tel parameters."""
    return _number_text(uri.user or "")


def _number_text(user: str) -> str:
    return user.split(";", 1)[0]


def _e164(number: str, verifier: Verifier) -> str:
    return normalise_tn(number, verifier.registry.plan)


def _shown_texts(caller: NameAddr | None, removed: Iterable[str]) -> list[str | None]:
    """Everything a handset could have displayed as the caller's name, decoded as a handset would."""
    texts: list[str | None] = []
    if caller is not None:
        texts.append(caller.display)
        user = caller.uri.user
        if user and not user.isascii():
            texts.append(user)
    for value in removed:
        texts.append(value)
        if "%" in value:
            texts.append(unquote(value))
        if "data:" in value:
            texts.extend(_data_uris(value))
    return texts


def _data_uris(value: str) -> list[str]:
    """The decoded content of the data: URIs in a header value (a jCard, a text), as text."""
    out = []
    for element in split_list(value) if "," in value else [value]:
        start = element.find("<data:")
        end = element.find(">", start)
        if start < 0 or end < 0 or end - start > _MAX_DATA_URI:
            continue
        meta, _, payload = element[start + 6 : end].partition(",")
        try:
            raw = base64.b64decode(payload, validate=False) if meta.endswith(";base64") else unquote(payload).encode()
        except (binascii.Error, ValueError):
            continue
        text = raw.decode("utf-8", "replace")
        out.append(text)
        if "\\u" in text:  # JSON escapes hide characters from a plain search
            with contextlib.suppress(ValueError):
                out.append(json.dumps(json.loads(text), ensure_ascii=False))
    return out


def _date(request: Request) -> int | None:
    value = request.headers.get("Date")
    if value is None:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
