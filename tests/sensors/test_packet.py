"""The header decoder on frames built with scapy, on every kind of truncation, under fuzzing,
and on Suricata's deliberately malformed IPv6 evasion captures."""

from __future__ import annotations

import dataclasses
import itertools
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from sensors.packet import _MAX_IPV6_EXT, DecodeCounters, Packet
from sensors.packet import PacketDecoder as FullDecoder
from sensors.pcapfile import read_frames
from tests.conftest import SHARED_DATA, shared_capture

NS = 1_000_000_000
TS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
A4, B4 = "192.0.2.1", "198.51.100.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
NULL, ETHERNET, RAW, LOOP, SLL, IPV4, IPV6, SLL2 = 0, 1, 101, 108, 113, 228, 229, 276
SUPPORTED_LINKTYPES = (NULL, ETHERNET, 12, 14, RAW, LOOP, SLL, IPV4, IPV6, SLL2)
UNSUPPORTED_LINKTYPES = (105, 127, 147)  # 802.11, radiotap, user0

# Exactly one of these moves for every frame; ``fragments`` counts fragments seen (first or
# later) on top of that, so it is not one of them.
DISPOSITIONS = ("decoded", "non_ip", "unsupported_link", "malformed", "later_fragments_skipped")

SRC4, DST4 = socket.inet_aton(A4), socket.inet_aton(B4)
SRC6, DST6 = socket.inet_pton(socket.AF_INET6, A6), socket.inet_pton(socket.AF_INET6, B6)


class PacketDecoder(FullDecoder):
    """The decoder with the payload position left out, so that the header tests below compare
    whole values of the header fields; ``test_payload_*`` check the payload fields."""

    def decode(self, ts_ns: int, linktype: int, data: bytes) -> Packet | None:
        packet = super().decode(ts_ns, linktype, data)
        return None if packet is None else packet._replace(payload_at=0, payload_len=0)


def eth() -> ScapyPacket:
    return Ether(src=MAC_A, dst=MAC_B)


def ip4(**fields: object) -> ScapyPacket:
    return IP(src=A4, dst=B4, **fields)


def ip6(**fields: object) -> ScapyPacket:
    return IPv6(src=A6, dst=B6, **fields)


def v4(proto: int, sport: int, dport: int, ip_len: int, flags: int = 0, vlan: int = -1) -> Packet:
    return Packet(TS, 4, SRC4, DST4, proto, sport, dport, ip_len, flags, vlan)


def v6(proto: int, sport: int, dport: int, ip_len: int, flags: int = 0, vlan: int = -1) -> Packet:
    return Packet(TS, 6, SRC6, DST6, proto, sport, dport, ip_len, flags, vlan)


def decode_all(decoder: PacketDecoder, linktype: int, frames: list[bytes]) -> list[Packet | None]:
    return [decoder.decode(TS, linktype, frame) for frame in frames]


# --- Ethernet, IPv4 ---------------------------------------------------------------------------


def test_ethernet_ipv4_transports() -> None:
    decoder = PacketDecoder()
    frames = [
        eth() / ip4() / TCP(sport=40_000, dport=443, flags="S"),
        eth() / ip4() / TCP(sport=443, dport=40_000, flags="SA"),
        eth() / ip4() / TCP(sport=40_000, dport=443, flags="PA") / Raw(b"x" * 100),
        eth() / ip4() / TCP(sport=1, dport=2, flags="FSRPAUEC"),
        eth() / ip4(options=[IPOption_RR()]) / TCP(sport=3, dport=4, flags="R"),
        eth() / ip4() / UDP(sport=5353, dport=53) / Raw(b"q" * 12),
        eth() / ip4() / ICMP(type=8, code=0),
        eth() / ip4() / ICMP(type=3, code=3),
        eth() / ip4() / SCTP(sport=2905, dport=2906),
        eth() / ip4(proto=47) / Raw(b"\x00\x00\x08\x00"),  # GRE: no ports
    ]
    assert [
        v4(6, 40_000, 443, 40, flags=0x02),
        v4(6, 443, 40_000, 40, flags=0x12),
        v4(6, 40_000, 443, 140, flags=0x18),
        v4(6, 1, 2, 40, flags=0xFF),
        v4(6, 3, 4, 44, flags=0x04),  # 4 bytes of IP options before the TCP header
        v4(17, 5353, 53, 40),
        v4(1, 8, 0, 28),  # ICMP: type and code in the port fields
        v4(1, 3, 3, 28),
        v4(132, 2905, 2906, 32),
        v4(47, -1, -1, 24),
    ] == decode_all(decoder, ETHERNET, [bytes(f) for f in frames])
    assert DecodeCounters(decoded=10) == decoder.counters


