"""TLS ClientHello: the server name, the offered version, and the JA3 fingerprint.

Reads the first handshake record a client sends. A ClientHello with post-quantum key shares
is larger than one segment, and browsers shuffle their extensions, so the server name may sit
in the second segment: :func:`parse_client_hello` says when it needs more bytes, and the
caller buffers (bounded) until the record is whole.

JA3 is ``md5("version,ciphers,extensions,groups,point formats")`` over decimal values joined
with ``-``, GREASE values left out (https://github.com/salesforce/ja3).

>>> hello = client_hello_for_tests("portal.example.gov")
>>> result = parse_client_hello(hello)
>>> (result.server_name, result.version)
('portal.example.gov', '1.3')
>>> parse_client_hello(hello[:40]) is NEED_MORE
True
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final, NamedTuple

MAX_RECORD: Final = 16 * 1024 + 256  # a TLS plaintext record is at most 2^14 bytes (+ header)


class ClientHello(NamedTuple):
    server_name: str | None
    version: str  # "1.0" .. "1.3", the highest offered
    ja3: str  # the JA3 string
    ja3_hash: str  # its MD5, as JA3 defines it


class _NeedMore:
    """Sentinel: the record is not complete yet."""

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE: Final = _NeedMore()

_VERSIONS: Final = {0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}


def looks_like_tls(payload: bytes) -> bool:
    """A handshake record of SSL 3.0 or TLS, carrying a ClientHello."""
    return len(payload) >= 6 and payload[0] == 0x16 and payload[1] == 3 and payload[5] == 1


def parse_client_hello(payload: bytes) -> ClientHello | _NeedMore | None:
    """Parse the ClientHello at the start of ``payload`` (a client's first bytes).

    ``NEED_MORE`` when the record is cut short; ``None`` when it is not a ClientHello.
    """
    if not looks_like_tls(payload):
        return None
    record_len = (payload[3] << 8) | payload[4]
    if record_len > MAX_RECORD:
        return None
    if len(payload) < 5 + record_len:
        return NEED_MORE
    try:
        return _parse(payload[5 : 5 + record_len])
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _parse(body: bytes) -> ClientHello | None:
    if body[0] != 1:
        return None
    hs_len = int.from_bytes(body[1:4], "big")
    if hs_len + 4 > len(body):
        return None  # a ClientHello split over several records: rare, not followed
    pos = 4
    client_version = (body[pos] << 8) | body[pos + 1]
    pos += 2 + 32  # version, random
    pos += 1 + body[pos]  # session id
    ciphers_len = (body[pos] << 8) | body[pos + 1]
    ciphers = [(body[i] << 8) | body[i + 1] for i in range(pos + 2, pos + 2 + ciphers_len - 1, 2)]
    pos += 2 + ciphers_len
    pos += 1 + body[pos]  # compression methods
    extensions: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    server_name = None
    highest = client_version
    if pos + 2 <= 4 + hs_len:
        ext_end = pos + 2 + ((body[pos] << 8) | body[pos + 1])
        pos += 2
        while pos + 4 <= ext_end:
            ext_type = (body[pos] << 8) | body[pos + 1]
            ext_len = (body[pos + 2] << 8) | body[pos + 3]
            data = body[pos + 4 : pos + 4 + ext_len]
            if len(data) < ext_len:
                return None
            extensions.append(ext_type)
            if ext_type == 0 and len(data) >= 5 and data[2] == 0:  # server_name, host_name
                name_len = (data[3] << 8) | data[4]
                server_name = data[5 : 5 + name_len].decode("ascii").lower() or None
            elif ext_type == 10 and len(data) >= 2:  # supported_groups
                pairs = range(2, 2 + (len(data) - 2) // 2 * 2, 2)
                groups = [(data[i] << 8) | data[i + 1] for i in pairs]
            elif ext_type == 11 and data:  # ec_point_formats
                formats = list(data[1 : 1 + data[0]])
            elif ext_type == 43 and data:  # supported_versions
                offered = [(data[i] << 8) | data[i + 1] for i in range(1, 1 + data[0] - 1, 2)]
                known = [v for v in offered if v in _VERSIONS]
                if known:
                    highest = max(known)
            pos += 4 + ext_len
    ja3 = ",".join(
        (
            str(client_version),
            _join(ciphers),
            _join(extensions),
            _join(groups),
            "-".join(str(f) for f in formats),
        )
    )
    return ClientHello(
        server_name,
        _VERSIONS.get(highest, f"0x{highest:04x}"),
        ja3,
        hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest(),
    )


def _grease(value: int) -> bool:
    # RFC 8701: 0x0A0A, 0x1A1A, ..., 0xFAFA
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def _join(values: list[int]) -> str:
    return "-".join(str(v) for v in values if not _grease(v))


def client_hello_for_tests(server_name: str, *, pad: int = 0) -> bytes:
    """A well-formed TLS 1.3 ClientHello (with a GREASE cipher), for examples and tests."""
    name = server_name.encode()
    sni = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    exts = b"".join(
        struct.pack("!HH", t, len(d)) + d
        for t, d in (
            (0x0A0A, b""),  # GREASE
            (0, sni),
            (10, struct.pack("!H", 4) + struct.pack("!HH", 29, 23)),
            (11, b"\x01\x00"),
            (43, b"\x04\x03\x04\x03\x03"),
            (21, bytes(pad)),  # padding
        )
    )
    ciphers = struct.pack("!HHHH", 0x1A1A, 0x1301, 0x1302, 0xC02B)
    body = (
        b"\x03\x03"
        + bytes(32)
        + b"\x00"
        + struct.pack("!H", len(ciphers))
        + ciphers
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake
