"""Real softphones as handsets: Debian's baresip and linphonec (linphone-cli), headless and scripted.

Each runs in a temporary directory of its own (its config and HOME), listens on free loopback ports,
uses null audio (baresip: aubridge; linphonec: "soundcard use files") and registers with the gateway
as its outbound proxy. A test drives them with the same five verbs (dial, hold, resume, hang up,
and waiting for what the phone reports) and sees what the phone itself says happened:

- baresip through its ctrl_tcp module: JSON commands and events, netstring-framed;
- linphonec through its stdin and the lines it prints ("Call 1 ... connected.", "... paused").

Everything is bounded in time: every wait has a timeout, and the processes are killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from simulator.ports import free_udp_tcp_port

WAIT = 15.0


class Softphone(Protocol):
    name: str
    user: str

    async def dial(self, uri: str) -> None: ...
    async def hold(self) -> None: ...
    async def resume(self) -> None: ...
    async def hang_up(self) -> None: ...
    async def connected(self) -> None: ...
    async def held_by_peer(self) -> None: ...
    async def resumed_by_peer(self) -> None: ...
    async def held(self) -> None: ...
    async def resumed(self) -> None: ...
    async def ended(self) -> None: ...
    async def stop(self) -> None: ...


class _Lines:
    """What a phone reported, in order, and a way to wait for the next report matching a test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []
        self._pos = 0
        self._arrived = asyncio.Event()

    def add(self, item: str) -> None:
        self.seen.append(item)
        self._arrived.set()

    async def expect(self, match: Callable[[str], bool], what: str, within: float = WAIT) -> str:
        try:
            async with asyncio.timeout(within):
                while True:
                    while self._pos < len(self.seen):
                        item = self.seen[self._pos]
                        self._pos += 1
                        if match(item):
                            return item
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            tail = "\n  ".join(self.seen[-25:])
            raise AssertionError(f"{self.name}: no {what} within {within} s; it reported:\n  {tail}") from None


# --- baresip ---------------------------------------------------------------------------------------

_BARESIP_CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
net_interface 127.0.0.1
audio_player aubridge,nil
audio_source aubridge,nil
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module uuid.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""


def free_sip_port_for_baresip() -> int:
    """A SIP port free for UDP and TCP whose next port is free for TCP too (baresip's SIP over TLS)."""
    while True:
        port = free_udp_tcp_port()
        with socket.socket() as tls:
            try:
                tls.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


