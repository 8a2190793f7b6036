"""What the anomaly detectors look at: feature vectors of a flow and of a host's minute.

Every feature has a fixed range (:class:`Feature`) taken from what is physically possible, not
from the traffic seen so far: Half-Space Trees split the range at random, and a range learned
from normal traffic would leave no room for the attack values that matter. Counts and sizes
are taken as ``log1p`` (a 40-byte probe and a 4 GB transfer both land inside the range, and
the trees split where orders of magnitude differ).

Records are the ECS dicts of :mod:`sensors.wire` (``dump_record``): keys such as
``source.bytes``, ``flow.state``, ``event.end``.

>>> vector = flow_features({"source.bytes": 0, "destination.bytes": 0, "network.transport": "tcp",
...                         "flow.state": "S0", "source.packets": 1, "destination.packets": 0})
>>> vector["failed"], vector["udp"], round(vector["src_pkts"], 3)
(1.0, 0.0, 0.693)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True)
class Feature:
    """One input of a detector: its key, what an analyst calls it, and its possible range."""

    key: str
    label: str
    low: float
    high: float
    log: bool = True  # the value is log1p(x); explanations show x
    upward_only: bool = False  # only more than usual is a concern (fewer flows is not)

    def display(self, value: float) -> float:
        """The value as the analyst knows it (bytes, not log bytes)."""
        return math.expm1(value) if self.log else value


_LOG_BYTES: Final = math.log1p(2.0**42)  # 4 TiB in one flow or one host-minute
_LOG_PACKETS: Final = math.log1p(2.0**32)
_LOG_PACKET_SIZE: Final = math.log1p(65_535.0)  # the largest IP packet
_LOG_DURATION: Final = math.log1p(86_400.0 * 7)  # seconds; a flow is cut at the active timeout
_LOG_NAMES: Final = math.log1p(65_536.0)

FLOW_FEATURES: Final = (
    Feature("src_bytes", "source.bytes", 0.0, _LOG_BYTES),
    Feature("dst_bytes", "destination.bytes", 0.0, _LOG_BYTES),
    Feature("src_pkts", "source.packets", 0.0, _LOG_PACKETS),
    Feature("dst_pkts", "destination.packets", 0.0, _LOG_PACKETS),
    Feature("src_pkt_size", "source bytes per packet", 0.0, _LOG_PACKET_SIZE),
    Feature("dst_pkt_size", "destination bytes per packet", 0.0, _LOG_PACKET_SIZE),
    Feature("duration", "event.duration (s)", 0.0, _LOG_DURATION),
    Feature("failed", "connection failed (flow.state)", 0.0, 1.0, log=False),
    Feature("udp", "network.transport is udp", 0.0, 1.0, log=False),
    Feature("icmp", "network.transport is icmp", 0.0, 1.0, log=False),
    Feature("dns_name_len", "flow.dns.max_name_length", 0.0, 255.0, log=False),
    Feature("dns_names", "flow.dns.unique_names", 0.0, _LOG_NAMES),
)

HOST_FEATURES: Final = (
    Feature("flows", "flows", 0.0, math.log1p(10.0**7), upward_only=True),
    Feature("destinations", "distinct destinations", 0.0, _LOG_NAMES, upward_only=True),
    Feature("ports", "distinct destination ports", 0.0, _LOG_NAMES, upward_only=True),
    Feature("failed_ratio", "failed-connection ratio", 0.0, 1.0, log=False, upward_only=True),
    Feature("bytes_out", "bytes out", 0.0, _LOG_BYTES, upward_only=True),
    Feature("dns_names", "distinct DNS names", 0.0, _LOG_NAMES, upward_only=True),
)

FAILED_STATES: Final = frozenset({"S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"})
"""Zeek ``conn_state`` values of a connection that never got going: no answer, refused, or
reset before the handshake completed."""

MAX_DISTINCT: Final = 65_536  # distinct values a host-minute tracks per kind; counts saturate


def _number(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


def flow_features(record: Mapping[str, Any]) -> dict[str, float]:
    """The feature vector of one flow record (keys of :data:`FLOW_FEATURES`)."""
    src_bytes = _number(record, "source.bytes")
    dst_bytes = _number(record, "destination.bytes")
    src_pkts = _number(record, "source.packets")
    dst_pkts = _number(record, "destination.packets")
    transport = record.get("network.transport")
    log1p = math.log1p
    return {
        "src_bytes": log1p(src_bytes),
        "dst_bytes": log1p(dst_bytes),
        "src_pkts": log1p(src_pkts),
        "dst_pkts": log1p(dst_pkts),
        "src_pkt_size": log1p(src_bytes / src_pkts) if src_pkts else 0.0,
        "dst_pkt_size": log1p(dst_bytes / dst_pkts) if dst_pkts else 0.0,
        "duration": log1p(_number(record, "event.duration") / 1e9),
        "failed": 1.0 if record.get("flow.state") in FAILED_STATES else 0.0,
        "udp": 1.0 if transport == "udp" else 0.0,
        "icmp": 1.0 if transport in ("icmp", "ipv6-icmp") else 0.0,
        "dns_name_len": min(_number(record, "flow.dns.max_name_length"), 255.0),
        "dns_names": log1p(_number(record, "flow.dns.unique_names")),
    }


@dataclass
class HostMinute:
    """What one source host did in one minute, gathered flow by flow (bounded)."""

    flows: int = 0
    failed: int = 0
    bytes_out: float = 0.0
    destinations: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    event_ids: list[str] = field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0

    def add(self, record: Mapping[str, Any], moment_ns: int, max_ids: int) -> None:
        self.flows += 1
        if record.get("flow.state") in FAILED_STATES:
            self.failed += 1
        self.bytes_out += _number(record, "source.bytes")
        _bounded_add(self.destinations, record.get("destination.ip"))
        _bounded_add(self.ports, record.get("destination.port"))
        _bounded_add(self.names, record.get("dns.question.name"))
        if len(self.event_ids) < max_ids:
            self.event_ids.append(str(record.get("event.id", "")))
        self.first_ns = min(self.first_ns, moment_ns) if self.first_ns else moment_ns
        self.last_ns = max(self.last_ns, moment_ns)

    def features(self) -> dict[str, float]:
        """The feature vector (keys of :data:`HOST_FEATURES`)."""
        log1p = math.log1p
        return {
            "flows": log1p(self.flows),
            "destinations": log1p(len(self.destinations)),
            "ports": log1p(len(self.ports)),
            "failed_ratio": self.failed / self.flows if self.flows else 0.0,
            "bytes_out": log1p(self.bytes_out),
            "dns_names": log1p(len(self.names)),
        }


def _bounded_add(values: set[Any], value: Any) -> None:
    if value is not None and len(values) < MAX_DISTINCT:
        values.add(value)
