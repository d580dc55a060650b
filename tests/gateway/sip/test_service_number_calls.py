"""A call presenting a bank's number rings with a warning unless a PASSporT proves the number (attestation A)."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import rules
from gateway.rules_hook import RulesInspector
from gateway.sip.proxy import SipProxy
from protocols.stir.authority import TnAuthList
from protocols.stir.tn import CHINA, normalise_tn
from tests.e2e.sip_harness import UdpPeer, register, request, sip_config
from tests.protocols.stir.conftest import CALLEE, NOW, Pki

WARNING = "疑似冒用服务号码"
#: The bank's carrier signs its calls with a certificate authorised for 95588 only.
BANK_X5U = "https://stir.bank-carrier.example.cn/shaken/95588.pem"


class RecordingWarner:
    def __init__(self) -> None:
        self.warned: list[str] = []

    def warn(self, recipient: str, *, template: str | None = None, category: str | None = None) -> bool:
        self.warned.append(recipient)
        return True


@pytest.fixture(scope="module")
def bank_key(pki: Pki) -> ec.EllipticCurvePrivateKey:
    return pki.issue(BANK_X5U, tn_auth=TnAuthList.for_numbers([normalise_tn("95588", CHINA)]), constraints=None)


def bank_identity(pki: Pki, key: ec.EllipticCurvePrivateKey, attest: str) -> str:
    return pki.sign("95588", key=key, x5u=BANK_X5U, label=None, attest=attest)


async def ring(pki: Pki, peers: tuple[UdpPeer, UdpPeer], identity: str | None) -> tuple[str | None, list[str]]:
    """The P-Asserted-Identity the handset got for a call from 95588, and who was warned."""
    trunk, handset = peers
    warner = RecordingWarner()
    inspector = RulesInspector(rules.Engine(rules.build([rules.DEFAULT_PACKS])), warner=warner)  # type: ignore[arg-type]
    proxy = SipProxy(
        sip_config(), inspector=inspector, loop=asyncio.get_running_loop(), verifier=pki.verifier(), clock=lambda: NOW
    )
    await proxy.start()
    try:
        await register(handset, proxy.udp_port, CALLEE)
        extra = (("Identity", identity),) if identity else ()
        sent = request("INVITE", f"sip:{CALLEE}@127.0.0.1", trunk, from_user="95588", extra=extra)
        trunk.send(sent, proxy.udp_port)
        got = await handset.request("INVITE", sent.call_id)
        return got.headers.get("P-Asserted-Identity"), warner.warned
    finally:
        await proxy.stop()


async def test_a_bank_number_without_identity_rings_with_the_warning(pki: Pki, peers) -> None:
    asserted, warned = await ring(pki, peers, None)
    assert asserted is not None
    assert asserted.startswith(f'"{WARNING}" <sip:95588@')
    assert warned == [CALLEE]


async def test_a_bank_number_verified_with_attestation_a_rings_as_itself(
    pki: Pki, bank_key: ec.EllipticCurvePrivateKey, peers
) -> None:
    asserted, warned = await ring(pki, peers, bank_identity(pki, bank_key, "A"))
    assert asserted is not None
    assert WARNING not in asserted
    assert "verstat=TN-Validation-Passed" in asserted
    assert warned == []


async def test_attestation_c_is_no_proof_of_the_number(pki: Pki, bank_key: ec.EllipticCurvePrivateKey, peers) -> None:
    asserted, warned = await ring(pki, peers, bank_identity(pki, bank_key, "C"))
    # the warning replaces the verified identity: a label is never shown next to verstat=...Passed
    assert asserted is not None
    assert asserted.startswith(f'"{WARNING}" <sip:95588@')
    assert "verstat" not in asserted
    assert warned == [CALLEE]
