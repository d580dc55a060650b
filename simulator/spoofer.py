"""Spoofers: callers who want a handset to show 反诈名片 (公安反诈专号) without the anti-fraud centre's proof.

:func:`spoof_variants` lists every trick the gateway must defeat, each as a :class:`Spoof` (the From
number, display name and URI, extra header fields, Identity header values) that a :class:`Spoofer`
places through the gateway like any trunk call:

- the label written where handsets read a caller's name, with no Identity at all: the From display
  name (plain, traditional characters, spaces, symbols, zero-width and full-width characters,
  homoglyphs, decorations, Latin letters in between), the From user part, P-Asserted-Identity (with a
  forged verstat), Call-Info (a call-reason, an inline jCard), Remote-Party-ID, vendor label headers,
  Subject;
- an authorised number (96110) with no Identity, a forged verstat, or an Identity that fails: an x5u
  the gateway does not hold, a forged signature, a certificate under a CA nobody trusts;
- genuine tokens misused: captured ten minutes ago (stale), signed for another of the centre's numbers
  (wrong orig) or for another callee (wrong dest), presented from the spoofer's own number, or replayed
  on another Call-ID; a token whose rcd ``nam`` is another label than the number's; a carrier's valid
  token for an ordinary number whose rcd claims the label.

Genuine tokens come from ``SpoofKit.centre`` (the centre's signer, standing for what a wiretap or an
insider would yield); the spoofer's own keys are made here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from protocols.stir import Label, LabelRegistry, Signer
from protocols.stir.issue import authority_for, issue_ca, issue_signer, new_key
from simulator.trunk import CallResult, TrunkCaller

__all__ = ["Spoof", "SpoofKit", "Spoofer", "rogue_signer", "spoof_variants"]

POLICE_NUMBER = "96110"
OWN_NUMBER = "8613912345678"  # the spoofer's own (ordinary, mobile) line


@dataclass(frozen=True, slots=True)
class Spoof:
    name: str
    what: str
    caller: str
    display: str | None = None
    from_uri: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    identity: tuple[str, ...] = ()


@dataclass
class SpoofKit:
    """What the spoofer works with."""

    registry: LabelRegistry
    victim: str
    centre: Signer  # genuine tokens (captured, or mis-signed by an insider)
    rogue: Signer  # a certificate the gateway's store holds, under a CA it does not trust
    carrier: Signer | None = None  # a trusted carrier's signer for the spoofer's own number
    own_number: str = OWN_NUMBER
    domain: str = "127.0.0.1"
    unknown_x5u: str = "https://stir.afc.example.cn/shaken/other.pem"
    clock: Callable[[], float] = time.time
    #: Genuine Identity values seen on the wire (the centre's real calls), for replays.
    captured: list[str] = field(default_factory=list)


def rogue_signer(
    registry: LabelRegistry, x5u: str, *, now: dt.datetime | None = None
) -> tuple[Signer, bytes, x509.Certificate]:
    """A signer certificate that looks like the centre's (same numbers, same label constraints) under
    a CA of the spoofer's own: the signer, its certificate as PEM (for a store) and the rogue CA."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key, key = new_key(), new_key()
    ca = issue_ca(
        ca_key,
        common_name="Anti-Fraud Centre STIR Root CA",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
    )
    tn_auth, constraints = authority_for(registry)
    cert = issue_signer(
        ca_key=ca_key,
        ca_cert=ca,
        public_key=key.public_key(),
        common_name="Anti-Fraud Centre PASSporT Signer",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
        tn_auth=tn_auth,
        constraints=constraints,
    )
    return Signer(key, x5u, plan=registry.plan), cert.public_bytes(serialization.Encoding.PEM), ca


def _jcard(name: str) -> str:
    card = ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", name]]]
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode()).decode()


