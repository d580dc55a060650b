"""afgw demo relays real traffic and reports it under the keys DESIGN.md promises."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_report(tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--json", str(out), "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    sms = report["sms"]
    for key in (
        "submitted",
        "delivered",
        "blocked",
        "fraud_total",
        "fraud_caught",
        "ham_total",
        "ham_blocked",
    ):
        assert key in sms
    assert sms["submitted"] == 200
    assert sms["delivered"] == sms["accepted"] == sms["ham_total"] == 200 - sms["fraud_total"]
    assert sms["fraud_total"] > 0
    assert sms["fraud_caught"] == sms["fraud_total"]
    assert sms["ham_blocked"] == 0
    assert sms["flash_warnings"] > 0
    assert sms["receipts_routed"] == sms["receipts_requested"] > 0
    assert sms["receipts_misrouted"] == 0
    assert sms["mo_routed"] == sms["mo_sent"] == 20
    assert report["latency_ms"]["smpp_p99"] >= report["latency_ms"]["smpp_p50"] > 0
    assert "delivered to inboxes" in proc.stdout
