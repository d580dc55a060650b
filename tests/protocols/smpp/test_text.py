"""Tests of protocols.smpp.text: alphabets, data_coding, concatenation, reassembly, flash."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import RemoteProtocolError
from protocols.smpp.constants import CommandStatus, EsmClass, Tag
from protocols.smpp.text import (
    FLASH_TLVS,
    Alphabet,
    ConcatInfo,
    ConcatMethod,
    Reassembler,
    Segment,
    choose_alphabet,
    data_coding_for,
    decode,
    encode,
    flash_segments,
    flash_sms,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_septets,
    gsm7_unpack,
    parse_concat,
    split,
)

# Every char GSM 03.38 carries: the default alphabet (minus 0x1B) and the basic extension table.
GSM7_CHARS = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€\f"
)
EMOJI = "😀"  # U+1F600, astral: a surrogate pair D83D DE00 in UTF-16


def reassemble(data_coding: int, segments: list[Segment], order: list[int] | None = None) -> str:
    """What a receiver does: parse every part, feed the reassembler, decode the result."""
    r = Reassembler()
    result = None
    order = order if order is not None else list(range(len(segments)))
    for n, i in enumerate(order, 1):
        seg = segments[i]
        esm_class = EsmClass.UDHI if seg.esm_class_udhi else 0
        info, body = parse_concat(seg.short_message, esm_class, seg.tlvs)
        if info is None:
            assert len(segments) == 1
            result = body
            continue
        assert (info.ref, info.total, info.seq) == (seg.ref, seg.total, seg.seq)
        out = r.add("peer", info, body, now=0.0)
        assert (out is None) == (n < len(order))  # complete exactly when the last part arrives
        result = out
    assert result is not None
    assert len(r) == 0
    return decode(result, data_coding)


# --- GSM 03.38 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "septet"),
    [
        # GSM 03.38 section 6.2.1, default alphabet table (column, row -> hex).
        ("@", 0x00),
        ("£", 0x01),
        ("$", 0x02),
        ("¥", 0x03),
        ("è", 0x04),
        ("Ç", 0x09),
        ("\n", 0x0A),
        ("\r", 0x0D),
        ("Δ", 0x10),
        ("_", 0x11),
        ("Ξ", 0x1A),
        ("É", 0x1F),
        (" ", 0x20),
        ("¤", 0x24),
        ("¡", 0x40),
        ("A", 0x41),
        ("Ä", 0x5B),
        ("§", 0x5F),
        ("¿", 0x60),
        ("a", 0x61),
        ("ü", 0x7E),
        ("à", 0x7F),
    ],
)
def test_gsm7_default_alphabet(char: str, septet: int) -> None:
    assert gsm7_encode(char) == bytes([septet])
    assert gsm7_decode(bytes([septet])) == char


@pytest.mark.parametrize(
    ("char", "code"),
    [
        # GSM 03.38 section 6.2.1.1, default alphabet extension table, reached with escape 0x1B.
        ("\f", 0x0A),
        ("^", 0x14),
        ("{", 0x28),
        ("}", 0x29),
        ("\\", 0x2F),
        ("[", 0x3C),
        ("~", 0x3D),
        ("]", 0x3E),
        ("|", 0x40),
        ("€", 0x65),
    ],
)
def test_gsm7_extension_table(char: str, code: int) -> None:
    assert gsm7_encode(char) == bytes([0x1B, code])
    assert gsm7_decode(bytes([0x1B, code])) == char
    assert gsm7_septets(char) == 2


def test_gsm7_mixed_text() -> None:
    assert gsm7_encode("Cost: 5€ {ok}") == b"Cost: 5\x1be \x1b(ok\x1b)"
    assert gsm7_septets("Cost: 5€ {ok}") == 16


@pytest.mark.parametrize("char", ["`", "ç", "中", "\x1b", "\t", "\x00", EMOJI])
def test_gsm7_unencodable(char: str) -> None:
    with pytest.raises(ValueError, match="GSM 7-bit"):
        gsm7_encode("ok " + char)
    with pytest.raises(ValueError, match="GSM 7-bit"):
        gsm7_septets(char)
    assert choose_alphabet("ok " + char) is Alphabet.UCS2


def test_gsm7_decode_is_tolerant() -> None:
    # 23.038 6.2.1.1: an unknown extension code shows the basic-table char; 1B 1B shows a space.
    assert gsm7_decode(b"\x1bA") == "A"
    assert gsm7_decode(b"\x1b\x1bA") == " A"
    # A trailing lone escape shows a space (the escape's own meaning to a receiver that ignores it).
    assert gsm7_decode(b"ok\x1b") == "ok "
    # Octets with the top bit set cannot be unpacked septets.
    assert gsm7_decode(b"a\x80\xff") == "a\ufffd\ufffd"
    assert gsm7_decode(b"\x1b\x80") == "\ufffd"
    assert gsm7_decode(b"") == ""


def test_gsm7_pack_vector() -> None:
    # 23.038 6.1.2.1.1 packing; "hellohello" -> E8 32 9B FD 46 97 D9 EC 37 is the classic worked example.
    packed = gsm7_pack(gsm7_encode("hellohello"))
    assert packed == bytes.fromhex("E8329BFD4697D9EC37")
    assert gsm7_unpack(packed, 10) == b"hellohello"


def test_gsm7_pack_fill_bits() -> None:
    # After a 6-octet UDH one fill bit aligns the text on a septet boundary (23.040 9.2.3.24).
    assert gsm7_pack(b"\x41", fill_bits=1) == b"\x82"
    assert gsm7_pack(b"\x7f", fill_bits=1) == b"\xfe"
    assert gsm7_unpack(b"\x82", 1, fill_bits=1) == b"\x41"
    assert gsm7_pack(b"") == b""
    # 8 septets fill 7 octets exactly.
    assert len(gsm7_pack(b"12345678")) == 7


def test_gsm7_pack_errors() -> None:
    with pytest.raises(ValueError, match="0x7F"):
        gsm7_pack(b"\x80")
    with pytest.raises(ValueError, match="fill_bits"):
        gsm7_pack(b"a", fill_bits=7)
    with pytest.raises(ValueError, match="cannot hold"):
        gsm7_unpack(b"\x00", 2)


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_gsm7_pack_round_trip(septets: bytes, fill: int) -> None:
    assert gsm7_unpack(gsm7_pack(septets, fill), len(septets), fill) == septets


# --- alphabets and data_coding --------------------------------------------------------------------


def test_ucs2_chinese_round_trip() -> None:
    text = "你好，世界"
    # UTF-16BE code units: U+4F60 U+597D U+FF0C U+4E16 U+754C.
    data = encode(text, Alphabet.UCS2)
    assert data == bytes.fromhex("4F60597DFF0C4E16754C")
    assert choose_alphabet(text) is Alphabet.UCS2
    assert decode(data, 0x08) == text
    assert decode(data, 0x18) == text


def test_ucs2_astral_is_surrogate_pair() -> None:
    assert encode(EMOJI, Alphabet.UCS2) == bytes.fromhex("D83DDE00")
    assert decode(bytes.fromhex("D83DDE00"), 0x08) == EMOJI


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00A\x00", "A\ufffd"),  # odd trailing octet
        (b"\xd8\x3d\x00A", "\ufffdA"),  # high surrogate without its low half
        (b"\xde\x00", "\ufffd"),  # lone low surrogate
        (b"\xd8\x3d", "\ufffd"),  # truncated pair
    ],
)
def test_ucs2_malformed_decodes_with_replacement(data: bytes, expected: str) -> None:
    assert decode(data, 0x08) == expected


@pytest.mark.parametrize(
    ("data_coding", "data", "expected"),
    [
        # SMPP 3.4 section 5.2.19 and 3GPP TS 23.038 section 4.
        (0x00, b"\x00\x1be", "@€"),  # SMSC default, taken as GSM 7
        (0x10, b"\x00\x1be", "@€"),  # general group, class 0, GSM 7
        (0x11, b"\x00", "@"),  # general group, class 1, GSM 7
        (0xF0, b"\x00\x1be", "@€"),  # data coding/message class group, GSM 7, class 0
        (0xF3, b"\x00", "@"),
        (0xC0, b"\x00", "@"),  # MWI discard, GSM 7
        (0x01, b"Hi\x80", "Hi\ufffd"),  # IA5 (ASCII)
        (0x03, b"caf\xe9", "café"),  # Latin-1
        (0x02, b"\x00\xff", "\x00\xff"),  # octets: one char per octet
        (0x04, b"\x00\xff", "\x00\xff"),
        (0xF4, b"\xe9", "é"),  # 8-bit data, class 0
        (0x08, b"\x4f\x60", "你"),
        (0x18, b"\x4f\x60", "你"),  # UCS2 class 0
        (0xE0, b"\x4f\x60", "你"),  # MWI store, UCS2
        (0x30, b"\xe9", "é"),  # compressed: unreadable, kept as octets
        (0x0B, b"\xe9", "é"),  # undefined in SMPP 3.4
        (0x80, b"\xe9", "é"),  # reserved group
        (0x1234, b"\xe9", "é"),  # not even an octet
    ],
)
def test_decode_by_data_coding(data_coding: int, data: bytes, expected: str) -> None:
    assert decode(data, data_coding) == expected


def test_encode_each_alphabet() -> None:
    assert encode("café", Alphabet.LATIN1) == b"caf\xe9"
    assert encode("cafe", Alphabet.ASCII) == b"cafe"
    assert encode("café", Alphabet.GSM7) == b"caf\x05"
    with pytest.raises(ValueError, match="ascii"):
        encode("café", Alphabet.ASCII)
    with pytest.raises(ValueError, match="latin-1"):
        encode("中", Alphabet.LATIN1)


def test_data_coding_for() -> None:
    assert data_coding_for(Alphabet.GSM7) == 0x00
    assert data_coding_for(Alphabet.GSM7, flash=True) == 0x10
    assert data_coding_for(Alphabet.UCS2) == 0x08
    assert data_coding_for(Alphabet.UCS2, flash=True) == 0x18
    assert data_coding_for(Alphabet.LATIN1) == 0x03
    assert data_coding_for(Alphabet.ASCII) == 0x01
    for alphabet in (Alphabet.LATIN1, Alphabet.ASCII):
        with pytest.raises(ValueError, match="class-0"):
            data_coding_for(alphabet, flash=True)


# --- split ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data_coding"),
    [("a" * 160, 0x00), ("€" * 80, 0x00), ("中" * 70, 0x08), (EMOJI * 35, 0x08), ("", 0x00)],
)
def test_split_fits_one_sm(text: str, data_coding: int) -> None:
    dc, segments = split(text, ref=7)
    assert dc == data_coding
    assert segments == [Segment(encode(text, choose_alphabet(text)), False, (), 1, 1, 7)]


def test_split_latin1_fits_one_sm() -> None:
    dc, segments = split("é" * 140, alphabet=Alphabet.LATIN1)
    assert dc == 0x03
    assert len(segments) == 1
    dc, segments = split("é" * 141, alphabet=Alphabet.LATIN1)
    assert [len(s.short_message) for s in segments] == [6 + 134, 6 + 7]


def test_split_gsm7_udh8_bytes() -> None:
    dc, segments = split("a" * 161, ref=0xA5)
    assert dc == 0x00
    # 3GPP TS 23.040 9.2.3.24.1: UDHL 05, IEI 00, IEDL 03, ref, total, seq; 153 septets per part.
    assert [s.short_message for s in segments] == [
        bytes.fromhex("050003A50201") + b"a" * 153,
        bytes.fromhex("050003A50202") + b"a" * 8,
    ]
    assert all(s.esm_class_udhi and s.tlvs == () for s in segments)
    assert [(s.seq, s.total, s.ref) for s in segments] == [(1, 2, 0xA5), (2, 2, 0xA5)]


def test_split_gsm7_udh16_bytes() -> None:
    dc, segments = split("x" * 200, method=ConcatMethod.UDH16, ref=0x1234)
    assert dc == 0x00
    # 3GPP TS 23.040 9.2.3.24.8: UDHL 06, IEI 08, IEDL 04, ref (2 octets), total, seq; 152 per part.
    assert [s.short_message for s in segments] == [
        bytes.fromhex("06080412340201") + b"x" * 152,
        bytes.fromhex("06080412340202") + b"x" * 48,
    ]
    assert reassemble(dc, segments) == "x" * 200


def test_split_sar_tlvs() -> None:
    dc, segments = split("x" * 200, method=ConcatMethod.SAR, ref=0xBEEF)
    assert dc == 0x00
    # SMPP 3.4 5.3.2.22-24: sar_msg_ref_num 0x020C (2 octets), sar_total_segments 0x020E (1 octet),
    # sar_segment_seqnum 0x020F (1 octet); the body carries no UDH.
    assert segments == [
        Segment(b"x" * 153, False, ((0x020C, b"\xbe\xef"), (0x020E, b"\x02"), (0x020F, b"\x01")), 1, 2, 0xBEEF),
        Segment(b"x" * 47, False, ((0x020C, b"\xbe\xef"), (0x020E, b"\x02"), (0x020F, b"\x02")), 2, 2, 0xBEEF),
    ]
    assert reassemble(dc, segments) == "x" * 200


def test_split_gsm7_never_splits_extension_char() -> None:
    text = "a" * 152 + "€" + "b" * 10  # 164 septets; the escape would be septet 153 of part 1
    dc, segments = split(text)
    assert [s.short_message[6:] for s in segments] == [b"a" * 152, b"\x1be" + b"b" * 10]
    assert reassemble(dc, segments) == text
    # Same at the UDH16 boundary (152 septets per part).
    text = "a" * 151 + "{" + "b" * 10
    dc, segments = split(text, method=ConcatMethod.UDH16)
    assert [s.short_message[7:] for s in segments] == [b"a" * 151, b"\x1b(" + b"b" * 10]


def test_split_300_chinese_into_5_udh8_parts_any_order() -> None:
    text = "".join(chr(0x4E00 + (i * 37) % 0x5000) for i in range(300))
    dc, segments = split(text, ref=42)
    assert dc == 0x08
    assert len(segments) == 5  # 67 chars (134 octets) per part
    for seq, s in enumerate(segments, 1):
        assert s.short_message[:6] == bytes([0x05, 0x00, 0x03, 42, 5, seq])
        assert len(s.short_message) - 6 <= 134
        assert s.esm_class_udhi
    for order in itertools.permutations(range(5)):
        assert reassemble(dc, segments, list(order)) == text


def test_split_never_cuts_surrogate_pair() -> None:
    text = EMOJI * 100  # 400 octets: a naive 134-octet cut lands in the middle of a pair
    naive = encode(text, Alphabet.UCS2)
    assert 0xDC <= naive[134] <= 0xDF  # the octet after a naive cut is a low surrogate
    for method in ConcatMethod:
        dc, segments = split(text, method=method)
        assert dc == 0x08
        bodies = [parse_concat(s.short_message, EsmClass.UDHI * s.esm_class_udhi, s.tlvs)[1] for s in segments]
        for body in bodies:
            body.decode("utf-16-be", errors="strict")
            assert len(body) <= (132 if method is ConcatMethod.UDH16 else 134)
        assert "".join(b.decode("utf-16-be") for b in bodies) == text


def test_split_mixed_emoji_text() -> None:
    text = ("Hi 中" + EMOJI * 3) * 40
    dc, segments = split(text, method=ConcatMethod.UDH16, ref=65535)
    for s in segments:
        s.short_message[7:].decode("utf-16-be", errors="strict")
    assert reassemble(dc, segments) == text


def test_split_part_limits() -> None:
    _, segments = split("中" * 71)
    assert [len(s.short_message) for s in segments] == [6 + 134, 6 + 8]
    _, segments = split("中" * 134, method=ConcatMethod.UDH16)
    assert [len(s.short_message) for s in segments] == [7 + 132, 7 + 132, 7 + 4]
    _, segments = split("中" * 134, method=ConcatMethod.SAR)
    assert [len(s.short_message) for s in segments] == [134, 134]
    _, segments = split("a" * 141, alphabet=Alphabet.ASCII, method=ConcatMethod.UDH16)
    assert [len(s.short_message) for s in segments] == [7 + 133, 7 + 8]


def test_split_at_most_255_parts() -> None:
    _, segments = split("a" * (153 * 255))
    assert len(segments) == 255
    with pytest.raises(ValueError, match="255"):
        split("a" * (153 * 255 + 1))


@pytest.mark.parametrize(
    ("method", "ref"),
    [
        (ConcatMethod.UDH8, 256),
        (ConcatMethod.UDH8, -1),
        (ConcatMethod.UDH16, 65536),
        (ConcatMethod.SAR, 65536),
    ],
)
def test_split_ref_out_of_range(method: ConcatMethod, ref: int) -> None:
    with pytest.raises(ValueError, match="ref"):
        split("a" * 200, method=method, ref=ref)


def test_split_unencodable_for_forced_alphabet() -> None:
    with pytest.raises(ValueError, match="GSM 7-bit"):
        split("中", alphabet=Alphabet.GSM7)


# --- parse_concat ---------------------------------------------------------------------------------


def test_parse_concat_port_ie_before_concat_ie() -> None:
    # UDHL 0B; IEI 05 (23.040 9.2.3.24.4, 16-bit ports) dest 0B84 src 23F0; IEI 00 ref A5 total 3 seq 2.
    sm = bytes.fromhex("0B05040B8423F00003A50302") + b"body"
    info, body = parse_concat(sm, EsmClass.UDHI, ())
    assert info == ConcatInfo(0xA5, 3, 2, ConcatMethod.UDH8)
    assert body == b"body"


def test_parse_concat_udh16() -> None:
    info, body = parse_concat(bytes.fromhex("06080412340201") + b"x", 0x40 | 0x03, ())
    assert info == ConcatInfo(0x1234, 2, 1, ConcatMethod.UDH16)
    assert body == b"x"


def test_parse_concat_udh_without_concat_ie() -> None:
    assert parse_concat(bytes.fromhex("0605040B8423F0") + b"x", EsmClass.UDHI, ()) == (None, b"x")
    assert parse_concat(b"\x00x", EsmClass.UDHI, ()) == (None, b"x")


def test_parse_concat_without_udhi_keeps_body() -> None:
    sm = bytes.fromhex("050003A50201") + b"x"
    assert parse_concat(sm, 0, ()) == (None, sm)
    assert parse_concat(b"", 0, ((Tag.USER_MESSAGE_REFERENCE, b"\x00\x01"),)) == (None, b"")


def test_parse_concat_last_concat_ie_wins() -> None:
    sm = bytes.fromhex("0A00030102010003020303") + b"x"
    assert parse_concat(sm, EsmClass.UDHI, ()) == (ConcatInfo(2, 3, 3, ConcatMethod.UDH8), b"x")


def test_parse_concat_sar() -> None:
    tlvs = [(0x020C, b"\x01\x02"), (0x020E, b"\x03"), (0x020F, b"\x01"), (0x1400, b"vendor")]
    assert parse_concat(b"x", 0, tlvs) == (ConcatInfo(0x0102, 3, 1, ConcatMethod.SAR), b"x")


def test_parse_concat_udh_wins_over_sar() -> None:
    tlvs = [(0x020C, b"\x01\x02"), (0x020E, b"\x03"), (0x020F, b"\x01")]
    info, _ = parse_concat(bytes.fromhex("050003070201"), EsmClass.UDHI, tlvs)
    assert info == ConcatInfo(7, 2, 1, ConcatMethod.UDH8)


@pytest.mark.parametrize(
    "sm",
    [
        b"",  # UDHI with nothing at all
        bytes.fromhex("06000301"),  # UDHL beyond the data
        bytes.fromhex("05000301"),
        bytes.fromhex("0100"),  # IE header cut short by UDHL
        bytes.fromhex("0300050102"),  # IE overruns the UDH
        bytes.fromhex("0400020102"),  # concat IE of the wrong length
        bytes.fromhex("050003010001"),  # total 0
        bytes.fromhex("050003010200"),  # seq 0
        bytes.fromhex("050003010203"),  # seq > total
        bytes.fromhex("06080401020203"),  # 16-bit, seq > total
    ],
)
def test_parse_concat_malformed_udh(sm: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as excinfo:
        parse_concat(sm, EsmClass.UDHI, ())
    assert excinfo.value.answer == CommandStatus.ESME_RINVMSGLEN
    assert not excinfo.value.close


@pytest.mark.parametrize(
    ("tlvs", "answer"),
    [
        ([(0x020C, b"\x00\x01"), (0x020E, b"\x02")], CommandStatus.ESME_RMISSINGOPTPARAM),
        ([(0x020F, b"\x01")], CommandStatus.ESME_RMISSINGOPTPARAM),
        ([(0x020C, b"\x01"), (0x020E, b"\x02"), (0x020F, b"\x01")], CommandStatus.ESME_RINVPARLEN),
        ([(0x020C, b"\x00\x01"), (0x020E, b"\x00\x02"), (0x020F, b"\x01")], CommandStatus.ESME_RINVPARLEN),
        ([(0x020C, b"\x00\x01"), (0x020E, b"\x02"), (0x020F, b"\x03")], CommandStatus.ESME_RINVOPTPARAMVAL),
        ([(0x020C, b"\x00\x01"), (0x020E, b"\x00"), (0x020F, b"\x00")], CommandStatus.ESME_RINVOPTPARAMVAL),
    ],
)
def test_parse_concat_bad_sar(tlvs: list[tuple[int, bytes]], answer: int) -> None:
    with pytest.raises(RemoteProtocolError) as excinfo:
        parse_concat(b"x", 0, tlvs)
    assert excinfo.value.answer == answer


TLV_TAGS = st.sampled_from([0x020C, 0x020E, 0x020F, 0x0005, 0x1400])


@settings(max_examples=500)
@given(
    st.binary(max_size=300) | st.binary(max_size=12).map(lambda b: bytes([len(b) + 1]) + b),
    st.integers(0, 255),
    st.lists(st.tuples(TLV_TAGS, st.binary(max_size=3)), max_size=4),
)
def test_parse_concat_fuzz(sm: bytes, esm_class: int, tlvs: list[tuple[int, bytes]]) -> None:
    try:
        info, body = parse_concat(sm, esm_class, tlvs)
    except RemoteProtocolError as exc:  # the only exception allowed out
        error: RemoteProtocolError | None = exc
    else:
        error = None
    if error is not None:
        assert error.answer is not None
        assert not error.close
        return
    assert sm.endswith(body)
    if info is not None:
        assert 1 <= info.seq <= info.total <= 255


# --- Reassembler ----------------------------------------------------------------------------------


def info(seq: int, total: int = 3, ref: int = 1) -> ConcatInfo:
    return ConcatInfo(ref, total, seq, ConcatMethod.UDH8)


def test_reassembler_duplicates_and_keys() -> None:
    r = Reassembler()
    assert r.add("a", info(2), b"B", 0.0) is None
    assert r.add("a", info(2), b"X", 0.0) is None  # duplicate seq: first copy kept
    assert r.add("b", info(1), b"other", 0.0) is None  # another peer's message with the same ref
    assert r.add("a", info(1, ref=2), b"other", 0.0) is None  # another ref
    assert r.add("a", info(1, total=4), b"other", 0.0) is None  # another total
    assert r.add("a", info(1), b"A", 0.0) is None
    assert len(r) == 4
    assert r.add("a", info(3), b"C", 0.0) == b"ABC"
    assert len(r) == 3


def test_reassembler_single_part_passes_through() -> None:
    r = Reassembler()
    assert r.add("a", info(1, total=1), b"all", 0.0) == b"all"
    assert len(r) == 0


def test_reassembler_rejects_impossible_info() -> None:
    with pytest.raises(ValueError, match="impossible"):
        Reassembler().add("a", info(4), b"", 0.0)
    with pytest.raises(ValueError, match="max_pending"):
        Reassembler(max_pending=0)


def test_reassembler_evicts_oldest() -> None:
    r = Reassembler(max_pending=2)
    r.add("a", info(1), b"A", 0.0)
    r.add("b", info(1), b"A", 1.0)
    r.add("c", info(1), b"A", 2.0)  # evicts "a"
    assert len(r) == 2
    r.add("a", info(2), b"B", 3.0)  # starts afresh, evicting "b"
    assert r.add("a", info(3), b"C", 3.0) is None
    assert r.add("c", info(2), b"B", 3.0) is None
    assert r.add("c", info(3), b"C", 3.0) == b"ABC"


def test_reassembler_expire() -> None:
    r = Reassembler(timeout=300.0)
    r.add("old", info(1), b"A", 0.0)
    r.add("new", info(1), b"A", 200.0)
    r.add("old", info(2), b"B", 250.0)  # later parts do not refresh the message
    assert r.expire(300.0) == []
    assert r.expire(300.5) == ["old"]
    assert len(r) == 1
    assert r.expire(1000.0) == ["new"]
    assert len(r) == 0


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 3), st.integers(2, 4), st.integers(1, 4)),
        max_size=300,
    ),
    st.integers(1, 8),
)
def test_reassembler_memory_bounded(adds: list[tuple[int, int, int, int]], max_pending: int) -> None:
    r = Reassembler(max_pending=max_pending, timeout=10.0)
    for now, (key, ref, total, seq) in enumerate(adds):
        out = r.add(key, ConcatInfo(ref, total, min(seq, total), ConcatMethod.UDH8), b"x", float(now))
        assert out is None or out == b"x" * total
        assert len(r) <= max_pending
        r.expire(float(now))
        assert len(r) <= min(max_pending, 11)


# --- flash ----------------------------------------------------------------------------------------


def test_flash_sms_gsm7() -> None:
    assert flash_sms("Fraud alert: hang up") == (0x10, b"Fraud alert: hang up", ((0x0005, b"\x01"),))
    assert FLASH_TLVS == ((Tag.DEST_ADDR_SUBUNIT, b"\x01"),)


def test_flash_sms_ucs2() -> None:
    dc, sm, tlvs = flash_sms("诈骗警告：请挂断")
    assert dc == 0x18
    assert decode(sm, dc) == "诈骗警告：请挂断"
    assert tlvs == ((0x0005, b"\x01"),)


def test_flash_sms_must_fit_one_sm() -> None:
    assert flash_sms("a" * 160)[0] == 0x10
    assert flash_sms("中" * 70)[0] == 0x18
    with pytest.raises(ValueError, match="one SM"):
        flash_sms("a" * 161)
    with pytest.raises(ValueError, match="one SM"):
        flash_sms("中" * 71)


def test_flash_segments() -> None:
    text = "诈骗警告" * 40
    dc, segments = flash_segments(text, ref=9)
    assert dc == 0x18
    assert len(segments) == 3
    assert all(s.short_message[:5] == bytes([5, 0, 3, 9, 3]) and s.tlvs == FLASH_TLVS for s in segments)
    assert reassemble(dc, segments) == text
    dc, segments = flash_segments("short")
    assert dc == 0x10
    assert segments == [Segment(b"short", False, FLASH_TLVS, 1, 1, 0)]


# --- round-trip properties ------------------------------------------------------------------------

# Lone surrogates are not text a person can send (encode refuses them with ValueError, tested above).
ANY_CHAR = st.characters(exclude_categories=("Cs",)) | st.sampled_from([EMOJI, "𝄞", "中", "€"])
# Hypothesis draws short texts; repeating a short pattern reaches multi-part lengths and puts
# surrogate pairs and escapes at every offset.
ANY_TEXT = st.text(ANY_CHAR, max_size=700) | st.builds(
    lambda pattern, times: pattern * times, st.text(ANY_CHAR, min_size=1, max_size=9), st.integers(1, 150)
)
GSM7_TEXT = st.text(st.sampled_from(GSM7_CHARS), max_size=1200) | st.builds(
    lambda pattern, times: pattern * times,
    st.text(st.sampled_from(GSM7_CHARS), min_size=1, max_size=9),
    st.integers(1, 150),
)
LATIN1_TEXT = st.text(st.characters(max_codepoint=0xFF), max_size=700)


@settings(max_examples=200)
@given(ANY_TEXT | GSM7_TEXT, st.sampled_from(ConcatMethod), st.integers(0, 255))
def test_split_round_trip(text: str, method: ConcatMethod, ref: int) -> None:
    dc, segments = split(text, method=method, ref=ref)
    assert dc == (0x00 if choose_alphabet(text) is Alphabet.GSM7 else 0x08)
    assert all(len(s.short_message) <= 140 or dc == 0x00 for s in segments)
    assert all(len(s.short_message) <= 160 for s in segments)
    order = list(range(len(segments)))
    random.Random(ref).shuffle(order)
    assert reassemble(dc, segments, order) == text


@given(LATIN1_TEXT, st.sampled_from(ConcatMethod))
def test_split_round_trip_latin1(text: str, method: ConcatMethod) -> None:
    dc, segments = split(text, alphabet=Alphabet.LATIN1, method=method)
    assert dc == 0x03
    assert all(len(s.short_message) <= 140 for s in segments)
    assert reassemble(dc, segments) == text


@given(GSM7_TEXT)
def test_gsm7_round_trip(text: str) -> None:
    assert gsm7_decode(gsm7_encode(text)) == text
    assert gsm7_septets(text) == len(text) + sum(ch in "^{}\\[~]|€\f" for ch in text)


@given(st.binary(max_size=300), st.integers(0, 0x1FF))
def test_decode_never_raises(data: bytes, data_coding: int) -> None:
    assert isinstance(decode(data, data_coding), str)


def test_lone_surrogate_is_refused_not_mangled() -> None:
    # A lone surrogate cannot be sent as UCS2; the caller hears so rather than a handset seeing garbage.
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        split("a\ud800b")