class Baresip:
    """baresip driven through ctrl_tcp; its reports are ``"TYPE param"`` strings of its events."""

    def __init__(self, user: str, home: Path) -> None:
        self.name = f"baresip({user})"
        self.user = user
        self.home = home
        self.lines = _Lines(self.name)
        self.proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, user: str, home: Path, gateway_port: int, transport: str, extra: str = "") -> Baresip:
        phone = cls(user, home)
        home.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a test's few small files)
        suffix = {"tcp": ";transport=tcp", "tls": ";transport=tls"}.get(transport, "")
        (home / "accounts").write_text(
            f'<sip:{user}@127.0.0.1>;outbound="sip:127.0.0.1:{gateway_port}{suffix}";regint=300;answermode=auto{extra}\n'
        )
        # baresip also opens SIP over TLS on the port after its SIP port, which another process may
        # take between our look and its bind: then it exits, and it is started again on other ports.
        for attempt in range(5):
            reader = await phone._launch()
            if reader is not None:
                break
            log = (home / "out.log").read_text()
            if "Address already in use" not in log or attempt == 4:
                raise AssertionError(f"baresip exited: {log[-2000:]}")
        phone._reader_task = asyncio.get_running_loop().create_task(phone._read(reader))
        return phone

    async def _launch(self) -> asyncio.StreamReader | None:
        """Start baresip on fresh ports; its control connection, or None when it exited first."""
        ctrl_port = free_udp_tcp_port()
        config = _BARESIP_CONFIG.format(sip_port=free_sip_port_for_baresip(), ctrl_port=ctrl_port)
        extra = self.home / "config.extra"  # more config lines a test wrote (sip_cafile, sip_certificate)
        if extra.exists():
            config += extra.read_text()
        (self.home / "config").write_text(config)
        self.proc = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(self.home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=(self.home / "out.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    reader, self._writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
                    return reader
                except OSError:
                    if self.proc.returncode is not None:
                        return None
                    await asyncio.sleep(0.05)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:
                length = int((await reader.readuntil(b":"))[:-1])
                message = json.loads(await reader.readexactly(length))
                await reader.readexactly(1)  # the netstring's ","
                if message.get("event"):
                    self.lines.add(f"{message.get('type')} {message.get('param', '')}")

    def _command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        data = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(b"%d:%s," % (len(data), data))

    def _event(self, kind: str, param: str | None = None) -> Callable[[str], bool]:
        return lambda line: line.split(" ", 1)[0] == kind and (param is None or line.endswith(" " + param))

    async def dial(self, uri: str) -> None:
        self._command("dial", uri)

    async def hold(self) -> None:
        self._command("hold")

    async def resume(self) -> None:
        self._command("resume")

    async def hang_up(self) -> None:
        self._command("hangup")

    async def connected(self) -> None:
        await self.lines.expect(self._event("CALL_ESTABLISHED"), "established call")

    async def held_by_peer(self) -> None:
        await self.lines.expect(self._event("CALL_REMOTE_SDP", "offer"), "re-INVITE (hold) from the peer")

    async def resumed_by_peer(self) -> None:
        await self.lines.expect(self._event("CALL_REMOTE_SDP", "offer"), "re-INVITE (resume) from the peer")

    async def held(self) -> None:
        await self.lines.expect(self._event("CALL_REMOTE_SDP", "answer"), "answer to its hold re-INVITE")

    async def resumed(self) -> None:
        await self.lines.expect(self._event("CALL_REMOTE_SDP", "answer"), "answer to its resume re-INVITE")

    async def ended(self) -> None:
        await self.lines.expect(self._event("CALL_CLOSED"), "call closed")

    async def stop(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                self._command("quit")
            self._writer.close()
        await _end(self.proc, grace=3.0)
        if self._reader_task is not None:
            self._reader_task.cancel()


# --- linphonec ---------------------------------------------------------------------------------------

_LINPHONERC = """\
[sip]
sip_port={udp_port}
sip_tcp_port={tcp_port}
sip_tls_port=0
default_proxy=0
auto_net_state_mon=0
register_only_when_network_is_up=0
[proxy_0]
reg_proxy=<sip:127.0.0.1:{gateway_port};transport={transport}>
reg_identity=<sip:{user}@127.0.0.1>
reg_expires=300
reg_sendregister=1
[rtp]
audio_rtp_port={rtp_port}
[sound]
echocancellation=0
[net]
ipv6=0
[video]
capture=0
display=0
automatically_initiate=0
automatically_accept=0
"""


class Linphonec:
    """linphonec driven through its stdin; its reports are the lines it prints."""

    def __init__(self, user: str, home: Path) -> None:
        self.name = f"linphonec({user})"
        self.user = user
        self.home = home
        self.lines = _Lines(self.name)
        self.proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, user: str, home: Path, gateway_port: int, transport: str, extra: str = "") -> Linphonec:
        phone = cls(user, home)
        # Without its database directory linphonec never opens its SIP ports.
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        port = free_udp_tcp_port()
        (home / "linphonerc").write_text(
            _LINPHONERC.format(
                udp_port=port if transport == "udp" else 0,
                tcp_port=port if transport == "tcp" else 0,
                gateway_port=gateway_port,
                transport=transport,
                user=user,
                rtp_port=free_udp_tcp_port(),
            )
            + extra
        )
        phone.proc = await asyncio.create_subprocess_exec(
            "linphonec",
            "-c",
            str(home / "linphonerc"),
            "-d",
            "0",
            "-a",  # answers incoming calls
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(home)},
        )
        phone._reader_task = asyncio.get_running_loop().create_task(phone._read())
        phone._command("soundcard use files")  # null audio: no sound card here
        return phone

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.add(line.decode(errors="replace").strip().removeprefix("linphonec> "))

    def _command(self, line: str) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def _printed(self, *parts: str) -> Callable[[str], bool]:
        return lambda line: all(part in line for part in parts)

    async def dial(self, uri: str) -> None:
        self._command(f"call {uri}")

    async def hold(self) -> None:
        self._command("pause")

    async def resume(self) -> None:
        self._command("resume")

    async def hang_up(self) -> None:
        self._command("terminate")

    async def connected(self) -> None:
        await self.lines.expect(self._printed("Call 1 with", "connected."), "connected call")

    async def held_by_peer(self) -> None:
        await self.lines.expect(self._printed("has been paused by"), "hold from the peer")

    async def resumed_by_peer(self) -> None:
        await self.lines.expect(self._printed("Media streams established"), "resume from the peer")

    async def held(self) -> None:
        await self.lines.expect(self._printed("is now paused"), "call paused")

    async def resumed(self) -> None:
        await self.lines.expect(self._printed("Resuming call"), "call resuming")
        await self.lines.expect(self._printed("Media streams established"), "media after resuming")

    async def ended(self) -> None:
        await self.lines.expect(self._printed("Call 1 with", "ended"), "call ended")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self._command("quit")
        await _end(self.proc, grace=3.0)
        if self._reader_task is not None:
            self._reader_task.cancel()


async def _end(proc: asyncio.subprocess.Process | None, grace: float = 5.0) -> None:
    if proc is None:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace if proc.returncode is None else 0.1)
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


KINDS: dict[str, type[Baresip] | type[Linphonec]] = {"baresip": Baresip, "linphonec": Linphonec}


@contextlib.asynccontextmanager
async def softphone(
    kind: str, user: str, home: Path, gateway_port: int, transport: str, extra: str = ""
) -> AsyncIterator[Softphone]:
    """A running softphone; ``extra``: more account parameters (baresip) or linphonerc lines."""
    phone = await KINDS[kind].start(user, home, gateway_port, transport, extra)
    try:
        yield phone
    finally:
        await phone.stop()
