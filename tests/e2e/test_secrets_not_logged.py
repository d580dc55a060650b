"""``afgw run`` at debug level with every kind of secret given through the environment or a file:
binds that succeed and fail, a broker that cannot be reached, a stop; no secret appears in any line."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from simulator.esme import BindRefused, SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ESME_SECRET = "Esm3Pw"
SMSC_SECRET = "Smsc9Pw"
MQTT_SECRET = "mqtt-broker-secret-77"
USER_SECRET = "handset-digest-secret-41"


async def test_secrets_never_reach_the_logs(tmp_path):
    smsc = SimulatedSmsc(password=SMSC_SECRET)
    await smsc.start()
    gw_port, broker_port, sip_port = free_port(), free_port(), free_port()
    (tmp_path / "smsc.secret").write_text(SMSC_SECRET + "\n")
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""\
smpp:
  listen: {{port: {gw_port}}}
  accounts:
    - system_id: bank
      password_env: AFGW_ESME_PASSWORD
  smsc:
    port: {smsc.port}
    password_file: smsc.secret
sip:
  listen: {{udp_port: {sip_port}, tcp_port: {sip_port}}}
  registrar:
    auth: on
    users:
      - user: "8613800000001"
        password_env: AFGW_USER_PASSWORD
store:
  backend: memory
events:
  mqtt:
    port: {broker_port}
    username: afgw
    password_env: AFGW_MQTT_PASSWORD
    backoff_initial: 0.05
""",
        encoding="utf-8",
    )
    env = {
        "AFGW_ESME_PASSWORD": ESME_SECRET,
        "AFGW_MQTT_PASSWORD": MQTT_SECRET,
        "AFGW_USER_PASSWORD": USER_SECRET,
        "PATH": "/usr/bin:/bin",
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway.cli", "--log-level", "debug", "run", "-c", str(path)),
        cwd=str(ROOT),
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        seen = b""
        while b"smsc.bound" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
            assert line, seen.decode()
            seen += line
        esme = SimulatedEsme("127.0.0.1", gw_port, "bank", ESME_SECRET)
        await esme.bind()
        [resp] = await esme.submit("10690", "8613800000001", "hello")
        assert resp.command_status == 0
        await esme.unbind()
        # A wrong password that differs from the right one in its last character only.
        wrong = SimulatedEsme("127.0.0.1", gw_port, "bank", ESME_SECRET[:-1] + "x")
        with pytest.raises(BindRefused):
            await wrong.bind()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()
    assert proc.returncode == 0
    text = (seen + err + out).decode("utf-8", "replace")
    assert "esme.bind_refused" in text
    assert "[debug" in text
    for secret in (ESME_SECRET, SMSC_SECRET, MQTT_SECRET, USER_SECRET, ESME_SECRET[:-1] + "x"):
        assert secret not in text
