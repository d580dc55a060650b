"""The dissuasion benchmark runs and prints its figures for both backends (its speed is not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_peer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dissuasion_cases.py"
ROW = r"{} +[\d.]+s +\d+ MB +\d+ MB +{} +1,000 +[\d,]+ +[\d,]+ +[\d.]+ms +[\d.]+ms +[\d.]+ms +[\d.]+ms"


def run_quick(backend: str) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--backends", backend],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    return out.stdout


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_quick_run_prints_memory_lag_and_targets(backend):
    if backend == "redis":
        require_peer("redis-server")
    text = run_quick(backend)
    assert "2,000 open cases, 500 attempts due/s for 2 s" in text
    assert "flash sender and robot caller are stubs" in text
    assert "targets: resident memory <= 200 MB, lag p99 <= 100 ms" in text
    server = r"\d+ MB" if backend == "redis" else "-"
    # 1,000 attempts due in the stretch, how many were made, and their lag
    assert re.search(ROW.format(backend, server), text), text
    assert re.search(rf"{backend}: memory \d+ MB \(target 200\) (ok|MISSED); lag p99 [\d.]+ ms \(target 100\)", text)
