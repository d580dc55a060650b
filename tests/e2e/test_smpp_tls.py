"""SMPP over TLS: ESMEs bind to the gateway's TLS listener, and the gateway binds to the SMSC over TLS.

Peers: smpplib over an ssl-wrapped socket, `openssl s_client`, our simulated ESME and SMSC over TLS.
The certificates are made in the test (tests/tls_certs.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions

from gateway.app import Gateway
from gateway.config import Listen
from gateway.tls import TlsConfig
from protocols.smpp.codec import encode
from protocols.smpp.pdu import BindTransmitter, SubmitSm
from simulator.esme import SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.conftest import require_peer
from tests.e2e.smpp_harness import LOCALHOST, eventually, in_thread, make_config
from tests.tls_certs import Certs, make_certs

TEXT = "【工商银行】您的验证码是 123456，五分钟内有效。"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def smsc_context(certs: Certs, server: str = "server") -> ssl.SSLContext:
    pair = getattr(certs, server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    return context


def esme_context(certs: Certs, client: str | None = "client") -> ssl.SSLContext:
    """What an ESME uses: the gateway's chain verified; smpplib wraps with no server name, so no name check."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.check_hostname = False
    if client is not None:
        pair = getattr(certs, client)
        context.load_cert_chain(pair.cert, pair.key)
    return context


def gateway_tls(certs: Certs, *, require_client_cert: bool = True) -> TlsConfig:
    return TlsConfig(
        cert_file=str(certs.server.cert),
        key_file=str(certs.server.key),
        ca_file=str(certs.ca),
        require_client_cert=require_client_cert,
    )


async def start_smsc(certs: Certs, server: str = "server") -> SimulatedSmsc:
    sim = SimulatedSmsc(system_id="afgw", password="secret")
    await sim.start(LOCALHOST, 0, tls=smsc_context(certs, server))
    return sim


async def start_gateway(certs: Certs, smsc: SimulatedSmsc, server_name: str = "smsc.test") -> Gateway:
    config = make_config(
        smsc.port,
        binds=1,
        tls_listen=Listen(LOCALHOST, 0),
        tls=gateway_tls(certs),
        smsc_peer={"tls": TlsConfig(ca_file=str(certs.ca), server_name=server_name)},
    )
    gateway = Gateway(config)
    await gateway.start()
    return gateway


@pytest.fixture
async def tls_world(certs: Certs) -> AsyncIterator[tuple[Gateway, SimulatedSmsc]]:
    smsc = await start_smsc(certs)
    gateway = await start_gateway(certs, smsc)
    assert gateway.smpp is not None
    try:
        await asyncio.wait_for(gateway.smpp.pool.up.wait(), 10)
        yield gateway, smsc
    finally:
        await gateway.stop()
        await smsc.stop()


def tls_port(gateway: Gateway) -> int:
    assert gateway.smpp is not None
    return gateway.smpp.server.tls_port


def smpplib_submit(port: int, context: ssl.SSLContext) -> int:
    """Bind and submit with smpplib over TLS; returns the submit_sm_resp status."""
    answers: list[object] = []
    client = smpplib.client.Client(LOCALHOST, port, timeout=10, ssl_context=context, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: answers.append(pdu))
    client.connect()
    try:
        client.bind_transmitter(system_id="bank", password="bankpw")
        client.send_message(
            source_addr="10690",
            destination_addr="8613800000001",
            short_message=TEXT.encode("utf-16-be"),
            data_coding=smpplib.consts.SMPP_ENCODING_ISO10646,
        )
        client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    [resp] = answers
    return int(resp.status)  # type: ignore[attr-defined]


async def test_smpplib_over_tls_reaches_the_smsc_over_tls(tls_world, certs):
    gateway, smsc = tls_world
    status = await in_thread(smpplib_submit, tls_port(gateway), esme_context(certs))
    assert status == 0
    [submit] = [p for p in smsc.received if isinstance(p, SubmitSm)]
    assert submit.short_message.decode("utf-16-be") == TEXT


async def test_the_simulated_esme_binds_over_tls(tls_world, certs):
    gateway, smsc = tls_world
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(certs.client.cert, certs.client.key)
    esme = SimulatedEsme(LOCALHOST, tls_port(gateway), "bank", "bankpw", tls=context, tls_server_name="localhost")
    await esme.bind()
    try:
        [resp] = await esme.submit("10690", "8613800000002", TEXT)
        assert resp.command_status == 0
    finally:
        await esme.unbind()
    assert any(isinstance(p, SubmitSm) and p.destination_addr == "8613800000002" for p in smsc.received)


