"""Flow metering: packets in, bidirectional flow records out. Pure and bounded.

A flow is keyed by (protocol, VLAN, the two endpoints) regardless of direction; ``source`` is
the side that started it (the sender of the first packet, except that a SYN-ACK seen first, or
a well-known source port talking to an ephemeral one, names the other side). It ends:

* on TCP FIN from both sides, or RST, after a short *linger* that absorbs the final ACK and
  retransmitted FIN/RST instead of starting a one-packet phantom flow (a new SYN ends the
  linger at once: the port is being reused);
* when idle longer than ``idle_timeout``;
* when older than ``active_timeout`` (a long flow is reported in slices);
* when the table is full and it is the least recently active flow (counted as an eviction);
* at the end of a capture.

Time is the packets' time, never the wall clock: replaying a capture gives the same flows.
"""

from __future__ import annotations

import hashlib
import math
import socket
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sensors.appmeta import AppState
from sensors.community_id import ICMP4_COUNTERPART, ICMP6_COUNTERPART, community_id
from sensors.packet import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Packet
from sensors.wire import FLOW_DATASET, FlowEndReason, utc

_NS: Final = 1_000_000_000
_SWEEP_INTERVAL_NS: Final = _NS  # expiry runs at most once per second of packet time
_MAX_TIMEOUT: Final = 7 * 86_400.0  # a week: beyond it, a timeout is a typo

_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_FLAG_NAMES: Final = (
    (_FIN, "fin"),
    (_SYN, "syn"),
    (_RST, "rst"),
    (_PSH, "psh"),
    (_ACK, "ack"),
    (_URG, "urg"),
    (_ECE, "ece"),
    (_CWR, "cwr"),
)

# ICMP: a request and its reply (the pairs of the Community ID spec) share a flow, keyed by the
# smaller type of the pair; any other message is a one-way flow of its (type, code).
_ICMP4_PAIR: Final = {t: min(t, c) for t, c in ICMP4_COUNTERPART.items()}
_ICMP6_PAIR: Final = {t: min(t, c) for t, c in ICMP6_COUNTERPART.items()}

# Zeek's connection history, the letters kept: S a SYN, H a SYN-ACK, A a pure ACK, D data,
# F a FIN, R a RST; upper case from the originator, lower case from the responder, each
# letter once, in the order first seen. Bits 0-5 are the originator's, 6-11 the responder's.
_S, _H, _A, _D, _F, _R = 1, 2, 4, 8, 16, 32
_LETTERS: Final = "SHADFR"


def _letters_of_flags(flags: int) -> int:
    bits = 0
    if flags & _SYN:
        bits |= _H if flags & _ACK else _S
    if flags & _FIN:
        bits |= _F
    if flags & _RST:
        bits |= _R
    if flags & _ACK and not flags & (_SYN | _FIN | _RST):
        bits |= _A
    return bits


_FLAG_LETTERS: Final = tuple(_letters_of_flags(f) for f in range(256))


def _history_letters(new: int) -> str:
    out = ""
    for i, letter in enumerate(_LETTERS):
        if new & (1 << i):
            out += letter
        if new & (1 << (i + 6)):
            out += letter.lower()
    return out


def conn_state(flow: Flow) -> str:
    """Zeek's ``conn_state`` of a flow, from the history it saw.

    S0 no reply; REJ refused; S1 established, not closed; SF closed by both; S2/S3 closed by
    the originator/responder only; RSTO/RSTR aborted by the originator/responder; RSTOS0,
    RSTRH, SH, SHR half-open variants; OTH no SYN seen. Non-TCP: SF if both sides spoke,
    else S0.
    """
    seen = flow.seen
    if flow.proto != PROTO_TCP:
        return "SF" if flow.src_packets and flow.dst_packets else "S0"
    syn, synack = seen & _S, seen & (_H << 6)
    o_fin, r_fin = seen & _F, seen & (_F << 6)
    o_rst, r_rst = seen & _R, seen & (_R << 6)
    if syn and not synack:
        if r_rst:
            return "REJ"
        if o_rst:
            return "RSTOS0"
        return "SH" if o_fin else "S0"
    if synack and not syn:
        if r_rst:
            return "RSTRH"
        return "SHR" if r_fin else "OTH"
    if not syn:
        return "OTH"
    if o_rst:
        return "RSTO"
    if r_rst:
        return "RSTR"
    if o_fin and r_fin:
        return "SF"
    if o_fin:
        return "S2"
    return "S3" if r_fin else "S1"


_TRANSPORT_NAMES: Final = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 47: "gre"}
_TRANSPORT_NAMES_MORE: Final = {50: "esp", 51: "ah"}


