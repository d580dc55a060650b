"""sipp, an independent SIP implementation, through the real ``afgw run`` process.

The README's "Registering a handset and placing a call" commands are run as written (ports moved to
free ones), and then sipp's built-in UAC calls a registered sipp UAS through the gateway at 200 calls
per second for 2,000 calls, with no failed call allowed.
"""

from __future__ import annotations

import re
import shlex

from tests.conftest import require_peer
from tests.e2e.sip_harness import (
    ROOT,
    afgw_run,
    free_udp_tcp_port,
    ping,
    run_sipp,
    shipped_config_with_free_ports,
    sipp_uas,
)


def readme_commands() -> list[list[str]]:
    """The sipp command lines of the README's section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Registering a handset and placing a call", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line.strip()) for line in section.splitlines() if re.match(r"sipp (-|[0-9])", line.strip())]


def moved(args: list[str], ports: dict[str, str]) -> list[str]:
    """``args`` with every port of the README replaced by the free one chosen for it."""
    return [re.sub(r"\b(5060|5070|5071|5080)\b", lambda m: ports[m.group(1)], arg) for arg in args[1:]]


async def test_the_readme_registers_a_handset_and_places_a_call(tmp_path):
    sipp = require_peer("sipp")
    uas_cmd, register_cmd, call_cmd = readme_commands()
    ports = {p: str(free_udp_tcp_port()) for p in ("5060", "5070", "5071", "5080")}
    gateway_port = int(ports["5060"])
    async with afgw_run(shipped_config_with_free_ports(gateway_port), tmp_path):
        await ping(gateway_port)
        async with sipp_uas(sipp, int(ports["5070"]), tmp_path):
            assert uas_cmd[:3] == ["sipp", "-sn", "uas"]
            # Run where the README's reader stands: the checkout, for the scenario's relative path.
            registered = await run_sipp(sipp, *moved(register_cmd, ports), tmp_path=tmp_path, name="reg", cwd=ROOT)
            assert registered.returncode == 0, registered.output[-2000:]
            called = await run_sipp(sipp, *moved(call_cmd, ports), tmp_path=tmp_path, name="call")
            assert called.returncode == 0, called.output[-2000:]
            assert (called.successful, called.failed) == (1, 0)


async def test_sipp_2000_calls_at_200_per_second_through_the_gateway_without_a_failure(tmp_path):
    sipp = require_peer("sipp")
    gateway_port = free_udp_tcp_port()
    uas_port, register_port, uac_port = free_udp_tcp_port(), free_udp_tcp_port(), free_udp_tcp_port()
    async with afgw_run(shipped_config_with_free_ports(gateway_port), tmp_path) as gateway:
        await ping(gateway_port)
        async with sipp_uas(sipp, uas_port, tmp_path):
            registered = await run_sipp(
                sipp,
                f"127.0.0.1:{gateway_port}",
                "-sf",
                str(ROOT / "tests/e2e/sipp/register.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(register_port),
                "-s",
                "8613800000002",
                "-key",
                "contact_port",
                str(uas_port),
                "-au",
                "8613800000002",
                "-ap",
                "handset2pw",
                "-m",
                "1",
                tmp_path=tmp_path,
                name="register",
            )
            assert registered.returncode == 0, registered.output[-2000:]
            load = await run_sipp(
                sipp,
                "-sn",
                "uac",
                f"127.0.0.1:{gateway_port}",
                "-i",
                "127.0.0.2",
                "-p",
                str(uac_port),
                "-s",
                "8613800000002",
                "-r",
                "200",
                "-m",
                "2000",
                "-l",
                "1000",
                tmp_path=tmp_path,
                name="load",
                within=150,
            )
        assert gateway.returncode is None  # still running: nothing crashed it
    assert load.returncode == 0, load.output[-3000:]
    assert (load.successful, load.failed) == (2000, 0)