def spoof_variants(kit: SpoofKit) -> list[Spoof]:
    """Every trick, in a fixed order; ``replay`` only once ``kit.captured`` holds a genuine token."""
    police = kit.registry.lookup(POLICE_NUMBER)
    assert police is not None, "the registry has no label for 96110"
    other_labels = [label for _, label in kit.registry if label.text != police.text]
    label = police.text
    own, victim, domain = kit.own_number, kit.victim, kit.domain
    now = int(kit.clock())

    def sign(signer: Signer, *, orig: str = POLICE_NUMBER, dest: str = victim, iat: int = now, **kw: object) -> str:
        chosen = kw.get("label", kit.registry.lookup(orig))
        assert chosen is None or isinstance(chosen, Label)
        return signer.sign(orig=orig, dest=dest, iat=iat, label=chosen).serialise()

    unknown = Signer(kit.centre.key, kit.unknown_x5u, plan=kit.registry.plan)
    forged = Signer(new_key(), kit.centre.x5u, plan=kit.registry.plan)
    other_police = next(
        (tn for tn, lab in kit.registry if lab.text == label and tn != kit.registry.plan.country_code + POLICE_NUMBER),
        None,
    )
    spoofs = [
        Spoof("display-plain", "the label as From display name", own, label),
        Spoof("display-traditional", "traditional characters", own, "公安反詐專號"),
        Spoof("display-spaces", "spaces inside", own, "公安 反诈 专号"),
        Spoof("display-symbols", "symbols inside", own, "公安·反诈*专号"),
        Spoof("display-zero-width", "zero-width characters inside", own, "公安\u200b反诈\u2060专号"),
        Spoof("display-full-width", "full-width forms", own, "公安＿反诈＿专号！"),
        Spoof("display-katakana", "a katakana エ for 工", own, "エ信部反诈预警" if other_labels else "公安反诈专号"),
        Spoof(
            "display-kangxi", "a Kangxi radical ⼯ for 工", own, "⼯信部反诈预警" if other_labels else "公安反诈专号"
        ),
        Spoof("display-japanese-form", "the Japanese 専 for 专", own, "公安反诈専号"),
        Spoof("display-brackets", "decorated 【】", own, f"【{label}】"),
        Spoof("display-decorated", "stars and a place name", own, f"★{label}★北京"),
        Spoof("display-latin-between", "Latin letters and digits between", own, "公安a反诈1专号"),
        Spoof("from-user", "the label as the From user part", own, from_uri=f"sip:{quote(label)}@{domain}"),
        Spoof("display-number", "the police number as the display name", own, POLICE_NUMBER),
        Spoof("display-number-chinese", "the police number in Chinese numerals", own, "九六幺幺〇"),
        Spoof("display-number-capital", "the police number in capital numerals", own, "玖陆壹壹零"),
        Spoof("display-number-full-width", "the police number in full-width digits", own, "９６１１０"),
        Spoof("display-number-lookalike", "letters drawn like digits", own, "96lIO"),
        Spoof("display-number-spaced", "dots and dashes between the digits", own, "9.6-1 1·0"),
        Spoof("display-number-prefixed", "with country and area code", own, "+86 (0)10-96110"),
        Spoof(
            "pai-display-number",
            "a P-Asserted-Identity showing the police number for the spoofer's own URI",
            own,
            headers=(("P-Asserted-Identity", f'"0086 96110" <sip:{own}@{domain}>'),),
        ),
        Spoof(
            "pai",
            "a P-Asserted-Identity with the label and a forged verstat",
            own,
            headers=(
                ("P-Asserted-Identity", f'"{label}" <sip:+8696110;verstat=TN-Validation-Passed@{domain};user=phone>'),
            ),
        ),
        Spoof(
            "call-info-reason",
            "the label as a Call-Info call-reason",
            own,
            headers=(("Call-Info", f'<https://spoof.example/card.json>;purpose=jcard;call-reason="{label}"'),),
        ),
        Spoof(
            "call-info-jcard",
            "an inline jCard naming the label",
            own,
            headers=(("Call-Info", f"<data:application/vcard+json;base64,{_jcard(label)}>;purpose=jcard"),),
        ),
        Spoof(
            "remote-party-id",
            "Remote-Party-ID with screen=yes",
            own,
            headers=(("Remote-Party-ID", f'"{label}" <sip:96110@{domain}>;party=calling;screen=yes'),),
        ),
        Spoof("vendor-header", "an X-Caller-Label header", own, headers=(("X-Caller-Label", label),)),
        Spoof("p-caller-label", "a P-Caller-Label header", own, headers=(("P-Caller-Label", label),)),
        Spoof("x-label", "an X-Label header, traditional", own, headers=(("X-Label", "公安反詐專號"),)),
        Spoof(
            "any-vendor-header",
            "a header name nobody lists, percent-encoded",
            own,
            headers=(("X-Acme-CNAM", quote(f"【{label}】")),),
        ),
        Spoof(
            "contact-display",
            "the label as the Contact display name",
            own,
            headers=(("Contact", f'"{label}" <sip:{own}@127.0.0.2:5080>'),),
        ),
        Spoof("subject", "the label as the call's Subject", own, headers=(("Subject", f"【{label}】来电"),)),
        Spoof(
            "verstat-in-from",
            "96110 with a forged verstat in the From user part",
            POLICE_NUMBER,
            from_uri=f"sip:96110;verstat=TN-Validation-Passed@{domain};user=phone",
        ),
        Spoof("authorised-no-identity", "96110 without Identity", POLICE_NUMBER),
        Spoof(
            "authorised-unknown-x5u",
            "96110 with a certificate URL the gateway does not hold",
            POLICE_NUMBER,
            identity=(sign(unknown),),
        ),
        Spoof("forged-signature", "the centre's x5u, the spoofer's key", POLICE_NUMBER, identity=(sign(forged),)),
        Spoof(
            "untrusted-ca",
            "a look-alike certificate under the spoofer's CA",
            POLICE_NUMBER,
            identity=(sign(kit.rogue),),
        ),
        Spoof(
            "stale",
            "a genuine token captured ten minutes ago",
            POLICE_NUMBER,
            identity=(sign(kit.centre, iat=now - 600),),
        ),
        Spoof(
            "wrong-dest",
            "a genuine token for another callee",
            POLICE_NUMBER,
            identity=(sign(kit.centre, dest="8613800009999"),),
        ),
        Spoof(
            "nam-mismatch",
            "96110 signed with another label's nam",
            POLICE_NUMBER,
            identity=(sign(kit.centre, label=other_labels[0] if other_labels else Label(label + "（官方）")),),
        ),
        Spoof(
            "genuine-token-other-number",
            "a genuine 96110 token on the spoofer's own number",
            own,
            identity=(sign(kit.centre),),
        ),
    ]
    for level in ("B", "C"):
        # The centre's own key and certificate, but an attestation that does not vouch for the number.
        partial = Signer(kit.centre.key, kit.centre.x5u, plan=kit.registry.plan, attest=level)
        spoofs.append(
            Spoof(
                f"attest-{level.lower()}-label",
                f"a genuine certificate signing the label with attestation {level}",
                POLICE_NUMBER,
                identity=(sign(partial),),
            )
        )
    if other_police is not None:
        spoofs.append(
            Spoof(
                "wrong-orig",
                "a genuine token for another of the centre's numbers",
                POLICE_NUMBER,
                identity=(sign(kit.centre, orig=other_police),),
            )
        )
    if kit.carrier is not None:
        spoofs.append(
            Spoof(
                "carrier-rcd-label",
                "a carrier's valid token for the spoofer's number, claiming the label in rcd",
                own,
                identity=(sign(kit.carrier, orig=own, label=Label(label)),),
            )
        )
    if kit.captured:
        spoofs.append(
            Spoof("replay", "a genuine token replayed on another Call-ID", POLICE_NUMBER, identity=(kit.captured[-1],))
        )
    return spoofs


class Spoofer(TrunkCaller):
    """A trunk-side caller that places :class:`Spoof` calls."""

    async def attempt(self, spoof: Spoof, callee: str) -> CallResult:
        return await self.call(
            callee,
            spoof.caller,
            display=spoof.display,
            from_uri=spoof.from_uri,
            headers=spoof.headers,
            identity=spoof.identity,
        )

    async def attempt_all(self, spoofs: Sequence[Spoof], callee: str) -> dict[str, CallResult]:
        return {spoof.name: await self.attempt(spoof, callee) for spoof in spoofs}
