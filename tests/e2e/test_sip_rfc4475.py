"""Every RFC 4475 torture message, sent to the running proxy over UDP from the trusted trunk side.

The vectors name foreign hosts (192.0.2.x, *.example.com ...). Before a vector goes on a socket its
header section is rewritten so that every host is 127.0.0.1 (the body is left alone, so
Content-Length still frames it): nothing leaves loopback, whatever the proxy did with the hosts.

The proxy runs with digest authentication on and the vectors' users registered by a handset that
authenticates. Each vector is followed by an OPTIONS probe to the proxy itself: once the probe is
answered, everything the vector caused has happened (one loop, one socket, processed in order), so a
vector that must be discarded is checked without waiting on a clock, and later traffic is checked
unaffected every time.
"""

from __future__ import annotations

import re

import yaml

from protocols.sip import Request, Response, parse_message
from tests.conftest import VECTORS as TEST_VECTORS
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, register_digest, request, running_proxy, sip_config

VECTORS = TEST_VECTORS / "sip/rfc4475"

FORWARD = "forward"  # reaches the registered handset
DISCARD = "discard"  # no answer, nothing forwarded (responses that match nothing of ours)

# What the running gateway does with each vector (authentication on, sent by a trusted trunk).
EXPECTED: dict[str, str | int] = {
    # 3.1.1 valid: proxied to the registered user, or handled by the gateway as the element addressed.
    "wsinv": FORWARD,  # in-dialog (To tag) for a dialog we do not know: routed by its Request-URI user
    "intmeth": FORWARD,
    "esc01": FORWARD,
    "escnull": 401,  # REGISTER: the registrar always authenticates
    "esc02": 405,  # an unknown method addressed to the gateway itself
    "lwsdisp": FORWARD,
    "longreq": FORWARD,
    "dblreq": 401,  # the REGISTER; the trailing INVITE is not part of the datagram's message
    "semiuri": FORWARD,
    "transports": FORWARD,
    "mpart01": FORWARD,  # its preloaded Route to a foreign host is dropped, never followed
    "unreason": DISCARD,
    "noreason": DISCARD,
    # 3.1.2 invalid.
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": DISCARD,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "baddate": FORWARD,  # the Date header does not matter to a proxy
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": DISCARD,
    # 3.2 transaction layer: no magic cookie, RFC 2543 matching.
    "badbranch": FORWARD,
    # 3.3 application layer.
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": 401,  # REGISTER (its isbn: To would be 404 once authenticated, see below)
    "bext01": 420,
    "invut": FORWARD,  # 415 is the UAS's business
    "regaut01": 401,  # the RFC's answer to an unknown authorization scheme
    "multi01": 400,
    "mcl01": 400,
    "bcast": DISCARD,  # a response to nobody: never sent anywhere, let alone to a broadcast address
    "zeromf": 483,
    "cparam01": 401,
    "cparam02": 401,
    "regescrt": 401,
    "sdp01": FORWARD,  # 406 is the UAS's business
    # 3.4 RFC 2543 compatibility.
    "inv2543": FORWARD,
}

# The registrar's own answers, with authentication off (so that it gets to look at the request).
REGISTRAR: dict[str, int] = {
    "escnull": 200,
    "dblreq": 200,
    "cparam01": 200,
    "cparam02": 200,
    "regescrt": 400,  # a contact carrying URI headers is refused rather than stored
    "regbadct": 400,
    "unksm2": 404,  # an isbn: address of record is nobody here
    "scalar02": 400,
}

_IPV4 = re.compile(rb"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9.])")
_DOMAIN = re.compile(rb"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9_-]+\.)+(?:com|net|org|edu)(?![A-Za-z0-9_-])")


def loopback_only(data: bytes, via_host: bytes = b"127.0.0.1") -> bytes:
    """Every host in the header section rewritten to a loopback address; the body kept byte for byte.

    Hosts in Via become ``via_host``: many vectors share a branch (z9hG4bKkdjuw) and differ only in
    their Via host, so giving each vector its own loopback sent-by keeps them distinct transactions,
    as they are with their original hosts.
    """
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = []
    name = b""
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            name = line.partition(b":")[0].strip().lower()
        host = via_host if name in (b"via", b"v") else b"127.0.0.1"
        lines.append(_DOMAIN.sub(host, _IPV4.sub(host, line)))
    return b"\r\n".join(lines) + sep + body


