"""A redis-server of our own on a free loopback port, for the tests that need Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port, require_peer


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    program = require_peer("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    client.close()
    return proc, port