@dataclass(frozen=True)
class MeterConfig:
    """Timeouts in seconds and the flow table's bound.

    Defaults follow nfstream (120 s idle, 1800 s active). One second of linger covers the
    final ACK and a retransmitted FIN on any path with a round trip under a second.
    """

    idle_timeout: float = 120.0
    active_timeout: float = 1800.0
    linger: float = 1.0
    max_flows: int = 262_144

    def __post_init__(self) -> None:
        timeouts = (self.idle_timeout, self.active_timeout, self.linger)
        if not all(math.isfinite(t) and t <= _MAX_TIMEOUT for t in timeouts):
            raise ValueError(f"flow timeouts must be finite, at most {_MAX_TIMEOUT:.0f} s")
        if not (self.idle_timeout > 0 and self.active_timeout > 0 and self.linger >= 0):
            raise ValueError("flow timeouts must be positive (linger may be zero)")
        if self.max_flows < 1:
            raise ValueError("max_flows must be at least 1")


@dataclass
class MeterCounters:
    packets: int = 0
    flows_started: int = 0
    flows_ended: int = 0
    flows_evicted: int = 0
    clock_steps_back: int = 0  # packets earlier than the one before by more than a second


class Flow:
    """One flow's state while the meter follows it (internal; exported as a record)."""

    __slots__ = (
        "app",
        "closing",
        "dport",
        "dst",
        "dst_bytes",
        "dst_packets",
        "first_ns",
        "flags",
        "history",
        "inspect",
        "key",
        "last_ns",
        "proto",
        "reason",
        "seen",
        "sport",
        "src",
        "src_bytes",
        "src_packets",
        "version",
        "vlan",
    )

    def __init__(self, key: tuple[Any, ...], p: Packet, swap: bool) -> None:
        self.key = key
        self.proto = p.proto
        self.version = p.version
        self.vlan = p.vlan
        if swap:
            self.src, self.sport, self.dst, self.dport = p.dst, p.dport, p.src, p.sport
        else:
            self.src, self.sport, self.dst, self.dport = p.src, p.sport, p.dst, p.dport
        self.first_ns = self.last_ns = p.ts_ns
        self.src_bytes = self.src_packets = self.dst_bytes = self.dst_packets = 0
        self.flags: dict[int, int] = {}
        self.history = "^" if swap else ""  # Zeek marks a flipped direction with ^
        self.seen = 0  # history letters seen, a bit each: see _LETTERS
        self.app: AppState | None = None
        self.inspect = True  # still looking for application metadata
        self.closing = False
        self.reason = FlowEndReason.END_OF_CAPTURE

    def tcp_flag_counts(self) -> dict[str, int]:
        counts = dict.fromkeys((name for _, name in _FLAG_NAMES), 0)
        for value, seen in self.flags.items():
            for bit, name in _FLAG_NAMES:
                if value & bit:
                    counts[name] += seen
        return counts


