"""smpp34 at both ends (its async Client as the ESME, its Server as the SMSC), with full windows.

An independent implementation on each side of the gateway, pushing many requests at once in both
directions: every answer must be the far side's, for the right message, exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import smpp34

from tests.e2e.smpp_harness import LOCALHOST, Smpp34Smsc, eventually, gateway_port, make_config, running_gateway


async def test_concurrent_submits_each_get_the_smsc_answer_for_that_message(port_factory):
    smsc = await Smpp34Smsc.start(port_factory())
    # Every tenth message refused by the SMSC, so that statuses must not be mixed up between messages.
    smsc.policy = lambda ev: 0x0B if ev.short_message.endswith(b"0") else f"id-{ev.short_message.decode()}"
    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            client = smpp34.Client(LOCALHOST, gateway_port(gw), "bank", "bankpw", bind_type="TRX", window_size=20)
            session = await client.connect()
            try:
                texts = [f"m{n:04d}" for n in range(400)]
                # smpp34 sends whatever it is given at once: keep to 20 in flight, under the account's window.
                window = asyncio.Semaphore(20)

                async def submit(text: str) -> smpp34.SubmitSmResp:
                    async with window:
                        return await session.submit_sm("8613800000061", text.encode(), source_addr="10690")

                answers = await asyncio.gather(*(submit(t) for t in texts))
            finally:
                await session.unbind()
                await client.stop()
        for text, answer in zip(texts, answers, strict=True):
            if text.endswith("0"):
                assert answer.command_status == 0x0B, text
            else:
                assert answer.command_status == 0, text
                assert answer.message_id == f"id-{text}"
        assert Counter(ev.short_message for ev in smsc.events) == Counter(t.encode() for t in texts)
    finally:
        await smsc.close()


async def test_concurrent_mobile_originated_messages_each_delivered_once(port_factory):
    smsc = await Smpp34Smsc.start(port_factory())
    try:
        async with running_gateway(make_config(smsc.port)) as gw:
            client = smpp34.Client(LOCALHOST, gateway_port(gw), "bank", "bankpw", bind_type="TRX", window_size=20)
            session = await client.connect()
            received: list[bytes] = []

            async def read() -> None:
                while True:
                    ev = await session.next()
                    if isinstance(ev, smpp34.Disconnected):
                        return
                    received.append(ev.short_message)

            reader = asyncio.ensure_future(read())
            try:
                await eventually(lambda: len(smsc.esmes) == 2)
                texts = [f"回复{n}".encode("utf-16-be") for n in range(200)]
                statuses = await asyncio.gather(
                    *(
                        smsc.esmes[n % 2].deliver_sm("1069088", t, source_addr="8613900000061", data_coding=8)
                        for n, t in enumerate(texts)
                    )
                )
                # ESME_ROK, or "try later" (ESME_RX_T_APPN when the ESME's window was full, ESME_RTHROTTLED
                # when the gateway's was): try those again, as an SMSC does.
                pending = [t for t, s in zip(texts, statuses, strict=True) if s.command_status != 0]
                assert {s.command_status for s in statuses} <= {0, 0x58, 0x64}
                for _ in range(50):
                    if not pending:
                        break
                    retry = await asyncio.gather(
                        *(
                            smsc.esmes[0].deliver_sm("1069088", t, source_addr="8613900000061", data_coding=8)
                            for t in pending
                        )
                    )
                    assert {s.command_status for s in retry} <= {0, 0x58, 0x64}
                    pending = [t for t, s in zip(pending, retry, strict=True) if s.command_status != 0]
                assert pending == []
                await eventually(lambda: len(received) >= len(texts))
                assert Counter(received) == Counter(texts)
            finally:
                await session.unbind()
                await client.stop()
                reader.cancel()
    finally:
        await smsc.close()