def test_ip_len_comes_from_the_header_not_the_captured_bytes() -> None:
    decoder = PacketDecoder()
    big4 = bytes(eth() / ip4() / TCP(sport=1, dport=2, flags="A") / Raw(b"x" * 1400))
    big6 = bytes(eth() / ip6() / UDP(sport=3, dport=4) / Raw(b"y" * 1400))
    # A 68-byte snap length, as in tcpdump's old default: headers only.
    assert [
        v4(6, 1, 2, 1440, flags=0x10),
        v6(17, 3, 4, 1448),
    ] == [decoder.decode(TS, ETHERNET, big4[:68]), decoder.decode(TS, ETHERNET, big6[:68])]
    assert DecodeCounters(decoded=2) == decoder.counters


def test_ipv4_fragments_first_decoded_later_skipped() -> None:
    decoder = PacketDecoder()
    frames = [
        eth() / ip4(flags="MF", frag=0) / TCP(sport=5, dport=6, flags="PA") / Raw(b"a" * 64),
        eth() / ip4(flags="MF", frag=11, proto=6) / Raw(b"b" * 64),  # a middle fragment
        eth() / ip4(frag=22, proto=6) / Raw(b"c" * 8),  # the last fragment: MF clear
        eth() / ip4(flags="DF") / TCP(sport=7, dport=8, flags="A"),  # not a fragment
    ]
    assert [
        v4(6, 5, 6, 104, flags=0x18),
        None,
        None,
        v4(6, 7, 8, 40, flags=0x10),
    ] == decode_all(decoder, ETHERNET, [bytes(f) for f in frames])
    assert DecodeCounters(decoded=2, fragments=3, later_fragments_skipped=2) == decoder.counters


def test_transport_header_beyond_the_ip_total_length_is_malformed() -> None:
    # The IP header says the packet is 20 bytes long (no TCP header); Ethernet pads short
    # frames to 60 bytes, and those zeros must not be read as ports 0 -> 0.
    decoder = PacketDecoder()
    frame = bytes(eth() / ip4(proto=6, len=20))
    frame += bytes(60 - len(frame))
    assert decoder.decode(TS, ETHERNET, frame) is None
    assert DecodeCounters(malformed=1) == decoder.counters


def test_an_ipv4_total_length_of_zero_is_taken_as_captured_tso() -> None:
    # A capture on the sending host with TCP segmentation offload shows IP total length 0 on
    # large segments: the NIC fills it in later. The captured length is what there is.
    decoder = PacketDecoder()
    segment = eth() / ip4() / TCP(sport=1234, dport=443, flags="PA") / Raw(b"z" * 3000)
    frame = bytearray(bytes(segment))
    frame[16:18] = b"\x00\x00"  # the IPv4 total length, 14 bytes in (after Ethernet)
    assert v4(6, 1234, 443, 20 + 20 + 3000, flags=0x18) == decoder.decode(
        TS, ETHERNET, bytes(frame)
    )
    assert DecodeCounters(decoded=1) == decoder.counters


# --- IPv6 ---------------------------------------------------------------------------------------


