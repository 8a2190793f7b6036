"""Write a large, seeded capture of mixed, real-looking traffic for ``bench/sensor.py``.

Thousands of concurrent sessions, interleaved in time as a sensor on an agency's uplink sees them:
TLS on 443 (ClientHello with SNI, ServerHello, then encrypted records, several request/response
exchanges on a kept-alive connection), clear-text HTTP, long interactive SSH, other TCP services,
refused (SYN → RST) and unanswered connection attempts, DNS query/answer pairs (A, AAAA, HTTPS;
some NXDOMAIN, a few unanswered), NTP, QUIC, ICMP echo and port-unreachable. About a tenth of
the sessions are IPv6 and the clients of a few segments are 802.1Q-tagged. TCP sessions end with
FIN from either side or RST. Frames are built with :mod:`struct`, with correct lengths, sequence
numbers and checksums, and streamed to a libpcap file (microseconds); nothing holds more than
one packet per open session in memory.

Every session has its own 5-tuple (ephemeral ports are handed out per client without reuse, and
ICMP sessions get host pairs of their own) and no session pauses longer than 60 s, so every
flow meter should find one flow per session whatever its timeouts; the expected counts go to a
JSON manifest next to the capture.

Run from the repository root (``bench/sensor.py`` runs it for you when its cache lacks the file)::

    /tmp/venv/bin/python bench/make_capture.py --packets 1000000 --seed 1 \\
        --out ~/.cache/trustwatch-bench/mixed-1000000-seed1.pcap
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import struct
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

GENERATOR_VERSION: Final = 1
START_US: Final = int(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000
SESSIONS_PER_S: Final = 250.0  # new sessions per second of capture time (Poisson arrivals)
MAX_PAUSE_US: Final = 60_000_000  # below every idle timeout in play (nfstream and ours: 120 s)
BLOB_BYTES: Final = 1 << 20  # encrypted-looking payloads are slices of one seeded random blob

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_TCP, _UDP, _ICMP, _ICMP6 = 6, 17, 1, 58

Packet = tuple[int, bytes]  # (time in microseconds, frame)
Session = Generator[Packet, None, None]


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``.

    The one's-complement sum of 16-bit words is the number's value modulo 0xFFFF, which
    Python's big integers compute in C.

    >>> hex(checksum(bytes.fromhex("4500003c1c4640004006 0000 ac100a63ac100a0c")))
    '0xb1e6'
    """
    if len(data) & 1:
        data += b"\0"
    value = int.from_bytes(data, "big")
    rest = value % 0xFFFF
    if rest == 0:
        return 0 if value else 0xFFFF
    return 0xFFFF - rest


class Link:
    """Two endpoints of one session and the frames between them (Ethernet, 802.1Q, IPv4/6)."""

    def __init__(self, client: bytes, server: bytes, vlan: int, server_ttl: int) -> None:
        self.client, self.server = client, server
        self.v6 = len(client) == 16
        self.pair = (min(client, server), max(client, server))  # ICMP flows ignore direction
        self.server_ttl = server_ttl
        client_mac = b"\x02\x00" + client[-4:]
        gateway_mac = b"\x00\x1b\x21\x3a\x4f\x01"
        ethertype = b"\x86\xdd" if self.v6 else b"\x08\x00"
        tag = b"\x81\x00" + struct.pack("!H", vlan) if vlan >= 0 else b""
        self._eth_out = gateway_mac + client_mac + tag + ethertype
        self._eth_in = client_mac + gateway_mac + tag + ethertype
        self._ident = [0x1234 ^ client[-1], 0x4321 ^ server[-1]]

    def frame(self, outbound: bool, proto: int, l4: bytes, csum_at: int) -> bytes:
        """Ethernet + IP around ``l4`` (whose checksum field at ``csum_at`` is zero)."""
        src, dst = (self.client, self.server) if outbound else (self.server, self.client)
        if self.v6:
            pseudo = src + dst + struct.pack("!I3xB", len(l4), proto)
            l4 = _patch(l4, csum_at, checksum(pseudo + l4), proto)
            ttl = 64 if outbound else self.server_ttl
            ip = struct.pack("!IHBB", 0x6000_0000, len(l4), proto, ttl) + src + dst
            frame = (self._eth_out if outbound else self._eth_in) + ip + l4
        else:
            if proto == _ICMP:
                l4 = _patch(l4, csum_at, checksum(l4), proto)
            else:
                pseudo = src + dst + struct.pack("!xBH", proto, len(l4))
                l4 = _patch(l4, csum_at, checksum(pseudo + l4), proto)
            side = 0 if outbound else 1
            ident = self._ident[side] = (self._ident[side] + 1) & 0xFFFF
            ttl = 64 if outbound else self.server_ttl
            header = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, 0x4000, ttl, proto, 0, src, dst
            )
            ip = header[:10] + checksum(header).to_bytes(2, "big") + header[12:]
            frame = (self._eth_out if outbound else self._eth_in) + ip + l4
        return frame if len(frame) >= 60 else frame + bytes(60 - len(frame))  # Ethernet minimum


