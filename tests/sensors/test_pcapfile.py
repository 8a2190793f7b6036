"""The strict capture reader on captures built byte by byte, on damaged files, and on the shared
reference captures cross-checked against scapy's readers.

The captures here are written with :mod:`struct` straight from the formats' specifications
(libpcap: https://www.tcpdump.org/manpages/pcap-savefile.5.html, pcapng:
https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html), not with scapy's writer, so
that a mistake shared by the writer and the reader cannot hide.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapNgReader, RawPcapReader

from sensors.errors import CaptureError, CaptureFormatError, CaptureTruncatedError
from sensors.pcapfile import MAX_RECORD, Frame, count_frames, read_frames
from tests.conftest import SHARED_DATA, shared_capture

NS = 1_000_000_000
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, in seconds
ETHERNET, RAW, LINUX_SLL = 1, 101, 113

# Any bytes will do as frame contents: the reader does not look inside a frame.
FRAME_A = bytes(range(60))
FRAME_B = b"\xff" * 7
FRAME_C = bytes(range(200, 213))

# libpcap magics as they appear in the file, byte for byte.
MAGIC = {
    ("<", "us"): bytes.fromhex("d4c3b2a1"),
    (">", "us"): bytes.fromhex("a1b2c3d4"),
    ("<", "ns"): bytes.fromhex("4d3cb2a1"),
    (">", "ns"): bytes.fromhex("a1b23c4d"),
}
SHB_TYPE = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
IDB, SPB, EPB, PB = 1, 3, 6, 2


# --- libpcap --------------------------------------------------------------------------------


def pcap_header(
    endian: str = "<", unit: str = "us", snaplen: int = 65_535, network: int = ETHERNET
) -> bytes:
    """The 24-byte file header: magic, version 2.4, zone, sigfigs, snap length, link type."""
    return MAGIC[endian, unit] + struct.pack(endian + "HHiIII", 2, 4, 0, 0, snaplen, network)


def pcap_record(
    data: bytes, sec: int, frac: int, endian: str = "<", wirelen: int | None = None
) -> bytes:
    """A 16-byte record header (seconds, fraction, captured length, wire length) and the data."""
    wire = len(data) if wirelen is None else wirelen
    return struct.pack(endian + "IIII", sec, frac, len(data), wire) + data


# --- pcapng ---------------------------------------------------------------------------------


def pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def block(endian: str, type_code: int, body: bytes) -> bytes:
    """A pcapng block: type, total length, body padded to 32 bits, total length again."""
    body = pad4(body)
    total = 12 + len(body)
    return struct.pack(endian + "II", type_code, total) + body + struct.pack(endian + "I", total)


def shb(endian: str = "<") -> bytes:
    """Section Header Block, version 1.0, section length unknown (-1), no options."""
    return block(endian, SHB_TYPE, struct.pack(endian + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1))


def option(endian: str, code: int, value: bytes) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + pad4(value)


def idb(endian: str, linktype: int, snaplen: int = 0, options: bytes = b"") -> bytes:
    """Interface Description Block; options, when given, end with opt_endofopt."""
    if options:
        options += option(endian, 0, b"")
    return block(endian, IDB, struct.pack(endian + "HHI", linktype, 0, snaplen) + options)


def tsresol(endian: str, value: int) -> bytes:
    """if_tsresol (code 9): 10^-n seconds, or 2^-n seconds when the top bit is set."""
    return option(endian, 9, bytes([value]))


def tsoffset(endian: str, seconds: int) -> bytes:
    """if_tsoffset (code 14): seconds added to every timestamp of the interface."""
    return option(endian, 14, struct.pack(endian + "q", seconds))


def epb(endian: str, iface: int, ticks: int, data: bytes, wirelen: int | None = None) -> bytes:
    """Enhanced Packet Block: interface, timestamp (high, low 32 bits), lengths, data."""
    wire = len(data) if wirelen is None else wirelen
    head = struct.pack(endian + "IIIII", iface, ticks >> 32, ticks & 0xFFFF_FFFF, len(data), wire)
    return block(endian, EPB, head + data)


def spb(endian: str, data: bytes, wirelen: int | None = None) -> bytes:
    """Simple Packet Block: original length and data; no timestamp, always interface 0."""
    wire = len(data) if wirelen is None else wirelen
    return block(endian, SPB, struct.pack(endian + "I", wire) + data)


def obsolete_pb(endian: str, iface: int, ticks: int, data: bytes) -> bytes:
    """The obsolete Packet Block: 16-bit interface, drops, timestamp, lengths, data."""
    head = struct.pack(
        endian + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFF_FFFF, len(data), len(data)
    )
    return block(endian, PB, head + data)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[bytes], Path]:
    """Write bytes to a fresh file in the test's directory and return its path."""
    counter = iter(range(1_000_000))

    def _write(data: bytes) -> Path:
        path = tmp_path / f"capture-{next(counter)}.pcap"
        path.write_bytes(data)
        return path

    return _write