def test_ethernet_ipv6_transports_and_extension_headers() -> None:
    decoder = PacketDecoder()
    frames = [
        eth() / ip6() / TCP(sport=40_000, dport=443, flags="S"),
        eth() / ip6() / UDP(sport=546, dport=547),
        eth() / ip6() / ICMPv6EchoRequest(),
        eth() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=9, dport=10),
        eth()
        / ip6()
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::3"])
        / IPv6ExtHdrDestOpt()
        / UDP(sport=11, dport=12),
        # AH: 12 fixed bytes and a 12-byte ICV, (4 + 2) * 4 = 24 bytes.
        eth() / ip6() / AH(nh=6, payloadlen=4, spi=1, seq=1, icv=b"\x00" * 12) / TCP(sport=13),
        eth() / ip6(nh=59) / Raw(b"\x00" * 8),  # No Next Header: no transport
    ]
    assert [
        v6(6, 40_000, 443, 60, flags=0x02),
        v6(17, 546, 547, 48),
        v6(58, 128, 0, 48),  # ICMPv6: type and code in the port fields
        v6(6, 9, 10, 76, flags=0x02),
        v6(17, 11, 12, 88),
        v6(6, 13, 80, 84, flags=0x02),
        v6(59, -1, -1, 48),
    ] == decode_all(decoder, ETHERNET, [bytes(f) for f in frames])
    assert DecodeCounters(decoded=7) == decoder.counters


def test_ipv6_fragments_first_decoded_later_skipped() -> None:
    decoder = PacketDecoder()
    frames = [
        eth()
        / ip6()
        / IPv6ExtHdrFragment(offset=0, m=1, id=7)
        / TCP(sport=20, dport=21, flags="PA")
        / Raw(b"a" * 64),
        eth() / ip6() / IPv6ExtHdrFragment(offset=11, m=1, id=7, nh=6) / Raw(b"b" * 64),
        eth() / ip6() / IPv6ExtHdrFragment(offset=22, m=0, id=7, nh=6) / Raw(b"c" * 8),
        # An atomic fragment (offset 0, no more fragments) is a whole packet.
        eth() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(id=8) / UDP(sport=1, dport=2),
    ]
    assert [
        v6(6, 20, 21, 132, flags=0x18),
        None,
        None,
        v6(17, 1, 2, 64),
    ] == decode_all(decoder, ETHERNET, [bytes(f) for f in frames])
    assert DecodeCounters(decoded=2, fragments=4, later_fragments_skipped=2) == decoder.counters


def _dest_opts_chain(count: int) -> bytes:
    frame: ScapyPacket = eth() / ip6()
    for _ in range(count):
        frame = frame / IPv6ExtHdrDestOpt()
    return bytes(frame / TCP(sport=30, dport=31, flags="A"))


def test_ipv6_extension_chain_is_bounded() -> None:
    # _MAX_IPV6_EXT is the most extension headers the decoder follows: that many still decode,
    # one more is counted as malformed (a crafted chain costs bounded work).
    decoder = PacketDecoder()
    at_bound = _dest_opts_chain(_MAX_IPV6_EXT)
    beyond = _dest_opts_chain(_MAX_IPV6_EXT + 1)
    assert [
        v6(6, 30, 31, 60 + 8 * _MAX_IPV6_EXT, flags=0x10),
        None,
    ] == decode_all(decoder, ETHERNET, [at_bound, beyond])
    assert DecodeCounters(decoded=1, malformed=1) == decoder.counters


# --- VLAN and other link layers -----------------------------------------------------------------


def test_vlan_tags() -> None:
    decoder = PacketDecoder()
    frames = [
        eth() / Dot1Q(vlan=100) / ip4() / UDP(sport=1, dport=2),
        eth() / Dot1Q(vlan=42, prio=5) / ip6() / TCP(sport=3, dport=4, flags="S"),
        eth() / Dot1AD(vlan=300) / Dot1Q(vlan=100) / ip4() / TCP(sport=5, dport=6, flags="S"),
        eth() / Dot1Q(vlan=7) / Dot1Q(vlan=8) / ip4() / UDP(sport=7, dport=8),  # old-style QinQ
        eth() / Dot1Q(vlan=4095) / ARP(),
        # A third tag is beyond the two the decoder reads.
        eth() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / ip4() / UDP(),
    ]
    assert [
        v4(17, 1, 2, 28, vlan=100),
        v6(6, 3, 4, 60, flags=0x02, vlan=42),  # priority bits are not part of the id
        v4(6, 5, 6, 40, flags=0x02, vlan=300),  # the outer (service) tag is kept
        v4(17, 7, 8, 28, vlan=7),
        None,
        None,
    ] == decode_all(decoder, ETHERNET, [bytes(f) for f in frames])
    assert DecodeCounters(decoded=4, non_ip=2) == decoder.counters


