"""Decoding of link, network and transport headers straight from a frame's bytes.

The flow meter needs a handful of header fields from every packet; dissecting every packet with
scapy runs at ~5,000 packets/s, reading the fixed headers with :mod:`struct` at hundreds of
thousands. Application metadata (DNS, TLS, HTTP) is read separately, only from the packets
that carry it.

Every frame ends up either as a :class:`Packet` or as one count in :class:`DecodeCounters`
saying why not; malformed input never raises.

>>> import socket
>>> eth = bytes(12) + b"\\x08\\x00"
>>> ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]) + socket.inet_aton("10.0.0.1")
>>> ip += socket.inet_aton("10.0.0.2")
>>> tcp = (40000).to_bytes(2, "big") + (80).to_bytes(2, "big") + bytes(8) + b"\\x50\\x02" + bytes(6)
>>> decoder = PacketDecoder()
>>> p = decoder.decode(1_000, 1, eth + ip + tcp)
>>> (p.proto, p.sport, p.dport, p.tcp_flags, p.ip_len)
(6, 40000, 80, 2, 40)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

# Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276
_RAW_LINKTYPES: Final = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_VLAN: Final = frozenset({0x8100, 0x88A8, 0x9100})
_MAX_VLAN_TAGS: Final = 2

PROTO_ICMP: Final = 1
PROTO_TCP: Final = 6
PROTO_UDP: Final = 17
PROTO_ICMPV6: Final = 58
PROTO_SCTP: Final = 132

# IPv6 extension headers that precede the transport header; bounded so that a chain crafted to
# be long (a known evasion) costs a fixed amount of work.
_IPV6_EXT_GENERIC: Final = frozenset({0, 43, 60, 135, 139, 140})
_IPV6_FRAGMENT: Final = 44
_IPV6_AH: Final = 51
_IPV6_NO_NEXT: Final = 59
_MAX_IPV6_EXT: Final = 8

_U16: Final = struct.Struct("!H")
_PORTS: Final = struct.Struct("!HH")


class Packet(NamedTuple):
    """The header fields of one IP packet the flow meter uses.

    ``sport``/``dport`` are -1 when the protocol has no ports; for ICMP they carry the
    message's type and code. ``ip_len`` is the IP total length from the header.
    ``payload_at`` is where the transport payload starts in the frame, ``payload_len`` how long
    the IP header says it is (the capture may hold less: slice the frame, never trust the
    length alone).
    """

    ts_ns: int
    version: int
    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    ip_len: int
    tcp_flags: int
    vlan: int
    payload_at: int = 0
    payload_len: int = 0


@dataclass
class DecodeCounters:
    """What the decoder saw and why it dropped what it dropped. All bounded integers."""

    decoded: int = 0
    non_ip: int = 0
    unsupported_link: int = 0
    malformed: int = 0
    fragments: int = 0
    later_fragments_skipped: int = 0


class PacketDecoder:
    """Turns frames into :class:`Packet` values and counts the rest."""

    def __init__(self) -> None:
        self.counters = DecodeCounters()

    def decode(self, ts_ns: int, linktype: int, data: bytes) -> Packet | None:
        """Decode one frame, or count why it was not decoded and return ``None``."""
        # Fast path for most of any network's traffic: Ethernet, IPv4 without options or
        # fragmentation, TCP or UDP, all headers present. It gives exactly what the general
        # path below gives (the tests run both), in one function call instead of three.
        if (
            linktype == LINKTYPE_ETHERNET
            and len(data) >= 54
            and data[12] == 8
            and data[13] == 0
            and data[14] == 0x45
            and not data[20] & 0x3F
            and not data[21]
        ):
            proto = data[23]
            total = (data[16] << 8) | data[17]
            if proto == PROTO_TCP and total >= 40:
                header = (data[46] >> 4) * 4
                if header >= 20 and len(data) >= 48:
                    payload_len = total - 20 - header
                    self.counters.decoded += 1
                    return Packet(
                        ts_ns,
                        4,
                        data[26:30],
                        data[30:34],
                        6,
                        (data[34] << 8) | data[35],
                        (data[36] << 8) | data[37],
                        total,
                        data[47],
                        -1,
                        34 + header,
                        payload_len if payload_len > 0 else 0,
                    )
            elif proto == PROTO_UDP and total >= 28:
                self.counters.decoded += 1
                return Packet(
                    ts_ns,
                    4,
                    data[26:30],
                    data[30:34],
                    17,
                    (data[34] << 8) | data[35],
                    (data[36] << 8) | data[37],
                    total,
                    0,
                    -1,
                    42,
                    total - 28,
                )
        return self.decode_general(ts_ns, linktype, data)

    def decode_general(self, ts_ns: int, linktype: int, data: bytes) -> Packet | None:
        """:meth:`decode` without its fast path (every link type and protocol)."""
        vlan = -1
        if linktype == LINKTYPE_ETHERNET:
            if len(data) < 14:
                self.counters.malformed += 1
                return None
            ethertype = (data[12] << 8) | data[13]
            offset = 14
            tags = 0
            while ethertype in _ETH_VLAN and tags < _MAX_VLAN_TAGS:
                if len(data) < offset + 4:
                    self.counters.malformed += 1
                    return None
                if tags == 0:
                    vlan = ((data[offset] << 8) | data[offset + 1]) & 0x0FFF
                ethertype = (data[offset + 2] << 8) | data[offset + 3]
                offset += 4
                tags += 1
        elif linktype in _RAW_LINKTYPES:
            if not data:
                self.counters.malformed += 1
                return None
            version = data[0] >> 4
            ethertype = _ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else 0
            offset = 0
        elif linktype == LINKTYPE_LINUX_SLL:
            if len(data) < 16:
                self.counters.malformed += 1
                return None
            ethertype = (data[14] << 8) | data[15]
            offset = 16
        elif linktype == LINKTYPE_LINUX_SLL2:
            if len(data) < 20:
                self.counters.malformed += 1
                return None
            ethertype = (data[0] << 8) | data[1]
            offset = 20
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if len(data) < 4:
                self.counters.malformed += 1
                return None
            # NULL stores the address family in the capturing host's byte order, LOOP in
            # network order; AF_INET is 2 everywhere, AF_INET6 is 10, 24, 28 or 30.
            family = min(int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big"))
            ethertype = _ETH_IPV4 if family == 2 else _ETH_IPV6 if family in (10, 24, 28, 30) else 0
            offset = 4
        else:
            self.counters.unsupported_link += 1
            return None

        if ethertype == _ETH_IPV4:
            return self._ipv4(ts_ns, data, offset, vlan)
        if ethertype == _ETH_IPV6:
            return self._ipv6(ts_ns, data, offset, vlan)
        self.counters.non_ip += 1
        return None

    def _ipv4(self, ts_ns: int, data: bytes, offset: int, vlan: int) -> Packet | None:
        if len(data) < offset + 20 or data[offset] >> 4 != 4:
            self.counters.malformed += 1
            return None
        ihl = (data[offset] & 0x0F) * 4
        total = (data[offset + 2] << 8) | data[offset + 3]
        if total == 0:
            # Captured on a host with TCP segmentation offload: the stack left the length to
            # the NIC. What was captured is all there is to go by.
            total = len(data) - offset
        if ihl < 20 or total < ihl or len(data) < offset + ihl:
            self.counters.malformed += 1
            return None
        frag = ((data[offset + 6] << 8) | data[offset + 7]) & 0x3FFF
        if frag:
            self.counters.fragments += 1
            if frag & 0x1FFF:
                # Later fragments carry no transport header; without reassembly they cannot
                # be placed in a flow, so they are counted and left out.
                self.counters.later_fragments_skipped += 1
                return None
        proto = data[offset + 9]
        src = data[offset + 12 : offset + 16]
        dst = data[offset + 16 : offset + 20]
        end = min(len(data), offset + total)
        return self._transport(
            ts_ns, 4, src, dst, proto, data, offset + ihl, end, offset, total, vlan
        )

    def _ipv6(self, ts_ns: int, data: bytes, offset: int, vlan: int) -> Packet | None:
        if len(data) < offset + 40 or data[offset] >> 4 != 6:
            self.counters.malformed += 1
            return None
        payload_len = (data[offset + 4] << 8) | data[offset + 5]
        proto = data[offset + 6]
        src = data[offset + 8 : offset + 24]
        dst = data[offset + 24 : offset + 40]
        pos = offset + 40
        for _ in range(_MAX_IPV6_EXT + 1):  # up to the bound, then the transport header
            if proto in _IPV6_EXT_GENERIC:
                if len(data) < pos + 2:
                    self.counters.malformed += 1
                    return None
                proto, length = data[pos], (data[pos + 1] + 1) * 8
            elif proto == _IPV6_FRAGMENT:
                if len(data) < pos + 8:
                    self.counters.malformed += 1
                    return None
                self.counters.fragments += 1
                if _U16.unpack_from(data, pos + 2)[0] & 0xFFF8:
                    self.counters.later_fragments_skipped += 1
                    return None
                proto, length = data[pos], 8
            elif proto == _IPV6_AH:
                if len(data) < pos + 2:
                    self.counters.malformed += 1
                    return None
                proto, length = data[pos], (data[pos + 1] + 2) * 4
            else:
                break
            pos += length
        else:
            self.counters.malformed += 1  # a longer extension chain than any real stack sends
            return None
        # A jumbogram says 0 here; fall back to what was captured.
        total = 40 + payload_len if payload_len else len(data) - offset
        end = min(len(data), offset + total)
        return self._transport(ts_ns, 6, src, dst, proto, data, pos, end, offset, total, vlan)

    def _transport(
        self,
        ts_ns: int,
        version: int,
        src: bytes,
        dst: bytes,
        proto: int,
        data: bytes,
        pos: int,
        end: int,
        ip_start: int,
        ip_len: int,
        vlan: int,
    ) -> Packet | None:
        # ``end`` bounds the transport header by the IP length as well as the capture, so
        # Ethernet padding after a short IP packet is never read as a header.
        sport = dport = -1
        flags = 0
        payload_at = pos
        if proto == PROTO_TCP:
            if end < pos + 14:
                self.counters.malformed += 1
                return None
            sport, dport = _PORTS.unpack_from(data, pos)
            flags = data[pos + 13]
            header = (data[pos + 12] >> 4) * 4
            if header < 20:
                self.counters.malformed += 1  # a data offset below the header's own size
                return None
            payload_at = pos + header
        elif proto in (PROTO_UDP, PROTO_SCTP):
            if end < pos + 4:
                self.counters.malformed += 1
                return None
            sport, dport = _PORTS.unpack_from(data, pos)
            payload_at = pos + (8 if proto == PROTO_UDP else 12)
        elif proto in (PROTO_ICMP, PROTO_ICMPV6):
            if end < pos + 2:
                self.counters.malformed += 1
                return None
            sport, dport = data[pos], data[pos + 1]
            payload_at = pos + 8
        payload_len = ip_start + ip_len - payload_at
        self.counters.decoded += 1
        return Packet(
            ts_ns,
            version,
            src,
            dst,
            proto,
            sport,
            dport,
            ip_len,
            flags,
            vlan,
            payload_at,
            payload_len if payload_len > 0 else 0,
        )
