"""The capture's struct-packed frames are the very octets scapy builds for the same headers.

scapy is the reference here (an independent implementation of Ethernet, IPv4, IPv6, TCP and UDP,
checksums included); the gateway does not use it on the message path because it is about a thousand
times slower (bench/pcap_frames.py).
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from gateway.capture.frames import (
    ACK,
    FIN,
    PSH,
    SYN,
    SYN_OPTIONS,
    WINDOW,
    WINDOW_SCALE,
    Endpoint,
    tcp_frame,
    udp_frame,
)

V4 = (Endpoint.of("127.0.0.1", 2775), Endpoint.of("10.20.30.40", 41234))
V6 = (Endpoint.of("::1", 5060), Endpoint.of("2001:db8::7", 50123))
PAYLOADS = [
    b"",
    b"\x00",  # odd length: padded for the checksum, not on the wire
    b"\xff" * 3,
    b"\x00\x00\x00\x10\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x07",  # enquire_link
    b"INVITE sip:8613800000001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n",
    bytes(range(256)) * 40 + b"\x01",
]


def mac(endpoint: Endpoint) -> str:
    return ":".join(f"{b:02x}" for b in endpoint.mac)


def scapy_ip(src: Endpoint, dst: Endpoint, ident: int, *, tcp: bool) -> IP | IPv6:
    if src.is_v6:
        return IPv6(src=src.host, dst=dst.host, hlim=64)
    return IP(src=src.host, dst=dst.host, id=ident, ttl=64, flags="DF" if tcp else 0)


@pytest.mark.parametrize("ends", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_a_tcp_segment_equals_scapys(ends, payload):
    src, dst = ends
    ours = tcp_frame(src, dst, 0xFFFFFFF0, 123456789, PSH | ACK, payload, ident=4242)
    theirs = bytes(
        Ether(src=mac(src), dst=mac(dst))
        / scapy_ip(src, dst, 4242, tcp=True)
        / TCP(sport=src.port, dport=dst.port, seq=0xFFFFFFF0, ack=123456789, flags="PA", window=WINDOW)
        / payload
    )
    assert ours == theirs


@pytest.mark.parametrize("ends", [V4, V6], ids=["ipv4", "ipv6"])
def test_a_syn_carries_the_window_scale_scapy_encodes(ends):
    src, dst = ends
    ours = tcp_frame(src, dst, 7, 0, SYN, ident=1, options=SYN_OPTIONS)
    theirs = bytes(
        Ether(src=mac(src), dst=mac(dst))
        / scapy_ip(src, dst, 1, tcp=True)
        / TCP(
            sport=src.port,
            dport=dst.port,
            seq=7,
            ack=0,
            flags="S",
            window=WINDOW,
            options=[("MSS", 65495), ("NOP", None), ("WScale", WINDOW_SCALE)],
        )
    )
    assert ours == theirs
    fin = tcp_frame(dst, src, 99, 8, FIN | ACK, ident=2)
    assert Ether(fin)[TCP].flags == "FA"


@pytest.mark.parametrize("ends", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_a_udp_datagram_equals_scapys(ends, payload):
    src, dst = ends
    ours = udp_frame(src, dst, payload, ident=77)
    udp = UDP(sport=src.port, dport=dst.port)
    theirs = bytes(Ether(src=mac(src), dst=mac(dst)) / scapy_ip(src, dst, 77, tcp=False) / udp / payload)
    assert ours == theirs


def test_a_udp_checksum_that_computes_to_zero_is_sent_as_all_ones():
    # Search for a payload whose checksum computes to 0: RFC 768 sends it as 0xFFFF, as scapy does.
    src, dst = V4
    for n in range(70_000):
        payload = n.to_bytes(4, "big")
        frame = udp_frame(src, dst, payload)
        if frame[14 + 20 + 6 : 14 + 20 + 8] == b"\xff\xff":
            break
    else:
        pytest.fail("no payload with a zero checksum found")
    udp = UDP(sport=2775, dport=41234)
    theirs = bytes(Ether(src=mac(src), dst=mac(dst)) / IP(src=src.host, dst=dst.host, id=0) / udp / payload)
    assert frame == theirs


def test_host_names_are_refused_not_resolved():
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Endpoint.of("smsc.example.com", 2775)
