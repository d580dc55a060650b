"""The README's "Running the gateway", step by step, with the real ``afgw`` command in subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import smpplib.client
import smpplib.consts

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
_AFGW = Path(sys.executable).with_name("afgw")
AFGW = [str(_AFGW)] if _AFGW.exists() else [sys.executable, "-m", "gateway.cli"]
# The packages of this checkout, whichever one the virtualenv was installed from.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def wait_until(predicate: Callable[[], bool], within: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in time"
        time.sleep(0.02)


class Process:
    """A subprocess whose stdout and stderr lines are collected by reader threads, as UTF-8."""

    def __init__(self, *args: str) -> None:
        self.args = [*AFGW, *args]
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, lines: list[str], pattern: str, within: float = 20.0) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            assert self.proc.poll() is None or found, f"{self.args} exited: {self.out} {self.err}"
            found.extend(m for line in list(lines) if (m := re.search(pattern, line)))
            return bool(found)

        wait_until(seen, within, f"{pattern!r} from {self.args}")
        return found[0]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def config_with_ports(tmp_path: Path, gw_port: int, smsc_port: int) -> Path:
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    assert text.count("port: 2775") == 1
    assert text.count("port: 2776") == 1
    text = text.replace("port: 2775", f"port: {gw_port}").replace("port: 2776", f"port: {smsc_port}")
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def readme_esme(port: int) -> str:
    """Step 3 of the README, as written there (only the port differs); returns the message_id."""
    answers: list[object] = []
    client = smpplib.client.Client("127.0.0.1", port)
    client.set_message_sent_handler(lambda pdu: answers.append(pdu))
    client.connect()
    client.bind_transceiver(system_id="bank", password="bankpw")
    client.send_message(
        source_addr="10690",
        destination_addr="8613800000001",
        short_message="您的验证码是 123456".encode("utf-16-be"),
        data_coding=smpplib.consts.SMPP_ENCODING_ISO10646,
    )
    client.read_once()  # the submit_sm_resp, carrying the SMSC's message_id
    client.unbind()
    client.disconnect()
    [resp] = answers
    assert resp.status == 0  # type: ignore[attr-defined]
    message_id = resp.message_id  # type: ignore[attr-defined]
    return message_id.decode() if isinstance(message_id, bytes) else str(message_id)


def start_both(tmp_path: Path, *gateway_args: str, smsc_args: tuple[str, ...] = ()) -> tuple[Process, Process, int]:
    gw_port, smsc_port = free_port(), free_port()
    config = config_with_ports(tmp_path, gw_port, smsc_port)
    smsc = Process("smsc", "--port", str(smsc_port), "--system-id", "afgw", "--password", "secret", *smsc_args)
    try:
        smsc.wait_for(smsc.out, rf"simulated SMSC listening on 127\.0\.0\.1:{smsc_port}")
        gateway = Process("run", "-c", str(config), *gateway_args)
    except BaseException:
        smsc.stop(signal.SIGKILL)
        raise
    return smsc, gateway, gw_port


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_readme_step_by_step(tmp_path):
    smsc, gateway, gw_port = start_both(tmp_path)
    try:
        gateway.wait_for(gateway.err, r"smsc\.bound")
        message_id = readme_esme(gw_port)
        smsc.wait_for(smsc.out, rf"^stored {re.escape(message_id)}: 10690 -> 8613800000001: 您的验证码是 123456$")
        assert gateway.stop(signal.SIGTERM) == 0  # a clean stop on SIGTERM
        stopped = [line for line in gateway.err if "afgw.stopped" in line]
        assert len(stopped) == 1, gateway.err
        assert re.search(r"\[info\s*\] afgw\.stopped\s+signal=SIGTERM$", stopped[0]), stopped
        assert gateway.err[-1] == stopped[0]  # nothing after it: the process is done
    finally:
        gateway.stop(signal.SIGKILL)
        smsc.stop(signal.SIGKILL)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_json_logs_carry_the_system_id(tmp_path):
    smsc, gateway, gw_port = start_both(tmp_path, "--log-format", "json")
    try:
        gateway.wait_for(gateway.err, r'"event": "smsc\.bound"')
        readme_esme(gw_port)
        gateway.wait_for(gateway.err, r'"event": "esme\.unbound"')
        assert gateway.stop(signal.SIGINT) == 0
        events = [json.loads(line) for line in gateway.err if line.strip()]  # every line is one JSON object
        [bound] = [e for e in events if e["event"] == "esme.bound"]
        assert bound["system_id"] == "bank"
        assert bound["bind_type"] == "transceiver"
        assert bound["peer"].startswith("127.0.0.1:")
        assert bound["level"] == "info"
        assert "timestamp" in bound
        [unbound] = [e for e in events if e["event"] == "esme.unbound"]
        assert unbound["system_id"] == "bank"
        assert unbound["peer"] == bound["peer"]
        assert [e for e in events if e["event"] == "afgw.stopped"] == [events[-1]]
        assert (events[-1]["signal"], events[-1]["level"]) == ("SIGINT", "info")
        [loaded] = [e for e in events if e["event"] == "rules.loaded"]
        assert loaded["packs"]
        assert all(isinstance(p, str) and "Path(" not in p for p in loaded["packs"])
        assert "bankpw" not in "\n".join(gateway.err)
        assert "secret" not in "\n".join(gateway.err)
    finally:
        gateway.stop(signal.SIGKILL)
        smsc.stop(signal.SIGKILL)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_mo_given_to_afgw_smsc_reaches_the_esme_through_the_gateway(tmp_path):
    mo = ("8613800000051:10690:收到，谢谢", "8613800000052:10690:ok: 10:30")
    smsc, gateway, gw_port = start_both(tmp_path, smsc_args=("--mo", mo[0], "--mo", mo[1], "--mo-retry", "0.2"))
    try:
        gateway.wait_for(gateway.err, r"smsc\.bound")
        received: list[object] = []
        client = smpplib.client.Client("127.0.0.1", gw_port, timeout=20)
        client.set_message_received_handler(lambda pdu: received.append(pdu))
        client.connect()
        client.bind_receiver(system_id="bank", password="bankpw")
        while len(received) < len(mo):
            client.read_once()
        client.unbind()
        client.disconnect()
        got = []
        for pdu in received:
            body = pdu.short_message  # type: ignore[attr-defined]
            got.append(
                ":".join(
                    (
                        pdu.source_addr.decode(),  # type: ignore[attr-defined]
                        pdu.destination_addr.decode(),  # type: ignore[attr-defined]
                        body.decode("utf-16-be") if pdu.data_coding == 8 else body.decode(),  # type: ignore[attr-defined]
                    )
                )
            )
        assert got == list(mo)
        for spec in mo:
            source, destination, text = spec.split(":", 2)
            smsc.wait_for(smsc.out, rf"^mo delivered: {source} -> {destination}: {re.escape(text)} \(ESME_ROK\)$")
    finally:
        gateway.stop(signal.SIGKILL)
        smsc.stop(signal.SIGKILL)


BAD = """\
smpp:
  listen:
    host: 127.0.0.1
    port: 70000
  max_pdu_size: 8
  accounts:
    - system_id: bank
      password: waytoolongpassword
      window: 0
      bind_types: [transmitter, sender]
    - system_id: bank
      password: x
  smsc:
    bind_type: both
  colour: blue
"""


def test_bad_config_reports_every_error_with_its_place_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    done = subprocess.run(
        [*AFGW, "run", "-c", str(bad)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    places = []
    for line in lines:
        match = re.match(rf"{re.escape(str(bad))}:(\d+):(\d+): \S", line)
        assert match, f"not file:line:col: message: {line!r}"
        places.append(int(match.group(1)))
    # One pass finds them all: bad port, max_pdu_size, password length, window, bind type, duplicate
    # account, smsc bind_type, unknown key.
    assert places == [4, 5, 8, 9, 10, 11, 14, 15]
    assert "70000" in lines[0]
    assert "colour" in lines[-1]
    assert done.stdout == ""


def test_missing_config_file_exits_2(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    done = subprocess.run(
        [*AFGW, "run", "-c", str(missing)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"cannot read {missing}: no such file\n")
