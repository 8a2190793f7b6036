"""Streaming, strict readers for pcap and pcapng files.

Both yield :class:`Frame` values one at a time and never hold more than one record in memory.
They are strict where scapy's readers are lenient: a file that ends inside a record raises
:class:`~sensors.errors.CaptureTruncatedError` (scapy yields the cut packet or stops silently),
and a record length that cannot be right raises :class:`~sensors.errors.CaptureFormatError`
with the byte offset. A sensor that ships flows must know it read the whole file.

Formats: libpcap (microsecond and nanosecond, either byte order) and pcapng (SHB, IDB, EPB,
SPB and the obsolete PB; ``if_tsresol`` and ``if_tsoffset``; several sections and interfaces).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from sensors.errors import CaptureFormatError, CaptureTruncatedError

MAX_RECORD: Final = 1 << 24
"""Largest record accepted (16 MiB). libpcap caps snap lengths at 256 KiB; pcapng blocks can
carry options, so allow more, but a larger length only comes from a corrupt file."""

MAX_TS_NS: Final = 253_402_300_799 * 1_000_000_000
"""The last second of year 9999: a later timestamp (possible in pcapng's 64-bit field) is
corruption, and no date library can represent it."""

_PCAP_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"
_GZIP: Final = b"\x1f\x8b"


class Frame(NamedTuple):
    """One captured frame: time in nanoseconds since the epoch, link type, bytes, wire length."""

    ts_ns: int
    linktype: int
    data: bytes
    wirelen: int


def read_frames(path: Path) -> Iterator[Frame]:
    """Yield every frame of the capture at ``path``, in file order."""
    try:
        handle = path.open("rb", buffering=1 << 20)
    except OSError as exc:
        raise CaptureFormatError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        magic = handle.read(4)
        if len(magic) < 4:
            raise CaptureFormatError(f"{path}: empty or too short to be a capture")
        if magic in _PCAP_MAGIC:
            yield from _read_pcap(handle, path, *_PCAP_MAGIC[magic])
        elif magic == _PCAPNG_SHB:
            yield from _read_pcapng(handle, path)
        elif magic[:2] == _GZIP:
            raise CaptureFormatError(f"{path}: gzip-compressed; decompress it first")
        else:
            raise CaptureFormatError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")


def count_frames(path: Path) -> int:
    """Walk the whole file and return the number of frames, raising on any defect.

    Used before shipping so that a truncated or corrupt file is refused before any of its
    flows leave the host.
    """
    count = 0
    for _ in read_frames(path):
        count += 1
    return count


def _truncated(path: Path, at: int, complete: int) -> CaptureTruncatedError:
    return CaptureTruncatedError(
        f"{path}: truncated at byte {at}, inside a record, after {complete} complete packets",
        complete=complete,
    )


def _read_exact(handle: BinaryIO, size: int, path: Path, offset: int, complete: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise _truncated(path, offset + len(data), complete)
    return data


def _read_pcap(handle: BinaryIO, path: Path, endian: str, ns_per_tick: int) -> Iterator[Frame]:
    header = _read_exact(handle, 20, path, 4, 0)
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", header)
    linktype = network & 0xFFFF  # the link type is the low 16 bits; FCS information sits above
    limit = min(max(snaplen, 262_144), MAX_RECORD)
    record = struct.Struct(endian + "IIII")
    offset = 24
    count = 0
    read = handle.read
    while True:
        head = read(16)
        if not head:
            return
        if len(head) < 16:
            raise _truncated(path, offset + len(head), count)
        sec, frac, incl_len, orig_len = record.unpack(head)
        if incl_len > limit:
            raise CaptureFormatError(
                f"{path}: corrupt record at byte {offset}: captured length {incl_len} exceeds "
                f"the snap length {snaplen}"
            )
        data = read(incl_len)
        if len(data) != incl_len:
            raise _truncated(path, offset + 16 + len(data), count)
        offset += 16 + incl_len
        count += 1
        yield Frame(sec * 1_000_000_000 + frac * ns_per_tick, linktype, data, orig_len)


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    ts_units: int  # timestamp units per second
    ts_offset_ns: int


def _read_pcapng(handle: BinaryIO, path: Path) -> Iterator[Frame]:
    offset = 0
    count = 0
    endian = "<"
    interfaces: list[_Interface] = []
    block_type = _PCAPNG_SHB
    while True:
        if offset:
            block_type = handle.read(4)
            if not block_type:
                return
            if len(block_type) < 4:
                raise _truncated(path, offset + len(block_type), count)
        if block_type == _PCAPNG_SHB:
            head = _read_exact(handle, 8, path, offset + 4, count)
            bom = head[4:]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureFormatError(f"{path}: bad pcapng byte-order magic at byte {offset}")
            (total,) = struct.unpack(endian + "I", head[:4])
            if total < 28:  # type, length, byte-order magic, version, section length, trailer
                raise CaptureFormatError(f"{path}: section header too short at byte {offset}")
            _check_trailer(
                _body(handle, path, offset, total, count, 12), total, endian, path, offset
            )
            interfaces = []  # interface ids are local to a section
            offset += total
            continue
        (type_code,) = struct.unpack(endian + "I", block_type)
        (total,) = struct.unpack(endian + "I", _read_exact(handle, 4, path, offset + 4, count))
        body = _check_trailer(
            _body(handle, path, offset, total, count, 8), total, endian, path, offset
        )
        block_at = offset
        offset += total
        if type_code == 1:  # Interface Description Block
            interfaces.append(_interface(body, endian, path, block_at))
        elif type_code in (6, 2):  # Enhanced Packet Block; the obsolete Packet Block
            if len(body) < 20:
                raise CaptureFormatError(f"{path}: short packet block at byte {block_at}")
            if type_code == 6:
                iface_id, ts_high, ts_low, caplen, origlen = struct.unpack(
                    endian + "IIIII", body[:20]
                )
            else:
                iface_id, _drops, ts_high, ts_low, caplen, origlen = struct.unpack(
                    endian + "HHIIII", body[:20]
                )
            iface = _lookup(interfaces, iface_id, path, block_at)
            if 20 + caplen > len(body):
                raise CaptureFormatError(f"{path}: packet overruns its block at byte {block_at}")
            ts_ns = _to_ns((ts_high << 32) | ts_low, iface)
            if not 0 <= ts_ns <= MAX_TS_NS:
                raise CaptureFormatError(
                    f"{path}: packet at byte {block_at} has a timestamp outside years 1970-9999"
                )
            count += 1
            yield Frame(ts_ns, iface.linktype, body[20 : 20 + caplen], origlen)
        elif type_code == 3:  # Simple Packet Block: no timestamp, interface 0
            iface = _lookup(interfaces, 0, path, block_at)
            if len(body) < 4:
                raise CaptureFormatError(f"{path}: short packet block at byte {block_at}")
            (origlen,) = struct.unpack(endian + "I", body[:4])
            caplen = min(origlen, iface.snaplen or origlen, len(body) - 4)
            count += 1
            yield Frame(0, iface.linktype, body[4 : 4 + caplen], origlen)
        # Other blocks (name resolution, statistics, custom, ...) carry no packets.


def _body(handle: BinaryIO, path: Path, offset: int, total: int, count: int, read: int) -> bytes:
    if total < 12 or total % 4 or total > MAX_RECORD:
        raise CaptureFormatError(f"{path}: corrupt pcapng block length {total} at byte {offset}")
    return _read_exact(handle, total - read, path, offset + read, count)


def _check_trailer(block: bytes, total: int, endian: str, path: Path, at: int) -> bytes:
    """Return the block body without its trailing length, which must repeat the leading one."""
    if struct.unpack(endian + "I", block[-4:])[0] != total:
        raise CaptureFormatError(f"{path}: pcapng block at byte {at} has a bad trailing length")
    return block[:-4]


def _lookup(interfaces: list[_Interface], iface_id: int, path: Path, at: int) -> _Interface:
    if iface_id >= len(interfaces):
        raise CaptureFormatError(f"{path}: packet at byte {at} names unknown interface {iface_id}")
    return interfaces[iface_id]


def _interface(body: bytes, endian: str, path: Path, at: int) -> _Interface:
    if len(body) < 8:
        raise CaptureFormatError(f"{path}: short interface block at byte {at}")
    linktype, _reserved, snaplen = struct.unpack(endian + "HHI", body[:8])
    units = 1_000_000
    offset_ns = 0
    pos = 8
    while pos + 4 <= len(body):
        code, length = struct.unpack(endian + "HH", body[pos : pos + 4])
        if pos + 4 + length > len(body):
            raise CaptureFormatError(f"{path}: interface option overruns its block at byte {at}")
        value = body[pos + 4 : pos + 4 + length]
        if code == 0:  # opt_endofopt
            break
        if code == 9 and length >= 1:  # if_tsresol
            exponent = value[0] & 0x7F
            units = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == 14 and length >= 8:  # if_tsoffset, seconds
            offset_ns = struct.unpack(endian + "q", value[:8])[0] * 1_000_000_000
        pos += 4 + length + (-length % 4)
    if units <= 0 or units > 10**18:
        raise CaptureFormatError(f"{path}: unsupported timestamp resolution at byte {at}")
    return _Interface(linktype, snaplen, units, offset_ns)


def _to_ns(ticks: int, iface: _Interface) -> int:
    if iface.ts_units == 1_000_000:
        return ticks * 1_000 + iface.ts_offset_ns
    return ticks * 1_000_000_000 // iface.ts_units + iface.ts_offset_ns
