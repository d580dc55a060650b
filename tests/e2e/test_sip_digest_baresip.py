"""Digest with a real softphone: Debian's baresip registers (401) and places a call (407) through the
gateway, answering its challenges itself; the callee never sees baresip's credentials."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from protocols.sip import Request
from simulator.ports import free_udp_tcp_port
from tests.conftest import require_peer
from tests.e2e.sip_harness import UdpPeer, register_digest, running_proxy, sip_config
from tests.e2e.softphones import free_sip_port_for_baresip

USERS = (("alice", "alice-secret"), ("bob", "bob-secret"))


@contextlib.asynccontextmanager
async def baresip(tmp_path: Path, proxy_port: int, user: str, password: str) -> AsyncIterator[int]:
    """baresip with one account at the gateway; yields its ctrl_tcp port."""
    program = require_peer("baresip")
    ctrl = free_udp_tcp_port()
    (tmp_path / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{proxy_port};transport=udp>;auth_pass={password};regint=600\n"
    )
    (tmp_path / "config").write_text(
        f"sip_listen 127.0.0.1:{free_sip_port_for_baresip()}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\n"
        "module aubridge.so\n"
        "module_app account.so\n"
        "module_app menu.so\n"
        "module_app ctrl_tcp.so\n"
        f"ctrl_tcp_listen 127.0.0.1:{ctrl}\n"
        "audio_player aubridge,nil\n"
        "audio_source aubridge,nil\n"
    )
    proc = await asyncio.create_subprocess_exec(
        program,
        "-f",
        str(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=(tmp_path / "baresip.log").open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield ctrl
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except TimeoutError:  # it lingers to unregister from a gateway that is going away
            proc.kill()
            await proc.wait()


async def command(ctrl: int, name: str, params: str) -> None:
    """One ctrl_tcp command (a netstring holding JSON); retried until baresip listens."""
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", ctrl)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("baresip's ctrl_tcp never listened")
    body = json.dumps({"command": name, "params": params, "token": "t"}).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")
    await writer.drain()
    writer.close()


async def registered(proxy, user: str) -> bool:
    for _ in range(200):  # baresip registers on its own schedule; nothing to wait on but the table
        if proxy.location.lookup(user, proxy.loop.time()):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_baresip_registers_and_calls_answering_the_gateways_challenges(tmp_path):
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        bob = await UdpPeer.open()
        assert (await register_digest(bob, proxy.udp_port, "bob", "bob-secret")).status == 200
        async with baresip(tmp_path, proxy.udp_port, "alice", "alice-secret") as ctrl:
            assert await registered(proxy, "alice")  # answered the 401 with Authorization
            await command(ctrl, "dial", f"sip:bob@127.0.0.1:{proxy.udp_port}")
            got = await bob.request("INVITE", within=10)  # only after answering the 407
            assert isinstance(got, Request)
            assert got.from_addr.uri.user == "alice"
            raw = next(d for d in bob.raw if d.startswith(b"INVITE"))
            assert b"Proxy-Authorization" not in raw
            assert b"alice-secret" not in raw
            assert b"response=" not in raw
        bob.close()
