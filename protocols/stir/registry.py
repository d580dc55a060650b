"""The registry of authorised numbers and their verified caller labels (反诈名片).

Built by the gateway from ``config/labels.yaml``; here it is plain data so that the verifier stays
pure. Numbers are kept normalised (``tn.normalise_tn``), so every spelling of 96110 finds its label.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from protocols.stir.errors import TelephoneNumberError
from protocols.stir.rcd import Rcd
from protocols.stir.tn import CHINA, NumberPlan, normalise_tn

__all__ = ["Label", "LabelRegistry"]


@dataclass(frozen=True, slots=True)
class Label:
    """What a handset shows for an authorised number, and what its PASSporT's rcd must say."""

    text: str  # rcd nam, e.g. 公安反诈专号
    crn: str | None = None  # call reason (RFC 9795 crn), e.g. 反诈预警
    icon: str | None = None  # rcd icn URL, when the centre publishes one

    def rcd(self) -> Rcd:
        return Rcd.build(self.text, icn=self.icon)


class LabelRegistry:
    """Normalised telephone number -> Label."""

    def __init__(self, labels: Mapping[str, Label], plan: NumberPlan = CHINA) -> None:
        self.plan = plan
        self._labels = {normalise_tn(number, plan): label for number, label in labels.items()}
        self._texts = frozenset(label.text for label in self._labels.values())

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[tuple[str, Label]]:
        return iter(sorted(self._labels.items()))

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(self._labels)

    @property
    def texts(self) -> frozenset[str]:
        """Every protected label text: shown only after verification, whoever claims it."""
        return self._texts

    def lookup(self, number: str) -> Label | None:
        """The label of ``number`` in any spelling, or None (also for strings that are not numbers)."""
        try:
            return self._labels.get(normalise_tn(number, self.plan))
        except TelephoneNumberError:
            return None

    def lookup_normalised(self, tn: str) -> Label | None:
        """The label of a number already normalised with this registry's plan."""
        return self._labels.get(tn)

    def labels_in(self, text: str | None) -> frozenset[str]:
        """The protected label texts that ``text`` (a display name, an SMS sender name) shows.

        Whitespace is ignored and any decoration around the text counts: "【公安 反诈专号】" and
        "公安反诈专号-北京" both show 公安反诈专号.
        """
        if not text:
            return frozenset()
        squeezed = "".join(text.split())
        return frozenset(label for label in self._texts if label in squeezed)

    def claims_label(self, text: str | None) -> bool:
        """Whether ``text`` shows any protected label."""
        return bool(self.labels_in(text))
