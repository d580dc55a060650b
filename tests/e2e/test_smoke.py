from __future__ import annotations

import smpplib.consts

from tests.e2e.smpp_harness import (
    SmpplibEsme,
    eventually,
    gateway_port,
    in_thread,
    make_config,
    running_gateway,
)


async def test_smpplib_message_reaches_handset_inbox(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        esme = SmpplibEsme(gateway_port(gw), "bank", "bankpw")
        await in_thread(esme.connect)
        await in_thread(
            esme.client.send_message,
            source_addr="10690",
            destination_addr="8613800000001",
            short_message="你好，世界".encode("utf-16-be"),
            data_coding=smpplib.consts.SMPP_ENCODING_ISO10646,
        )
        await in_thread(esme.client.read_once)
        await eventually(lambda: smsc.inbox("8613800000001"))
        assert smsc.inbox("8613800000001")[0].text == "你好，世界"
        await in_thread(esme.close)
