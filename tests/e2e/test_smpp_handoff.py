"""Two gateways on one Redis: a receipt reaches its ESME whichever gateway the SMSC sent it through."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config import StoreConfig
from tests.e2e.smpp_harness import SimSmsc, SmpplibEsme, eventually, gateway_port, in_thread, make_config
from tests.e2e.smpp_harness import running_gateway as gateway
from tests.gateway.store.redis_server import start_redis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TAG_RECEIPTED_MESSAGE_ID = 0x001E


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    proc, port = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


async def test_a_receipt_that_comes_through_one_gateway_reaches_the_esme_bound_to_the_other(redis_url: str) -> None:
    smsc = await SimSmsc.start()
    store = StoreConfig(backend="redis", redis_url=redis_url, redis_prefix=f"t{uuid.uuid4().hex[:8]}")
    config = replace(make_config(smsc.port), store=store)
    # The ESME's transmitter lands on one gateway, its receiver on the other (as SO_REUSEPORT may do).
    async with gateway(config) as submitting, gateway(config) as receiving:
        receiver = SmpplibEsme(gateway_port(receiving), "bank", "bankpw", bind="receiver")
        transmitter = SmpplibEsme(gateway_port(submitting), "bank", "bankpw", bind="transmitter")
        try:
            await in_thread(receiver.connect)
            receiver.listen_in_background()
            assert receiving.smpp is not None
            handoff = receiving.smpp.handoff
            assert handoff is not None
            await eventually(lambda: handoff.advertised == {"bank"})
            await in_thread(transmitter.connect)
            transmitter.listen_in_background()
            seq = transmitter.send(
                "submit_sm",
                source_addr="10690",
                destination_addr="8613800000001",
                short_message=b"your code is 123456",
                registered_delivery=1,
            )
            await eventually(lambda: seq in transmitter.by_seq)
            resp = transmitter.by_seq[seq]
            assert resp.status == 0
            message_id = resp.message_id.decode()
            # The SMSC sends the receipt on the bind that submitted: the submitting gateway's.
            await eventually(lambda: smsc.sim.stats.receipts_sent == 1)
            await eventually(lambda: len(receiver.deliveries) == 1)
            [receipt] = receiver.deliveries
            assert receipt.esm_class & 0x3C == 0x04
            assert receipt.destination_addr == "10690"
            assert receipt.tlv(TAG_RECEIPTED_MESSAGE_ID) == message_id.encode() + b"\x00"
            assert transmitter.deliveries == []
        finally:
            await in_thread(transmitter.close)
            await in_thread(receiver.close)
    await smsc.stop()