def vector(name: str, number: int = 0) -> bytes:
    """Vector ``name`` rewritten for loopback, its Via on 127.0.1.<number>."""
    return loopback_only((VECTORS / f"{name}.dat").read_bytes(), f"127.0.1.{number + 1}".encode())


def index() -> list[str]:
    return sorted(yaml.safe_load((VECTORS / "INDEX.yaml").read_text(encoding="utf-8")))


def request_users() -> list[str]:
    """The Request-URI users of the vectors the gateway must forward."""
    users = []
    for name, outcome in EXPECTED.items():
        if outcome == FORWARD:
            message = parse_message(loopback_only((VECTORS / f"{name}.dat").read_bytes()))
            assert isinstance(message, Request)
            assert message.uri.user
            users.append(message.uri.user)
    return sorted(set(users))


def test_the_table_covers_every_vector():
    names = index()
    assert set(EXPECTED) == set(names)


def test_the_rewrite_leaves_no_foreign_host():
    for name in index():
        head = vector(name).partition(b"\r\n\r\n")[0]
        assert not [ip for ip in _IPV4.findall(head) if not ip.startswith(b"127.")], name
        assert not _DOMAIN.findall(head), name


async def exchange(proxy, trunk: UdpPeer, handset: UdpPeer, data: bytes) -> tuple[list[Response], list[Request]]:
    """Send one vector, then a probe; what the trunk and the handset got because of the vector."""
    trunk.received.clear()
    handset.received.clear()
    trunk.send(data, proxy.udp_port)
    probe = request("OPTIONS", "sip:127.0.0.1", trunk)
    trunk.send(probe, proxy.udp_port)
    await trunk.response(probe.call_id, 200)
    answers = [m for m in trunk.received if isinstance(m, Response) and m.status != 100]
    forwarded = [m for m in handset.received if isinstance(m, Request)]
    return answers, forwarded


async def test_every_vector_against_the_running_proxy():
    names = index()
    users = request_users()
    config = sip_config(auth=True, users=tuple((u, "pw") for u in users))
    trunk = await UdpPeer.open(TRUNK_HOST)
    handset = await UdpPeer.open()
    failures = []
    try:
        async with running_proxy(config) as proxy:
            for user in users:
                assert (await register_digest(handset, proxy.udp_port, user, "pw")).status == 200, user
            for number, name in enumerate(names):
                data = vector(name, number)
                answers, forwarded = await exchange(proxy, trunk, handset, data)
                expected = EXPECTED[name]
                if expected == FORWARD:
                    got = (len(answers), len(forwarded))
                    ok = got == (0, 1) and forwarded[0].call_id == parse_message(data).call_id
                elif expected == DISCARD:
                    got = (len(answers), len(forwarded))
                    ok = got == (0, 0)
                else:
                    got = ([a.status for a in answers], len(forwarded))
                    ok = got == ([expected], 0)
                    if ok and expected != 100:
                        assert "Server" not in answers[0].headers
                if not ok:
                    failures.append((name, expected, got))
            assert proxy.stats["requests"] > len(names)
    finally:
        trunk.close()
        handset.close()
    assert not failures


async def test_register_vectors_against_the_registrar_without_authentication():
    trunk = await UdpPeer.open(TRUNK_HOST)
    failures = []
    try:
        async with running_proxy(sip_config()) as proxy:
            for number, (name, status) in enumerate(REGISTRAR.items()):
                data = vector(name, number)
                answers, _ = await exchange(proxy, trunk, trunk, data)
                if [a.status for a in answers] != [status]:
                    failures.append((name, status, [a.status for a in answers]))
            null_user = proxy.location.lookup("null-\x00-null", proxy.loop.time())
            assert sorted(b.contact.user or "" for b in null_user) == ["\x00", "\x00\x00"]
    finally:
        trunk.close()
    assert not failures
