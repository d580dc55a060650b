"""Verification failures, each carrying the SIP answer RFC 8224 section 6.2.2 gives it.

Every problem found in an Identity header, its PASSporT or the credential behind it raises a
``StirError`` subclass, and nothing else: parsers are fuzzed to prove it. The class says which answer
the gateway sends (or, under a continue-on-failure policy, which cause it reports upstream in a
``Reason`` header, RFC 9410). ``text`` is the reason phrase registered for the code; ``detail`` says
what exactly was wrong and is meant for logs, never for the wire (it may quote attacker input).

Which failure maps to which code:

======  ========================  ===========================================================
code    class                     raised when
======  ========================  ===========================================================
403     StaleDate                 ``iat`` further from ``now`` than the freshness window
428     UseIdentityHeader         no Identity header where one is required (an authorised
                                  number, or a protected label shown in the display name)
436     BadIdentityInfo           no usable ``info``/``x5u``, the two differ, or the URL is
                                  not in the local certificate store (never fetched)
437     UnsupportedCredential     the certificate chain does not lead to a trust anchor, is
                                  outside its validity period, lacks the key usages, uses an
                                  unsupported key or algorithm, or is not authorised for the
                                  claims (TNAuthList, JWT Claim Constraints)
438     InvalidIdentityHeader     malformed header or PASSporT, bad signature, wrong claims
                                  (orig/dest do not match the call, ``nam`` is not the
                                  registered label), rcdi mismatch, or a replayed token
======  ========================  ===========================================================
"""

from __future__ import annotations

from typing import ClassVar

from protocols.errors import RemoteProtocolError

__all__ = [
    "BadIdentityInfo",
    "InsufficientAttestation",
    "InvalidIdentityHeader",
    "StaleDate",
    "StirError",
    "TelephoneNumberError",
    "UnsupportedCredential",
    "UseIdentityHeader",
]


class StirError(RemoteProtocolError):
    """A STIR verification failure; ``code`` is the SIP status, ``text`` its reason phrase."""

    code: ClassVar[int] = 438
    text: ClassVar[str] = "Invalid Identity Header"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.code} {self.text}: {detail}", answer=self.code)
        self.detail = detail

    def reason(self, ppi: str | None = None) -> str:
        """The value of a ``Reason`` header for this failure (RFC 9410 section 4).

        ``ppi`` names the PASSporT the failure belongs to when a request carried several Identity
        headers; RFC 9410 recommends the compact form (``..signature``), which is what callers pass.
        """
        value = f'STIR;cause={self.code};text="{self.text}"'
        return f'{value};ppi="{ppi}"' if ppi else value


class StaleDate(StirError):
    code = 403
    text = "Stale Date"


class UseIdentityHeader(StirError):
    code = 428
    text = "Use Identity Header"


class BadIdentityInfo(StirError):
    code = 436
    text = "Bad Identity Info"


class UnsupportedCredential(StirError):
    code = 437
    text = "Unsupported Credential"


class InvalidIdentityHeader(StirError):
    code = 438
    text = "Invalid Identity Header"


class TelephoneNumberError(InvalidIdentityHeader):
    """A string that cannot be read as a telephone number (in a claim, a call or a configuration)."""


class InsufficientAttestation(InvalidIdentityHeader):
    """A PASSporT with ``attest`` B or C (or none) that carries a protected label.

    RFC 8588 section 4: with B or C the signer says it could not vouch for the calling number, so
    nothing it says about who calls may be shown as a verified label. The Reason text names the
    attestation, so that the signer's operator sees at once why the label was refused."""

    def __init__(self, attest: str | None) -> None:
        level = attest if attest in ("A", "B", "C") else "none"
        super().__init__(f"attestation {level} cannot vouch for a protected label")
        self.reason_text = f"{self.text}: attestation {level} cannot vouch for a protected label"

    def reason(self, ppi: str | None = None) -> str:
        value = f'STIR;cause={self.code};text="{self.reason_text}"'
        return f'{value};ppi="{ppi}"' if ppi else value