# --- libpcap: exact values ------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_libpcap_microsecond_frames_have_exact_values(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        pcap_header(endian, "us", network=ETHERNET)
        + pcap_record(FRAME_A, T0, 0, endian)
        + pcap_record(FRAME_B, T0 + 1, 999_999, endian, wirelen=1_514)
        + pcap_record(b"", T0 + 2, 1, endian, wirelen=0)
    )
    assert [
        Frame(T0 * NS, ETHERNET, FRAME_A, 60),
        Frame((T0 + 1) * NS + 999_999_000, ETHERNET, FRAME_B, 1_514),
        Frame((T0 + 2) * NS + 1_000, ETHERNET, b"", 0),
    ] == list(read_frames(path))
    assert count_frames(path) == 3


@pytest.mark.parametrize("endian", ["<", ">"])
def test_libpcap_nanosecond_frames_have_exact_values(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        pcap_header(endian, "ns", network=RAW)
        + pcap_record(FRAME_C, T0, 999_999_999, endian)
        + pcap_record(FRAME_A, T0 + 3, 1, endian, wirelen=9_000)
    )
    assert [
        Frame(T0 * NS + 999_999_999, RAW, FRAME_C, 13),
        Frame((T0 + 3) * NS + 1, RAW, FRAME_A, 9_000),
    ] == list(read_frames(path))


def test_libpcap_header_alone_is_a_capture_of_no_frames(write: Callable[[bytes], Path]) -> None:
    path = write(pcap_header(">", "ns"))
    assert list(read_frames(path)) == []
    assert count_frames(path) == 0


def test_libpcap_link_type_ignores_the_fcs_length_bits(write: Callable[[bytes], Path]) -> None:
    # libpcap's LT_FCS_DATALINK_EXT(n): FCS length in bits 28-31 and the "FCS length present"
    # flag in bit 26 (0x04000000); the link type proper is the low 16 bits (LT_LINKTYPE).
    network = (2 << 28) | 0x0400_0000 | ETHERNET
    path = write(pcap_header("<", network=network) + pcap_record(FRAME_B, T0, 0))
    assert [Frame(T0 * NS, ETHERNET, FRAME_B, 7)] == list(read_frames(path))


def test_libpcap_record_longer_than_the_snap_length_is_corrupt(
    write: Callable[[bytes], Path],
) -> None:
    # The reader tolerates records up to libpcap's own maximum (256 KiB) whatever the header's
    # snap length says, as libpcap does; a million bytes is beyond both.
    path = write(
        pcap_header("<", snaplen=65_535)
        + pcap_record(FRAME_A, T0, 0)
        + struct.pack("<IIII", T0, 0, 1_000_000, 1_000_000)
        + bytes(100)
    )
    frames = read_frames(path)
    assert Frame(T0 * NS, ETHERNET, FRAME_A, 60) == next(frames)
    with pytest.raises(CaptureFormatError) as info:
        next(frames)
    assert (
        f"{path}: corrupt record at byte 100: captured length 1000000 exceeds the snap length 65535"
    ) == str(info.value)


