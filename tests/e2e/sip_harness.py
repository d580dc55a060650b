"""Helpers for SIP tests against a running proxy on loopback: a config, raw UDP/TCP peers, builders.

A ``UdpPeer`` is a bare socket that sends whatever bytes it is given and records what arrives,
parsed with the sans-IO core: it plays a trunk, a handset or a scanner without any UA logic, so that
the tests see exactly what crosses the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.config import RegistrarConfig, SipConfig, SipListen, SipRateLimit, SipUser
from gateway.inspection import CallInspector
from gateway.sip.proxy import SipProxy
from protocols.sip import Headers, Request, Response, parse_message, parse_uri
from simulator.ports import free_udp_tcp_port

TRUNK_HOST = "127.0.0.2"  # the trusted trunk side binds here; handsets use 127.0.0.1


def sip_config(
    *,
    auth: bool = False,
    users: tuple[tuple[str, str], ...] = (),
    trusted: tuple[str, ...] = (TRUNK_HOST,),
    rate: float = 1000.0,
    hard_limit: float = 5000.0,
    **overrides: Any,
) -> SipConfig:
    config = SipConfig(
        listen=SipListen("127.0.0.1", 0, 0),
        domain="127.0.0.1",
        trusted_peers=tuple(ipaddress.ip_network(t) for t in trusted),
        registrar=RegistrarConfig(
            auth=auth, users=tuple(SipUser(u, p) for u, p in users), min_expires=10, realm="afgw.test"
        ),
        rate_limit=SipRateLimit(rate=rate, burst=rate, hard_limit=hard_limit),
    )
    return replace(config, **overrides)


@contextlib.asynccontextmanager
async def running_proxy(config: SipConfig, inspector: CallInspector | None = None) -> AsyncIterator[SipProxy]:
    proxy = SipProxy(config, inspector=inspector, loop=asyncio.get_running_loop())
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


class UdpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[Request | Response] = []
        self.raw: list[bytes] = []
        self._arrived = asyncio.Event()
        self.host = "127.0.0.1"
        self.port = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, 0))
        peer.host, peer.port = transport.get_extra_info("sockname")[:2]
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.raw.append(data)
        try:
            self.received.append(parse_message(data))
        except Exception:
            return
        self._arrived.set()

    def send(self, message: Request | Response | bytes, port: int, host: str = "127.0.0.1") -> None:
        data = message if isinstance(message, bytes) else message.serialise()
        assert self.transport is not None
        self.transport.sendto(data, (host, port))

    async def wait_for(self, match: Callable[[Request | Response], bool], within: float = 5.0) -> Request | Response:
        """The first received message matching ``match`` (removed from ``received``)."""
        async with asyncio.timeout(within):
            while True:
                for i, message in enumerate(self.received):
                    if match(message):
                        del self.received[i]
                        return message
                self._arrived.clear()
                await self._arrived.wait()

    async def until_received(self, count: int, within: float = 5.0) -> None:
        """Wait until at least ``count`` messages have arrived."""
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def response(self, call_id: str, status: int | None = None, within: float = 5.0) -> Response:
        """The next response for ``call_id`` (with ``status``, else any status but 100)."""

        def match(m: Request | Response) -> bool:
            if not isinstance(m, Response) or m.headers.get("Call-ID") != call_id:
                return False
            return m.status == status if status is not None else m.status != 100

        found = await self.wait_for(match, within)
        assert isinstance(found, Response)
        return found

    async def request(self, method: str, call_id: str | None = None, within: float = 5.0) -> Request:
        def match(m: Request | Response) -> bool:
            return (
                isinstance(m, Request)
                and m.method == method
                and (call_id is None or m.headers.get("Call-ID") == call_id)
            )

        found = await self.wait_for(match, within)
        assert isinstance(found, Request)
        return found

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def request(
    method: str,
    uri: str,
    peer: UdpPeer,
    *,
    from_user: str = "caller",
    to_user: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    to_tag: str | None = None,
    from_tag: str = "ftag",
    contact_user: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    max_forwards: int = 70,
) -> Request:
    """A well-formed request as a UA at ``peer`` would send it."""
    target = parse_uri(uri)
    to_user = to_user if to_user is not None else (target.user or "")
    to_value = (f"<sip:{to_user}@127.0.0.1>" if to_user else "<sip:127.0.0.1>") + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{secrets.token_hex(6)};rport"),
            ("Max-Forwards", str(max_forwards)),
            ("From", f"<sip:{from_user}@127.0.0.1>;tag={from_tag}"),
            ("To", to_value),
            ("Call-ID", call_id or secrets.token_hex(8)),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{contact_user or from_user}@{peer.host}:{peer.port}>"),
            *extra,
        ]
    )
    return Request(method, target, headers, body)


def answer(req: Request, status: int, *, to_tag: str = "callee", contact: UdpPeer | None = None) -> Response:
    """A UAS's response to a forwarded request: every Via kept, a To tag, optionally a Contact."""
    from protocols.sip import create_response

    response = create_response(req, status, to_tag=to_tag if status != 100 else None)
    if 100 < status < 300:
        for value in req.headers.get_all("Record-Route"):  # RFC 3261 12.1.1
            response.headers.add("Record-Route", value)
    if contact is not None:
        response.headers.add("Contact", f"<sip:callee@{contact.host}:{contact.port}>")
    return response