class FlowMeter:
    """Follows flows packet by packet; ended flows collect in :attr:`ended` for the caller."""

    def __init__(self, config: MeterConfig | None = None) -> None:
        self.config = config or MeterConfig()
        self.counters = MeterCounters()
        self.ended: list[Flow] = []
        self._table: OrderedDict[tuple[Any, ...], Flow] = OrderedDict()
        self._lingering: deque[tuple[int, tuple[Any, ...], Flow]] = deque()
        self._idle_ns = int(self.config.idle_timeout * _NS)
        self._active_ns = int(self.config.active_timeout * _NS)
        self._linger_ns = int(self.config.linger * _NS)
        self._previous = 0
        self._last_sweep = 0
        self._next_sweep = 0

    def __len__(self) -> int:
        return len(self._table)

    def add(self, p: Packet, frame: bytes = b"") -> None:
        """Account one packet; flows it ends (or that expire by its time) go to :attr:`ended`.

        With ``frame`` (the packet's bytes), the first payloads of a flow are also read for
        application metadata (:mod:`sensors.appmeta`).
        """
        # The hot path: one tuple unpack instead of a dozen attribute lookups, locals for
        # everything touched more than once.
        ts, _, src, dst, proto, sport, dport, ip_len, flags, vlan, payload_at, payload_len = p
        counters = self.counters
        counters.packets += 1
        if ts < self._previous - _NS:
            counters.clock_steps_back += 1
        self._previous = ts
        # Expiry runs once a second of packet time, and at once when the clock steps back (a
        # bogus or reordered timestamp must not stall it: see ``expire``).
        if ts >= self._next_sweep or ts < self._last_sweep:
            self.expire(ts)
        if proto in (PROTO_TCP, PROTO_UDP):
            if src < dst or (src == dst and sport <= dport):
                key = (proto, vlan, src, sport, dst, dport)
            else:
                key = (proto, vlan, dst, dport, src, sport)
        elif proto in (PROTO_ICMP, PROTO_ICMPV6):
            # ICMP has no ports: a request and its reply share the request's type as key.
            request = (_ICMP4_PAIR if proto == PROTO_ICMP else _ICMP6_PAIR).get(sport)
            kport, kcode = (request, -1) if request is not None else (sport, dport)
            if src <= dst:
                key = (proto, vlan, src, kport, dst, kcode)
            else:
                key = (proto, vlan, dst, kport, src, kcode)
        elif src < dst or (src == dst and sport <= dport):
            key = (proto, vlan, src, sport, dst, dport)
        else:
            key = (proto, vlan, dst, dport, src, sport)

        table = self._table
        flow = table.get(key)
        if flow is not None:
            if flow.closing and proto == PROTO_TCP and flags & (_SYN | _ACK) == _SYN:
                self._end(key, flow, flow.reason)  # a new connection reuses the ports
                flow = None
            elif ts - flow.first_ns >= self._active_ns:
                self._end(key, flow, FlowEndReason.ACTIVE_TIMEOUT)
                flow = self._start(key, p, like=flow)  # the next slice keeps the direction
            else:
                table.move_to_end(key)
        if flow is None:
            flow = self._start(key, p)

        forward = src == flow.src and (sport == flow.sport or proto in (1, 58))
        if forward:
            flow.src_bytes += ip_len
            flow.src_packets += 1
        else:
            flow.dst_bytes += ip_len
            flow.dst_packets += 1
        flow.last_ns = max(flow.last_ns, ts)
        if proto == PROTO_TCP:
            seen_flags = flow.flags
            seen_flags[flags] = seen_flags.get(flags, 0) + 1
            bits = _FLAG_LETTERS[flags]
            if payload_len:
                bits = (bits & ~_A) | _D
            if not forward:
                bits <<= 6
            new = bits & ~flow.seen
            if new:
                flow.seen |= new
                flow.history += _history_letters(new)
                if new & (_R | _R << 6) and not flow.closing:
                    self._close(key, flow, FlowEndReason.RST, ts)
                elif flow.seen & _F and flow.seen & (_F << 6) and not flow.closing:
                    self._close(key, flow, FlowEndReason.FIN, ts)
        if payload_len and flow.inspect and frame:
            app = flow.app
            if app is None:
                app = flow.app = AppState(proto, flow.sport, flow.dport)
            if not app.done:
                app.feed(forward, frame[payload_at : payload_at + payload_len])
            if app.done:
                flow.inspect = False

    def expire(self, now_ns: int) -> None:
        """End the flows that are idle, or done lingering, at ``now_ns`` (packet time).

        The table is in order of last activity, so expiry stops at the first fresh flow. A
        flow whose time lies beyond ``now_ns`` by more than the idle timeout (the clock stepped
        back, or one packet carried a bogus time) counts as idle too: otherwise it would stop
        expiry, and the linger queue, for as long as the bogus time stays in the future.
        """
        self._last_sweep = now_ns
        self._next_sweep = now_ns + _SWEEP_INTERVAL_NS
        table = self._table
        deadline = now_ns - self._idle_ns
        horizon = now_ns + self._idle_ns
        while table:
            key, flow = next(iter(table.items()))
            if deadline < flow.last_ns <= horizon:
                break
            self._end(key, flow, flow.reason if flow.closing else FlowEndReason.IDLE_TIMEOUT)
        lingering = self._lingering
        linger_horizon = now_ns + self._linger_ns
        while lingering and not now_ns < lingering[0][0] <= linger_horizon:
            _, key, flow = lingering.popleft()
            if table.get(key) is flow:
                self._end(key, flow, flow.reason)

    def flush(self) -> None:
        """End every flow still open (end of a capture, or shutdown)."""
        for key, flow in list(self._table.items()):
            self._end(key, flow, flow.reason if flow.closing else FlowEndReason.END_OF_CAPTURE)
        self._lingering.clear()

    def drain(self) -> list[Flow]:
        """Take the flows ended so far."""
        ended, self.ended = self.ended, []
        return ended

    def _start(self, key: tuple[Any, ...], p: Packet, like: Flow | None = None) -> Flow:
        if len(self._table) >= self.config.max_flows:
            old_key, old = next(iter(self._table.items()))
            if old.closing:  # already over, only lingering: end it as it ended
                self._end(old_key, old, old.reason)
            else:
                self.counters.flows_evicted += 1
                self._end(old_key, old, FlowEndReason.EVICTED)
        swap = False
        if like is not None:
            swap = not (p.src == like.src and (p.sport == like.sport or p.proto in (1, 58)))
        elif p.proto == PROTO_TCP and p.tcp_flags & (_SYN | _ACK) == _SYN | _ACK:
            swap = True  # the SYN was missed; the SYN-ACK's receiver started it
        elif p.tcp_flags & _SYN == 0 and 0 <= p.sport < 1024 <= p.dport:
            swap = True  # mid-stream pick-up: a well-known port is the responder's
        flow = Flow(key, p, swap)
        self._table[key] = flow
        self.counters.flows_started += 1
        return flow

    def _close(self, key: tuple[Any, ...], flow: Flow, reason: FlowEndReason, ts: int) -> None:
        flow.closing = True
        flow.reason = reason
        if self._linger_ns == 0:
            self._end(key, flow, reason)
        else:
            self._lingering.append((ts + self._linger_ns, key, flow))

    def _end(self, key: tuple[Any, ...], flow: Flow, reason: FlowEndReason) -> None:
        del self._table[key]
        flow.reason = reason
        self.counters.flows_ended += 1
        self.ended.append(flow)