def test_libpcap_record_longer_than_max_record_is_corrupt_whatever_the_snap_length(
    write: Callable[[bytes], Path],
) -> None:
    # A corrupt header can claim any snap length; MAX_RECORD is "the largest record accepted",
    # so the record length alone must be refused, before any attempt to read that much.
    path = write(
        pcap_header("<", snaplen=0xFFFF_FFFF)
        + struct.pack("<IIII", T0, 0, MAX_RECORD + 1, MAX_RECORD + 1)
        + bytes(100)
    )
    with pytest.raises(CaptureFormatError, match=r"corrupt record at byte 24\b"):
        count_frames(path)


# --- pcapng: exact values -------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_enhanced_packets_at_the_default_microsecond_resolution(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        shb(endian)
        + idb(endian, ETHERNET, snaplen=65_535)
        + epb(endian, 0, T0 * 1_000_000 + 123_456, FRAME_A)
        + epb(endian, 0, (T0 + 1) * 1_000_000, FRAME_B, wirelen=1_514)
    )
    assert [
        Frame(T0 * NS + 123_456_000, ETHERNET, FRAME_A, 60),
        Frame((T0 + 1) * NS, ETHERNET, FRAME_B, 1_514),
    ] == list(read_frames(path))


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_if_tsresol_in_powers_of_ten_and_of_two(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        shb(endian)
        + idb(endian, ETHERNET, options=tsresol(endian, 9))  # 10^-9 s
        + idb(endian, ETHERNET, options=tsresol(endian, 0x80 | 10))  # 2^-10 s
        + idb(endian, ETHERNET, options=tsresol(endian, 3))  # 10^-3 s
        + epb(endian, 0, T0 * NS + 123_456_789, FRAME_A)
        + epb(endian, 1, T0 * 1024 + 256, FRAME_B)  # a quarter second
        + epb(endian, 1, T0 * 1024 + 1, FRAME_B)  # 976,562.5 ns, floored
        + epb(endian, 2, T0 * 1000 + 7, FRAME_C)
    )
    assert [
        Frame(T0 * NS + 123_456_789, ETHERNET, FRAME_A, 60),
        Frame(T0 * NS + 250_000_000, ETHERNET, FRAME_B, 7),
        Frame(T0 * NS + 976_562, ETHERNET, FRAME_B, 7),
        Frame(T0 * NS + 7_000_000, ETHERNET, FRAME_C, 13),
    ] == list(read_frames(path))


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_if_tsoffset_is_added_in_seconds(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        shb(endian)
        + idb(endian, ETHERNET, options=tsoffset(endian, T0))
        + idb(endian, RAW, options=tsresol(endian, 9) + tsoffset(endian, -3_600))
        + epb(endian, 0, 1_500_000, FRAME_A)  # 1.5 s after the offset
        + epb(endian, 1, (T0 + 3_600) * NS + 5, FRAME_B)
    )
    assert [
        Frame(T0 * NS + 1_500_000_000, ETHERNET, FRAME_A, 60),
        Frame(T0 * NS + 5, RAW, FRAME_B, 7),
    ] == list(read_frames(path))


def test_pcapng_unsupported_timestamp_resolution_is_refused(
    write: Callable[[bytes], Path],
) -> None:
    path = write(shb() + idb("<", ETHERNET, options=tsresol("<", 19)))  # 10^-19 s
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: unsupported timestamp resolution at byte 28" == str(info.value)