def _patch(l4: bytes, at: int, value: int, proto: int) -> bytes:
    if proto == _UDP and value == 0:
        value = 0xFFFF  # UDP sends a computed zero as all ones; zero means "no checksum"
    return l4[:at] + value.to_bytes(2, "big") + l4[at + 2 :]


class Tcp:
    """One TCP connection's sequence numbers and segments (Linux-like options)."""

    def __init__(self, link: Link, sport: int, dport: int, rng: random.Random) -> None:
        self.link, self.sport, self.dport = link, sport, dport
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]  # client, server
        self.tsval = [rng.getrandbits(31), rng.getrandbits(31)]
        self.mss = 1428 if link.v6 else 1448  # 1500 minus IP and TCP (20 + 12 options)

    def segment(
        self, t: int, outbound: bool, flags: int, payload: bytes = b"", ack: int | None = None
    ) -> Packet:
        """One segment; ``ack`` defaults to everything the peer has sent so far."""
        me, peer = (0, 1) if outbound else (1, 0)
        sport, dport = (self.sport, self.dport) if outbound else (self.dport, self.sport)
        ts = (self.tsval[me] + t // 1000) & 0xFFFF_FFFF
        echo = (self.tsval[peer] + t // 1000) & 0xFFFF_FFFF if flags & _ACK else 0
        if flags & _SYN:
            mss = struct.pack("!BBH", 2, 4, self.mss + 12)
            options = (
                mss + b"\x04\x02" + struct.pack("!BBII", 8, 10, ts, echo) + b"\x01\x03\x03\x07"
            )
            window = 64240 if outbound else 65160
        else:
            options = b"\x01\x01" + struct.pack("!BBII", 8, 10, ts, echo)
            window = 502 if outbound else 509  # scaled by 2**7
        if ack is None:
            ack = self.seq[peer] if flags & _ACK else 0
        offset = (20 + len(options)) // 4 << 4
        header = struct.pack(
            "!HHIIBBHHH", sport, dport, self.seq[me], ack, offset, flags, window, 0, 0
        )
        self.seq[me] = (self.seq[me] + len(payload) + (1 if flags & (_SYN | _FIN) else 0)) & (
            0xFFFF_FFFF
        )
        return t, self.link.frame(outbound, _TCP, header + options + payload, 16)

    def handshake(self, t: int, rtt: int) -> Iterator[Packet]:
        yield self.segment(t, True, _SYN)
        yield self.segment(t + rtt, False, _SYN | _ACK)
        yield self.segment(t + rtt + 40, True, _ACK)

    def send(self, t: int, outbound: bool, data: bytes, rtt: int) -> Generator[Packet, None, int]:
        """Segments of ``data`` in slow-start windows, the receiver ACKing every second one.

        The sensor sits beside the clients: a client's ACK follows the server's segments at
        once, while the server's ACKs of an upload come a round trip later.
        """
        window, sent, mss = 10, 0, self.mss
        while sent < len(data):
            burst = data[sent : sent + window * mss]
            chunks = [burst[i : i + mss] for i in range(0, len(burst), mss)]
            acked = []  # what the server's ACKs of an upload acknowledge, every second segment
            for index, chunk in enumerate(chunks):
                last = sent + (index + 1) * mss >= len(data)
                yield self.segment(t, outbound, _ACK | (_PSH if last else 0), chunk)
                t += 120 if outbound else 12  # a slow uplink and a fast downlink
                if index & 1 or index == len(chunks) - 1:
                    if outbound:
                        acked.append(self.seq[0])
                    else:
                        t += 30
                        yield self.segment(t, True, _ACK)
            if outbound:
                for value in acked:
                    t += 15
                    yield self.segment(t + rtt, False, _ACK, ack=value)
                t += rtt
            sent += len(burst)
            window = min(window * 2, 256)
            if sent < len(data):
                t += rtt
        return t

    def close(self, t: int, outbound: bool, rtt: int) -> Iterator[Packet]:
        yield self.segment(t, outbound, _FIN | _ACK)
        t += rtt if outbound else 40
        yield self.segment(t, not outbound, _FIN | _ACK)
        t += 40 if outbound else rtt
        yield self.segment(t, outbound, _ACK)


# -- application payloads ------------------------------------------------------------------------


def client_hello(rng: random.Random, sni: str) -> bytes:
    """A TLS 1.3 ClientHello record with SNI, ALPN and an X25519 key share."""
    name = sni.encode()
    extensions = (
        struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name))
        + name
        + struct.pack("!HHH", 10, 8, 6)
        + b"\x00\x1d\x00\x17\x00\x18"
        + struct.pack("!HHH", 13, 10, 8)
        + b"\x04\x03\x08\x04\x04\x01\x05\x03"
        + struct.pack("!HHH", 16, 14, 12)
        + b"\x02h2\x08http/1.1"
        + struct.pack("!HHB", 43, 5, 4)
        + b"\x03\x04\x03\x03"
        + struct.pack("!HHHHH", 51, 38, 36, 0x001D, 32)
        + rng.randbytes(32)
    )
    ciphers = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8")
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + b"\x20"
        + rng.randbytes(32)
        + struct.pack("!H", len(ciphers))
        + ciphers
        + b"\x01\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def server_flight(rng: random.Random, blob: bytes) -> bytes:
    """ServerHello, ChangeCipherSpec, then the encrypted certificate flight."""
    extensions = struct.pack("!HHH", 43, 2, 0x0304) + struct.pack("!HHHH", 51, 36, 0x001D, 32)
    extensions += rng.randbytes(32)
    body = b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    hello = b"\x02" + len(body).to_bytes(3, "big") + body
    records = b"\x16\x03\x03" + struct.pack("!H", len(hello)) + hello + b"\x14\x03\x03\x00\x01\x01"
    return records + tls_records(rng, blob, rng.randint(2400, 5200))


