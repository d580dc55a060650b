"""The README's "Observe" commands, as written there (only the port differs), against ``afgw run``
with the shipped configuration and its ``http`` section uncommented."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port, require_peer
from tests.e2e.test_cli_run import ROOT, Process, config_with_ports

README = (ROOT / "README.md").read_text(encoding="utf-8")


def observe_commands() -> list[str]:
    section = README[README.index("### Observe") :]
    section = re.split(r"^##", section[3:], flags=re.M)[0]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.startswith("curl ")]


def with_http(config: Path, port: int) -> None:
    text = config.read_text(encoding="utf-8")
    commented = "# http:\n#   host: 127.0.0.1\n#   port: 8080\n"
    assert commented in text
    config.write_text(text.replace(commented, f"http:\n  host: 127.0.0.1\n  port: {port}\n"), encoding="utf-8")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_readme_curl_lines_show_readiness_and_binds(tmp_path: Path) -> None:
    require_peer("curl")
    commands = observe_commands()
    assert len(commands) == 2
    assert all("127.0.0.1:8080" in command for command in commands)
    gw_port, smsc_port, http_port = free_port(), free_port(), free_port()
    config = config_with_ports(tmp_path, gw_port, smsc_port)
    with_http(config, http_port)
    # The SMSC starts only after the first curl: with the shipped back-off (doubling up to 30 s) the
    # gateway could be waiting out a long pause by then. Retrying every second, it binds as soon as the
    # SMSC is up, which is all the second curl needs; what the curls show does not change.
    text = config.read_text(encoding="utf-8")
    assert text.count("reconnect_max: 30\n") == 1
    config.write_text(text.replace("reconnect_max: 30\n", "reconnect_max: 1\n"), encoding="utf-8")
    gateway = Process("run", "-c", str(config))
    smsc: Process | None = None
    try:
        gateway.wait_for(gateway.err, r"http\.listening")

        def run(command: str) -> str:
            command = command.replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
            return done.stdout

        readiness, binds = commands
        not_ready = json.loads(run(readiness))
        assert not_ready == {
            "ready": False,
            "not_ready": {"smsc": f"0 of 2 binds to 127.0.0.1:{smsc_port} are up"},
        }
        smsc = Process("smsc", "--port", str(smsc_port), "--system-id", "afgw", "--password", "secret")
        gateway.wait_for(gateway.err, r"smsc\.bound")
        assert json.loads(run(readiness)) == {"ready": True}
        lines = run(binds).splitlines()
        assert 'afgw_esme_binds{system_id="bank"} 0.0' in lines
        assert any(re.fullmatch(r"afgw_smsc_binds [12]\.0", line) for line in lines), lines
        assert "afgw_smsc_binds_configured 2.0" in lines
    finally:
        gateway.stop(signal.SIGTERM)
        if smsc is not None:
            smsc.stop(signal.SIGKILL)