def test_pcapng_two_interfaces_with_different_link_types(
    write: Callable[[bytes], Path],
) -> None:
    path = write(
        shb()
        + idb("<", ETHERNET)
        + idb("<", LINUX_SLL)
        + epb("<", 1, T0 * 1_000_000, FRAME_A)
        + epb("<", 0, T0 * 1_000_000 + 1, FRAME_B)
        + epb("<", 1, T0 * 1_000_000 + 2, FRAME_C)
    )
    assert [
        Frame(T0 * NS, LINUX_SLL, FRAME_A, 60),
        Frame(T0 * NS + 1_000, ETHERNET, FRAME_B, 7),
        Frame(T0 * NS + 2_000, LINUX_SLL, FRAME_C, 13),
    ] == list(read_frames(path))


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_simple_packet_blocks_have_no_time_and_respect_the_snap_length(
    endian: str, write: Callable[[bytes], Path]
) -> None:
    path = write(
        shb(endian)
        + idb(endian, RAW, snaplen=32)
        + spb(endian, FRAME_B)  # 7 bytes, padded to 8 in the block
        + spb(endian, FRAME_A[:32], wirelen=60)  # cut to the interface's snap length
    )
    assert [
        Frame(0, RAW, FRAME_B, 7),
        Frame(0, RAW, FRAME_A[:32], 60),
    ] == list(read_frames(path))


def test_pcapng_obsolete_packet_block(write: Callable[[bytes], Path]) -> None:
    path = write(shb() + idb("<", ETHERNET) + obsolete_pb("<", 0, T0 * 1_000_000 + 9, FRAME_C))
    assert [Frame(T0 * NS + 9_000, ETHERNET, FRAME_C, 13)] == list(read_frames(path))


def test_pcapng_blocks_without_packets_are_skipped(write: Callable[[bytes], Path]) -> None:
    name_resolution = block("<", 4, struct.pack("<HH", 0, 0))
    statistics = block("<", 5, struct.pack("<III", 0, 0, 0))
    custom = block("<", 0x0000_0BAD, struct.pack("<I", 32473) + b"anything at all")
    unknown = block("<", 0x1234_5678, b"\x00" * 20)
    path = write(
        shb()
        + name_resolution
        + idb("<", ETHERNET)
        + custom
        + epb("<", 0, 1, FRAME_A)
        + unknown
        + statistics
        + epb("<", 0, 2, FRAME_B)
    )
    assert [
        Frame(1_000, ETHERNET, FRAME_A, 60),
        Frame(2_000, ETHERNET, FRAME_B, 7),
    ] == list(read_frames(path))


def test_pcapng_a_new_section_resets_interfaces_and_may_change_byte_order(
    write: Callable[[bytes], Path],
) -> None:
    first = shb("<") + idb("<", ETHERNET) + idb("<", RAW) + epb("<", 1, 1, FRAME_A)
    second = shb(">") + idb(">", LINUX_SLL, options=tsresol(">", 9)) + epb(">", 0, 5, FRAME_B)
    path = write(first + second)
    assert [
        Frame(1_000, RAW, FRAME_A, 60),
        Frame(5, LINUX_SLL, FRAME_B, 7),
    ] == list(read_frames(path))

    # Interface 1 existed in the first section only.
    stale = write(first + shb(">") + idb(">", LINUX_SLL) + epb(">", 1, 5, FRAME_B))
    at = len(first) + 28 + 20
    with pytest.raises(CaptureFormatError) as info:
        count_frames(stale)
    assert f"{stale}: packet at byte {at} names unknown interface 1" == str(info.value)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3\xb2"], ids=["empty", "3-bytes"])
def test_too_short_to_be_a_capture(data: bytes, write: Callable[[bytes], Path]) -> None:
    path = write(data)
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: empty or too short to be a capture" == str(info.value)


def test_text_is_not_a_capture(write: Callable[[bytes], Path]) -> None:
    path = write(b"Hello, this is a README and not a capture.\n")
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: not a pcap or pcapng file (magic 48656c6c)" == str(info.value)


