"""Deliveries relayed without a task (a receipt whose route this gateway holds, an MO message with a
decision made in memory): the ESME's binds take them in turn, the octets arrive as the SMSC sent them,
and an inspector that fails on one leaves the SMSC's bind reading on."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from gateway.config import EsmeAccount
from gateway.inspection import PASS, Decision, SmsMessage
from protocols.smpp.codec import encode
from simulator.esme import SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import LOCALHOST, eventually, gateway_port, make_config, running_gateway

ACCOUNTS = (EsmeAccount(system_id="bank", password="bankpw", max_binds=2, mo_prefixes=("10690",)),)


class FailsOn:
    """Passes everything but a message with ``poison`` in its text, on which it raises."""

    def __init__(self, poison: str) -> None:
        self.poison = poison

    def inspect_sms(self, message: SmsMessage) -> Decision:
        if self.poison in message.text:
            raise RuntimeError("the inspector failed")
        return PASS


@pytest.fixture
async def smsc() -> AsyncIterator[SimulatedSmsc]:
    sim = SimulatedSmsc(system_id="afgw", password="secret")
    await sim.start(LOCALHOST, 0)
    try:
        yield sim
    finally:
        await sim.stop()


async def test_receipts_and_mo_messages_are_spread_over_the_esmes_binds(smsc: SimulatedSmsc) -> None:
    async with running_gateway(make_config(smsc.port, accounts=ACCOUNTS, binds=1)) as gw:
        port = gateway_port(gw)
        esmes = [SimulatedEsme(LOCALHOST, port, "bank", "bankpw") for _ in range(2)]
        for esme in esmes:
            await esme.bind()
        try:
            for i in range(4):
                [resp] = await esmes[0].submit("10690", f"861380000000{i}", f"hello {i}", registered_delivery=1)
                assert resp.command_status == 0
            await eventually(lambda: sum(len(e.delivered) for e in esmes) == 4)
            for i in range(4):
                assert await smsc.inject_mo("8613900000001", "1069012345", f"mo {i}") == 0
            await eventually(lambda: sum(len(e.delivered) for e in esmes) == 8)
            # In turn: each bind took half of the receipts and half of the MO messages.
            for esme in esmes:
                kinds = [d.esm_class & 0x3C for d in esme.delivered]
                assert (kinds.count(0x04), kinds.count(0)) == (2, 2)
            # What the SMSC sent, octet for octet, but for the sequence number.
            mo = [d for e in esmes for d in e.delivered if not d.esm_class]
            for pdu in mo:
                assert pdu.wire is not None
                sent = encode(dataclasses.replace(pdu), pdu.sequence_number)
                assert pdu.wire == sent
        finally:
            for esme in esmes:
                await esme.unbind()


async def test_an_inspector_failing_on_a_delivery_leaves_the_bind_reading(smsc: SimulatedSmsc) -> None:
    config = make_config(smsc.port, accounts=ACCOUNTS, binds=1, response_timeout=0.5)
    async with running_gateway(config, inspector=FailsOn("poison")) as gw:
        esme = SimulatedEsme(LOCALHOST, gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        try:
            poisoned = asyncio.ensure_future(smsc.inject_mo("8613900000001", "1069012345", "poison"))
            assert await smsc.inject_mo("8613900000001", "1069012345", "fine") == 0
            assert [d.short_message for d in esme.delivered] == [b"fine"]
            poisoned.cancel()
        finally:
            await esme.unbind()
