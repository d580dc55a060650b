"""Reserved sender ids and signatures: only the ESMEs authorised for them may send as 12381 or 【国家反诈中心】.

A warning that seems to come from the anti-fraud centre is the most trusted text a subscriber gets, so
it is the first thing a fraudster forges. Sender ids are compared as telephone numbers (12381,
+8612381 and 008612381 are one sender). A signature is a bracketed name at the start or end of the
text; it is compared after folding the ways a forger disguises it: traditional characters, full-width
or other brackets, spaces and symbols inside, zero-width characters. Plain mentions of the centre in a
text ("请下载国家反诈中心APP") are not signatures and pass.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.smpp.constants import CommandStatus
from protocols.stir.errors import TelephoneNumberError
from protocols.stir.tn import normalise_tn

#: Bracket pairs a signature may be written in; NFKC has already turned full-width ［］ into [].
_OPEN = "【〖〔[(（<《「『"
_CLOSE = "】〗〕])）>》」』"
_GROUP = re.compile(f"[{re.escape(_OPEN)}]([^{re.escape(_OPEN + _CLOSE)}]{{1,40}})[{re.escape(_CLOSE)}]")
_NOT_WORD = re.compile(r"[\W_]+")
#: Characters of the reserved signatures that a forger may write in their traditional forms.
_TRADITIONAL = str.maketrans({"國": "国", "詐": "诈", "騙": "骗", "護": "护", "號": "号", "專": "专", "關": "关"})


def fold(text: str) -> str:
    """The comparable form of a signature's name: NFKC, no format characters, casefolded, simplified."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _NOT_WORD.sub("", text.casefold().translate(_TRADITIONAL))


def signatures_in(text: str) -> set[str]:
    """The folded names of the bracketed groups in ``text``."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return {fold(m.group(1)) for m in _GROUP.finditer(text)}


def sender_key(source_addr: str) -> str:
    """A sender id as a telephone number where it is one (12381 = +8612381), else its folded text."""
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
        # Texts with no bracket skip the signature check: most messages, and the cheapest test.
        self._brackets = frozenset(_OPEN + "［")

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
        if self._signatures and any(c in self._brackets for c in text):
            for name in signatures_in(text):
                signature = self._signatures.get(name)
                if signature is not None and name not in authorised_signatures:
                    return Refusal(CommandStatus.ESME_RSUBMITFAIL, f"signature {signature} is reserved")
        return None

    def authorised_senders(self, senders: Iterable[str]) -> frozenset[str]:
        return frozenset(sender_key(s) for s in senders)

    def authorised_signatures(self, signatures: Iterable[str]) -> frozenset[str]:
        return frozenset(fold(s.strip(_OPEN + _CLOSE)) for s in signatures)