def test_gzip_compressed_capture_asks_to_be_decompressed(
    write: Callable[[bytes], Path],
) -> None:
    path = write(gzip.compress(pcap_header() + pcap_record(FRAME_A, T0, 0)))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: gzip-compressed; decompress it first" == str(info.value)


def test_missing_file_is_a_capture_error_from_the_os_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.pcap"
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: cannot open: No such file or directory" == str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_pcapng_bad_byte_order_magic(write: Callable[[bytes], Path]) -> None:
    bad = struct.pack("<IIIHHq", SHB_TYPE, 28, 0x1A2B3C4E, 1, 0, -1) + struct.pack("<I", 28)
    path = write(bad)
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: bad pcapng byte-order magic at byte 0" == str(info.value)

    later = write(shb() + idb("<", ETHERNET) + bad)
    with pytest.raises(CaptureFormatError) as info:
        count_frames(later)
    assert f"{later}: bad pcapng byte-order magic at byte 48" == str(info.value)


def test_pcapng_bad_trailing_length(write: Callable[[bytes], Path]) -> None:
    good = idb("<", ETHERNET)
    bad = good[:-4] + struct.pack("<I", len(good) + 4)
    path = write(shb() + bad + epb("<", 0, 1, FRAME_A))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: pcapng block at byte 28 has a bad trailing length" == str(info.value)


@pytest.mark.parametrize(
    "total", [8, 30, MAX_RECORD + 4, 0xFFFF_FFFC], ids=["short", "unaligned", "huge", "4GiB"]
)
def test_pcapng_impossible_block_length(total: int, write: Callable[[bytes], Path]) -> None:
    path = write(shb() + struct.pack("<II", EPB, total) + bytes(64))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: corrupt pcapng block length {total} at byte 28" == str(info.value)


def test_pcapng_packet_naming_an_unknown_interface(write: Callable[[bytes], Path]) -> None:
    path = write(shb() + idb("<", ETHERNET) + epb("<", 0, 1, FRAME_A) + epb("<", 1, 2, FRAME_B))
    frames = read_frames(path)
    assert Frame(1_000, ETHERNET, FRAME_A, 60) == next(frames)
    with pytest.raises(CaptureFormatError) as info:
        next(frames)
    assert f"{path}: packet at byte {28 + 20 + 92} names unknown interface 1" == str(info.value)


def test_pcapng_packet_before_any_interface(write: Callable[[bytes], Path]) -> None:
    path = write(shb() + spb("<", FRAME_A))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: packet at byte 28 names unknown interface 0" == str(info.value)


def test_pcapng_enhanced_packet_overrunning_its_block(write: Callable[[bytes], Path]) -> None:
    body = struct.pack("<IIIII", 0, 0, 1, 100, 100) + FRAME_A  # says 100 bytes, carries 60
    path = write(shb() + idb("<", ETHERNET) + block("<", EPB, body))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: packet overruns its block at byte 48" == str(info.value)


def test_pcapng_enhanced_packet_block_too_short(write: Callable[[bytes], Path]) -> None:
    path = write(shb() + idb("<", ETHERNET) + block("<", EPB, bytes(16)))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: short packet block at byte 48" == str(info.value)


def test_pcapng_interface_block_too_short(write: Callable[[bytes], Path]) -> None:
    path = write(shb() + block("<", IDB, bytes(4)))
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: short interface block at byte 28" == str(info.value)


def _raw_block(type_code: int, body: bytes) -> bytes:
    """A block with exactly ``body`` between its lengths: no padding added, for bad bodies."""
    total = 12 + len(body)
    return struct.pack("<II", type_code, total) + body + struct.pack("<I", total)


