"""Errors shared by every protocol core.

The split says whose fault a problem is. A ``RemoteProtocolError`` means the peer sent something we
cannot accept; it carries what to answer (an SMPP command_status, a SIP status code) and whether the
connection must be closed. A ``LocalProtocolError`` means this program tried to do something the
protocol forbids: a bug here, never the peer's doing.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error a protocol core raises."""


class LocalProtocolError(ProtocolError):
    """We tried to send or do something the protocol forbids in the current state."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid.

    ``answer`` is the protocol's error code to send back (an SMPP command_status, a SIP status code),
    or ``None`` when the right reaction is to discard or close without answering. ``close`` says whether
    the connection can no longer be trusted to be in sync and must be closed.
    """

    def __init__(self, message: str, *, answer: int | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.answer = answer
        self.close = close
