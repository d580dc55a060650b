"""The anti-fraud centre's line into the gateway: every call it places is signed.

The centre's authentication service (RFC 8224 section 5) signs each INVITE with the key that
``afgw keys init`` created, under a certificate restricted to the centre's numbers and label texts:
the PASSporT says who calls (``orig``), whom (``dest``), when (``iat``, from the injected clock), and
carries the registered label as rcd ``nam`` with the call reason as ``crn``. The gateway verifies it
and stamps the label (反诈名片) for the handset.

    centre = AntiFraudCentre.from_labels("config/labels.yaml", ("127.0.0.1", 5060))
    await centre.start("127.0.0.2")
    result = await centre.place("8613800000001")          # from 96110, labelled 公安反诈专号
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gateway.labels import build_registry, load_labels, load_signer
from protocols.stir import Label, LabelRegistry, Signer
from simulator.trunk import CallResult, TrunkCaller

__all__ = ["AntiFraudCentre"]


class AntiFraudCentre(TrunkCaller):
    def __init__(
        self,
        proxy: tuple[str, int],
        signer: Signer,
        registry: LabelRegistry,
        *,
        number: str = "96110",
        domain: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(proxy, domain=domain)
        self.signer = signer
        self.registry = registry
        self.number = number
        self.clock = clock
        #: The Identity header values of the calls placed so far, in order (what a wiretap would see).
        self.sent: list[str] = []

    @classmethod
    def from_labels(cls, labels: str | Path, proxy: tuple[str, int], **kwargs: object) -> AntiFraudCentre:
        """The centre as labels.yaml describes it: its signing key and x5u, its numbers and labels."""
        config = load_labels(labels)
        return cls(proxy, load_signer(config), build_registry(config), **kwargs)  # type: ignore[arg-type]

    def identity(
        self,
        callee: str,
        *,
        number: str | None = None,
        iat: float | None = None,
        label: Label | None = None,
    ) -> str:
        """An Identity header value for a call from ``number`` (default: the centre's own) to ``callee``,
        with the registry's label for that number unless ``label`` says otherwise."""
        orig = number or self.number
        chosen = label if label is not None else self.registry.lookup(orig)
        now = self.clock() if iat is None else iat
        return self.signer.sign(orig=orig, dest=callee, iat=int(now), label=chosen).serialise()

    async def place(self, callee: str, *, number: str | None = None, hold: float = 0.0) -> CallResult:
        """A signed call from ``number`` (default: the centre's own) to ``callee``."""
        caller = number or self.number
        identity = self.identity(callee, number=caller)
        self.sent.append(identity)
        return await self.call(callee, caller, identity=identity, hold=hold)