@pytest.mark.parametrize(
    ("data", "at"),
    [
        # A Section Header Block needs 28 bytes (type, length, magic, version, section
        # length, trailer); 12 leaves no room even for the trailing length.
        (struct.pack("<III", SHB_TYPE, 12, BYTE_ORDER_MAGIC), 0),
        # A Simple Packet Block with no original-length field.
        (shb() + idb("<", ETHERNET) + _raw_block(SPB, b""), 48),
        # An obsolete Packet Block with 8 of its 20 header bytes.
        (shb() + idb("<", ETHERNET) + _raw_block(PB, bytes(8)), 48),
        # An obsolete Packet Block claiming 100 captured bytes and carrying 4.
        (
            shb()
            + idb("<", ETHERNET)
            + _raw_block(PB, struct.pack("<HHIIII", 0, 0, 0, 1, 100, 100) + b"abcd"),
            48,
        ),
        # if_tsoffset announcing 8 bytes, of which the block holds 4.
        (shb() + _raw_block(IDB, struct.pack("<HHIHH", 1, 0, 0, 14, 8) + bytes(4)), 28),
        # if_tsresol announcing 1 byte, of which the block holds none.
        (shb() + _raw_block(IDB, struct.pack("<HHIHH", 1, 0, 0, 9, 1)), 28),
    ],
    ids=[
        "shb-length-12",
        "spb-empty",
        "pb-short-header",
        "pb-overrun",
        "if_tsoffset-overrun",
        "if_tsresol-overrun",
    ],
)
def test_pcapng_block_too_short_for_its_contents_is_a_format_error(
    data: bytes, at: int, write: Callable[[bytes], Path]
) -> None:
    # Every defect must surface as a CaptureError naming the byte, never struct.error or
    # IndexError from the middle of the parser, nor a silently shortened packet.
    path = write(data)
    with pytest.raises(CaptureFormatError, match=rf"\bbyte {at}\b"):
        count_frames(path)


# --- truncation at every byte ---------------------------------------------------------------

Piece = tuple[bytes, Frame | None]


def _pcap_pieces() -> list[Piece]:
    return [
        (pcap_header("<", "us"), None),
        (pcap_record(FRAME_A, T0, 1), Frame(T0 * NS + 1_000, ETHERNET, FRAME_A, 60)),
        (pcap_record(b"", T0, 2, wirelen=0), Frame(T0 * NS + 2_000, ETHERNET, b"", 0)),
        (pcap_record(FRAME_B, T0, 3), Frame(T0 * NS + 3_000, ETHERNET, FRAME_B, 7)),
    ]


def _pcapng_pieces() -> list[Piece]:
    return [
        (shb(">"), None),
        (idb(">", ETHERNET, options=tsresol(">", 9)), None),
        (epb(">", 0, 11, FRAME_B), Frame(11, ETHERNET, FRAME_B, 7)),
        (block(">", 0x1234_5678, b"skip me"), None),
        (spb(">", FRAME_C), Frame(0, ETHERNET, FRAME_C, 13)),
        (idb(">", RAW), None),
        (epb(">", 1, 12, FRAME_A), Frame(12_000, RAW, FRAME_A, 60)),  # microseconds
    ]


def _outcome(path: Path) -> tuple[object, ...]:
    try:
        return ("frames", list(read_frames(path)))
    except CaptureTruncatedError as exc:
        return ("truncated", exc.complete, str(exc))
    except CaptureFormatError as exc:
        return ("format", str(exc))


