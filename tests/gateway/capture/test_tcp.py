"""A TcpFlow numbers its segments as a real TCP stack would: read back with scapy, frame by frame."""

from __future__ import annotations

import itertools

from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from gateway.capture.frames import MAX_SEGMENT, Endpoint
from gateway.capture.tcp import ACK_EVERY, TcpFlow

GATEWAY = Endpoint.of("127.0.0.1", 2775)
ESME = Endpoint.of("127.0.0.9", 40000)


def plus(seq: int, n: int) -> int:
    """Sequence numbers wrap at 2**32, and the first one is random."""
    return (seq + n) & 0xFFFFFFFF


class Frames(list[tuple[float, bytes]]):
    def __call__(self, timestamp: float, frame: bytes) -> None:
        self.append((timestamp, frame))

    def segments(self) -> list[tuple[int, str, int, int, bytes]]:
        """(source port, flags, seq, ack, payload) of each frame."""
        out = []
        for _, frame in self:
            tcp = Ether(frame)[TCP]
            out.append((tcp.sport, str(tcp.flags), tcp.seq, tcp.ack, bytes(tcp.payload)))
        return out


def test_an_accepted_connection_opens_carries_both_ways_and_closes_with_consistent_numbers():
    frames = Frames()
    flow = TcpFlow(frames, GATEWAY, ESME, opened_locally=False, clock=lambda: 1000.25)
    flow.received(b"bind")
    flow.sent(b"bound!")
    flow.close()
    [syn, syn_ack, ack, bind, bound, fin, fin_back, last] = frames.segments()
    client, server = syn[2], syn_ack[2]
    # The ESME connected: its SYN first, the gateway's SYN-ACK, the ESME's ACK.
    assert syn == (40000, "S", client, 0, b"")
    assert syn_ack == (2775, "SA", server, plus(client, 1), b"")
    assert ack == (40000, "A", plus(client, 1), plus(server, 1), b"")
    assert bind == (40000, "PA", plus(client, 1), plus(server, 1), b"bind")
    assert bound == (2775, "PA", plus(server, 1), plus(client, 5), b"bound!")
    # The gateway closed: its FIN, the ESME's FIN, and the last ACK, each FIN taking one number.
    assert fin == (2775, "FA", plus(server, 7), plus(client, 5), b"")
    assert fin_back == (40000, "FA", plus(client, 5), plus(server, 8), b"")
    assert last == (2775, "A", plus(server, 8), plus(client, 6), b"")
    assert {t for t, _ in frames} == {1000.25}


def test_a_connection_the_gateway_opens_starts_with_its_own_syn():
    frames = Frames()
    TcpFlow(frames, GATEWAY, ESME, opened_locally=True)
    assert [(sport, flags) for sport, flags, *_ in frames.segments()] == [(2775, "S"), (40000, "SA"), (2775, "A")]


def test_a_peer_that_closes_first_sends_the_first_fin():
    frames = Frames()
    flow = TcpFlow(frames, GATEWAY, ESME, opened_locally=False)
    flow.remote_finished()
    flow.close()
    flow.close()  # asyncio says so once; a second call records nothing
    closing = [(sport, flags) for sport, flags, *_ in frames.segments()[3:]]
    assert closing == [(40000, "FA"), (2775, "FA"), (40000, "A")]


def test_a_connection_lost_with_an_error_ends_with_the_peers_reset():
    frames = Frames()
    flow = TcpFlow(frames, GATEWAY, ESME, opened_locally=False)
    flow.close(error=True)
    flow.sent(b"too late")
    assert [(sport, flags) for sport, flags, *_ in frames.segments()[3:]] == [(40000, "RA")]


def test_a_large_write_is_split_into_segments_and_acknowledged_by_the_receiver():
    frames = Frames()
    flow = TcpFlow(frames, GATEWAY, ESME, opened_locally=False)
    data = bytes(range(256)) * (ACK_EVERY // 256 + 1)
    flow.sent(data)
    segments = frames.segments()[3:]
    carrying = [s for s in segments if s[4]]
    assert b"".join(s[4] for s in carrying) == data
    assert max(len(s[4]) for s in carrying) == MAX_SEGMENT
    # Each segment starts where the previous one ended.
    assert all(b[2] == plus(a[2], len(a[4])) for a, b in itertools.pairwise(carrying))
    # The ESME acknowledges everything once more than ACK_EVERY octets are outstanding.
    *_, (sport, flags, _, ack, payload) = segments
    assert (sport, flags, payload) == (40000, "A", b"")
    assert ack == plus(carrying[-1][2], len(carrying[-1][4]))
