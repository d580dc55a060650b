"""The gateway process: builds the proxies from the configuration and runs them until told to stop."""

from __future__ import annotations

import asyncio
import signal

from gateway.config import GatewayConfig
from gateway.inspection import SmsInspector
from gateway.logs import get_logger
from gateway.smpp.proxy import SmppProxy
from gateway.store import Store

log = get_logger("afgw")


class Gateway:
    def __init__(self, config: GatewayConfig, *, inspector: SmsInspector | None = None, store: Store | None = None):
        self.config = config
        self._inspector = inspector
        self._store = store
        self.smpp: SmppProxy | None = None

    async def start(self) -> None:
        self.smpp = SmppProxy(self.config, inspector=self._inspector, store=self._store)
        await self.smpp.start()

    async def stop(self) -> None:
        if self.smpp is not None:
            await self.smpp.stop()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(config: GatewayConfig) -> None:
    """Run until SIGINT or SIGTERM, then unbind and close cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(config):
        log.info("afgw.started", config=config.source)
        await stop.wait()
        log.info("afgw.stopping")
