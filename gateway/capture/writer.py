"""The capture file: frames buffered on the event loop, written by a thread, rotated by size and count.

The transports hand over frames as they happen (``TcpFlow``, ``UdpTap``); building one costs a few
microseconds of struct packing. Frames wait in a list on the loop and go to the writer thread as one
batch every ``flush_interval`` seconds (sooner when ``batch_bytes`` have gathered), so the loop never
waits for the disk. What waits, on the loop and in the thread's queue together, is bounded by
``buffer_bytes``: past it a frame is dropped and counted (``dropped``), never queued without bound.

Files are classic pcap, each one readable on its own: ``path`` is written until the next frame would
take it past ``max_bytes``; it then becomes ``path.1`` (``path.1`` becomes ``path.2``, and so on), the
oldest beyond ``count`` files in all is deleted, and a new ``path`` starts with its own header.
A write that fails (a full disk) is counted in ``failed`` and logged once; the gateway carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.capture.config import CaptureConfig
from gateway.capture.frames import PCAP_HEADER, Endpoint, is_unspecified, record, route_source, udp_frame
from gateway.capture.tcp import TcpFlow
from gateway.logs import get_logger

log = get_logger("afgw.capture")

#: Endpoints remembered for UDP peers (a datagram from a new address packs its address once).
_ENDPOINTS_KEPT = 4096


class RotatingPcap:
    """The files on disk; used by the writer thread only."""

    def __init__(self, path: Path, max_bytes: int, count: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.count = count
        self.rotations = 0
        self._file = self._open()
        self._size = len(PCAP_HEADER)

    def _open(self) -> Any:
        file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - held open across batches, closed in close()
        try:
            file.write(PCAP_HEADER)
        except OSError:
            file.close()
            raise
        return file

    def write(self, batch: list[tuple[float, bytes]]) -> None:
        chunk: list[bytes] = []
        size = self._size
        for timestamp, frame in batch:
            octets = 16 + len(frame)
            if size + octets > self.max_bytes and size > len(PCAP_HEADER):
                self._file.write(b"".join(chunk))
                chunk.clear()
                self._rotate()
                size = len(PCAP_HEADER)
            chunk.append(record(timestamp, frame))
            chunk.append(frame)
            size += octets
        self._file.write(b"".join(chunk))
        self._size = size

    def _rotate(self) -> None:
        self._file.close()
        path = self.path
        for n in range(self.count - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n - 1}") if n > 1 else path
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{n}"))
        self.rotations += 1
        self._file = self._open()

    def close(self) -> None:
        self._file.close()


class PcapCapture:
    """Records the gateway's own traffic; ``open`` it on the running loop, ``close`` it last."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 100_000_000,
        count: int = 10,
        buffer_bytes: int = 16 << 20,
        batch_bytes: int = 1 << 20,
        flush_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if count < 1 or max_bytes <= len(PCAP_HEADER):
            raise ValueError("a capture needs at least one file larger than its header")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.count = count
        self.buffer_bytes = buffer_bytes
        self.batch_bytes = batch_bytes
        self.flush_interval = flush_interval
        self.clock = clock
        #: Frames given up because the buffer was full, and frames a failed write lost.
        self.dropped = 0
        self.failed = 0
        #: Frames written to a file.
        self.written = 0
        self._pending: list[tuple[float, bytes]] = []
        self._pending_bytes = 0
        self._queued_bytes = 0  # handed to the thread, not yet written
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[tuple[float, bytes]] | None] = queue.SimpleQueue()
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._files: RotatingPcap | None = None
        self._endpoints: dict[tuple[str, int], Endpoint] = {}
        self._dropping = False
        self.closed = False

    @classmethod
    def from_config(cls, config: CaptureConfig) -> PcapCapture:
        return cls(config.pcap, max_bytes=config.max_bytes, count=config.pcap_count)

    def open(self) -> None:
        """Create the first file (raises OSError when it cannot be written) and start the writer."""
        self._loop = asyncio.get_running_loop()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            # A file stands where the directory should be: say that, not "File exists".
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.path.parent)) from None
        self._files = RotatingPcap(self.path, self.max_bytes, self.count)
        self._thread = threading.Thread(target=self._write_batches, name="afgw-pcap", daemon=True)
        self._thread.start()
        log.info("capture.started", path=str(self.path), max_bytes=self.max_bytes, count=self.count)

    # --- what the transports call ---------------------------------------------------------------

    def tcp(self, transport: Any, *, opened_locally: bool) -> TcpFlow | None:
        """A flow for a connection just made (None when its addresses are not IP addresses)."""
        if self.closed:
            return None
        local = _address(transport.get_extra_info("sockname"))
        remote = _address(transport.get_extra_info("peername"))
        if local is None or remote is None:
            return None
        try:
            ends = Endpoint.of(*local), Endpoint.of(*remote)
        except ValueError:
            return None
        return TcpFlow(self.add, ends[0], ends[1], opened_locally=opened_locally, clock=self.clock)

    def udp(self, transport: Any) -> UdpTap | None:
        """A tap for the datagram socket of ``transport`` (None when it is not bound to an IP address)."""
        local = _address(transport.get_extra_info("sockname"))
        return UdpTap(self, local[0], local[1]) if local is not None else None

    def endpoint(self, host: str, port: int) -> Endpoint | None:
        key = (host, port)
        found = self._endpoints.get(key)
        if found is None:
            try:
                found = Endpoint.of(host, port)
            except ValueError:
                return None
            if len(self._endpoints) >= _ENDPOINTS_KEPT:
                self._endpoints.clear()
            self._endpoints[key] = found
        return found

    def add(self, timestamp: float, frame: bytes) -> None:
        """Buffer one frame; dropped (and counted) when the buffer is full or the capture closed."""
        if self.closed:
            return
        size = 16 + len(frame)
        if self._pending_bytes + self._queued_bytes + size > self.buffer_bytes:
            if not self._dropping:
                # Once per episode, not per frame: the next batch handed over says how many were lost.
                self._dropping = True
                log.warning("capture.buffer_full", path=str(self.path), buffer_bytes=self.buffer_bytes)
            self.dropped += 1
            return
        self._pending.append((timestamp, frame))
        self._pending_bytes += size
        if self._flush_handle is None and self._loop is not None:
            if self._pending_bytes >= self.batch_bytes:
                self._flush_handle = self._loop.call_soon(self._flush)
            else:
                self._flush_handle = self._loop.call_later(self.flush_interval, self._flush)

    # --- handing over to the thread -------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_handle = None
        if self._dropping:
            self._dropping = False
            log.warning("capture.frames_dropped", path=str(self.path), dropped=self.dropped)
        if not self._pending:
            return
        batch, size = self._pending, self._pending_bytes
        self._pending, self._pending_bytes = [], 0
        with self._lock:
            self._queued_bytes += size
        self._queue.put(batch)

    def _write_batches(self) -> None:
        files = self._files
        assert files is not None
        while (batch := self._queue.get()) is not None:
            size = sum(16 + len(frame) for _, frame in batch)
            try:
                files.write(batch)
                self.written += len(batch)
            except OSError as exc:
                if not self.failed:
                    log.error("capture.write_failed", path=str(self.path), error=str(exc))
                self.failed += len(batch)
            with self._lock:
                self._queued_bytes -= size
        with contextlib.suppress(OSError):
            files.close()

    async def close(self) -> None:
        """Write what is buffered and close the file; frames offered after this are ignored."""
        if self.closed:
            return
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()
        self.closed = True
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        rotations = self._files.rotations if self._files is not None else 0
        log.info(
            "capture.closed",
            path=str(self.path),
            frames=self.written,
            dropped=self.dropped,
            failed=self.failed,
            rotations=rotations,
        )