@pytest.mark.parametrize("pieces", [_pcap_pieces(), _pcapng_pieces()], ids=["pcap", "pcapng"])
def test_a_cut_at_every_byte_is_either_truncated_or_a_shorter_capture(
    pieces: list[Piece], tmp_path: Path
) -> None:
    data = b"".join(chunk for chunk, _ in pieces)
    boundaries: dict[int, list[Frame]] = {}
    end = 0
    frames: list[Frame] = []
    for chunk, frame in pieces:
        end += len(chunk)
        if frame is not None:
            frames.append(frame)
        boundaries[end] = list(frames)

    path = tmp_path / "cut.pcap"
    expected: list[tuple[object, ...]] = []
    actual: list[tuple[object, ...]] = []
    for cut in range(len(data) + 1):
        last_boundary = max((at for at in boundaries if at <= cut), default=None)
        complete = 0 if last_boundary is None else len(boundaries[last_boundary])
        if cut < 4:
            # Not even a whole magic number: nothing says this was ever a capture.
            expected.append(("format", f"{path}: empty or too short to be a capture"))
        elif cut in boundaries:
            # A cut exactly between two records cannot be told from a file that really ended
            # there: it reads as a shorter, valid capture. Only a cut inside a record is
            # detectable.
            expected.append(("frames", boundaries[cut]))
        else:
            expected.append(
                (
                    "truncated",
                    complete,
                    f"{path}: truncated at byte {cut}, inside a record, after {complete} "
                    "complete packets",
                )
            )
        path.write_bytes(data[:cut])
        actual.append(_outcome(path))
    assert expected == actual
    assert ("frames", frames) == actual[-1]


# --- streaming ------------------------------------------------------------------------------


def test_read_frames_yields_the_first_frame_before_reaching_a_garbage_tail(
    write: Callable[[bytes], Path],
) -> None:
    garbage = b"\xde\xad\xbe\xef" * 64  # as a record header: 4,022,250,974 bytes
    path = write(pcap_header() + pcap_record(FRAME_A, T0, 0) + garbage)
    frames = read_frames(path)
    assert Frame(T0 * NS, ETHERNET, FRAME_A, 60) == next(frames)
    with pytest.raises(CaptureFormatError, match=r"corrupt record at byte 100\b"):
        next(frames)

    ng = write(shb() + idb("<", ETHERNET) + epb("<", 0, 1, FRAME_B) + garbage)
    frames = read_frames(ng)
    assert Frame(1_000, ETHERNET, FRAME_B, 7) == next(frames)
    with pytest.raises(CaptureFormatError, match=r"corrupt pcapng block length \d+ at byte 88"):
        next(frames)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_read_frames_yields_from_a_pipe_before_the_writer_has_finished(tmp_path: Path) -> None:
    # If the reader read to the end of the file before yielding, the first next() would wait
    # for the writer, which only finishes after the test has seen frame 1 (or after 10 s).
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    first_seen = threading.Event()

    def writer() -> None:
        with fifo.open("wb") as out:
            out.write(pcap_header() + pcap_record(FRAME_A, T0, 0))
            out.flush()
            if first_seen.wait(timeout=10):
                out.write(pcap_record(FRAME_B, T0 + 1, 0))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    frames = read_frames(fifo)
    assert Frame(T0 * NS, ETHERNET, FRAME_A, 60) == next(frames)
    first_seen.set()
    assert [Frame((T0 + 1) * NS, ETHERNET, FRAME_B, 7)] == list(frames)
    thread.join(timeout=10)


# --- damaged files never raise anything but CaptureError ------------------------------------

_SEED_PCAP = b"".join(chunk for chunk, _ in _pcap_pieces())
_SEED_PCAPNG = b"".join(chunk for chunk, _ in _pcapng_pieces())


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([_SEED_PCAP, _SEED_PCAPNG])))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "byte", "word", "cut", "insert"]))
        if kind == "word":
            # Lengths and counts are aligned 32-bit words; small values make them lie.
            at -= at % 4
            order = draw(st.sampled_from(["<", ">"]))
            data[at : at + 4] = struct.pack(order + "I", draw(st.integers(0, 64)))
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=_damaged())
def test_damaged_captures_raise_only_capture_errors(data: bytes, tmp_path: Path) -> None:
    # The same file is rewritten for every example, so sharing tmp_path is harmless.
    path = tmp_path / "damaged.pcap"
    path.write_bytes(data)
    with contextlib.suppress(CaptureError):
        count_frames(path)