async def register(
    peer: UdpPeer, proxy_port: int, user: str, *, expires: int = 300, contact: str | None = None
) -> Response:
    """Register ``user`` at ``peer``'s address (no authentication)."""
    req = request(
        "REGISTER",
        "sip:127.0.0.1",
        peer,
        from_user=user,
        to_user=user,
        extra=(("Expires", str(expires)),),
    )
    if contact is not None:
        req.headers.set("Contact", contact)
    peer.send(req, proxy_port)
    return await peer.response(req.call_id)


# --- the real process, and sipp -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SIPP_SCENARIOS = Path(__file__).resolve().parent / "sipp"


def shipped_config_with_free_ports(sip_port: int) -> str:
    """config/gateway.yaml as shipped, with its ports moved to free ones so tests do not collide."""
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    text = text.replace("port: 2775", f"port: {free_udp_tcp_port()}").replace(
        "port: 2776", f"port: {free_udp_tcp_port()}"
    )
    return text.replace("udp_port: 5060", f"udp_port: {sip_port}").replace("tcp_port: 5060", f"tcp_port: {sip_port}")


async def ping(port: int, *, within: float = 15.0) -> None:
    """Wait until the gateway answers an OPTIONS from the trunk side."""
    peer = await UdpPeer.open(TRUNK_HOST)
    try:
        async with asyncio.timeout(within):
            while True:
                probe = request("OPTIONS", "sip:127.0.0.1", peer)
                peer.send(probe, port)
                with contextlib.suppress(TimeoutError):
                    await peer.response(probe.call_id, within=0.2)
                    return
    finally:
        peer.close()


@contextlib.asynccontextmanager
async def afgw_run(config_text: str, tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``afgw run -c FILE`` in a process of its own (uvloop, as in production), until the block ends."""
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text, encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--log-level",
        "warning",
        "run",
        "-c",
        str(path),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class SippResult:
    returncode: int
    stats: dict[str, str]
    output: str

    @property
    def successful(self) -> int:
        return int(self.stats.get("SuccessfulCall(C)", "-1"))

    @property
    def failed(self) -> int:
        return int(self.stats.get("FailedCall(C)", "-1"))


async def run_sipp(
    sipp: str, *args: str, tmp_path: Path, name: str, within: float = 120.0, cwd: Path | None = None
) -> SippResult:
    """Run sipp to completion with ``-trace_stat``; the cumulative statistics of its last line."""
    stat_file = tmp_path / f"{name}_stat.csv"
    proc = await asyncio.create_subprocess_exec(
        sipp,
        *args,
        "-nostdin",
        "-buff_size",
        str(4 << 20),
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(cwd or tmp_path),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    stats: dict[str, str] = {}
    if stat_file.exists():
        rows = [line.split(";") for line in stat_file.read_text().splitlines() if line.strip()]
        if len(rows) >= 2:
            stats = dict(zip(rows[0], rows[-1], strict=False))
    return SippResult(proc.returncode if proc.returncode is not None else -1, stats, out.decode(errors="replace"))


@contextlib.asynccontextmanager
async def sipp_uas(sipp: str, port: int, tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``sipp -sn uas`` on 127.0.0.1:port, answering every call, until the block ends."""
    proc = await asyncio.create_subprocess_exec(
        sipp,
        "-sn",
        "uas",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-nostdin",
        "-buff_size",
        str(4 << 20),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=str(tmp_path),
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def register_digest(peer: UdpPeer, proxy_port: int, user: str, password: str, *, expires: int = 300) -> Response:
    """Register ``user`` at ``peer``'s address, answering the digest challenge."""
    from protocols.sip import SipUri
    from protocols.sip.digest import authorization, parse_challenge

    aor = str(SipUri(user=user, host="127.0.0.1"))
    contact = str(SipUri(user=user, host=peer.host, port=peer.port))
    call_id = secrets.token_hex(8)

    def build(cseq: int) -> Request:
        req = request("REGISTER", "sip:127.0.0.1", peer, call_id=call_id, cseq=cseq, extra=(("Expires", str(expires)),))
        req.headers.set("From", f"<{aor}>;tag=reg")
        req.headers.set("To", f"<{aor}>")
        req.headers.set("Contact", f"<{contact}>")
        return req

    peer.send(build(1), proxy_port)
    challenge = await peer.response(call_id)
    if challenge.status != 401:
        return challenge
    retry = build(2)
    retry.headers.add(
        "Authorization",
        authorization(
            parse_challenge(challenge.headers.get("WWW-Authenticate") or ""),
            username=user,
            password=password,
            method="REGISTER",
            uri="sip:127.0.0.1",
            cnonce=secrets.token_hex(4),
        ),
    )
    peer.send(retry, proxy_port)
    return await peer.response(call_id)
