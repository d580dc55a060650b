"""SMS text for SMPP 3.4: alphabets, data_coding, concatenation (UDH and SAR), reassembly, flash.

Pure and sans-IO: no clock reads (the reassembler is handed ``now``), no I/O. GSM 7-bit text travels
unpacked in SMPP (one septet per octet, data_coding 0x00), so segmentation and reassembly work on
those octets; :func:`gsm7_pack` / :func:`gsm7_unpack` exist for the packed air-interface form.

References: GSM 03.38 / 3GPP TS 23.038 (alphabet, data coding scheme), 3GPP TS 23.040 section
9.2.3.24 (UDH), SMPP 3.4 sections 5.2.19 (data_coding) and 5.3.2.22-24 (sar_* TLVs).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import Enum

from protocols.errors import RemoteProtocolError
from protocols.smpp.constants import CommandStatus, DataCoding, EsmClass, Tag

__all__ = [
    "FLASH_TLVS",
    "Alphabet",
    "ConcatInfo",
    "ConcatMethod",
    "Reassembler",
    "Segment",
    "choose_alphabet",
    "data_coding_for",
    "decode",
    "encode",
    "flash_segments",
    "flash_sms",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_pack",
    "gsm7_septets",
    "gsm7_unpack",
    "parse_concat",
    "split",
]


class Alphabet(Enum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"
    LATIN1 = "latin1"
    ASCII = "ascii"


# --- GSM 03.38 default alphabet -------------------------------------------------------------------

_ESC = 0x1B
# Index = septet value. 0x1B is the escape to the extension table, not a character.
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Basic extension table (reached with 0x1B); 0x0A is the form feed (page break).
_GSM7_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
assert len(_GSM7_BASIC) == 128

# str.translate tables: encoding maps every encodable char to septet code points (all < 0x80), so the
# result is ASCII exactly when the text was encodable; ASCII chars outside GSM 7 (backtick, control
# chars, ESC itself) map to a non-ASCII sentinel so they fail that test too.
_UNENCODABLE = "\uffff"
_ENCODE: dict[int, str] = {cp: _UNENCODABLE for cp in range(128)}
_ENCODE.update({ord(ch): chr(code) for code, ch in enumerate(_GSM7_BASIC) if code != _ESC})
_ENCODE.update({ord(ch): chr(_ESC) + chr(code) for code, ch in _GSM7_EXT.items()})

# Decoding first maps each octet to its basic char (octets >= 0x80 cannot be septets: U+FFFD, never a
# guess), keeping ESC as U+001B; escape pairs are then resolved on that string.
_DECODE = {code: ch for code, ch in enumerate(_GSM7_BASIC)} | {b: "\ufffd" for b in range(128, 256)}
_EXT_DECODE = {_GSM7_BASIC[code]: ch for code, ch in _GSM7_EXT.items()}
_ESC_PAIR = re.compile("\x1b(.?)", re.DOTALL)


def _resolve_escape(m: re.Match[str]) -> str:
    follower = m.group(1)
    # 23.038 6.2.1.1: 0x1B 0x1B (a further extension) and an escape nothing understands show a
    # space; an unknown extension code shows the basic-table char.
    if follower in ("", "\x1b"):
        return " "
    return _EXT_DECODE.get(follower, follower)


def gsm7_encode(text: str) -> bytes:
    """Encode ``text`` as unpacked GSM 7-bit septets; extension chars become ``0x1B`` + code.

    Raises ``ValueError`` naming the first char that GSM 03.38 cannot carry.
    """
    out = text.translate(_ENCODE)
    if not out.isascii():
        bad = next(ch for ch in text if not ch.translate(_ENCODE).isascii())
        raise ValueError(f"character {bad!r} (U+{ord(bad):04X}) is not in the GSM 7-bit alphabet")
    return out.encode("ascii")


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM 7-bit septets, never raising.

    An escape followed by an unknown code gives the basic-table char of that code; ``1B 1B`` and a
    trailing lone escape give a space; an octet >= 0x80 gives U+FFFD.
    """
    text = data.decode("latin-1").translate(_DECODE)
    if "\x1b" in text:
        text = _ESC_PAIR.sub(_resolve_escape, text)
    return text


