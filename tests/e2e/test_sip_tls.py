"""SIP over TLS (RFC 3261 26.2): a handset and a trunk on TLS connections (Python's ssl, which is
OpenSSL), `openssl s_client` for the handshake and the client-certificate check. Certificates are made
in the test. (Debian's sipp is built without TLS: `-t l1` says so.)"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import SipListen
from gateway.sip.proxy import SipProxy
from gateway.tls import TlsConfig
from protocols.sip import Request, Response, StreamParser
from tests.conftest import require_peer
from tests.e2e.sip_harness import TRUNK_HOST, running_proxy, sip_config
from tests.e2e.smpp_harness import in_thread
from tests.e2e.softphones import softphone
from tests.tls_certs import Certs, make_certs

ROOT = Path(__file__).resolve().parents[2]
HANDSET = "8613800000001"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
async def proxy(certs: Certs) -> AsyncIterator[SipProxy]:
    tls = TlsConfig(
        cert_file=str(certs.server.cert),
        key_file=str(certs.server.key),
        ca_file=str(certs.ca),
        require_client_cert=True,
    )
    config = sip_config(listen=SipListen("127.0.0.1", 0, 0, tls_port=0), tls=tls)
    async with running_proxy(config) as running:
        yield running


class TlsPeer:
    """A SIP endpoint on one TLS connection to the gateway (Python's ssl, OpenSSL underneath), writing
    its messages by hand and reading what arrives with a stream parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = StreamParser()
        host, port = writer.get_extra_info("sockname")[:2]
        self.address = f"{host}:{port}"

    @classmethod
    async def connect(cls, port: int, certs: Certs, source: str = "127.0.0.1", cert: str = "client") -> TlsPeer:
        context = ssl.create_default_context(cafile=str(certs.ca))
        pair = getattr(certs, cert)
        context.load_cert_chain(pair.cert, pair.key)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1", local_addr=(source, 0)
        )
        return cls(reader, writer)

    def send(self, text: str) -> None:
        head, _, body = text.partition("\n\n")
        lines = [line.strip() for line in head.strip().splitlines()]
        lines.append(f"Content-Length: {len(body.encode())}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n" + body).encode())

    async def next(self, within: float = 10.0) -> Request | Response:
        while True:
            message = self.parser.next_message()
            if message is not None:
                return message
            data = await asyncio.wait_for(self.reader.read(65536), within)
            assert data, "the gateway closed the connection"
            self.parser.receive_data(data)

    async def final(self) -> Response:
        """The next final response (provisional ones are read past)."""
        while True:
            message = await self.next()
            if isinstance(message, Response) and message.status >= 200:
                return message

    def close(self) -> None:
        self.writer.close()