async def test_an_untrusted_client_certificate_is_refused(tls_world, certs):
    gateway, smsc = tls_world
    for client in ("untrusted_client", None):
        # smpplib reads the gateway's refusal as a closed connection (its own ConnectionError).
        with pytest.raises((ssl.SSLError, OSError, smpplib.exceptions.ConnectionError)):
            await in_thread(smpplib_submit, tls_port(gateway), esme_context(certs, client))
    assert not [p for p in smsc.received if isinstance(p, SubmitSm)]


def run_s_client(port: int, certs: Certs, *args: str) -> subprocess.CompletedProcess[str]:
    openssl = require_peer("openssl")
    return subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"{LOCALHOST}:{port}",
            "-CAfile",
            str(certs.ca),
            "-verify_return_error",
            "-verify_ip",
            LOCALHOST,
            *args,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_openssl_s_client_handshake_and_refusals(tls_world, certs):
    gateway, _smsc = tls_world
    port = tls_port(gateway)
    ok = await in_thread(run_s_client, port, certs, "-cert", str(certs.client.cert), "-key", str(certs.client.key))
    assert ok.returncode == 0, ok.stderr
    assert "unexpected eof" not in ok.stderr
    assert "alert" not in ok.stderr
    assert "Verify return code: 0 (ok)" in ok.stdout
    assert "Cipher is (NONE)" not in ok.stdout
    assert "subject=CN = server" in ok.stdout or "subject=CN=server" in ok.stdout
    # TLS 1.1 is refused whoever asks.
    old = await in_thread(
        run_s_client, port, certs, "-tls1_1", "-cert", str(certs.client.cert), "-key", str(certs.client.key)
    )
    assert old.returncode != 0
    assert "no peer certificate available" in old.stdout
    # A client certificate from another authority, or none: the gateway ends the handshake.
    for args in (("-cert", str(certs.untrusted_client.cert), "-key", str(certs.untrusted_client.key)), ()):
        refused = await in_thread(run_s_client, port, certs, *args, "-tls1_2")
        assert refused.returncode != 0
        # The gateway closes the connection on the certificate: s_client reads an end, or an alert.
        assert "unexpected eof" in refused.stderr or "alert" in refused.stderr, refused.stderr


async def test_plain_smpp_on_the_tls_port_is_dropped_and_nothing_breaks(tls_world, certs):
    gateway, _smsc = tls_world
    port = tls_port(gateway)
    bind = BindTransmitter(system_id="bank", password="bankpw")

    def plain() -> bytes:
        with socket.create_connection((LOCALHOST, port), timeout=10) as sock:
            sock.sendall(encode(bind, 1))
            try:
                return sock.recv(4096)
            except ConnectionResetError:
                return b""

    answer = await in_thread(plain)
    assert not answer.startswith(b"\x00\x00\x00")
    assert b"afgw" not in answer
    # The listener still serves TLS, and the plain listener is untouched.
    assert await in_thread(smpplib_submit, port, esme_context(certs)) == 0


@pytest.mark.parametrize("case", ["wrong name", "unknown authority"])
async def test_an_smsc_with_a_bad_certificate_is_never_bound(certs, case):
    # The SMSC counts handshakes by the name the gateway asks for (SNI): a second one means the first
    # failed, since the gateway tries again only after a failed connection.
    asked: list[str | None] = []
    context = smsc_context(certs, "wrong_name" if case == "wrong name" else "server")
    context.sni_callback = lambda _sock, name, _ctx: asked.append(name)
    smsc = SimulatedSmsc(system_id="afgw", password="secret")
    await smsc.start(LOCALHOST, 0, tls=context)
    if case == "wrong name":
        gateway = await start_gateway(certs, smsc)
    else:
        # The SMSC's certificate is genuine, but from an authority the gateway was not told to trust.
        config = make_config(
            smsc.port,
            binds=1,
            smsc_peer={"tls": TlsConfig(ca_file=str(certs.untrusted_ca), server_name="smsc.test")},
        )
        gateway = Gateway(config)
        await gateway.start()
    try:
        await eventually(lambda: len(asked) >= 2)
        assert gateway.smpp is not None
        assert not gateway.smpp.pool.up.is_set()
    finally:
        await gateway.stop()
        await smsc.stop()
    assert set(asked) == {"smsc.test"}
    # Failed closed: the SMSC never saw a bind, in the clear or otherwise.
    assert not smsc.received
