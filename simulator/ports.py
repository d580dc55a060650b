"""Free loopback ports for simulated peers, benchmarks and tests."""

from __future__ import annotations

import socket


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (a SIP listener takes both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
