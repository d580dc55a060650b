"""The SMPP throughput benchmark runs at a tiny size with the shipped rules on and two workers, and prints
each path's figures side by side (its speed is not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_peer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "smpp_throughput.py"
ROUND = r" +\d+ +\d+ +[\d.]+ +{ok} +{refused}\n"


def run(*options: str) -> str:
    args = [sys.executable, str(BENCH), "--binds", "2", "--messages", "400", "--rounds", "1", *options]
    return subprocess.run(args, capture_output=True, text=True, timeout=150, check=True).stdout


def test_rules_on_one_process_and_two_workers_side_by_side() -> None:
    require_peer("redis-server")
    text = run("--latency-messages", "0", "--workers", "2")
    assert "message mix: 400 texts of corpus/dev.jsonl in turn, 40 of them fraud" in text
    assert "rules on: shipped packs, corpus dev-split texts" in text
    assert re.search(r"load average at start: [\d.]+ [\d.]+ [\d.]+\n", text), text
    assert re.search(r"load average at end: [\d.]+ [\d.]+ [\d.]+\n", text), text
    # Every message is answered on every path; the direct SMSC refuses none, while the gateways refuse
    # the fraud the rules block and the reserved senders, the same ones through one process or two.
    assert re.search(r"ESMEs -> SMSC \(direct\)" + ROUND.format(ok=400, refused=0), text), text
    one = re.search(r"gateway, 1 process" + ROUND.format(ok=r"(\d+)", refused=r"(\d+)"), text)
    two = re.search(r"gateway, 2 workers" + ROUND.format(ok=r"(\d+)", refused=r"(\d+)"), text)
    assert one is not None, text
    assert two is not None, text
    assert int(one[1]) + int(one[2]) == 400
    assert int(one[2]) > 0
    assert (one[1], one[2]) == (two[1], two[2])
    assert re.search(r"gateway, 1 process: refused by status \{.*0x45: \d+", text), text
    # CPU per message of the lone process, and of the workers with their split.
    assert re.search(r"gateway, 1 process +[\d.]+ +[\d.]+\n", text), text
    assert re.search(r"gateway, 2 workers +[\d.]+ +[\d.]+   \(CPU s by worker: [\d.]+, [\d.]+; supervisor", text), text
    assert re.search(r"gateway, 2 workers / gateway, 1 process: throughput [\d.]+, CPU per message [\d.]+", text)
    # What the load generator and the SMSC spent beside each path, and what that leaves a gateway.
    peers = text.split("load generator + SMSC CPU us/msg", 1)[1]
    for name in (r"ESMEs -> SMSC \(direct\)", "gateway, 1 process", "gateway, 2 workers"):
        assert re.search(name + r" +[\d.]+ +[\d.]+\n", peers), text
    budget = re.search(r"for 0\.5 \((\d+) msg/s\) on (\d+) cores, .* take ([\d.]+): .* spend (-?[\d.]+) us", text)
    assert budget is not None, text
    half, cores, taken, spend = int(budget[1]), int(budget[2]), float(budget[3]), float(budget[4])
    assert abs(spend - (cores - taken) / half * 1e6) <= 0.05 * abs(spend) + 0.1


def test_rules_off_relays_every_message() -> None:
    require_peer("redis-server")
    text = run("--rules", "off", "--workers", "1", "--latency-messages", "200")
    assert "rules off: one bank notice" in text
    assert re.search(r"gateway, 1 process" + ROUND.format(ok=400, refused=0), text), text
    assert "gateway, 2 workers" not in text
    assert re.search(r"added by the gateway +-?[\d.]+ +-?[\d.]+\n", text), text
