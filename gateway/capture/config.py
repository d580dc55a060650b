"""What to capture and where: the ``capture`` section of gateway.yaml, or ``--pcap`` on the command line."""

from __future__ import annotations

from dataclasses import dataclass

#: tcpdump's unit for -C: a million octets.
MEGABYTE = 1_000_000
#: The smallest file size that makes sense: a few frames (a thousand octets).
MIN_PCAP_SIZE = 0.001


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    #: The capture file; rotated files are ``<pcap>.1`` (the newest) to ``<pcap>.<count - 1>``.
    pcap: str
    #: Megabytes (millions of octets) a file may reach before the next one is started.
    pcap_size: float = 100.0
    #: Files kept, the one being written included: the capture takes at most size times count.
    pcap_count: int = 10

    @property
    def max_bytes(self) -> int:
        return int(self.pcap_size * MEGABYTE)
