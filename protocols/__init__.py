"""Sans-IO protocol cores: bytes in, events out. No asyncio, no sockets, no clock reads."""

from protocols.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]