@st.composite
def _framed_blocks(draw: st.DrawFn) -> bytes:
    """A pcapng file whose blocks are all correctly framed (lengths agree and are aligned) but
    whose bodies are arbitrary: reaches the per-block parsers, which byte flips rarely do."""
    endian = draw(st.sampled_from(["<", ">"]))
    data = shb(endian)
    for _ in range(draw(st.integers(1, 5))):
        type_code = draw(st.sampled_from([IDB, IDB, EPB, SPB, PB, 4, 5, SHB_TYPE]))
        if type_code == IDB and draw(st.booleans()):
            body = struct.pack(endian + "HHI", ETHERNET, 0, draw(st.integers(0, 100)))
            for _ in range(draw(st.integers(0, 3))):
                code = draw(st.sampled_from([0, 2, 9, 14]))
                length = draw(st.integers(0, 12))
                value = draw(st.binary(max_size=length))  # may stop short of its length
                body += struct.pack(endian + "HH", code, length) + value
        elif type_code == SHB_TYPE:
            body = struct.pack(endian + "I", BYTE_ORDER_MAGIC) + draw(st.binary(max_size=16))
        else:
            body = draw(st.binary(max_size=48))
        body = pad4(body)
        if type_code == SHB_TYPE and draw(st.booleans()):
            # The shortest a block can claim to be: type, length, and a 4-byte "trailer".
            data += struct.pack(endian + "II", type_code, 12) + body[:4]
            continue
        total = 12 + len(body)
        data += (
            struct.pack(endian + "II", type_code, total) + body + struct.pack(endian + "I", total)
        )
    return data


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=_framed_blocks())
def test_well_framed_blocks_with_arbitrary_bodies_raise_only_capture_errors(
    data: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "framed.pcapng"
    path.write_bytes(data)
    with contextlib.suppress(CaptureError):
        count_frames(path)


# --- the shared reference captures ----------------------------------------------------------


def _shared_pcaps() -> list[str]:
    if not SHARED_DATA.is_dir():
        return ["<absent>"]  # shared_capture() turns this into a skip that says why
    return sorted(str(p.relative_to(SHARED_DATA)) for p in SHARED_DATA.rglob("*.pcap"))


@pytest.mark.parametrize("relative", _shared_pcaps())
def test_shared_capture_reads_the_same_frames_as_scapy(relative: str) -> None:
    # Every shared file agrees today. Where one day they differ it will be a damaged tail:
    # scapy yields the cut packet or stops silently, this reader raises.
    path = shared_capture(relative)
    ours = list(read_frames(path))
    assert count_frames(path) == len(ours)
    if path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a":
        with RawPcapNgReader(str(path)) as reader:
            assert sum(1 for _ in reader) == len(ours)
        return
    with RawPcapReader(str(path)) as reader:
        tick = 1 if reader.nano else 1_000
        # scapy's iterator hands back at most 65,535 bytes of a frame (its MTU).
        theirs = [
            Frame(meta.sec * NS + meta.usec * tick, reader.linktype, data, meta.wirelen)
            for data, meta in reader
        ]
    assert theirs == [frame._replace(data=frame.data[:65_535]) for frame in ours]


@pytest.mark.parametrize(
    ("options", "ticks"),
    [
        (b"", 0xFFFF_FFFF_FFFF_FFFF),  # microseconds: year 586,524
        (tsoffset("<", -10), 0),  # before 1970
    ],
)
def test_a_timestamp_no_date_can_hold_is_a_format_error(
    write: Callable[[bytes], Path], options: bytes, ticks: int
) -> None:
    # Caught by the whole-file check, so a sensor refuses the capture before shipping any of it.
    path = write(
        shb()
        + idb("<", ETHERNET, options=options)
        + epb("<", 0, 1, FRAME_A)
        + epb("<", 0, ticks, FRAME_A)
    )
    with pytest.raises(CaptureFormatError) as info:
        count_frames(path)
    assert f"{path}: packet at byte " in str(info.value)
    assert "has a timestamp outside years 1970-9999" in str(info.value)