class FlowExporter:
    """Turns ended flows into wire records (``dict`` with ECS names) for one sensor."""

    def __init__(self, sensor_id: str) -> None:
        self.sensor_id = sensor_id

    def record(self, flow: Flow) -> dict[str, Any]:
        family = socket.AF_INET if flow.version == 4 else socket.AF_INET6
        src = socket.inet_ntop(family, flow.src)
        dst = socket.inet_ntop(family, flow.dst)
        transport = _TRANSPORT_NAMES.get(flow.proto) or _TRANSPORT_NAMES_MORE.get(
            flow.proto, "other"
        )
        record: dict[str, Any] = {
            "event.id": self._event_id(flow),
            "event.dataset": FLOW_DATASET,
            "event.start": _iso(flow.first_ns),
            "event.end": _iso(flow.last_ns),
            "event.duration": flow.last_ns - flow.first_ns,
            "flow.end_reason": flow.reason.value,
            "network.transport": transport,
            "network.iana_number": str(flow.proto),
            "network.type": "ipv4" if flow.version == 4 else "ipv6",
            "source.ip": src,
            "source.bytes": flow.src_bytes,
            "source.packets": flow.src_packets,
            "destination.ip": dst,
            "destination.bytes": flow.dst_bytes,
            "destination.packets": flow.dst_packets,
        }
        community = self._community_id(flow)
        if community is not None:
            record["network.community_id"] = community
        if flow.vlan >= 0:
            record["network.vlan.id"] = str(flow.vlan)
        if flow.proto in (PROTO_ICMP, PROTO_ICMPV6):
            record["icmp.type"] = flow.sport
            if flow.dport >= 0:
                record["icmp.code"] = flow.dport
        elif flow.sport >= 0:
            record["source.port"] = flow.sport
            record["destination.port"] = flow.dport
        record["flow.state"] = conn_state(flow)
        if flow.proto == PROTO_TCP:
            record["flow.history"] = flow.history
            for name, count in flow.tcp_flag_counts().items():
                record[f"flow.tcp_flags.{name}"] = count
        if flow.app is not None:
            record.update(flow.app.result())
        return record

    def _event_id(self, flow: Flow) -> str:
        return event_id(self.sensor_id, repr(flow.key), flow.first_ns)

    def _community_id(self, flow: Flow) -> str | None:
        if flow.proto in (PROTO_ICMP, PROTO_ICMPV6):
            return community_id(flow.proto, flow.src, flow.dst, flow.sport, max(flow.dport, 0))
        return community_id(flow.proto, flow.src, flow.dst, flow.sport, flow.dport)


def event_id(sensor_id: str, key: str, start_ns: int) -> str:
    """A flow's id: 16 hex digits of its start time, then 16 of a hash of who and what.

    Deterministic, so a resend after a crash or a lost reply is recognised by the server as a
    duplicate; time-ordered, so the store's unique index grows at its end instead of being
    rewritten at random places.

    >>> event_id("edge-1", "(6, ...)", 1_767_225_600_000_000_000)
    '18867251edfa00000a08ecbad7ac2112'
    """
    digest = hashlib.blake2b(f"{sensor_id}|{key}|{start_ns}".encode(), digest_size=8)
    return f"{start_ns & 0xFFFF_FFFF_FFFF_FFFF:016x}{digest.hexdigest()}"


def _iso(ts_ns: int) -> str:
    seconds, rest = divmod(ts_ns, _NS)
    return utc(datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000))
