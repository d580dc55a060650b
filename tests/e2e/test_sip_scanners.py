"""What an attacker's scanner learns from the gateway: that something answers SIP, and nothing more.

sipvicious (PyPI, the ``test`` extra) runs only against 127.0.0.1, bound to 127.0.0.1 with
``-b 127.0.0.1 -x 127.0.0.1 -P <port>``, and never with ``-R`` (which would send a report off the box).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from protocols.sip import Response
from tests.conftest import free_port
from tests.e2e.sip_harness import UdpPeer, register_digest, request, running_proxy, sip_config

USERS = (("1000", "pw1000"), ("1001", "pw1001"))


def sipvicious(tool: str) -> str:
    path = shutil.which(f"sipvicious_{tool}") or str(Path(sys.executable).parent / f"sipvicious_{tool}")
    if not os.path.exists(path):
        reason = "sipvicious is not installed (pip install -e '.[test]')"
        if os.environ.get("AFGW_REQUIRE_PEERS") == "1":
            pytest.fail(f"AFGW_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return path


async def scan(tool: str, port: int, *args: str) -> str:
    command = [sipvicious(tool), *args, "-b", "127.0.0.1", "-x", "127.0.0.1", "-P", str(free_port())]
    command += ["-p", str(port), "127.0.0.1"]
    assert "-R" not in command
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def table_rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("|") and "Extension" not in line]


async def test_svwar_and_svmap_reveal_no_registered_user():
    async with running_proxy(sip_config(auth=True, users=USERS, rate=1000)) as proxy:
        handset = await UdpPeer.open()
        for user, password in USERS:
            assert (await register_digest(handset, proxy.udp_port, user, password)).status == 200
        for method in ("REGISTER", "INVITE", "OPTIONS"):
            output = await scan("svwar", proxy.udp_port, "-e", "990-1010", "-m", method)
            assert "found nothing" in output, output
            assert not table_rows(output), output
        forced = await scan("svwar", proxy.udp_port, "--force", "-e", "995-1005", "-m", "REGISTER")
        assert not [row for row in table_rows(forced) if "1000" in row or "1001" in row], forced
        mapped = await scan("svmap", proxy.udp_port)
        (device,) = [row for row in table_rows(mapped) if "127.0.0.1" in row]
        assert "unknown" in device  # no User-Agent/Server to fingerprint
        handset.close()
        assert len(proxy.location) == 2  # the scans registered nothing


def normalised(response: Response) -> tuple[object, ...]:
    """A response with what differs per request (tags, nonce, Call-ID, Via) taken out."""
    challenge = response.headers.get("WWW-Authenticate") or ""
    masked = ", ".join(p for p in challenge.split(", ") if not p.startswith("nonce="))
    return response.status, response.reason, [name for name, _ in response.headers], masked


async def test_unauthenticated_probes_get_the_same_answer_for_existing_and_unknown_users():
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        handset = await UdpPeer.open()
        await register_digest(handset, proxy.udp_port, "1000", "pw1000")
        prober = await UdpPeer.open()
        answers: dict[tuple[str, str], tuple[object, ...]] = {}
        for method in ("REGISTER", "INVITE", "OPTIONS", "MESSAGE"):
            for user in ("1000", "1001", "4242"):  # registered, known but unregistered, unknown
                uri = "sip:127.0.0.1" if method == "REGISTER" else f"sip:{user}@127.0.0.1"
                probe = request(method, uri, prober, from_user=user, to_user=user)
                prober.send(probe, proxy.udp_port)
                answers[(method, user)] = normalised(await prober.response(probe.call_id))
        for method in ("REGISTER", "INVITE", "OPTIONS", "MESSAGE"):
            assert answers[(method, "1000")] == answers[(method, "1001")] == answers[(method, "4242")]
            # A registrar's challenge for REGISTER, a proxy's for what it would relay (RFC 3261 22.3).
            assert answers[(method, "1000")][0] == (401 if method == "REGISTER" else 407)
        assert not [m for m in handset.received if m.headers.get("CSeq", "").endswith(("INVITE", "MESSAGE"))]
        handset.close()
        prober.close()


async def test_a_flooding_source_is_throttled_then_ignored_and_others_are_unaffected():
    async with running_proxy(sip_config(auth=True, users=USERS, rate=5, hard_limit=10)) as proxy:
        flood = await UdpPeer.open()
        for _ in range(40):
            flood.send(request("OPTIONS", "sip:127.0.0.1", flood), proxy.udp_port)
        bystander = await UdpPeer.open("127.0.0.3")
        probe = request("OPTIONS", "sip:127.0.0.1", bystander)
        bystander.send(probe, proxy.udp_port)
        assert (await bystander.response(probe.call_id)).status == 401  # served normally
        await flood.until_received(10)
        statuses = sorted(m.status for m in flood.received if isinstance(m, Response))
        assert statuses[:5] == [401] * 5
        throttled = [m for m in flood.received if isinstance(m, Response) and m.status == 503]
        assert len(throttled) == 5
        assert all(m.headers.get("Retry-After") == "5" for m in throttled)
        assert proxy.stats["dropped"] == 35  # 5 answered 503, 30 dropped unanswered
        flood.close()
        bystander.close()
