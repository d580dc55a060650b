"""Builds a gateway on loopback between test ESMEs and a test SMSC, and drives smpplib in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.gsm

from gateway.app import Gateway
from gateway.config import EsmeAccount, GatewayConfig, Listen, SmppConfig, SmscPeer
from gateway.inspection import SmsInspector
from gateway.store import MemoryStore


def make_config(smsc_port: int, **smpp_overrides: Any) -> GatewayConfig:
    accounts = smpp_overrides.pop(
        "accounts",
        (
            EsmeAccount(
                system_id="bank", password="bankpw", throughput=100000, window=50, mo_prefixes=("10690",)
            ),
            EsmeAccount(
                system_id="shop", password="shoppw", throughput=100000, window=50, mo_prefixes=("10691",)
            ),
        ),
    )
    smpp = SmppConfig(
        listen=Listen("127.0.0.1", 0),
        accounts=accounts,
        smsc=SmscPeer(
            host="127.0.0.1",
            port=smsc_port,
            system_id="afgw",
            password="secret",
            binds=smpp_overrides.pop("binds", 2),
            reconnect_initial=0.05,
            reconnect_max=0.5,
        ),
        response_timeout=5.0,
    )
    return GatewayConfig(smpp=replace(smpp, **smpp_overrides))


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig, *, inspector: SmsInspector | None = None, store: MemoryStore | None = None
) -> AsyncIterator[Gateway]:
    gw = Gateway(config, inspector=inspector, store=store)
    await gw.start()
    assert gw.smpp is not None
    await asyncio.wait_for(gw.smpp.pool.up.wait(), 5)
    try:
        yield gw
    finally:
        await gw.stop()


def gateway_port(gw: Gateway) -> int:
    assert gw.smpp is not None
    return gw.smpp.server.port


class SmpplibEsme:
    """A blocking smpplib client running in its own thread, as ESME software runs it."""

    def __init__(self, port: int, system_id: str, password: str, bind: str = "transceiver") -> None:
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
        self.system_id, self.password, self.bind = system_id, password, bind
        self.responses: list[Any] = []
        self.delivered: list[Any] = []
        self.client.set_message_sent_handler(lambda pdu: self.responses.append(pdu))
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        self._thread: threading.Thread | None = None

    def connect(self) -> None:
        self.client.connect()
        getattr(self.client, f"bind_{self.bind}")(system_id=self.system_id, password=self.password)

    def listen_in_background(self) -> None:
        def loop() -> None:
            # The socket closes under it at the end of a test.
            with contextlib.suppress(Exception):
                self.client.listen()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with suppress(Exception):
            self.client.unbind()
        self.client.disconnect()


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