def test_linux_cooked_captures() -> None:
    decoder = PacketDecoder()
    sll = [
        bytes(CookedLinux(pkttype=0) / ip4() / TCP(sport=1, dport=2, flags="S")),
        bytes(CookedLinux(pkttype=4) / ip6() / UDP(sport=3, dport=4)),
        bytes(CookedLinux() / ARP()),
    ]
    sll2 = [
        bytes(CookedLinuxV2(pkttype=0) / ip4() / UDP(sport=5, dport=6)),
        bytes(CookedLinuxV2(pkttype=4) / ip6() / TCP(sport=7, dport=8, flags="A")),
    ]
    assert [
        v4(6, 1, 2, 40, flags=0x02),
        v6(17, 3, 4, 48),
        None,
        v4(17, 5, 6, 28),
        v6(6, 7, 8, 60, flags=0x10),
    ] == decode_all(decoder, SLL, sll) + decode_all(decoder, SLL2, sll2)
    assert DecodeCounters(decoded=4, non_ip=1) == decoder.counters


@pytest.mark.parametrize("linktype", [RAW, 12, 14, IPV4, IPV6])
def test_raw_ip(linktype: int) -> None:
    decoder = PacketDecoder()
    frames = [
        bytes(ip4() / TCP(sport=1, dport=2, flags="S")),
        bytes(ip6() / UDP(sport=3, dport=4)),
    ]
    assert [
        v4(6, 1, 2, 40, flags=0x02),
        v6(17, 3, 4, 48),
    ] == decode_all(decoder, linktype, frames)
    assert DecodeCounters(decoded=2) == decoder.counters


@pytest.mark.parametrize(
    ("linktype", "order"),
    [(NULL, "<"), (NULL, ">"), (LOOP, ">")],
    ids=["null-little-endian", "null-big-endian", "loop"],
)
def test_null_and_loopback_in_either_byte_order(linktype: int, order: str) -> None:
    # NULL stores the BSD address family in the capturing host's byte order, LOOP in network
    # order. AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD),
    # 28 (FreeBSD), 30 (macOS).
    decoder = PacketDecoder()
    tcp4 = bytes(ip4() / TCP(sport=1, dport=2, flags="S"))
    udp6 = bytes(ip6() / UDP(sport=3, dport=4))
    frames = [struct.pack(order + "I", 2) + tcp4] + [
        struct.pack(order + "I", family) + udp6 for family in (10, 24, 28, 30)
    ]
    frames.append(struct.pack(order + "I", 7) + tcp4)  # AF_7 is not IP
    assert [
        v4(6, 1, 2, 40, flags=0x02),
        v6(17, 3, 4, 48),
        v6(17, 3, 4, 48),
        v6(17, 3, 4, 48),
        v6(17, 3, 4, 48),
        None,
    ] == decode_all(decoder, linktype, frames)
    assert DecodeCounters(decoded=5, non_ip=1) == decoder.counters