def reply(request: Request, status: int, reason: str, contact: str = "") -> str:
    copied = [f"{name}: {value}" for name, value in request.headers if name in ("Via", "Record-Route")]
    to = request.headers.get("To") or ""
    lines = [
        f"SIP/2.0 {status} {reason}",
        *copied,
        f"From: {request.headers.get('From')}",
        f"To: {to if ';tag=' in to else to + ';tag=handset'}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('CSeq')}",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    return "\n".join(lines) + "\n\n"


async def test_a_handset_registered_over_tls_is_called_on_its_connection(proxy, certs):
    port = proxy.tls_port
    handset = await TlsPeer.connect(port, certs)
    trunk = await TlsPeer.connect(port, certs, source=TRUNK_HOST)
    try:
        contact = f"<sips:{HANDSET}@{handset.address}>"
        handset.send(
            f"""REGISTER sips:127.0.0.1:{port} SIP/2.0
            Via: SIP/2.0/TLS {handset.address};branch=z9hG4bKreg1
            From: <sips:{HANDSET}@127.0.0.1>;tag=r1
            To: <sips:{HANDSET}@127.0.0.1>
            Call-ID: reg-tls
            CSeq: 1 REGISTER
            Contact: {contact}
            Expires: 600
            Max-Forwards: 70

"""
        )
        registered = await handset.final()
        assert registered.status == 200
        [binding] = proxy.location.lookup(HANDSET, asyncio.get_running_loop().time())
        assert binding.flow.transport == "TLS"

        trunk.send(
            f"""INVITE sip:{HANDSET}@127.0.0.1:{port} SIP/2.0
            Via: SIP/2.0/TLS {trunk.address};branch=z9hG4bKinv1
            From: <sip:02150000000@{TRUNK_HOST}>;tag=t1
            To: <sip:{HANDSET}@127.0.0.1>
            Call-ID: call-tls
            CSeq: 1 INVITE
            Contact: <sips:02150000000@{trunk.address}>
            Max-Forwards: 70

"""
        )
        invite = await handset.next()
        assert isinstance(invite, Request)
        assert invite.method == "INVITE"
        # The gateway's own Via and Record-Route say TLS: the dialog stays on TLS both ways.
        assert invite.headers.get_all("Via")[0].startswith(f"SIP/2.0/TLS 127.0.0.1:{port};")
        record_routes = invite.headers.get_all("Record-Route")
        assert record_routes == [f"<sip:127.0.0.1:{port};transport=tls;lr>"]
        handset.send(reply(invite, 200, "OK", contact))
        answer = await trunk.final()
        assert answer.status == 200
        assert answer.headers.get_all("Record-Route") == record_routes

        route = record_routes[0]
        for method, cseq, branch in (("ACK", 1, "z9hG4bKack1"), ("BYE", 2, "z9hG4bKbye1")):
            trunk.send(
                f"""{method} sips:{HANDSET}@{handset.address} SIP/2.0
                Via: SIP/2.0/TLS {trunk.address};branch={branch}
                Route: {route}
                From: <sip:02150000000@{TRUNK_HOST}>;tag=t1
                To: {answer.headers.get("To")}
                Call-ID: call-tls
                CSeq: {cseq} {method}
                Max-Forwards: 70

"""
            )
            arrived = await handset.next()
            assert isinstance(arrived, Request)
            assert arrived.method == method
        handset.send(reply(arrived, 200, "OK"))
        bye_answer = await trunk.final()
        assert bye_answer.status == 200
        assert bye_answer.headers.get("CSeq") == "2 BYE"
    finally:
        handset.close()
        trunk.close()


def s_client(port: int, certs: Certs, *args: str) -> subprocess.CompletedProcess[str]:
    openssl = require_peer("openssl")
    return subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            str(certs.ca),
            "-verify_return_error",
            *list(args),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_trunk_client_certificates_are_checked(proxy, certs):
    port = proxy.tls_port
    ok = await in_thread(s_client, port, certs, "-cert", str(certs.client.cert), "-key", str(certs.client.key))
    assert ok.returncode == 0, ok.stderr
    assert "Verify return code: 0 (ok)" in ok.stdout
    assert "unexpected eof" not in ok.stderr
    for args in (("-cert", str(certs.untrusted_client.cert), "-key", str(certs.untrusted_client.key)), ()):
        refused = await in_thread(s_client, port, certs, *args, "-tls1_2")
        assert refused.returncode != 0
        assert "unexpected eof" in refused.stderr or "alert" in refused.stderr, refused.stderr


async def test_plain_sip_on_the_tls_port_gets_no_answer_and_tls_still_works(proxy, certs, tmp_path):
    options = (
        f"OPTIONS sip:127.0.0.1:{proxy.tls_port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKplain\r\n"
        "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: plain\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()

    def plain() -> bytes:
        with socket.create_connection(("127.0.0.1", proxy.tls_port), timeout=10) as sock:
            sock.sendall(options)
            try:
                return sock.recv(4096)
            except ConnectionResetError:
                return b""

    answer = await in_thread(plain)
    assert b"SIP/2.0" not in answer
    ok = await in_thread(
        s_client, proxy.tls_port, certs, "-cert", str(certs.client.cert), "-key", str(certs.client.key)
    )
    assert ok.returncode == 0, ok.stderr


async def test_two_baresip_handsets_call_each_other_over_tls(certs, tmp_path):
    """baresip, a real softphone, registers over TLS with its client certificate, verifies the
    gateway's; one calls the other, and every message of the call crosses TLS connections."""
    require_peer("baresip")
    tls = TlsConfig(
        cert_file=str(certs.server.cert),
        key_file=str(certs.server.key),
        ca_file=str(certs.ca),
        require_client_cert=True,
    )
    bundle = tmp_path / "client-bundle.pem"
    bundle.write_text(certs.client.cert.read_text() + certs.client.key.read_text())
    config = sip_config(listen=SipListen("127.0.0.1", 0, 0, tls_port=0), tls=tls)
    async with running_proxy(config) as proxy:
        for user in ("alice", "bob"):
            home = tmp_path / user
            home.mkdir()
            (home / "config.extra").write_text(f"sip_cafile {certs.ca}\nsip_certificate {bundle}\n")
        async with (
            softphone("baresip", "alice", tmp_path / "alice", proxy.tls_port, "tls") as caller,
            softphone("baresip", "bob", tmp_path / "bob", proxy.tls_port, "tls") as callee,
        ):
            loop = asyncio.get_running_loop()
            for user in ("alice", "bob"):
                async with asyncio.timeout(15):
                    while not proxy.location.lookup(user, loop.time()):  # noqa: ASYNC110 (no event to await)
                        await asyncio.sleep(0.05)
                [binding] = proxy.location.lookup(user, loop.time())
                assert binding.flow.transport == "TLS"
            await caller.dial("sip:bob@127.0.0.1")
            await callee.connected()
            await caller.connected()
            await caller.hang_up()
            await callee.ended()
            await caller.ended()


@pytest.mark.parametrize(
    ("source", "cert", "is_trunk"),
    [
        ("127.0.0.1", "trunk", True),  # the certificate names the trunk: its address does not matter
        (TRUNK_HOST, "client", False),  # a trusted address with another certificate is not the trunk
        ("127.0.0.1", "client", False),
    ],
)
async def test_a_trunk_is_known_by_its_client_certificate(certs, source, cert, is_trunk):
    tls = TlsConfig(
        cert_file=str(certs.server.cert),
        key_file=str(certs.server.key),
        ca_file=str(certs.ca),
        require_client_cert=True,
    )
    config = sip_config(
        auth=True,
        users=((HANDSET, "pw"),),
        listen=SipListen("127.0.0.1", 0, 0, tls_port=0),
        tls=tls,
        tls_trunk_names=frozenset({"trunk.test"}),
    )
    async with running_proxy(config) as proxy:
        peer = await TlsPeer.connect(proxy.tls_port, certs, source=source, cert=cert)
        try:
            peer.send(
                f"""INVITE sip:{HANDSET}@127.0.0.1:{proxy.tls_port} SIP/2.0
                Via: SIP/2.0/TLS {peer.address};branch=z9hG4bKtrunk1
                From: <sip:02150000000@{source}>;tag=t1
                To: <sip:{HANDSET}@127.0.0.1>
                Call-ID: trunk-{cert}-{source}
                CSeq: 1 INVITE
                Contact: <sips:02150000000@{peer.address}>
                Max-Forwards: 70

"""
            )
            answer = await peer.final()
        finally:
            peer.close()
    # A trunk's call goes on to the (unregistered) handset; anyone else is asked to authenticate first.
    assert (answer.status != 407) is is_trunk, answer.status
    if is_trunk:
        assert answer.status == 480


async def test_a_handset_whose_tls_connection_is_gone_is_reached_over_tls_where_it_listens(proxy, certs):
    """The gateway dials the handset's registered sips: Contact over TLS, verifying its certificate:
    what registered over TLS is never called in the clear."""
    arrived: asyncio.Queue[bytes] = asyncio.Queue()

    async def handset_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.put_nowait(await reader.read(65536))
        writer.close()

    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(certs.server.cert, certs.server.key)
    listener = await asyncio.start_server(handset_listener, "127.0.0.1", 0, ssl=server_tls)
    listening = listener.sockets[0].getsockname()[1]
    port = proxy.tls_port
    handset = await TlsPeer.connect(port, certs)
    try:
        handset.send(
            f"""REGISTER sips:127.0.0.1:{port} SIP/2.0
            Via: SIP/2.0/TLS {handset.address};branch=z9hG4bKreg2
            From: <sips:{HANDSET}@127.0.0.1>;tag=r2
            To: <sips:{HANDSET}@127.0.0.1>
            Call-ID: reg-tls-2
            CSeq: 1 REGISTER
            Contact: <sips:{HANDSET}@127.0.0.1:{listening}>
            Expires: 600
            Max-Forwards: 70

"""
        )
        assert (await handset.final()).status == 200
        handset.close()
        tls = proxy.transports.tls
        assert tls is not None
        host, handset_port = handset.address.rsplit(":", 1)
        async with asyncio.timeout(10):
            while tls.has(host, int(handset_port)):  # noqa: ASYNC110 (no event for a closed connection)
                await asyncio.sleep(0.01)
        trunk = await TlsPeer.connect(port, certs, source=TRUNK_HOST)
        try:
            trunk.send(
                f"""INVITE sip:{HANDSET}@127.0.0.1:{port} SIP/2.0
                Via: SIP/2.0/TLS {trunk.address};branch=z9hG4bKinv2
                From: <sip:02150000000@{TRUNK_HOST}>;tag=t2
                To: <sip:{HANDSET}@127.0.0.1>
                Call-ID: call-tls-2
                CSeq: 1 INVITE
                Contact: <sips:02150000000@{trunk.address}>
                Max-Forwards: 70

"""
            )
            data = await asyncio.wait_for(arrived.get(), 10)
        finally:
            trunk.close()
    finally:
        listener.close()
    assert data.startswith(f"INVITE sips:{HANDSET}@127.0.0.1:{listening} SIP/2.0".encode())
    assert b"Call-ID: call-tls-2" in data
