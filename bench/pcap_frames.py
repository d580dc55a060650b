"""Building capture frames: scapy against the gateway's struct packing, side by side in one run.

The same frames (a submit_sm in a TCP segment over IPv4, an INVITE in a UDP datagram over IPv6, with
their checksums) are built both ways, and tests/gateway/capture/test_frames.py checks that the octets
are equal; this prints how long each way takes per frame and the ratio.

    python bench/pcap_frames.py [--frames 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from gateway.capture.frames import ACK, PSH, WINDOW, Endpoint, tcp_frame, udp_frame

SUBMIT_SM = bytes.fromhex("000000a400000004000000000000002a") + bytes(range(148))
INVITE = (
    b"INVITE sip:8613800000001@[::1]:5070 SIP/2.0\r\n"
    + b"Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK-bench;rport\r\n" * 3
    + b"Content-Length: 0\r\n\r\n"
) * 4


def per_frame(build: Callable[[int], bytes], frames: int) -> float:
    """Microseconds per frame, best of three runs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(frames):
            build(i)
        best = min(best, (time.perf_counter() - start) / frames * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()

    started = time.perf_counter()
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    scapy_import = time.perf_counter() - started

    gw, esme = Endpoint.of("127.0.0.1", 2775), Endpoint.of("127.0.0.2", 40000)
    proxy, handset = Endpoint.of("::1", 5060), Endpoint.of("::1", 5070)
    mac = {e: ":".join(f"{b:02x}" for b in e.mac) for e in (gw, esme, proxy, handset)}

    def scapy_tcp(i: int) -> bytes:
        return bytes(
            Ether(src=mac[gw], dst=mac[esme])
            / IP(src=gw.host, dst=esme.host, id=i & 0xFFFF, flags="DF")
            / TCP(sport=gw.port, dport=esme.port, seq=i, ack=7, flags="PA", window=WINDOW)
            / SUBMIT_SM
        )

    def struct_tcp(i: int) -> bytes:
        return tcp_frame(gw, esme, i, 7, PSH | ACK, SUBMIT_SM, ident=i & 0xFFFF)

    def scapy_udp(i: int) -> bytes:
        return bytes(
            Ether(src=mac[proxy], dst=mac[handset])
            / IPv6(src=proxy.host, dst=handset.host)
            / UDP(sport=proxy.port, dport=handset.port)
            / INVITE
        )

    def struct_udp(i: int) -> bytes:
        return udp_frame(proxy, handset, INVITE)

    if scapy_tcp(1) != struct_tcp(1) or scapy_udp(1) != struct_udp(1):
        raise SystemExit("scapy and struct build different frames")
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}; importing scapy took {scapy_import:.2f} s")
    print(f"{'frame':<44}{'scapy us':>10}{'struct us':>11}{'ratio':>9}")
    for name, slow, fast, n in (
        (f"IPv4 TCP, submit_sm ({len(SUBMIT_SM)} octets)", scapy_tcp, struct_tcp, args.frames),
        (f"IPv6 UDP, INVITE ({len(INVITE)} octets)", scapy_udp, struct_udp, args.frames),
    ):
        s, f = per_frame(slow, n // 10 or 1), per_frame(fast, n)
        print(f"{name:<44}{s:>10.1f}{f:>11.2f}{s / f:>8.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
