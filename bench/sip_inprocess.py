"""CPU time the gateway's SIP proxy spends per call, in process, with no socket between it and its peers.

The same call as bench/sip_cps.py's sipp pair (INVITE, 100, 180, 200, ACK, BYE, 200), from a trusted
trunk to a registered handset, fed as bytes into the UDP endpoint and answered from the bytes the proxy
sends, which are kept rather than written to a socket. What it measures is the proxy's own work per call
(parsing, transactions, routing, the STIR strip checks, call inspection, serialising), free of sipp's
cost and of the other processes on the box: on a shared machine the loopback sweep's ceilings move
with the load, this figure much less (process CPU time, the best of several rounds).

The garbage collector is set as ``afgw run`` sets it (gateway.app.tune_gc: start-up objects frozen,
collections less often); ``--default-gc`` keeps CPython's defaults instead.

    python bench/sip_inprocess.py [--calls 3000] [--rounds 5] [--log-level info] [--default-gc]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.app import tune_gc  # noqa: E402
from gateway.logs import configure  # noqa: E402
from gateway.sip.proxy import SipProxy  # noqa: E402
from gateway.sip.transport import Flow  # noqa: E402
from protocols.sip import Request, Response, create_response, parse_message  # noqa: E402
from tests.e2e.sip_harness import TRUNK_HOST, sip_config  # noqa: E402

CALLEE = "8613800000001"
TRUNK = Flow("UDP", TRUNK_HOST, 5080)
HANDSET = Flow("UDP", "127.0.0.1", 5070)
SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(n: int, port: int) -> bytes:
    return (
        f"INVITE sip:{CALLEE}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {TRUNK_HOST}:5080;branch=z9hG4bK-{n}-1-0\r\n"
        f"From: sipp <sip:sipp@{TRUNK_HOST}:5080>;tag={n}SIPpTag001\r\n"
        f"To: <sip:{CALLEE}@127.0.0.1:{port}>\r\n"
        f"Call-ID: {n}-bench@{TRUNK_HOST}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: sip:sipp@{TRUNK_HOST}:5080\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
    ).encode()


def in_dialog(method: str, n: int, cseq: int, ok: Response, branch: str) -> bytes:
    """The caller's ACK or BYE, routed by the 200's Record-Route and sent to its Contact (RFC 3261 12.2)."""
    routes = "".join(f"Route: {r}\r\n" for r in ok.headers.get_all("Record-Route"))
    contact = ok.headers.get("Contact") or ""
    target = contact.strip("<>")
    return (
        f"{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK_HOST}:5080;branch={branch}\r\n{routes}"
        f"From: sipp <sip:sipp@{TRUNK_HOST}:5080>;tag={n}SIPpTag001\r\nTo: {ok.headers.get('To')}\r\n"
        f"Call-ID: {n}-bench@{TRUNK_HOST}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: sip:sipp@{TRUNK_HOST}:5080\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def handset_answer(request: Request, status: int) -> bytes:
    response = create_response(request, status, to_tag=f"uas{request.call_id.split('-')[0]}" if status > 100 else None)
    if 100 < status < 300:
        for value in request.headers.get_all("Record-Route"):
            response.headers.add("Record-Route", value)
        response.headers.add("Contact", f"<sip:{CALLEE}@{HANDSET.host}:{HANDSET.port}>")
    return response.serialise()


class Wire:
    """Stands for the sockets: what the proxy sends is kept, by destination."""

    def __init__(self) -> None:
        self.sent: list[tuple[Flow, bytes]] = []

    def send(self, flow: Flow, data: bytes, *_: Any, **__: Any) -> None:
        self.sent.append((flow, data))

    def take(self, host: str, port: int) -> list[bytes]:
        mine = [d for f, d in self.sent if f.host == host and f.port == port]
        self.sent = [(f, d) for f, d in self.sent if not (f.host == host and f.port == port)]
        return mine


async def calls(proxy: SipProxy, wire: Wire, count: int, start: int) -> float:
    udp = proxy.transports.udp
    port = proxy.udp_port
    spent = 0.0

    def feed(data: bytes, addr: tuple[str, int]) -> None:
        # Only the proxy's work is counted, not this file's building and reading of messages.
        nonlocal spent
        began = time.process_time()
        udp.datagram_received(data, addr)
        spent += time.process_time() - began

    for n in range(start, start + count):
        feed(invite(n, port), (TRUNK.host, TRUNK.port))
        (forwarded,) = wire.take(HANDSET.host, HANDSET.port)
        out = parse_message(forwarded)
        assert isinstance(out, Request)
        for status in (180, 200):
            feed(handset_answer(out, status), (HANDSET.host, HANDSET.port))
        upstream = [parse_message(d) for d in wire.take(TRUNK.host, TRUNK.port)]
        ok = upstream[-1]
        assert isinstance(ok, Response), upstream
        assert ok.status == 200, upstream
        feed(in_dialog("ACK", n, 1, ok, f"z9hG4bK-{n}-1-2"), (TRUNK.host, TRUNK.port))
        feed(in_dialog("BYE", n, 2, ok, f"z9hG4bK-{n}-2-0"), (TRUNK.host, TRUNK.port))
        sent = wire.take(HANDSET.host, HANDSET.port)
        bye = parse_message(sent[-1])
        assert isinstance(bye, Request), sent
        assert bye.method == "BYE", sent
        feed(handset_answer(bye, 200), (HANDSET.host, HANDSET.port))
        (bye_ok,) = wire.take(TRUNK.host, TRUNK.port)
        assert bye_ok.startswith(b"SIP/2.0 200"), bye_ok
    return spent


async def main(args: argparse.Namespace) -> int:
    configure(level=args.log_level)
    proxy = SipProxy(sip_config(max_transactions=10**6, max_dialogs=10**6), loop=asyncio.get_running_loop())
    await proxy.start()
    if not args.default_gc:
        tune_gc()  # as afgw run does once the gateway has started
    wire = Wire()
    proxy.transports.send = wire.send  # type: ignore[method-assign]
    try:
        register = (
            f"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg\r\n"
            f"From: <sip:{CALLEE}@127.0.0.1>;tag=r\r\nTo: <sip:{CALLEE}@127.0.0.1>\r\nCall-ID: reg\r\n"
            f"CSeq: 1 REGISTER\r\nContact: <sip:{CALLEE}@127.0.0.1:5070>\r\nExpires: 3600\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        proxy.transports.udp.datagram_received(register, (HANDSET.host, HANDSET.port))
        assert wire.take(HANDSET.host, HANDSET.port)[-1].startswith(b"SIP/2.0 200")
        await calls(proxy, wire, 200, 0)  # warm up
        times = []
        for r in range(args.rounds):
            times.append(await calls(proxy, wire, args.calls, (r + 1) * 10**6))
            await asyncio.sleep(0)
        per_call = min(times) / args.calls
        print(
            f"gateway SIP proxy, in process: {per_call * 1e6:.0f} µs CPU per call (INVITE..BYE 200, 7 messages "
            f"in, 7 out), best of {args.rounds} x {args.calls} calls: {1 / per_call:.0f} calls/s of one core"
            f"{' (CPython default GC)' if args.default_gc else ''}"
        )
    finally:
        await proxy.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-level", default="info", help="the gateway's log level (info in production)")
    parser.add_argument("--default-gc", action="store_true", help="CPython's collector settings, not afgw run's")
    sys.exit(asyncio.run(main(parser.parse_args())))
