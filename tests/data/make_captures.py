"""Writes the small hand-checked captures under ``tests/data/``.

Each capture is crafted packet by packet with scapy at fixed timestamps, so the file is the
same on every run (``tests/sensors/test_captures.py`` checks that the committed files still
match this script) and every expected flow can be worked out by hand from the comments below.

    python tests/data/make_captures.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from sensors.protocols.tls import client_hello_for_tests

HERE = Path(__file__).resolve().parent
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def _at(packet: Packet, t: float) -> Packet:
    packet.time = t
    return packet


def _eth(a_to_b: bool) -> Any:
    return Ether(src=MAC_A, dst=MAC_B) if a_to_b else Ether(src=MAC_B, dst=MAC_A)


def tcp_session(t: float, c: str, s: str, cport: int, sport: int, v6: bool = False) -> list[Packet]:
    """A complete TCP session: handshake, 100 bytes up, 200 bytes down, FIN from both sides.

    9 packets: client sends SYN, ACK, PSH+ACK(100), FIN+ACK, ACK  (5)
               server sends SYN+ACK, PSH+ACK(200), ACK, FIN+ACK    (4)
    """
    ip = IPv6 if v6 else IP
    up = lambda **kw: _eth(True) / ip(src=c, dst=s) / TCP(sport=cport, dport=sport, **kw)  # noqa: E731
    down = lambda **kw: _eth(False) / ip(src=s, dst=c) / TCP(sport=sport, dport=cport, **kw)  # noqa: E731
    return [
        _at(up(flags="S", seq=1000), t),
        _at(down(flags="SA", seq=5000, ack=1001), t + 0.010),
        _at(up(flags="A", seq=1001, ack=5001), t + 0.020),
        _at(up(flags="PA", seq=1001, ack=5001) / Raw(b"x" * 100), t + 0.030),
        _at(down(flags="PA", seq=5001, ack=1101) / Raw(b"y" * 200), t + 0.040),
        _at(up(flags="FA", seq=1101, ack=5201), t + 0.050),
        _at(down(flags="A", seq=5201, ack=1102), t + 0.060),
        _at(down(flags="FA", seq=5201, ack=1102), t + 0.070),
        _at(up(flags="A", seq=1102, ack=5202), t + 0.080),
    ]


def tcp_rejected(t: float, c: str, s: str, cport: int, sport: int) -> list[Packet]:
    """A SYN answered by RST+ACK (closed port): 1 flow, 1 packet each way, ends on rst."""
    return [
        _at(_eth(True) / IP(src=c, dst=s) / TCP(sport=cport, dport=sport, flags="S"), t),
        _at(_eth(False) / IP(src=s, dst=c) / TCP(sport=sport, dport=cport, flags="RA"), t + 0.001),
    ]


def dns_exchange(t: float, c: str, s: str, cport: int, name: str) -> list[Packet]:
    """One DNS query and its answer over UDP: 1 flow, 1 packet each way."""
    query = DNS(id=0x1234, rd=1, qd=DNSQR(qname=name, qtype="A"))
    answer = DNS(
        id=0x1234,
        qr=1,
        aa=1,
        rd=1,
        ra=1,
        qd=DNSQR(qname=name, qtype="A"),
        an=DNSRR(rrname=name, type="A", rdata="192.0.2.10", ttl=300),
    )
    return [
        _at(_eth(True) / IP(src=c, dst=s) / UDP(sport=cport, dport=53) / query, t),
        _at(_eth(False) / IP(src=s, dst=c) / UDP(sport=53, dport=cport) / answer, t + 0.002),
    ]


def icmp_pings(t: float, c: str, s: str, count: int) -> list[Packet]:
    """``count`` echo requests and their replies: 1 flow, ``count`` packets each way."""
    packets = []
    for i in range(count):
        packets.append(_at(_eth(True) / IP(src=c, dst=s) / ICMP(type=8, id=7, seq=i), t + i))
        packets.append(
            _at(_eth(False) / IP(src=s, dst=c) / ICMP(type=0, id=7, seq=i), t + i + 0.001)
        )
    return packets


def tcp_exchange(
    t: float, c: str, s: str, cport: int, sport: int, up: list[bytes], down: list[bytes]
) -> list[Packet]:
    """Handshake, the client's segments, then the server's, then FIN from both sides."""
    packets = []
    seq_c, seq_s = 1000, 5000

    def to_server(flags: str, data: bytes = b"") -> Packet:
        segment = _eth(True) / IP(src=c, dst=s) / TCP(sport=cport, dport=sport, flags=flags)
        return segment / Raw(data) if data else segment

    def to_client(flags: str, data: bytes = b"") -> Packet:
        segment = _eth(False) / IP(src=s, dst=c) / TCP(sport=sport, dport=cport, flags=flags)
        return segment / Raw(data) if data else segment

    script = [to_server("S"), to_client("SA"), to_server("A")]
    script += [to_server("PA", chunk) for chunk in up]
    script += [to_client("PA", chunk) for chunk in down]
    script += [to_server("FA"), to_client("FA"), to_server("A")]
    for i, packet in enumerate(script):
        packets.append(_at(packet, t + i * 0.01))
    del seq_c, seq_s  # sequence numbers do not matter to the flow meter
    return packets


def tls_split_hello(t: float) -> list[Packet]:
    """A TLS session whose ClientHello spans two segments, its server name in the second: 1 flow."""
    hello = client_hello_for_tests("portal.example.gov", pad=1500)
    return tcp_exchange(
        t,
        "10.0.0.1",
        "10.0.0.2",
        40443,
        443,
        [hello[:1200], hello[1200:]],
        [b"\x16\x03\x03" + bytes(80)],
    )


def http_unauthorized(t: float) -> list[Packet]:
    """One HTTP request answered 401: 1 flow."""
    request = (
        b"GET /admin HTTP/1.1\r\nHost: intranet.example:8080\r\n"
        b"User-Agent: Mozilla/5.0 (hydra)\r\n\r\n"
    )
    response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    return tcp_exchange(t, "10.0.0.66", "10.0.0.2", 41080, 8080, [request], [response])


def vlan_syns(t: float) -> list[Packet]:
    """The same 5-tuple on VLAN 100 and VLAN 200, a SYN and SYN-ACK each: 2 flows."""
    packets = []
    for i, vlan in enumerate((100, 200)):
        base = t + i * 0.1
        packets.append(
            _at(
                Ether(src=MAC_A, dst=MAC_B)
                / Dot1Q(vlan=vlan)
                / IP(src="10.1.0.1", dst="10.1.0.2")
                / TCP(sport=41000, dport=443, flags="S"),
                base,
            )
        )
        packets.append(
            _at(
                Ether(src=MAC_B, dst=MAC_A)
                / Dot1Q(vlan=vlan)
                / IP(src="10.1.0.2", dst="10.1.0.1")
                / TCP(sport=443, dport=41000, flags="SA"),
                base + 0.005,
            )
        )
    return packets


CAPTURES = {
    # name: (packets, expected flows) — the expectations are asserted by the tests.
    "tcp_session.pcap": lambda: tcp_session(T0, "10.0.0.1", "10.0.0.2", 40000, 80),
    "tcp_rejected.pcap": lambda: tcp_rejected(T0, "10.0.0.1", "10.0.0.2", 40001, 23),
    "dns.pcap": lambda: dns_exchange(T0, "10.0.0.1", "10.0.0.53", 33333, "example.org."),
    "icmp.pcap": lambda: icmp_pings(T0, "10.0.0.1", "10.0.0.2", 3),
    "ipv6_session.pcap": lambda: tcp_session(T0, "2001:db8::1", "2001:db8::2", 40002, 443, v6=True),
    "vlan.pcap": lambda: vlan_syns(T0),
    "tls_split_hello.pcap": lambda: tls_split_hello(T0),
    "http_unauthorized.pcap": lambda: http_unauthorized(T0),
    # Everything above, one after another, plus: ten rejected connections (a small port
    # scan, 10 flows), and the same DNS client port reused after a 200 s silence (idle
    # timeout 120 s: 2 flows). 1 + 1 + 1 + 1 + 1 + 2 + 10 + 2 = 19 flows.
    "mixed.pcap": lambda: sorted(
        tcp_session(T0, "10.0.0.1", "10.0.0.2", 40000, 80)
        + tcp_rejected(T0 + 1, "10.0.0.1", "10.0.0.2", 40001, 23)
        + dns_exchange(T0 + 2, "10.0.0.1", "10.0.0.53", 33333, "example.org.")
        + icmp_pings(T0 + 3, "10.0.0.1", "10.0.0.2", 3)
        + tcp_session(T0 + 7, "2001:db8::1", "2001:db8::2", 40002, 443, v6=True)
        + vlan_syns(T0 + 8)
        + [
            p
            for port in range(20, 30)
            for p in tcp_rejected(T0 + 9 + port / 100, "10.0.0.9", "10.0.0.2", 50000, port)
        ]
        + dns_exchange(T0 + 10, "10.0.0.1", "10.0.0.53", 44444, "a.example.org.")
        + dns_exchange(T0 + 210, "10.0.0.1", "10.0.0.53", 44444, "b.example.org."),
        key=lambda p: float(p.time),
    ),
}


def main() -> None:
    for name, build in CAPTURES.items():
        wrpcap(str(HERE / name), build())


if __name__ == "__main__":
    main()