def gsm7_septets(text: str) -> int:
    """Septets ``text`` needs in GSM 7-bit (extension chars count 2); ``ValueError`` if unencodable."""
    return len(gsm7_encode(text))


def gsm7_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first (23.038 6.1.2.1.1) after ``fill_bits`` zero bits (0..6).

    The fill bits align the first septet on a septet boundary after a UDH (23.040 9.2.3.24).
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, got {fill_bits}")
    if septets and max(septets) > 0x7F:
        raise ValueError("a septet is greater than 0x7F")
    acc = 0
    for i, s in enumerate(septets):
        acc |= s << (7 * i)
    nbits = 7 * len(septets) + fill_bits
    return (acc << fill_bits).to_bytes((nbits + 7) // 8, "little")


def gsm7_unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Unpack ``count`` septets from packed ``data`` whose first ``fill_bits`` bits are fill."""
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, got {fill_bits}")
    if count < 0 or 7 * count + fill_bits > 8 * len(data):
        raise ValueError(f"{len(data)} octets cannot hold {count} septets after {fill_bits} fill bits")
    acc = int.from_bytes(data, "little") >> fill_bits
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def choose_alphabet(text: str) -> Alphabet:
    """GSM7 when every char (extension table included) is in GSM 03.38, else UCS2."""
    return Alphabet.GSM7 if text.translate(_ENCODE).isascii() else Alphabet.UCS2


def encode(text: str, alphabet: Alphabet) -> bytes:
    """Encode ``text``; ``ValueError`` (``UnicodeEncodeError`` included) if ``alphabet`` cannot carry it."""
    if alphabet is Alphabet.GSM7:
        return gsm7_encode(text)
    if alphabet is Alphabet.UCS2:
        # UTF-16BE: astral chars become surrogate pairs, which every handset since UCS2 displays.
        return text.encode("utf-16-be")
    if alphabet is Alphabet.LATIN1:
        return text.encode("latin-1")
    return text.encode("ascii")


# --- data_coding ----------------------------------------------------------------------------------


def _codec_of(dc: int) -> str:
    """Codec for a data_coding: SMPP 3.4 5.2.19 below 0x10, the 23.038 section 4 groups above."""
    smpp = {0x00: "gsm7", 0x01: "ascii", 0x03: "latin-1", 0x06: "iso8859-5", 0x07: "iso8859-8", 0x08: "ucs2"}
    if dc < 0x10:
        return smpp.get(dc, "latin-1")  # octets (0x02, 0x04) and the rest: one char per octet
    group = dc >> 4
    if group <= 0x7:  # general data coding (00xx) and automatic deletion (01xx) groups
        if dc & 0x20:  # compressed: nothing we can read
            return "latin-1"
        return ("gsm7", "latin-1", "ucs2", "latin-1")[(dc >> 2) & 0x03]
    if group in (0xC, 0xD):  # message waiting indication, discard / store
        return "gsm7"
    if group == 0xE:  # message waiting indication, store, UCS2
        return "ucs2"
    if group == 0xF:  # data coding / message class: bit 2 chooses 8-bit over GSM 7
        return "latin-1" if dc & 0x04 else "gsm7"
    return "latin-1"  # reserved groups 1000..1011


_CODECS = tuple(_codec_of(dc) for dc in range(256))
_utf_16_be_decode = codecs.utf_16_be_decode


def decode(data: bytes, data_coding: int) -> str:
    """Decode a short_message body (UDH removed) for its data_coding; never raises.

    Malformed UCS2 (odd trailing octet, lone surrogate) decodes with U+FFFD.
    """
    codec = _CODECS[data_coding] if 0 <= data_coding <= 0xFF else "latin-1"
    if codec == "gsm7":
        return gsm7_decode(data)
    if codec == "ucs2":
        # The codec's own function: bytes.decode looks it up by name through the registry each time.
        return _utf_16_be_decode(data, "replace", True)[0]
    return data.decode(codec, errors="replace")


def data_coding_for(alphabet: Alphabet, *, flash: bool = False) -> int:
    """data_coding that announces ``alphabet``; ``flash`` asks for message class 0.

    Class 0 exists only for GSM 7 and UCS2 (0x10, 0x18): Latin-1 and ASCII have no class-0 value.
    """
    if alphabet is Alphabet.GSM7:
        return DataCoding.GSM7_CLASS0 if flash else DataCoding.SMSC_DEFAULT
    if alphabet is Alphabet.UCS2:
        return DataCoding.UCS2_CLASS0 if flash else DataCoding.UCS2
    if flash:
        raise ValueError(f"no class-0 (flash) data_coding exists for {alphabet.name}")
    return DataCoding.LATIN1 if alphabet is Alphabet.LATIN1 else DataCoding.IA5


# --- concatenation --------------------------------------------------------------------------------


class ConcatMethod(Enum):
    UDH8 = "udh8"  # 23.040 9.2.3.24.1, IEI 0x00
    UDH16 = "udh16"  # 23.040 9.2.3.24.8, IEI 0x08
    SAR = "sar"  # SMPP 3.4 5.3.2.22-24, TLVs instead of a UDH


@dataclass(frozen=True, slots=True)
class Segment:
    short_message: bytes  # UDH included for the UDH methods
    esm_class_udhi: bool
    tlvs: tuple[tuple[int, bytes], ...]
    seq: int
    total: int
    ref: int


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    ref: int
    total: int
    seq: int
    method: ConcatMethod


_IEI_CONCAT8 = 0x00
_IEI_CONCAT16 = 0x08
_SAR_TAGS = frozenset((Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM))
_MAX_PARTS = 255

# Octets (GSM 7: unpacked septets) in one SM, then per part for each method. GSM 7 loses 7 septets to
# the 6-octet UDH plus 1 fill bit, 8 to the 7-octet one. SAR parts get the UDH8 budget because the SMSC
# turns the TLVs into that UDH on the air interface.
_SINGLE = {Alphabet.GSM7: 160, Alphabet.UCS2: 140, Alphabet.LATIN1: 140, Alphabet.ASCII: 140}
_PER_PART = {
    Alphabet.GSM7: {ConcatMethod.UDH8: 153, ConcatMethod.UDH16: 152, ConcatMethod.SAR: 153},
    Alphabet.UCS2: {ConcatMethod.UDH8: 134, ConcatMethod.UDH16: 132, ConcatMethod.SAR: 134},
    Alphabet.LATIN1: {ConcatMethod.UDH8: 134, ConcatMethod.UDH16: 133, ConcatMethod.SAR: 134},
    Alphabet.ASCII: {ConcatMethod.UDH8: 134, ConcatMethod.UDH16: 133, ConcatMethod.SAR: 134},
}


def _cut(data: bytes, alphabet: Alphabet, limit: int) -> list[bytes]:
    """Cut ``data`` into chunks of at most ``limit`` octets without splitting a char."""
    chunks = []
    start, n = 0, len(data)
    while start < n:
        end = min(start + limit, n)
        if end < n:
            # gsm7_encode only emits 0x1B as the first octet of a pair, so a chunk ending in it would
            # split an extension char; likewise a UCS2 chunk ending in a high surrogate.
            if alphabet is Alphabet.GSM7 and data[end - 1] == _ESC:
                end -= 1
            elif alphabet is Alphabet.UCS2 and 0xD8 <= data[end - 2] <= 0xDB:
                end -= 2
        chunks.append(data[start:end])
        start = end
    return chunks


def _segments(
    data: bytes, alphabet: Alphabet, method: ConcatMethod, ref: int, extra: tuple[tuple[int, bytes], ...]
) -> list[Segment]:
    ref_max = 0xFF if method is ConcatMethod.UDH8 else 0xFFFF
    if not 0 <= ref <= ref_max:
        raise ValueError(f"ref {ref} out of range 0..{ref_max} for {method.name}")
    if len(data) <= _SINGLE[alphabet]:
        return [Segment(data, False, extra, 1, 1, ref)]
    chunks = _cut(data, alphabet, _PER_PART[alphabet][method])
    total = len(chunks)
    if total > _MAX_PARTS:
        raise ValueError(f"text needs {total} parts, more than {_MAX_PARTS}")
    if method is ConcatMethod.SAR:
        sar_head = (
            (Tag.SAR_MSG_REF_NUM.value, ref.to_bytes(2, "big")),
            (Tag.SAR_TOTAL_SEGMENTS.value, bytes((total,))),
        )
        return [
            Segment(
                chunk,
                False,
                (*sar_head, (Tag.SAR_SEGMENT_SEQNUM.value, bytes((seq,))), *extra),
                seq,
                total,
                ref,
            )
            for seq, chunk in enumerate(chunks, 1)
        ]
    if method is ConcatMethod.UDH8:
        head = bytes((0x05, _IEI_CONCAT8, 0x03, ref, total))
    else:
        head = bytes((0x06, _IEI_CONCAT16, 0x04, ref >> 8, ref & 0xFF, total))
    return [Segment(head + bytes((seq,)) + chunk, True, extra, seq, total, ref) for seq, chunk in enumerate(chunks, 1)]


def split(
    text: str, *, alphabet: Alphabet | None = None, method: ConcatMethod = ConcatMethod.UDH8, ref: int = 0
) -> tuple[int, list[Segment]]:
    """Encode ``text`` and cut it into SMs: ``(data_coding, segments)``.

    A text that fits one SM gives one segment with no UDH and no TLVs. Raises ``ValueError`` when the
    alphabet cannot carry the text, ``ref`` does not fit the method, or more than 255 parts are needed.
    """
    if alphabet is None:
        alphabet = choose_alphabet(text)
    data_coding = data_coding_for(alphabet)
    return data_coding, _segments(encode(text, alphabet), alphabet, method, ref, ())


def _bad_udh(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"malformed UDH: {why}", answer=CommandStatus.ESME_RINVMSGLEN)


def _checked(ref: int, total: int, seq: int, method: ConcatMethod, answer: int) -> ConcatInfo:
    if total == 0 or seq == 0 or seq > total:
        raise RemoteProtocolError(f"concatenation part {seq} of {total} is impossible", answer=answer)
    return ConcatInfo(ref, total, seq, method)


def parse_concat(
    short_message: bytes, esm_class: int, tlvs: Sequence[tuple[int, bytes]]
) -> tuple[ConcatInfo | None, bytes]:
    """Concatenation info of a received SM and its body without UDH.

    A UDH concat IE wins over sar_* TLVs (the UDH is what the handset acts on); of repeated concat IEs
    the last one counts (23.040 9.2.3.24). Errors in short_message answer ESME_RINVMSGLEN; sar_* TLVs
    answer ESME_RMISSINGOPTPARAM (not all three), ESME_RINVPARLEN (bad length) or
    ESME_RINVOPTPARAMVAL (impossible numbers).
    """
    body = short_message
    info: ConcatInfo | None = None
    if esm_class & EsmClass.UDHI:
        if not short_message:
            raise _bad_udh("UDHI set on an empty short_message")
        udhl = short_message[0]
        end = 1 + udhl
        if end > len(short_message):
            raise _bad_udh(f"UDH length {udhl} exceeds the {len(short_message) - 1} octets that follow")
        pos = 1
        while pos < end:
            if pos + 2 > end:
                raise _bad_udh("truncated information element header")
            iei, iel = short_message[pos], short_message[pos + 1]
            ie = short_message[pos + 2 : pos + 2 + iel]
            pos += 2 + iel
            if pos > end:
                raise _bad_udh(f"IE 0x{iei:02X} overruns the UDH")
            if iei in (_IEI_CONCAT8, _IEI_CONCAT16):
                method = ConcatMethod.UDH8 if iei == _IEI_CONCAT8 else ConcatMethod.UDH16
                if len(ie) != (3 if method is ConcatMethod.UDH8 else 4):
                    raise _bad_udh(f"concatenation IE 0x{iei:02X} has length {len(ie)}")
                ref = ie[0] if method is ConcatMethod.UDH8 else ie[0] << 8 | ie[1]
                info = _checked(ref, ie[-2], ie[-1], method, CommandStatus.ESME_RINVMSGLEN)
        body = short_message[end:]
    if info is None:
        sar = {tag: value for tag, value in tlvs if tag in _SAR_TAGS}
        ref_v, total_v, seq_v = (
            sar.get(Tag.SAR_MSG_REF_NUM),
            sar.get(Tag.SAR_TOTAL_SEGMENTS),
            sar.get(Tag.SAR_SEGMENT_SEQNUM),
        )
        if ref_v is not None or total_v is not None or seq_v is not None:
            if ref_v is None or total_v is None or seq_v is None:
                raise RemoteProtocolError(
                    "sar_msg_ref_num, sar_total_segments and sar_segment_seqnum must come together",
                    answer=CommandStatus.ESME_RMISSINGOPTPARAM,
                )
            if len(ref_v) != 2 or len(total_v) != 1 or len(seq_v) != 1:
                raise RemoteProtocolError("sar_* TLV of wrong length", answer=CommandStatus.ESME_RINVPARLEN)
            info = _checked(
                int.from_bytes(ref_v, "big"),
                total_v[0],
                seq_v[0],
                ConcatMethod.SAR,
                CommandStatus.ESME_RINVOPTPARAMVAL,
            )
    return info, body


@dataclass(slots=True)
class _Pending:
    first_seen: float
    parts: dict[int, bytes]


class Reassembler:
    """Collects parts of concatenated messages (encoded bodies) until each is complete.

    Parts are grouped by ``(key, ref, total)``; ``key`` is the caller's (e.g. bind, source and
    destination addresses). At most ``max_pending`` incomplete messages are held: a new one evicts the
    oldest. Memory per message is bounded too (255 parts of one short_message each).
    """

    def __init__(self, *, max_pending: int = 10000, timeout: float = 300.0) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.timeout = timeout
        # Insertion order is arrival order of first parts: the head is the oldest.
        self._pending: dict[tuple[Hashable, int, int], _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Hashable, info: ConcatInfo, body: bytes, now: float) -> bytes | None:
        """Store one part; return the whole body in seq order once every part is in, else None.

        A repeated seq keeps the first copy.
        """
        if not 1 <= info.seq <= info.total:
            raise ValueError(f"part {info.seq} of {info.total} is impossible")
        if info.total == 1:
            return body
        slot = (key, info.ref, info.total)
        pending = self._pending.get(slot)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                del self._pending[next(iter(self._pending))]
            pending = self._pending[slot] = _Pending(now, {})
        pending.parts.setdefault(info.seq, body)
        if len(pending.parts) < info.total:
            return None
        del self._pending[slot]
        return b"".join(pending.parts[seq] for seq in range(1, info.total + 1))

    def expire(self, now: float) -> list[Hashable]:
        """Drop incomplete messages whose first part is older than ``timeout``; return their keys."""
        dead = [slot for slot, p in self._pending.items() if now - p.first_seen > self.timeout]
        for slot in dead:
            del self._pending[slot]
        return [slot[0] for slot in dead]


# --- flash (class 0) ------------------------------------------------------------------------------

#: dest_addr_subunit = 1 (MS display), SMPP 3.4 5.3.2.1: a flash warning is shown, not stored.
FLASH_TLVS: tuple[tuple[int, bytes], ...] = ((Tag.DEST_ADDR_SUBUNIT.value, b"\x01"),)


def flash_sms(text: str) -> tuple[int, bytes, tuple[tuple[int, bytes], ...]]:
    """``(data_coding, short_message, tlvs)`` of one class-0 SM; ``ValueError`` if it needs two."""
    alphabet = choose_alphabet(text)
    data = encode(text, alphabet)
    if len(data) > _SINGLE[alphabet]:
        raise ValueError(f"flash text needs {len(data)} octets in {alphabet.name}, one SM holds {_SINGLE[alphabet]}")
    return data_coding_for(alphabet, flash=True), data, FLASH_TLVS


def flash_segments(text: str, *, ref: int = 0) -> tuple[int, list[Segment]]:
    """A longer flash as UDH8 parts, all class 0; every segment's ``tlvs`` is :data:`FLASH_TLVS`."""
    alphabet = choose_alphabet(text)
    data_coding = data_coding_for(alphabet, flash=True)
    return data_coding, _segments(encode(text, alphabet), alphabet, ConcatMethod.UDH8, ref, FLASH_TLVS)