def test_non_ip_and_unsupported_links_are_counted() -> None:
    decoder = PacketDecoder()
    arp = bytes(eth() / ARP(psrc=A4, pdst=B4))
    lldp = bytes(Ether(src=MAC_A, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02" * 20))
    ieee8023 = bytes(Ether(src=MAC_A, dst=MAC_B, type=46) / Raw(b"\x42" * 46))  # a length
    ip_frame = bytes(eth() / ip4() / UDP())
    results = decode_all(decoder, ETHERNET, [arp, lldp, ieee8023])
    results += [decoder.decode(TS, linktype, ip_frame) for linktype in UNSUPPORTED_LINKTYPES]
    assert results == [None] * 6
    assert DecodeCounters(non_ip=3, unsupported_link=3) == decoder.counters


# --- malformed ----------------------------------------------------------------------------------


def _cut(frame: ScapyPacket, keep: int) -> bytes:
    return bytes(frame)[:keep]


_TCP4 = eth() / ip4() / TCP(sport=1, dport=2)
_TCP6 = eth() / ip6() / TCP(sport=1, dport=2)

MALFORMED: dict[str, tuple[int, bytes]] = {
    "ethernet-header": (ETHERNET, _cut(_TCP4, 13)),
    "vlan-tag": (ETHERNET, _cut(eth() / Dot1Q(vlan=5) / ip4(), 17)),
    "second-vlan-tag": (ETHERNET, _cut(eth() / Dot1AD(vlan=5) / Dot1Q(vlan=6) / ip4(), 21)),
    "ipv4-header": (ETHERNET, _cut(_TCP4, 14 + 19)),
    "ipv4-options": (ETHERNET, _cut(eth() / ip4(options=[IPOption_RR()]) / UDP(), 14 + 22)),
    "ipv4-ihl-below-5": (ETHERNET, bytes(eth() / ip4(ihl=4) / UDP())),
    "ipv4-total-below-ihl": (ETHERNET, bytes(eth() / ip4(len=19) / UDP())),
    "ipv4-version-6": (ETHERNET, bytes(Ether(src=MAC_A, dst=MAC_B, type=0x0800) / ip6())),
    "tcp-header": (ETHERNET, _cut(_TCP4, 14 + 20 + 13)),
    "udp-header": (ETHERNET, _cut(eth() / ip4() / UDP(), 14 + 20 + 3)),
    "icmp-header": (ETHERNET, _cut(eth() / ip4() / ICMP(), 14 + 20 + 1)),
    "sctp-header": (ETHERNET, _cut(eth() / ip4() / SCTP(), 14 + 20 + 3)),
    "ipv6-header": (ETHERNET, _cut(_TCP6, 14 + 39)),
    "ipv6-version-4": (ETHERNET, bytes(Ether(src=MAC_A, dst=MAC_B, type=0x86DD) / ip4() / UDP())),
    "ipv6-extension-header": (
        ETHERNET,
        _cut(eth() / ip6() / IPv6ExtHdrHopByHop() / TCP(), 14 + 40 + 1),
    ),
    "ipv6-extension-runs-past-end": (
        ETHERNET,
        _cut(eth() / ip6() / IPv6ExtHdrDestOpt(len=8) / TCP(), 14 + 40 + 8 + 20),
    ),
    "ipv6-fragment-header": (
        ETHERNET,
        _cut(eth() / ip6() / IPv6ExtHdrFragment() / UDP(), 14 + 40 + 7),
    ),
    "ipv6-ah-header": (ETHERNET, _cut(eth() / ip6() / AH(nh=6, payloadlen=4) / TCP(), 14 + 41)),
    "ipv6-tcp-header": (ETHERNET, _cut(_TCP6, 14 + 40 + 13)),
    "icmpv6-header": (ETHERNET, _cut(eth() / ip6() / ICMPv6EchoRequest(), 14 + 40 + 1)),
    "sll-header": (SLL, _cut(CookedLinux() / ip4(), 15)),
    "sll2-header": (SLL2, _cut(CookedLinuxV2() / ip4(), 19)),
    "null-header": (NULL, b"\x02\x00\x00"),
    "loop-header": (LOOP, b"\x00\x00\x00"),
    "raw-empty": (RAW, b""),
    "raw-ipv4-header": (RAW, _cut(ip4() / UDP(), 19)),
    "raw-ipv6-header": (RAW, _cut(ip6() / UDP(), 39)),
}


@pytest.mark.parametrize(("linktype", "frame"), MALFORMED.values(), ids=MALFORMED.keys())
def test_each_kind_of_malformed_frame_is_counted(linktype: int, frame: bytes) -> None:
    decoder = PacketDecoder()
    assert decoder.decode(TS, linktype, frame) is None
    assert DecodeCounters(malformed=1) == decoder.counters


def test_malformed_counts_add_up_over_a_stream() -> None:
    decoder = PacketDecoder()
    results = [decoder.decode(TS, linktype, frame) for linktype, frame in MALFORMED.values()]
    assert [None] * len(MALFORMED) == results
    # The cut fragment header ends before its offset field: it is not counted as a fragment.
    assert DecodeCounters(malformed=len(MALFORMED)) == decoder.counters


# --- fuzzing ------------------------------------------------------------------------------------


def _decode_checked(decoder: PacketDecoder, linktype: int, data: bytes) -> Packet | None:
    """Decode one frame and check that exactly one disposition counter moved, by one."""
    before = dataclasses.replace(decoder.counters)
    packet = decoder.decode(TS, linktype, data)
    after = decoder.counters
    moved = {
        name: getattr(after, name) - getattr(before, name)
        for name in DISPOSITIONS
        if getattr(after, name) != getattr(before, name)
    }
    assert after.fragments >= before.fragments
    if packet is None:
        assert len(moved) == 1
        assert next(iter(moved.values())) == 1
        assert "decoded" not in moved
    else:
        assert moved == {"decoded": 1}
        assert packet.ts_ns == TS
        assert (packet.version, len(packet.src), len(packet.dst)) in {(4, 4, 4), (6, 16, 16)}
        assert 0 <= packet.proto <= 255
        assert -1 <= packet.sport <= 65_535
        assert -1 <= packet.dport <= 65_535
        assert 0 <= packet.tcp_flags <= 255
        assert -1 <= packet.vlan <= 4_095
        assert packet.ip_len >= 0
    return packet


_FUZZ = settings(max_examples=400, deadline=None, database=None, derandomize=True)


@_FUZZ
@given(
    linktype=st.sampled_from(SUPPORTED_LINKTYPES + UNSUPPORTED_LINKTYPES),
    data=st.binary(max_size=160),
)
def test_random_bytes_never_raise(linktype: int, data: bytes) -> None:
    _decode_checked(PacketDecoder(), linktype, data)


_LINK_HEADERS = {
    ETHERNET: lambda ethertype: bytes(12) + ethertype.to_bytes(2, "big"),
    SLL: lambda ethertype: bytes(14) + ethertype.to_bytes(2, "big"),
    SLL2: lambda ethertype: ethertype.to_bytes(2, "big") + bytes(18),
    NULL: lambda ethertype: struct.pack("<I", 2 if ethertype == 0x0800 else 30),
    LOOP: lambda ethertype: struct.pack(">I", 2 if ethertype == 0x0800 else 24),
    RAW: lambda _ethertype: b"",
}


@st.composite
def _plausible_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid link header and a start that looks like IP, then random bytes: reaches the
    network and transport code far more often than uniformly random bytes do."""
    linktype = draw(st.sampled_from(sorted(_LINK_HEADERS)))
    ethertype = draw(st.sampled_from([0x0800, 0x86DD, 0x8100, 0x88A8, 0x0806]))
    tags = b""
    while ethertype in (0x8100, 0x88A8) and linktype == ETHERNET and len(tags) < 12:
        inner = draw(st.sampled_from([0x0800, 0x86DD, 0x8100]))
        tags += draw(st.binary(min_size=2, max_size=2)) + inner.to_bytes(2, "big")
        ethertype = inner
    first = draw(st.sampled_from([0x45, 0x46, 0x4F, 0x44, 0x60, 0x6F, 0x00]))
    if first >> 4 == 4:
        rest = draw(st.binary(min_size=8, max_size=8))
        proto = draw(st.sampled_from([1, 6, 17, 58, 132, 0, 44, 255]))
        ip = bytes([first]) + rest + bytes([proto]) + draw(st.binary(max_size=140))
    elif first >> 4 == 6:
        nh = draw(st.sampled_from([0, 6, 17, 43, 44, 51, 58, 59, 60, 135, 139, 140]))
        ip = bytes([first]) + draw(st.binary(min_size=5, max_size=5)) + bytes([nh])
        ip += draw(st.binary(max_size=160))
    else:
        ip = bytes([first]) + draw(st.binary(max_size=60))
    return linktype, _LINK_HEADERS[linktype](ethertype) + tags + ip


@_FUZZ
@given(frame=_plausible_frames())
def test_plausible_random_frames_never_raise(frame: tuple[int, bytes]) -> None:
    _decode_checked(PacketDecoder(), *frame)


_SEEDS: list[tuple[int, bytes]] = [
    (ETHERNET, bytes(eth() / ip4() / TCP(sport=1, dport=2, flags="S"))),
    (ETHERNET, bytes(eth() / ip4(options=[IPOption_RR()]) / UDP(sport=3, dport=4))),
    (ETHERNET, bytes(eth() / Dot1AD(vlan=5) / Dot1Q(vlan=6) / ip6() / UDP(sport=5, dport=6))),
    (
        ETHERNET,
        bytes(
            eth()
            / ip6()
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrDestOpt()
            / IPv6ExtHdrFragment(m=1)
            / TCP(sport=7, dport=8)
        ),
    ),
    (ETHERNET, bytes(eth() / ip6() / AH(nh=58, payloadlen=4) / ICMPv6EchoRequest())),
    (ETHERNET, bytes(eth() / ip4(flags="MF") / ICMP())),
    (SLL, bytes(CookedLinux() / ip6() / TCP(sport=9, dport=10))),
    (SLL2, bytes(CookedLinuxV2() / ip4() / SCTP(sport=11, dport=12))),
    (RAW, bytes(ip6() / IPv6ExtHdrRouting() / UDP(sport=13, dport=14))),
    (NULL, struct.pack("<I", 2) + bytes(ip4() / UDP(sport=15, dport=16))),
    (LOOP, struct.pack(">I", 30) + bytes(ip6() / TCP(sport=17, dport=18))),
]


@st.composite
def _mutated_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    linktype, seed = draw(st.sampled_from(_SEEDS))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "delete", "insert"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x05, 0x06, 0x2C, 0x3B, 0x40]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return linktype, bytes(data)


@_FUZZ
@given(frame=_mutated_frames())
def test_mutated_valid_frames_never_raise(frame: tuple[int, bytes]) -> None:
    _decode_checked(PacketDecoder(), *frame)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(frames=st.lists(st.one_of(_mutated_frames(), _plausible_frames()), max_size=20))
def test_counters_add_up_over_a_stream_of_bad_frames(frames: list[tuple[int, bytes]]) -> None:
    decoder = PacketDecoder()
    packets = [decoder.decode(TS, linktype, data) for linktype, data in frames]
    counters = decoder.counters
    assert len(frames) == sum(getattr(counters, name) for name in DISPOSITIONS)
    assert sum(p is not None for p in packets) == counters.decoded


# --- the shared IPv6 evasion captures -----------------------------------------------------------

EVASION = "suricata-verify/ipv6-evasion"


def _evasion_pcaps() -> list[str]:
    folder = SHARED_DATA / EVASION
    if not folder.is_dir():
        return [f"{EVASION}/<absent>"]  # shared_capture() turns this into a skip saying why
    return sorted(str(p.relative_to(SHARED_DATA)) for p in folder.rglob("*.pcap"))


@pytest.mark.parametrize("relative", _evasion_pcaps())
def test_ipv6_evasion_captures_decode_without_raising(relative: str) -> None:
    path = shared_capture(relative)
    decoder = PacketDecoder()
    frames = 0
    packets = 0
    for frame in read_frames(path):
        frames += 1
        packets += _decode_checked(decoder, frame.linktype, frame.data) is not None
    assert frames > 0
    assert frames == sum(getattr(decoder.counters, name) for name in DISPOSITIONS)
    assert packets == decoder.counters.decoded


@pytest.mark.parametrize("relative", _evasion_pcaps())
def test_ipv6_evasion_captures_agree_with_scapy(relative: str) -> None:
    # An independent dissector as the oracle: where scapy finds the addresses and, outside
    # fragments, the ports, the decoder must find the same. Only the first 100 frames: the
    # larger files are floods of near-identical packets, and scapy dissects ~5,000 a second.
    path = shared_capture(relative)
    decoder = PacketDecoder()
    expected: list[tuple[object, ...]] = []
    actual: list[tuple[object, ...]] = []
    for frame in itertools.islice(read_frames(path), 100):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        if packet is None:
            continue
        dissected = Ether(frame.data)
        ipv6 = dissected.getlayer(IPv6)
        transport = dissected.getlayer(TCP) or dissected.getlayer(UDP)
        ports = (packet.sport, packet.dport)
        if transport is not None and not dissected.haslayer(IPv6ExtHdrFragment):
            ports = (transport.sport, transport.dport)
        expected.append((ipv6 and ipv6.src, ipv6 and ipv6.dst, *ports))
        actual.append(
            (
                socket.inet_ntop(socket.AF_INET6, packet.src),
                socket.inet_ntop(socket.AF_INET6, packet.dst),
                packet.sport,
                packet.dport,
            )
        )
    assert expected == actual


# --- payload position -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "payload"),
    [
        (
            eth() / ip4() / TCP(sport=1, dport=2, flags="PA") / Raw(b"GET / HTTP/1.1\r\n"),
            b"GET / HTTP/1.1\r\n",
        ),
        (
            eth()
            / ip4()
            / TCP(sport=1, dport=2, options=[("MSS", 1460), ("NOP", None), ("SAckOK", b"")])
            / Raw(b"x" * 7),
            b"x" * 7,
        ),
        (eth() / ip4() / UDP(sport=5353, dport=53) / Raw(b"\x12\x34query"), b"\x12\x34query"),
        (eth() / ip4() / ICMP(type=8) / Raw(b"ping-data"), b"ping-data"),
        (eth() / ip6() / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2) / Raw(b"v6"), b"v6"),
        (eth() / ip4() / TCP(sport=1, dport=2, flags="S"), b""),
    ],
)
def test_payload_position_and_length(frame: ScapyPacket, payload: bytes) -> None:
    data = bytes(frame)
    packet = FullDecoder().decode(TS, ETHERNET, data)
    assert packet is not None
    assert (payload, len(payload)) == (
        data[packet.payload_at : packet.payload_at + packet.payload_len],
        packet.payload_len,
    )


def test_payload_length_comes_from_the_ip_header_not_padding_or_snap_length() -> None:
    decoder = FullDecoder()
    short = bytes(eth() / ip4() / TCP(sport=1, dport=2, flags="A"))
    padded = decoder.decode(TS, ETHERNET, short + bytes(60 - len(short)))  # Ethernet padding
    full = bytes(eth() / ip4() / TCP(sport=1, dport=2, flags="PA") / Raw(b"z" * 1000))
    snapped = decoder.decode(TS, ETHERNET, full[:96])  # captured with a 96-byte snap length
    assert padded is not None
    assert snapped is not None
    assert (0, 1000) == (padded.payload_len, snapped.payload_len)


def test_a_tcp_data_offset_below_twenty_bytes_is_malformed() -> None:
    decoder = FullDecoder()
    frame = bytearray(bytes(eth() / ip4() / TCP(sport=1, dport=2)))
    frame[14 + 20 + 12] = 0x40  # data offset 4 words = 16 bytes, less than the header
    assert decoder.decode(TS, ETHERNET, bytes(frame)) is None
    assert DecodeCounters(malformed=1) == decoder.counters


# --- the fast path gives what the general path gives -----------------------------------------


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(
    proto=st.sampled_from(["tcp", "udp"]),
    payload=st.binary(max_size=40),
    flags=st.integers(0, 255),
    frag=st.sampled_from([0, 0x4000, 0x2000, 0x0001]),
    cut=st.integers(0, 120),
    damage=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=3),
)
def test_the_fast_path_agrees_with_the_general_path(
    proto: str, payload: bytes, flags: int, frag: int, cut: int, damage: list[tuple[int, int]]
) -> None:
    transport = (
        TCP(sport=1234, dport=80, flags=flags) if proto == "tcp" else UDP(sport=53, dport=5353)
    )
    frame = bytearray(
        bytes(
            eth()
            / IP(src=A4, dst=B4, flags=frag >> 13, frag=frag & 0x1FFF)
            / transport
            / Raw(payload)
        )
    )
    for at, value in damage:
        if at < len(frame):
            frame[at] = value
    data = bytes(frame[: len(frame) - cut if cut < len(frame) else len(frame)])
    fast, general = FullDecoder(), FullDecoder()
    assert general.decode_general(TS, ETHERNET, data) == fast.decode(TS, ETHERNET, data)
    assert general.counters == fast.counters
