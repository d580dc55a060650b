"""The in-process SMPP benchmark: the gateway's own CPU per message, and its instructions under callgrind
(its speed is not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_peer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "smpp_inprocess.py"
NUMBER = r" +([\d,.]+)"


def test_timed_rounds_print_the_gateways_own_cost() -> None:
    args = [sys.executable, str(BENCH), "--binds", "2", "--messages", "400", "--rounds", "2"]
    text = subprocess.run(args, capture_output=True, text=True, timeout=150, check=True).stdout
    assert "400 submit_sm a round over 2 binds, rules on" in text
    rows = {name: re.search(name + NUMBER + NUMBER + r"\n", text) for name in ("through the gateway", "own")}
    assert all(rows.values()), text
    direct = re.search(r"straight to the SMSC" + NUMBER + NUMBER + r"\n", text)
    assert direct is not None, text
    # The gateway costs something on top of the SMSC's and the load's own work, in every round.
    own = rows["own"]
    assert own is not None
    assert float(own[1]) > 0
    assert re.search(r"refused by the gateway: [1-9]\d* of 400 in the last round", text), text


def test_instructions_per_message_under_callgrind(tmp_path: Path) -> None:
    valgrind = require_peer("valgrind")
    args = [valgrind, "--tool=callgrind", "--instr-atstart=no", sys.executable, str(BENCH), "--callgrind"]
    args += ["--binds", "2", "--messages", "200"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=True, cwd=tmp_path)
    counts = {
        name: int(match[1].replace(",", ""))
        for name in ("straight to the SMSC", "through the gateway", "the gateway's own")
        if (match := re.search(re.escape(name) + r" +([\d,]+)\n", done.stdout))
    }
    assert len(counts) == 3, done.stdout
    difference = counts["through the gateway"] - counts["straight to the SMSC"]
    assert abs(difference - counts["the gateway's own"]) <= 1  # each printed rounded
    # tens of thousands of instructions a message at least, through rules, the relay and the answer
    assert counts["the gateway's own"] > 20_000, done.stdout
    assert sorted(p.name.rsplit(".", 1)[1] for p in tmp_path.glob("callgrind.out.*.*")) == ["1", "2"]


def test_callgrind_mode_outside_callgrind_says_how_to_run_it(tmp_path: Path) -> None:
    args = [sys.executable, str(BENCH), "--callgrind", "--binds", "2", "--messages", "100"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert done.returncode == 1
    assert "run it under valgrind --tool=callgrind --instr-atstart=no" in done.stderr
    assert "Traceback" not in done.stderr


def test_profile_mode_prints_calls_per_message_and_time_by_file() -> None:
    args = [sys.executable, str(BENCH), "--profile", "--binds", "2", "--messages", "400", "--rules", "off"]
    text = subprocess.run(args, capture_output=True, text=True, timeout=150, check=True).stdout
    calls = re.search(r"the gateway's own Python-level calls per message \(cProfile\) +([\d,.]+)\n", text)
    assert calls is not None, text
    # Four PDUs a message through two sessions, the proxy's steps, the store and the metrics.
    assert float(calls[1].replace(",", "")) > 40, text
    shares = dict((name, float(share)) for share, name in re.findall(r"^ *([\d.]+)%  (\S.*)$", text, re.MULTILINE))
    assert {"protocols/smpp/session.py", "gateway/smpp/proxy.py", "gateway/smpp/connection.py"} <= set(shares), text
    assert 0 < sum(shares.values()) <= 100.5
