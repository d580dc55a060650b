"""A mosquitto of our own for the tests that need a broker."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port, require_peer


class Broker:
    """A mosquitto of our own on a free loopback port, with persistence so that a stopped and
    restarted broker keeps the subscriber's session (its queued QoS 1 messages)."""

    def __init__(self, tmp: Path) -> None:
        self.program = require_peer("mosquitto")
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {tmp}/\nautosave_interval 1\n"
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(self.program, "-c", str(self.conf), stderr=subprocess.DEVNULL)
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            await asyncio.sleep(0.02)
        pytest.fail("mosquitto did not start")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        await self.proc.wait()
