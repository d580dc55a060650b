"""One TCP connection as a capture shows it: both byte streams numbered as a real stack numbers them.

The gateway sees a connection through asyncio (connected, bytes in, bytes out, end of file, lost),
never its segments. ``TcpFlow`` turns those into the segments a sniffer would have recorded, so that
Wireshark follows the stream with no "previous segment not captured" or "ACKed unseen segment":

- opening: SYN from the side that connected (window scale offered), SYN-ACK, ACK;
- data: one segment per chunk read or written (split at ``MAX_SEGMENT``), its sequence number where the
  sender's stream stands and its acknowledgement where the other side's stands;
- a pure ACK from the receiver once a side has sent ``ACK_EVERY`` octets the other side has not
  acknowledged by sending something itself (a real receiver acknowledges too; without it Wireshark would
  count the window as full);
- closing: FIN from the side that closed first, FIN from the other, the last ACK; a connection lost
  with an error ends with the peer's RST.

A frame the capture could not buffer is dropped, but the numbers move on as if it had been recorded:
the gap that Wireshark then shows is a real gap in the recording.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from gateway.capture.frames import ACK, FIN, MAX_SEGMENT, PSH, RST, SYN, SYN_OPTIONS, Endpoint, tcp_frame

#: Called with each synthesised frame and the wall-clock time it stands for.
FrameSink = Callable[[float, bytes], None]

#: Unacknowledged octets after which the receiver's ACK is synthesised (well below the ~8 MB window).
ACK_EVERY = 1 << 20


class _Side:
    __slots__ = ("endpoint", "fin", "ident", "nxt", "unacked")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.nxt = random.getrandbits(32)  # the initial sequence number, as random as a stack's
        self.ident = random.getrandbits(16)
        self.unacked = 0
        self.fin = False


class TcpFlow:
    """Segments of one connection between ``local`` (the gateway) and ``remote``, fed to ``sink``."""

    __slots__ = ("_clock", "_local", "_remote", "_sink", "closed")

    def __init__(
        self,
        sink: FrameSink,
        local: Endpoint,
        remote: Endpoint,
        *,
        opened_locally: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._local = _Side(local)
        self._remote = _Side(remote)
        self.closed = False
        now = clock()
        client, server = (self._local, self._remote) if opened_locally else (self._remote, self._local)
        self._segment(now, client, server, SYN, options=SYN_OPTIONS)
        self._segment(now, server, client, SYN | ACK, options=SYN_OPTIONS)
        self._segment(now, client, server, ACK)

    def sent(self, data: bytes) -> None:
        """``data`` written by the gateway on this connection."""
        self._data(self._local, self._remote, data)

    def received(self, data: bytes) -> None:
        """``data`` read by the gateway from this connection."""
        self._data(self._remote, self._local, data)

    def remote_finished(self) -> None:
        """The peer closed its side (end of file read)."""
        if not self.closed and not self._remote.fin:
            self._segment(self._clock(), self._remote, self._local, FIN | ACK)

    def close(self, *, error: bool = False) -> None:
        """The connection is gone: ``error`` when the peer reset it, else closed in order."""
        if self.closed:
            return
        self.closed = True
        now = self._clock()
        local, remote = self._local, self._remote
        if error:
            self._segment(now, remote, local, RST | ACK)
            return
        if remote.fin:
            # The peer closed first; the gateway answers with its own FIN and the peer acknowledges it.
            if not local.fin:
                self._segment(now, local, remote, FIN | ACK)
            self._segment(now, remote, local, ACK)
            return
        self._segment(now, local, remote, FIN | ACK)
        self._segment(now, remote, local, FIN | ACK)
        self._segment(now, local, remote, ACK)

    def _data(self, sender: _Side, receiver: _Side, data: bytes) -> None:
        if self.closed or sender.fin or not data:
            return
        now = self._clock()
        for start in range(0, len(data), MAX_SEGMENT):
            self._segment(now, sender, receiver, PSH | ACK, data[start : start + MAX_SEGMENT])
        if sender.unacked >= ACK_EVERY:
            self._segment(now, receiver, sender, ACK)

    def _segment(
        self,
        now: float,
        sender: _Side,
        receiver: _Side,
        flags: int,
        payload: bytes = b"",
        *,
        options: bytes = b"",
    ) -> None:
        # Every segment but the first SYN acknowledges all the other side has sent.
        ack = receiver.nxt if flags & ACK else 0
        frame = tcp_frame(
            sender.endpoint,
            receiver.endpoint,
            sender.nxt,
            ack,
            flags,
            payload,
            ident=sender.ident,
            options=options,
        )
        sender.ident = (sender.ident + 1) & 0xFFFF
        # SYN and FIN take one sequence number each, like an octet of data.
        sender.nxt = (sender.nxt + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        sender.unacked += len(payload)
        if flags & ACK:
            receiver.unacked = 0
        if flags & FIN:
            sender.fin = True
        self._sink(now, frame)
