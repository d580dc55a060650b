"""Reserved sender ids and signatures: only the ESMEs authorised for them may send as 12381 or 【国家反诈中心】.

A warning that seems to come from the anti-fraud centre is the most trusted text a subscriber gets, so
it is the first thing a fraudster forges. Sender ids are compared as telephone numbers (12381,
+8612381 and 008612381 are one sender). A signature is a bracketed name in the text; its name is
compared in the form :func:`gateway.label_text.normalise_label_text` gives, the one the SIP side
compares caller labels in, which sees through traditional characters, homoglyphs, full-width forms,
spaces, symbols and zero-width characters. Brackets of any kind count. Plain mentions of the centre
in a text ("请下载国家反诈中心APP") are not signatures and pass.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.label_text import HOMOGLYPHS, TRADITIONAL, normalise_label_text
from protocols.smpp.constants import CommandStatus
from protocols.stir.errors import TelephoneNumberError
from protocols.stir.tn import normalise_tn
from rules.normalise import FORMAT_CHARACTERS

#: Bracket pairs a signature may be written in; NFKC has already turned full-width ［］ into [].
_OPEN = "【〖〔[(（<《「『"
_CLOSE = "】〗〕])）>》」』"
_GROUP = re.compile(f"[{re.escape(_OPEN)}]([^{re.escape(_OPEN + _CLOSE)}]{{1,40}})[{re.escape(_CLOSE)}]")
#: Format characters (zero-width, bidi controls, soft hyphen, ...) removed before comparing.
_NO_FORMAT = str.maketrans(
    {
        code: None
        for first, last in re.findall(r"(.)(?:-(.))?", FORMAT_CHARACTERS, re.S)
        for code in range(ord(first), ord(last or first) + 1)
    }
)
#: Compatibility ideographs and radicals that NFKC turns into ordinary ones; texts with any of them skip
#: the quick pre-check and always get the full comparison.
_COMPATIBILITY = re.compile("[\u2e80-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")


def fold(text: str) -> str:
    """The comparable form of a signature's name (or of an alphanumeric sender id)."""
    return normalise_label_text(text)


def signatures_in(text: str) -> set[str]:
    """The folded names of the bracketed groups in ``text``."""
    text = unicodedata.normalize("NFKC", text).translate(_NO_FORMAT)
    return {fold(m.group(1)) for m in _GROUP.finditer(text)}


def _forms(c: str) -> set[str]:
    """``c`` and what a forger may write instead that the normaliser folds back to it."""
    forms = {c, c.upper()}
    forms.update(k for k, v in {**HOMOGLYPHS, **TRADITIONAL}.items() if v == c)
    return forms


def _any_of(forms: set[str]) -> re.Pattern[str]:
    """A pattern that finds any of ``forms`` (a character class when each is one character)."""
    if all(len(f) == 1 for f in forms):
        return re.compile("[" + "".join(re.escape(f) for f in sorted(forms)) + "]")
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f))))


@functools.lru_cache(maxsize=16384)
def sender_key(source_addr: str) -> str:
    """A sender id as a telephone number where it is one (12381 = +8612381), else its folded text.

    Kept for the senders seen most: bulk senders use a handful of ids for millions of messages."""
    text = unicodedata.normalize("NFKC", source_addr).strip()
    try:
        return normalise_tn(text)
    except TelephoneNumberError:
        return fold(text)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str


class SenderPolicy:
    """Decides whether an account may use a sender id and the signatures its text carries."""

    def __init__(self, reserved_senders: Iterable[str], reserved_signatures: Iterable[str]) -> None:
        self.reserved_senders = frozenset(sender_key(s) for s in reserved_senders)
        self._signatures = {fold(s.strip(_OPEN + _CLOSE)): s for s in reserved_signatures}
        # Texts with no bracket skip the signature check: most messages, and the cheapest test (a
        # character class scanned in C, where a generator over the characters cost more than the relay).
        self._bracket = re.compile(f"[{re.escape(_OPEN + '［')}]")
        # A text can carry a signature only if it has every character of its name, in one of its forms:
        # a search each, in C (a generator over each form of each character cost more than the relay).
        self._needles = [[_any_of(_forms(c)).search for c in name] for name in self._signatures]
        # The characters every reserved name has (诈 in 国家反诈中心, 反诈名片 and 公安反诈专号): a text
        # without one of them carries none of the names, found in one search instead of one per name.
        shared = set.intersection(*(set(name) for name in self._signatures)) if self._signatures else set()
        self._shared = [_any_of(_forms(c)).search for c in sorted(shared)]

    def check(
        self,
        source_addr: str,
        text: str,
        *,
        authorised_senders: frozenset[str],
        authorised_signatures: frozenset[str],
    ) -> Refusal | None:
        sender = sender_key(source_addr)
        if sender in self.reserved_senders and sender not in authorised_senders:
            return Refusal(CommandStatus.ESME_RINVSRCADR, f"sender id {source_addr!r} is reserved")
        if self._signatures and self._bracket.search(text) and self._may_carry_signature(text):
            for name in signatures_in(text):
                signature = self._signatures.get(name)
                if signature is not None and name not in authorised_signatures:
                    return Refusal(CommandStatus.ESME_RSUBMITFAIL, f"signature {signature} is reserved")
        return None

    def _may_carry_signature(self, text: str) -> bool:
        if _COMPATIBILITY.search(text):
            return True
        for search in self._shared:
            if search(text) is None:
                return False
        for needle in self._needles:
            for search in needle:
                if search(text) is None:
                    break
            else:
                return True
        return False

    def authorised_senders(self, senders: Iterable[str]) -> frozenset[str]:
        return frozenset(sender_key(s) for s in senders)

    def authorised_signatures(self, signatures: Iterable[str]) -> frozenset[str]:
        return frozenset(fold(s.strip(_OPEN + _CLOSE)) for s in signatures)