class UdpTap:
    """The frames of one datagram socket: what it received and what it sent."""

    __slots__ = ("_capture", "_ident", "_local", "_local_port", "_route_sources")

    def __init__(self, capture: PcapCapture, host: str, port: int) -> None:
        self._capture = capture
        self._local_port = port
        self._ident = 0
        # Bound to a specific address: every datagram carries it. Bound to 0.0.0.0 or ::, each one
        # carries the address the kernel routes from towards its peer, found once per peer.
        self._local = None if is_unspecified(host) else capture.endpoint(host, port)
        self._route_sources: dict[str, Endpoint | None] = {}

    def received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        capture = self._capture
        remote = capture.endpoint(str(addr[0]), int(addr[1]))
        local = self._local or self._source_towards(str(addr[0]))
        if remote is not None and local is not None:
            self._ident = (self._ident + 1) & 0xFFFF
            capture.add(capture.clock(), udp_frame(remote, local, data, ident=self._ident))

    def sent(self, data: bytes, host: str, port: int) -> None:
        capture = self._capture
        remote = capture.endpoint(host, port)
        local = self._local or self._source_towards(host)
        if remote is not None and local is not None:
            self._ident = (self._ident + 1) & 0xFFFF
            capture.add(capture.clock(), udp_frame(local, remote, data, ident=self._ident))

    def _source_towards(self, peer: str) -> Endpoint | None:
        if peer not in self._route_sources:
            if len(self._route_sources) >= _ENDPOINTS_KEPT:
                self._route_sources.clear()
            source = route_source(peer)
            self._route_sources[peer] = self._capture.endpoint(source, self._local_port) if source is not None else None
        return self._route_sources[peer]


def _address(name: Any) -> tuple[str, int] | None:
    """(host, port) of a socket name; None for a Unix socket's path or an unknown name."""
    if isinstance(name, tuple) and len(name) >= 2:
        return str(name[0]), int(name[1])
    return None
