"""The capture file on disk: batches written by the thread, rotation by size and count, a bounded buffer."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap
from structlog.testing import capture_logs

from gateway.capture import PcapCapture
from gateway.capture.frames import PCAP_HEADER, Endpoint, udp_frame

A = Endpoint.of("127.0.0.1", 5060)
B = Endpoint.of("127.0.0.2", 5070)


def numbered(n: int) -> bytes:
    return udp_frame(B, A, f"OPTIONS sip:{n}@127.0.0.1 SIP/2.0\r\n\r\n".encode())


def numbers_in(path: Path) -> list[int]:
    return [int(bytes(p[UDP].payload).split(b"@")[0].removeprefix(b"OPTIONS sip:")) for p in rdpcap(str(path))]


async def test_files_rotate_by_size_and_the_oldest_beyond_count_is_deleted(tmp_path):
    path = tmp_path / "afgw.pcap"
    frame_octets = 16 + len(numbered(100))
    capture = PcapCapture(path, max_bytes=len(PCAP_HEADER) + 10 * frame_octets, count=3, clock=lambda: 1.0)
    capture.open()
    for n in range(100, 145):  # 45 frames: ten per file, so five files were written, three kept
        capture.add(1.0, numbered(n))
        if n % 7 == 0:
            await asyncio.sleep(0)  # several batches, not one
    await capture.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afgw.pcap", "afgw.pcap.1", "afgw.pcap.2"]
    # Newest in afgw.pcap, the one before in .1, the oldest kept in .2; each file whole on its own.
    assert numbers_in(path.with_name("afgw.pcap.2")) == list(range(120, 130))
    assert numbers_in(path.with_name("afgw.pcap.1")) == list(range(130, 140))
    assert numbers_in(path) == list(range(140, 145))
    assert all(p.stat().st_size <= capture.max_bytes for p in tmp_path.iterdir())
    assert (capture.written, capture.dropped, capture.failed) == (45, 0, 0)


async def test_one_file_is_rewritten_when_count_is_one(tmp_path):
    path = tmp_path / "afgw.pcap"
    capture = PcapCapture(path, max_bytes=len(PCAP_HEADER) + 2 * (16 + len(numbered(100))), count=1)
    capture.open()
    for n in range(100, 105):
        capture.add(1.0, numbered(n))
    await capture.close()
    assert [p.name for p in tmp_path.iterdir()] == ["afgw.pcap"]
    assert numbers_in(path) == [104]


async def test_a_full_buffer_drops_and_counts_frames_instead_of_growing(tmp_path):
    path = tmp_path / "afgw.pcap"
    frame_octets = 16 + len(numbered(100))
    capture = PcapCapture(path, buffer_bytes=5 * frame_octets + 1)
    capture.open()
    # Within one turn of the loop nothing has gone to the writer yet: the sixth frame does not fit.
    with capture_logs() as logs:
        for n in range(100, 108):
            capture.add(1.0, numbered(n))
        await capture.close()
    assert numbers_in(path) == [100, 101, 102, 103, 104]
    assert (capture.written, capture.dropped) == (5, 3)
    # Said once when the dropping starts, and with the count when it ends; not once per frame.
    said = [(e["event"], e.get("dropped")) for e in logs if e["log_level"] == "warning"]
    assert said == [("capture.buffer_full", None), ("capture.frames_dropped", 3)]


async def test_frames_keep_the_wall_clock_time_they_stand_for_and_none_is_taken_after_close(tmp_path):
    path = tmp_path / "afgw.pcap"
    capture = PcapCapture(path)
    capture.open()
    capture.add(1_765_000_000.123456, numbered(1))
    await capture.close()
    capture.add(1_765_000_001.0, numbered(2))
    data = path.read_bytes()
    assert data[:24] == PCAP_HEADER
    seconds, micros, captured, original = struct.unpack_from("<IIII", data, 24)
    assert (seconds, micros) == (1_765_000_000, 123456)
    assert captured == original == len(numbered(1))
    assert len(data) == 24 + 16 + captured


async def test_a_datagram_on_a_wildcard_socket_carries_the_address_it_was_really_sent_from(tmp_path):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("0.0.0.0", 0))
    port = transport.get_extra_info("sockname")[1]
    capture = PcapCapture(tmp_path / "afgw.pcap")
    capture.open()
    try:
        tap = capture.udp(transport)
        assert tap is not None
        tap.received(b"REGISTER", ("127.0.0.5", 5071))
        tap.sent(b"SIP/2.0 200 OK", "127.0.0.5", 5071)
    finally:
        transport.close()
        await capture.close()
    received, sent = (Ether(bytes(p)) for p in rdpcap(str(tmp_path / "afgw.pcap")))
    assert (received[IP].src, received[UDP].sport, received[IP].dst, received[UDP].dport) == (
        "127.0.0.5",
        5071,
        "127.0.0.1",
        port,
    )
    assert (sent[IP].src, sent[UDP].sport, sent[IP].dst, sent[UDP].dport) == ("127.0.0.1", port, "127.0.0.5", 5071)


async def test_a_file_that_cannot_be_written_is_said_at_open(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="Not a directory"):
        PcapCapture(blocker / "afgw.pcap").open()
