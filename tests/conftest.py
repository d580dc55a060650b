"""Fixtures shared by the whole suite: free ports, peers, a simulated SMSC and a gateway on loopback."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import logs

VECTORS = Path(__file__).resolve().parent / "vectors"

logs.configure("console", "warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_peer(program: str) -> str:
    """The path of an external peer program; skips without it, fails under AFGW_REQUIRE_PEERS=1."""
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not installed (Debian package; .ci/run installs it)"
        if os.environ.get("AFGW_REQUIRE_PEERS") == "1":
            pytest.fail(f"AFGW_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def port_factory() -> Callable[[], int]:
    return free_port


@pytest.fixture
async def smsc() -> AsyncIterator[Any]:
    from simulator.smsc import SimulatedSmsc

    sim = SimulatedSmsc(system_id="afgw", password="secret")
    await sim.start("127.0.0.1", 0)
    yield sim
    await sim.stop()
