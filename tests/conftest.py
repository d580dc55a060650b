"""Fixtures shared by the whole suite: free ports, peers, a simulated SMSC and a gateway on loopback."""

from __future__ import annotations

import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import logs
from simulator import ports

VECTORS = Path(__file__).resolve().parent / "vectors"

logs.configure("console", "warning")


#: Under pytest-xdist each worker hands out ports from a block of its own, below the kernel's ephemeral
#: range (32768 and up on Linux): a port found by binding 0 and closing could be handed to the other
#: worker, or taken by one of its outgoing connections, before the test binds it again.
_BLOCK_START, _BLOCK_SIZE = 20000, 2000


def _worker_block() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... only under xdist
    if not worker.startswith("gw"):
        return None
    start = _BLOCK_START + int(worker[2:]) * _BLOCK_SIZE
    return range(start, start + _BLOCK_SIZE)


class _Ports:
    """The ports of one worker's block in turn, from a random place in it (so that two suites run side by
    side on one machine do not walk the same ports in step), each checked free before it is handed out."""

    def __init__(self, block: range) -> None:
        self.block = block
        self.next = random.randrange(len(block))

    def take(self, host: str, *kinds: socket.SocketKind) -> int:
        for _ in range(len(self.block)):
            port = self.block[self.next]
            self.next = (self.next + 1) % len(self.block)
            if all(_bindable(host, port, kind) for kind in kinds):
                return port
        raise RuntimeError(f"no free port left in {self.block}")


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


_block = _worker_block()
_ports = _Ports(_block) if _block is not None else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1."""
    if _ports is not None:
        return _ports.take("127.0.0.1", socket.SOCK_STREAM)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` for both UDP and TCP (a SIP listener takes both)."""
    if _ports is not None:
        return _ports.take(host, socket.SOCK_DGRAM, socket.SOCK_STREAM)
    return ports.free_udp_tcp_port(host)


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
