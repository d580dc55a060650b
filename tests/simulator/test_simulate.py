"""``afgw simulate`` against a gateway running as its own process (``afgw run``): the simulator listens
as the SMSC the gateway's configuration names, binds as its ESMEs, calls from its trusted trunk
address, registers handsets, and speaks to the centre's broker; the report it prints holds the shipped
default scenario's expectations, with figures that add up.

The gateway keeps real time, so its dissuasion interval is set to seconds here; the scenario is the
shipped default, played at a twentieth of its counts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.ports import free_udp_tcp_port
from simulator.run.world import _pki
from tests.conftest import free_port, require_peer
from tests.e2e.test_cli_run import Process
from tests.gateway.events.mqtt_broker import Broker
from tests.simulator.demo_counts import planned_sms

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, broker: int) -> tuple[Path, int]:
    _pki(tmp, time.time())  # the centre's keys and tmp/labels.yaml, as `afgw keys init` makes them
    smpp, smsc, sip = free_port(), free_port(), free_udp_tcp_port()
    path = tmp / "gateway.yaml"
    path.write_text(
        f"""
smpp:
  listen: {{host: 127.0.0.1, port: {smpp}}}
  accounts:
    - {{system_id: services, password: servpw, throughput: 100000, window: 50}}
    - {{system_id: p2p, password: p2ppw, throughput: 100000, window: 50}}
    - {{system_id: bulk, password: bulkpw, throughput: 100000, window: 50}}
  smsc: {{host: 127.0.0.1, port: {smsc}, system_id: afgw, password: secret, binds: 2,
          reconnect_initial: 0.1, reconnect_max: 0.5}}
sip:
  listen: {{host: 127.0.0.1, udp_port: {sip}, tcp_port: {sip}}}
  domain: 127.0.0.1
  trusted_peers: ["127.0.0.2"]
  registrar: {{auth: off}}
  rate_limit: {{rate: 100000, burst: 100000, hard_limit: 200000}}
  labels: labels.yaml
rules:
  reload_interval: 0
store:
  backend: sqlite
  data_dir: data
events:
  jsonl: {{path: data/events.jsonl}}
  mqtt: {{host: 127.0.0.1, port: {broker}, client_id: afgw-sim-test, backoff_initial: 0.1, backoff_max: 0.5}}
dissuasion:
  interval: 2
  max_attempts: 2
  lease: 1
  poll_interval: 0.05
  robot_call: {{bind: 127.0.0.2, ring_timeout: 1, message_time: 0.2, confirm_timeout: 1}}
""",
        encoding="utf-8",
    )
    return path, smsc


@pytest.mark.timeout(300)
async def test_simulate_drives_a_gateway_running_on_its_own(tmp_path: Path) -> None:
    require_peer("mosquitto")
    broker = Broker(tmp_path)
    await broker.start()
    config, _ = _config(tmp_path, broker.port)
    gateway = Process("--log-level", "warning", "run", "-c", str(config))
    try:
        out = tmp_path / "report.json"
        proc = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "simulate",
                "default",
                "--config",
                str(config),
                "--scale",
                "0.05",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=ROOT,
        )
    finally:
        gateway.stop()
        await broker.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    sms, calls, d = report["sms"], report["calls"], report["dissuasion"]
    # Everything went through the other process: the ESMEs heard its answers, the SMSC got its relays.
    assert sms["submitted"] == planned_sms(0.05)[0]
    assert sms["fraud_caught"] == sms["fraud_total"] > 0
    assert sms["delivered"] == sms["passed"] + sms["tagged"] + sms["warned"] > 0
    assert calls["verified_labels_shown"] == calls["verified_total"] > 0
    assert calls["spoof_rejected"] == calls["spoof_attempts"] > 0
    # The centre's instructions went over the broker and its events came back: cases were followed.
    assert d["cases"] > 0
    assert d["cases"] == d["handled"] + d["escalated"]
    assert any("over MQTT" in note for note in report["notes"])
    assert "gateway running separately" in proc.stdout
