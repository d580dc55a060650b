"""The README's "反诈名片" section, done as written: ``afgw keys init``, labels.yaml as shipped, the
``labels:`` line uncommented in gateway.yaml, ``afgw run``; then the centre's signed call shows on a
handset exactly as the README says, and a spoof is refused with the README's answer.

The commands run in a copy of the checkout's layout (``config/`` and ``var/`` side by side in a
temporary directory), so that the relative paths of the shipped files work unchanged.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

from simulator.antifraud_centre import AntiFraudCentre
from simulator.handset import Handset
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import (
    ROOT,
    TRUNK_HOST,
    afgw_run,
    free_udp_tcp_port,
    ping,
    shipped_config_with_free_ports,
)

_AFGW = Path(sys.executable).with_name("afgw")
AFGW = [str(_AFGW)] if _AFGW.exists() else [sys.executable, "-m", "gateway.cli"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## 反诈名片: provisioning the anti-fraud centre's keys and numbers", 1)[1].split("\n## ", 1)[0]


def code_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced block, unindented, without blank lines."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    return [[line for line in textwrap.dedent(block).splitlines() if line.strip()] for block in blocks]


async def afgw(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *AFGW, *args, cwd=str(cwd), env=ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_the_readme_provisions_the_centre_and_the_handset_sees_the_label(tmp_path: Path) -> None:
    (keys_command,), (labels_line,), (pai_line, info_line) = code_blocks(section())
    work = tmp_path / "checkout"
    (work / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "labels.yaml", work / "config" / "labels.yaml")

    # 2. afgw keys init, as written
    argv = shlex.split(keys_command)
    assert argv[:3] == [".venv/bin/afgw", "keys", "init"]
    code, out = await afgw(*argv[1:], cwd=work)
    assert code == 0, out
    for name in ("ca.pem", "ca.key", "signer.key", "signer.pem"):
        assert (work / "var" / "stir" / name).is_file()
    assert len(list((work / "var" / "stir" / "store").iterdir())) == 1
    code, out = await afgw("keys", "show", "var/stir/signer.pem", cwd=work)
    assert code == 0, out
    assert "TNAuthList" in out

    # 3. uncomment the labels line in gateway.yaml, as written
    port = free_udp_tcp_port()
    config = shipped_config_with_free_ports(port)
    commented = "  # " + labels_line.strip()
    assert commented + "\n" in config
    config = config.replace(commented + "\n", "  " + labels_line.strip() + "\n")

    expected_pai = pai_line.removeprefix("P-Asserted-Identity: ")
    info_head, info_tail = info_line.removeprefix("Call-Info: ").split("...")
    async with afgw_run(config, work / "config") as gateway:
        await ping(port)
        assert gateway.returncode is None
        proxy = ("127.0.0.1", port)
        handset = Handset("8613800000001", proxy, password="handset1pw")
        centre = AntiFraudCentre.from_labels(work / "config" / "labels.yaml", proxy)
        spoofer = TrunkCaller(proxy)
        try:
            await handset.start()
            assert (await handset.register(120)).status == 200
            await centre.start(TRUNK_HOST)
            await spoofer.start(TRUNK_HOST)
            genuine = await centre.place("8613800000001")
            assert genuine.status == 200
            shown = handset.screen.find(genuine.call_id)
            assert shown is not None
            assert (shown.label, shown.badge) == ("公安反诈专号", True)
            assert shown.asserted == expected_pai
            (call_info,) = shown.call_info
            assert call_info.startswith(info_head), call_info
            assert call_info.endswith(info_tail), call_info

            spoof = await spoofer.call("8613800000001", "8613912345678", display="【公安反诈专号】")
            assert (spoof.status, spoof.reason) == (428, 'STIR;cause=428;text="Use Identity Header"')
            assert "| 428 Use Identity Header |" in section()
            assert not handset.screen.rang(spoof.call_id)
        finally:
            for ua in (handset, centre, spoofer):
                await ua.stop()


async def test_a_labels_file_pointing_at_missing_keys_stops_the_gateway_with_its_location(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "labels.yaml", tmp_path / "config" / "labels.yaml")
    config = shipped_config_with_free_ports(free_udp_tcp_port()).replace("# labels: labels.yaml", "labels: labels.yaml")
    (tmp_path / "config" / "gateway.yaml").write_text(config, encoding="utf-8")
    code, out = await afgw("run", "-c", "config/gateway.yaml", cwd=tmp_path)
    assert code == 2
    assert re.search(r"labels\.yaml:\d+:\d+: cannot read trust anchor .*ca\.pem", out), out


def test_the_readmes_delegation_and_store_naming_are_what_the_loader_does(tmp_path: Path) -> None:
    from gateway.labels import DirectoryStore, load_labels

    text = section()
    (example,) = re.findall(r"`(delegations: \[.*?\])`", text)
    shipped = (ROOT / "config" / "labels.yaml").read_text(encoding="utf-8")
    assert "delegations: []\n" in shipped
    path = tmp_path / "labels.yaml"
    path.write_text(shipped.replace("delegations: []\n", example + "\n", 1), encoding="utf-8")
    config = load_labels(path)
    assert config.delegations == {"1234": frozenset({"8696110", "861096110"})}
    (url, name) = re.findall(r"`(https://[^`]+)` is `([^`]+)`", text)[0]
    (tmp_path / name).write_bytes(b"PEM")
    assert DirectoryStore(tmp_path).get(url) == b"PEM"
