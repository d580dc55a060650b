"""Ethernet II / IPv4 or IPv6 / TCP or UDP frames and the pcap file format, packed with ``struct``.

Every frame carries correct IPv4 header, TCP and UDP checksums, so that Wireshark with checksum
validation turned on flags none of them. A checksum is the ones'-complement sum of 16-bit words,
which equals the whole byte string read as one big-endian integer modulo 0xFFFF (2**16 = 1 modulo
0xFFFF): ``int.from_bytes`` and one ``%`` do in C what a loop over words would do in Python.

scapy builds the same bytes (tests compare them frame by frame) but about a thousand times slower,
too slow for the message path: ``bench/pcap_frames.py`` measures both.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

#: pcap (not pcapng) with microsecond timestamps, Ethernet link type.
PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
#: Large enough for any frame here: a UDP datagram of 65,507 octets plus its headers.
SNAPLEN = 262_144
PCAP_HEADER = struct.Struct("<IHHiIII").pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
RECORD_HEADER = struct.Struct("<IIII")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

#: Octets of payload in one synthesised TCP segment: an IPv4 packet is at most 65,535 octets.
MAX_SEGMENT = 65_000
#: The window every segment advertises, scaled by 2**WINDOW_SCALE (negotiated in the SYNs): about 8 MB,
#: so that Wireshark never sees a receive window filled by data the other side has not acknowledged.
WINDOW = 65_535
WINDOW_SCALE = 7
#: MSS (kind 2) 65,495, NOP, window scale (kind 3): what Linux offers on loopback, minus SACK and timestamps.
SYN_OPTIONS = struct.pack("!BBHBBBB", 2, 4, 65_495, 1, 3, 3, WINDOW_SCALE)

_ETHERNET = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ETHERTYPE_IPV4, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_TCP_PROTO, _UDP_PROTO = 6, 17
_TTL = 64
_DONT_FRAGMENT = 0x4000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a flow: its address as the socket reported it, packed once for every frame."""

    host: str
    port: int
    packed: bytes
    #: A locally administered MAC made of the address's last four octets: one per host, stable.
    mac: bytes

    @property
    def is_v6(self) -> bool:
        return len(self.packed) == 16

    @classmethod
    def of(cls, host: str, port: int) -> Endpoint:
        """Raises ValueError when ``host`` is not an IP address (the gateway never resolves names)."""
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a scoped IPv6 address keeps its scope apart
        packed = address.packed
        return cls(str(address), port, packed, b"\x02\x00" + packed[-4:])


def _fold(total: int) -> int:
    """The checksum field for a ones'-complement sum ``total`` (unfolded, non-zero)."""
    remainder = total % 0xFFFF
    # A remainder of 0 is a folded sum of 0xFFFF (non-zero data never sums to +0): its complement is 0.
    return 0xFFFF - remainder if remainder else 0


def _payload_sum(payload: bytes) -> int:
    value = int.from_bytes(payload, "big")
    # An odd length is padded with one zero octet, which shifts the value by eight bits.
    return value << 8 if len(payload) & 1 else value


def _ip_header(src: Endpoint, dst: Endpoint, proto: int, length: int, ident: int, flags: int) -> tuple[bytes, int]:
    """The IP header and the pseudo-header's sum for the transport checksum."""
    if src.is_v6:
        header = _IPV6.pack(0x60000000, length, proto, _TTL, src.packed, dst.packed)
        pseudo = int.from_bytes(src.packed + dst.packed, "big") + length + proto
        return header, pseudo
    total_length = 20 + length
    unsummed = _IPV4.pack(0x45, 0, total_length, ident, flags, _TTL, proto, 0, src.packed, dst.packed)
    checksum = _fold(int.from_bytes(unsummed, "big"))
    header = _IPV4.pack(0x45, 0, total_length, ident, flags, _TTL, proto, checksum, src.packed, dst.packed)
    pseudo = int.from_bytes(src.packed + dst.packed, "big") + length + proto
    return header, pseudo


def tcp_frame(
    src: Endpoint,
    dst: Endpoint,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    *,
    ident: int = 0,
    options: bytes = b"",
) -> bytes:
    """One TCP segment from ``src`` to ``dst`` in an Ethernet frame; ``options`` a multiple of 4 octets."""
    header_length = 20 + len(options)
    length = header_length + len(payload)
    ip_header, pseudo = _ip_header(src, dst, _TCP_PROTO, length, ident, _DONT_FRAGMENT)
    offset = (header_length // 4) << 4
    unsummed = _TCP.pack(src.port, dst.port, seq, ack, offset, flags, WINDOW, 0, 0) + options
    checksum = _fold(pseudo + int.from_bytes(unsummed, "big") + _payload_sum(payload))
    tcp_header = _TCP.pack(src.port, dst.port, seq, ack, offset, flags, WINDOW, checksum, 0) + options
    ethertype = _ETHERTYPE_IPV6 if src.is_v6 else _ETHERTYPE_IPV4
    return b"".join((_ETHERNET.pack(dst.mac, src.mac, ethertype), ip_header, tcp_header, payload))


def udp_frame(src: Endpoint, dst: Endpoint, payload: bytes, *, ident: int = 0) -> bytes:
    """One UDP datagram from ``src`` to ``dst`` in an Ethernet frame."""
    length = 8 + len(payload)
    ip_header, pseudo = _ip_header(src, dst, _UDP_PROTO, length, ident, 0)
    checksum = _fold(pseudo + int.from_bytes(_UDP.pack(src.port, dst.port, length, 0), "big") + _payload_sum(payload))
    # RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
    udp_header = _UDP.pack(src.port, dst.port, length, checksum or 0xFFFF)
    ethertype = _ETHERTYPE_IPV6 if src.is_v6 else _ETHERTYPE_IPV4
    return b"".join((_ETHERNET.pack(dst.mac, src.mac, ethertype), ip_header, udp_header, payload))


def record(timestamp: float, frame: bytes) -> bytes:
    """The pcap record header for ``frame`` captured at ``timestamp`` (seconds since the epoch)."""
    seconds = int(timestamp)
    micros = min(int((timestamp - seconds) * 1_000_000), 999_999)
    return RECORD_HEADER.pack(seconds, micros, len(frame), len(frame))


def is_unspecified(host: str) -> bool:
    """0.0.0.0 or :: (a wildcard bind), which no packet carries as its address."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def route_source(peer_host: str) -> str | None:
    """The local address the kernel would send from to reach ``peer_host`` (no packet is sent:
    connecting a UDP socket only picks the route)."""
    family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((peer_host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None
