"""The velocity cost benchmark runs against a Redis of its own and prints a line per measure (its speed
is not judged here), and leaves no key behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import redis

from tests.gateway.store.redis_server import start_redis

BENCH = Path(__file__).resolve().parents[2] / "bench" / "velocity_cost.py"
FIGURES = r" +[\d,]+/s +[\d.]+ µs +[\d.]+ µs +[\d.]+ µs"


def test_quick_run_prints_each_measure(tmp_path: Path) -> None:
    proc, port = start_redis(tmp_path)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        args = [sys.executable, str(BENCH), "--redis", url, "--messages", "200", "--burst", "20", "--repeat", "1"]
        text = subprocess.run(args, capture_output=True, text=True, timeout=110, check=True).stdout
        assert "200 SMS, shipped packs + 3 velocity rules" in text
        assert re.search(r"in memory \(each process alone\)" + FIGURES + "\n", text), text
        assert re.search(r"Redis, one at a time" + FIGURES + r"  \(CPU \+", text), text
        assert re.search(r"Redis, 20 at once" + FIGURES + r"  \(CPU \+", text), text
        assert re.search(r"\((\d+) counters in Redis", text), text
        assert redis.Redis(port=port).dbsize() == 0
    finally:
        proc.kill()
        proc.wait()