def tls_records(rng: random.Random, blob: bytes, size: int) -> bytes:
    """About ``size`` bytes of TLS application-data records (at most 16 KiB each)."""
    out = []
    while size > 0:
        chunk = min(size, 16_384)
        start = rng.randrange(BLOB_BYTES - chunk)
        out.append(b"\x17\x03\x03" + struct.pack("!H", chunk) + blob[start : start + chunk])
        size -= chunk + 5
    return b"".join(out)


def random_bytes(rng: random.Random, blob: bytes, size: int) -> bytes:
    out = []
    while size > 0:
        chunk = min(size, BLOB_BYTES // 2)
        start = rng.randrange(BLOB_BYTES - chunk)
        out.append(blob[start : start + chunk])
        size -= chunk
    return b"".join(out)


def qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_query(txid: int, name: str, qtype: int) -> bytes:
    edns = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    question = qname(name) + struct.pack("!HH", qtype, 1)
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 1) + question + edns


def dns_answer(rng: random.Random, txid: int, name: str, qtype: int, nxdomain: bool) -> bytes:
    answers = []
    if not nxdomain and qtype in (1, 28):
        for _ in range(rng.choice((1, 1, 1, 2, 4)) if qtype == 1 else rng.choice((1, 2))):
            rdata = rng.randbytes(4 if qtype == 1 else 16)
            ttl = rng.choice((60, 300, 3600))
            answers.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(rdata)) + rdata)
    flags = 0x8183 if nxdomain else 0x8180
    edns = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    question = qname(name) + struct.pack("!HH", qtype, 1)
    header = struct.pack("!HHHHHH", txid, flags, 1, len(answers), 0, 1)
    return header + question + b"".join(answers) + edns


def udp(link: Link, t: int, outbound: bool, sport: int, dport: int, payload: bytes) -> Packet:
    ports = (sport, dport) if outbound else (dport, sport)
    l4 = struct.pack("!HHHH", *ports, 8 + len(payload), 0) + payload
    return t, link.frame(outbound, _UDP, l4, 6)


