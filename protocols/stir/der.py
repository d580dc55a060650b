"""Just enough DER (X.690) to write and read the two STIR certificate extensions.

The reader takes definite lengths in their minimal encoding and single-byte tags, and nothing else:
an extension we cannot read unambiguously makes the certificate unusable (437), it is never guessed at.
"""

from __future__ import annotations

from protocols.errors import LocalProtocolError
from protocols.stir.errors import UnsupportedCredential

__all__ = [
    "CONTEXT",
    "IA5_STRING",
    "INTEGER",
    "SEQUENCE",
    "UTF8_STRING",
    "DerError",
    "encode",
    "encode_integer",
    "read_integer",
    "read_sequence_of",
    "read_tlv",
]

INTEGER = 0x02
UTF8_STRING = 0x0C
SEQUENCE = 0x30
IA5_STRING = 0x16
CONTEXT = 0xA0  # context-specific, constructed: OR in the tag number (EXPLICIT tagging)


class DerError(UnsupportedCredential):
    """Bytes that are not the DER this module expects: in a certificate, an unusable credential."""


def encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def encode_integer(value: int) -> bytes:
    if value < 0:
        raise LocalProtocolError("only non-negative integers are used here")
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """The tag, content and end offset of the element starting at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not used here")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4 or pos + size > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + size], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("length not minimally encoded")
        pos += size
    end = pos + length
    if end > len(data):
        raise DerError("truncated element")
    return tag, data[pos:end], end


def read_sequence_of(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each element in ``data``, which must be consumed exactly."""
    items = []
    pos = 0
    while pos < len(data):
        tag, content, pos = read_tlv(data, pos)
        items.append((tag, content))
    return items


def read_integer(content: bytes) -> int:
    if not content or (len(content) > 1 and content[0] == 0 and content[1] < 0x80):
        raise DerError("integer not minimally encoded")
    if content[0] >= 0x80:
        raise DerError("negative integer")
    return int.from_bytes(content, "big")