def icmp(link: Link, t: int, outbound: bool, kind: int, code: int, rest: bytes) -> Packet:
    proto = _ICMP6 if link.v6 else _ICMP
    return t, link.frame(outbound, proto, struct.pack("!BBH", kind, code, 0) + rest, 2)


# -- the world and its sessions ------------------------------------------------------------------

_WORDS: Final = (
    "www",
    "mail",
    "api",
    "cdn",
    "login",
    "static",
    "update",
    "portal",
    "img",
    "news",
    "shop",
    "docs",
    "auth",
    "files",
    "video",
    "sso",
    "assets",
    "edge",
    "telemetry",
    "graph",
    "outlook",
    "drive",
    "search",
    "maps",
    "chat",
    "meet",
)
_TLDS: Final = ("com", "net", "org", "gov", "io", "de", "fr", "eu", "be", "nl")
_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.5.0",
    "Microsoft-CryptoAPI/10.0",
)
_OTHER_TCP: Final = (25, 587, 993, 3389, 445, 5432, 8080, 8443, 1433, 636)
_REFUSED_PORTS: Final = (23, 8443, 3306, 1433, 5900, 8080, 9200, 6379)


@dataclass
class World:
    """Hosts, names and per-client port counters, all drawn from one seeded generator."""

    rng: random.Random
    blob: bytes = b""
    clients4: list[bytes] = field(default_factory=list)
    clients6: list[bytes] = field(default_factory=list)
    servers4: list[bytes] = field(default_factory=list)
    servers6: list[bytes] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    vlans: dict[bytes, int] = field(default_factory=dict)
    ttls: dict[bytes, int] = field(default_factory=dict)
    ports: dict[bytes, int] = field(default_factory=dict)
    icmp_pairs: set[tuple[bytes, bytes]] = field(default_factory=set)
    resolver4: bytes = bytes((10, 0, 0, 53))
    resolver6: bytes = bytes.fromhex("20010db8001000000000000000000053")

    def __post_init__(self) -> None:
        rng = self.rng
        self.blob = rng.randbytes(BLOB_BYTES)
        self.clients4 = [
            bytes((10, 1 + i // 250 % 16, i // 4000, 1 + i % 250)) for i in range(4000)
        ]
        prefix6 = bytes.fromhex("20010db8001000010000")
        self.clients6 = [prefix6 + rng.randbytes(6) for _ in range(400)]
        firsts = (13, 20, 23, 31, 40, 52, 93, 104, 142, 151, 172, 185, 199, 203, 212)
        self.servers4 = [
            bytes(
                (rng.choice(firsts), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
            )
            for _ in range(2500)
        ]
        self.servers6 = [bytes.fromhex("2a00") + rng.randbytes(14) for _ in range(300)]
        for client in self.clients4[:120] + self.clients6[:12]:
            self.vlans[client] = rng.choice((10, 20, 30))  # a few tagged segments
        for server in self.servers4 + self.servers6:
            self.ttls[server] = rng.choice((48, 52, 56, 57, 116, 118, 243))
        letters = "abcdefghijklmnopqrstuvwxyz"
        domains = [
            "".join(rng.choice(letters) for _ in range(rng.randint(4, 10)))
            + "."
            + rng.choice(_TLDS)
            for _ in range(500)
        ]
        self.names = [f"{rng.choice(_WORDS)}.{d}" for d in domains for _ in range(2)]

    def link(self, v6: bool, server: bytes | None = None) -> tuple[Link, int]:
        """A client-server link and the client's next ephemeral port (never reused)."""
        rng = self.rng
        client = rng.choice(self.clients6 if v6 else self.clients4)
        server = server or rng.choice(self.servers6 if v6 else self.servers4)
        port = self.ports.get(client)
        if port is None:
            port = rng.randrange(32768, 60000)
        self.ports[client] = port + 1 if port < 60999 else 32768
        link = Link(client, server, self.vlans.get(client, -1), self.ttls.get(server, 64))
        return link, port

    def rtt(self) -> int:
        return int(min(self.rng.lognormvariate(10.2, 0.8), 400_000))  # median ~27 ms

    def pause(self, mean_s: float) -> int:
        return min(int(self.rng.expovariate(1 / mean_s) * 1e6), MAX_PAUSE_US)


def https(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.1)
    tcp, rtt = Tcp(link, port, 443, rng), w.rtt()
    yield from tcp.handshake(t, rtt)
    t += rtt + 200
    yield tcp.segment(t, True, _PSH | _ACK, client_hello(rng, rng.choice(w.names)))
    t = yield from tcp.send(t + rtt, False, server_flight(rng, w.blob), rtt)
    yield tcp.segment(t + 300, True, _PSH | _ACK, tls_records(rng, w.blob, 74))
    t += 400
    for exchange in range(min(int(rng.expovariate(0.45)) + 1, 8)):
        if exchange:
            t += w.pause(3.0)
        request = tls_records(rng, w.blob, rng.randint(90, 1400))
        t = yield from tcp.send(t, True, request, rtt)
        size = int(min(rng.lognormvariate(8.6, 1.6), 2_000_000))
        t = yield from tcp.send(t + rtt // 2, False, tls_records(rng, w.blob, size), rtt)
    t += rng.randint(1_000_000, 55_000_000)  # kept alive until one side gives up
    if rng.random() < 0.1:
        yield tcp.segment(t, True, _RST | _ACK)  # the browser went away
    else:
        yield from tcp.close(t, rng.random() < 0.5, rtt)


def http(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.05)
    tcp, rtt = Tcp(link, port, 80, rng), w.rtt()
    name = rng.choice(w.names)
    yield from tcp.handshake(t, rtt)
    t += rtt + 150
    for exchange in range(rng.choice((1, 1, 2, 3))):
        if exchange:
            t += w.pause(2.0)
        path = f"/{rng.choice(_WORDS)}/{rng.randrange(10**6)}.{rng.choice(('html', 'js', 'png'))}"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: {rng.choice(_AGENTS)}\r\n"
            "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        yield tcp.segment(t, True, _PSH | _ACK, request)
        size = int(min(rng.lognormvariate(8.0, 1.7), 5_000_000))
        head = (
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        t = yield from tcp.send(t + rtt, False, head + random_bytes(rng, w.blob, size), rtt)
    yield from tcp.close(t + rng.randint(100_000, 15_000_000), rng.random() < 0.3, rtt)


def ssh(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.2)
    tcp, rtt = Tcp(link, port, 22, rng), w.rtt()
    yield from tcp.handshake(t, rtt)
    t += rtt + 100
    yield tcp.segment(t, False, _PSH | _ACK, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    yield tcp.segment(t + 2000, True, _PSH | _ACK, b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
    t += 2000 + rtt
    for size, outbound in ((1536, True), (1080, False), (48, True), (564, False), (16, True)):
        t = yield from tcp.send(t, outbound, random_bytes(rng, w.blob, size), rtt)
        t += 500
    for _ in range(rng.randint(20, 600)):  # keystrokes, echoes, and now and then some output
        t += rng.randint(60_000, 400_000) if rng.random() < 0.95 else w.pause(10.0)
        yield tcp.segment(t, True, _PSH | _ACK, random_bytes(rng, w.blob, 36))
        yield tcp.segment(t + rtt, False, _PSH | _ACK, random_bytes(rng, w.blob, 36))
        yield tcp.segment(t + rtt + 40, True, _ACK)
        t += rtt + 40
        if rng.random() < 0.05:
            output = random_bytes(rng, w.blob, rng.randint(200, 30_000))
            t = yield from tcp.send(t + 1000, False, output, rtt)
    yield from tcp.close(t + 200_000, True, rtt)


def other_tcp(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.1)
    tcp, rtt = Tcp(link, port, rng.choice(_OTHER_TCP), rng), w.rtt()
    yield from tcp.handshake(t, rtt)
    t += rtt + 100
    for _ in range(rng.randint(1, 6)):
        t = yield from tcp.send(t, False, random_bytes(rng, w.blob, rng.randint(20, 3000)), rtt)
        t = yield from tcp.send(
            t + 500, True, random_bytes(rng, w.blob, rng.randint(20, 5000)), rtt
        )
        t += w.pause(1.0)
    if rng.random() < 0.15:
        yield tcp.segment(t, False, _RST | _ACK)
    else:
        yield from tcp.close(t, rng.random() < 0.5, rtt)


def refused(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.1)
    tcp = Tcp(link, port, rng.choice(_REFUSED_PORTS), rng)
    yield tcp.segment(t, True, _SYN)
    tcp.seq[1] = 0
    yield tcp.segment(t + w.rtt(), False, _RST | _ACK)


def unanswered(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.1)
    tcp = Tcp(link, port, rng.choice(_REFUSED_PORTS), rng)
    for attempt in range(rng.randint(1, 3)):  # the same SYN, retransmitted after 1 s, 2 s
        yield tcp.segment(t, True, _SYN)
        tcp.seq[0] = (tcp.seq[0] - 1) & 0xFFFF_FFFF
        t += 1_000_000 << attempt


def dns(w: World, t: int) -> Session:
    rng = w.rng
    v6 = rng.random() < 0.1
    link, port = w.link(v6, w.resolver6 if v6 else w.resolver4)
    name, txid = rng.choice(w.names), rng.getrandbits(16)
    qtype = rng.choice((1, 1, 1, 28, 28, 65))
    yield udp(link, t, True, port, 53, dns_query(txid, name, qtype))
    if rng.random() < 0.02:
        return  # no answer
    delay = rng.randint(200, 2_000) if rng.random() < 0.7 else rng.randint(10_000, 250_000)
    nxdomain = rng.random() < 0.05
    yield udp(link, t + delay, False, port, 53, dns_answer(rng, txid, name, qtype, nxdomain))


def ntp(w: World, t: int) -> Session:
    link, port = w.link(False)
    request = b"\x23" + bytes(39) + w.rng.randbytes(8)
    yield udp(link, t, True, port, 123, request)
    reply = b"\x24\x02\x00\xe7" + w.rng.randbytes(44)
    yield udp(link, t + w.rtt(), False, port, 123, reply)


def quic(w: World, t: int) -> Session:
    rng = w.rng
    link, port = w.link(rng.random() < 0.15)
    rtt, dcid = w.rtt(), rng.randbytes(8)
    initial = b"\xc3\x00\x00\x00\x01\x08" + dcid + b"\x00\x00\x44\xd0"
    yield udp(link, t, True, port, 443, initial + random_bytes(rng, w.blob, 1200 - len(initial)))
    t += rtt
    for _ in range(rng.randint(2, 3)):
        yield udp(link, t, False, port, 443, b"\xc1" + random_bytes(rng, w.blob, 1199))
        t += 20
    for exchange in range(rng.randint(1, 4)):
        if exchange:
            t += w.pause(4.0)
        yield udp(link, t, True, port, 443, b"\x41" + dcid + random_bytes(rng, w.blob, 60))
        t += rtt
        packets = max(1, int(rng.lognormvariate(2.0, 1.3)))
        for index in range(min(packets, 2000)):
            yield udp(link, t, False, port, 443, b"\x41" + random_bytes(rng, w.blob, 1251))
            t += 15
            if index & 1:
                t += 30
                yield udp(link, t, True, port, 443, b"\x41" + dcid + rng.randbytes(24))


def ping(w: World, t: int) -> Session:
    rng = w.rng
    for _ in range(20):
        link, _port = w.link(rng.random() < 0.15)
        if link.pair not in w.icmp_pairs:
            break
    w.icmp_pairs.add(link.pair)
    ident, rtt = rng.getrandbits(16), w.rtt()
    request, reply = (128, 129) if link.v6 else (8, 0)
    for seq in range(1, rng.randint(1, 5) + 1):
        rest = struct.pack("!HH", ident, seq) + struct.pack("!Q", t) + bytes(range(16, 56))
        yield icmp(link, t, True, request, 0, rest)
        yield icmp(link, t + rtt, False, reply, 0, rest)
        t += 1_000_000


def unreachable(w: World, t: int) -> Session:
    """A UDP datagram to a closed port and the ICMP port-unreachable it draws (IPv4)."""
    rng = w.rng
    for _ in range(20):
        link, port = w.link(False)
        if link.pair not in w.icmp_pairs:
            break
    w.icmp_pairs.add(link.pair)
    probe_t, probe = udp(link, t, True, port, rng.randrange(33434, 33535), rng.randbytes(32))
    yield probe_t, probe
    offset = 18 if probe[12:14] == b"\x81\x00" else 14
    quoted = probe[offset : offset + 28]  # the original IP header and 8 bytes of UDP
    yield icmp(link, t + w.rtt(), False, 3, 3, bytes(4) + quoted)


SessionKind = tuple[str, float, Callable[[World, int], Session], tuple[str, ...]]
KINDS: Final[tuple[SessionKind, ...]] = (
    # name, share of sessions, generator, flows it makes (by transport)
    ("https", 0.27, https, ("tcp",)),
    ("http", 0.04, http, ("tcp",)),
    ("ssh", 0.004, ssh, ("tcp",)),
    ("other_tcp", 0.03, other_tcp, ("tcp",)),
    ("refused", 0.02, refused, ("tcp",)),
    ("unanswered", 0.01, unanswered, ("tcp",)),
    ("dns", 0.50, dns, ("udp",)),
    ("ntp", 0.016, ntp, ("udp",)),
    ("quic", 0.05, quic, ("udp",)),
    ("ping", 0.05, ping, ("icmp",)),
    ("unreachable", 0.01, unreachable, ("udp", "icmp")),
)


# -- the file ------------------------------------------------------------------------------------


class PcapWriter:
    """libpcap, microseconds, Ethernet; records written as they come."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._record = struct.Struct("<IIII")
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, 1))

    def write(self, t_us: int, frame: bytes) -> None:
        sec, usec = divmod(t_us, 1_000_000)
        self._handle.write(self._record.pack(sec, usec, len(frame), len(frame)) + frame)


@dataclass
class Manifest:
    """What was written: the expected flows per transport and the traffic's shape."""

    generator_version: int
    seed: int
    packets: int = 0
    bytes: int = 0
    sessions: dict[str, int] = field(default_factory=dict)
    expected_flows: dict[str, int] = field(default_factory=dict)
    first_us: int = START_US
    last_us: int = START_US
    peak_open_sessions: int = 0


def generate(handle: BinaryIO, packets: int, seed: int) -> Manifest:
    """Write sessions until ``packets`` frames are out, then let the open ones finish."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test traffic, not secrets
    world = World(rng)
    writer = PcapWriter(handle)
    manifest = Manifest(GENERATOR_VERSION, seed)
    names = [k[0] for k in KINDS]
    weights = [k[1] for k in KINDS]
    by_name = {k[0]: k for k in KINDS}
    heap: list[tuple[int, int, bytes, Session]] = []
    next_start, started = START_US, 0
    while True:
        if manifest.packets < packets and (not heap or next_start <= heap[0][0]):
            kind = by_name[rng.choices(names, weights)[0]]
            session = kind[2](world, next_start)
            first = next(session, None)
            if first is not None:
                heapq.heappush(heap, (first[0], started, first[1], session))
                started += 1
                manifest.sessions[kind[0]] = manifest.sessions.get(kind[0], 0) + 1
                for transport in kind[3]:
                    manifest.expected_flows[transport] = (
                        manifest.expected_flows.get(transport, 0) + 1
                    )
                manifest.peak_open_sessions = max(manifest.peak_open_sessions, len(heap))
            next_start += int(rng.expovariate(SESSIONS_PER_S) * 1e6) + 1
            continue
        if not heap:
            break
        t, order, frame, session = heap[0]
        writer.write(t, frame)
        manifest.packets += 1
        manifest.bytes += len(frame)
        manifest.last_us = t
        following = next(session, None)
        if following is None:
            heapq.heappop(heap)
        else:
            if following[0] < t:
                raise ValueError(f"session {order} went back in time at packet {manifest.packets}")
            heapq.heapreplace(heap, (following[0], order, following[1], session))
    return manifest


def write_capture(out: Path, packets: int, seed: int) -> Manifest:
    """Generate into a temporary file beside ``out``, then rename: never a partial capture."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tmp.open("wb", buffering=1 << 22) as handle:
            manifest = generate(handle, packets, seed)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    manifest_path(out).write_text(json.dumps(manifest.__dict__, indent=2) + "\n")
    return manifest


def manifest_path(capture: Path) -> Path:
    return capture.with_name(capture.name + ".json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="at least this many")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="the pcap file to write")
    args = parser.parse_args(argv)
    if not 1 <= args.packets <= 100_000_000:
        parser.error("--packets must be 1..100,000,000")
    started = time.perf_counter()
    manifest = write_capture(args.out.expanduser(), args.packets, args.seed)
    seconds = (manifest.last_us - manifest.first_us) / 1e6
    print(
        f"wrote {args.out}: {manifest.packets:,} packets, {manifest.bytes / 2**20:,.0f} MiB, "
        f"{seconds:,.0f} s of traffic, {sum(manifest.sessions.values()):,} sessions "
        f"(peak {manifest.peak_open_sessions:,} open), expected flows {manifest.expected_flows}, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
