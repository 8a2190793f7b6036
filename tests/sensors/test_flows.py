"""The flow meter on hand-checked captures, its timeouts and bounds, and a cross-check
against an independent tool (tshark) on real captures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sensors.flows import FlowExporter, FlowMeter, MeterConfig
from sensors.packet import Packet, PacketDecoder
from sensors.pcapfile import read_frames
from sensors.wire import validate_record
from tests.conftest import DATA, shared_capture

NS = 1_000_000_000
T0 = 1_767_225_600 * NS
WEEK = 7 * 86_400.0  # longer than any of these captures: timeouts never fire
VOLATILE = ("event.id", "network.community_id")


def meter(path: Path, config: MeterConfig | None = None) -> tuple[list[dict[str, Any]], FlowMeter]:
    decoder = PacketDecoder()
    flow_meter = FlowMeter(config)
    for frame in read_frames(path):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        if packet is not None:
            flow_meter.add(packet, frame.data)
    flow_meter.flush()
    exporter = FlowExporter("sensor-1")
    records = [exporter.record(flow) for flow in flow_meter.drain()]
    for record in records:
        validate_record(record)  # every record the sensor makes is valid on the wire
    return records, flow_meter


def stable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def tcp_flags(**counts: int) -> dict[str, int]:
    names = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
    return {f"flow.tcp_flags.{name}": counts.get(name, 0) for name in names}


def test_a_complete_tcp_session_is_one_flow_ended_by_fin() -> None:
    records, _ = meter(DATA / "tcp_session.pcap")
    assert [
        {
            "event.dataset": "trustwatch.flow",
            "event.start": "2026-01-01T00:00:00.000000Z",
            "event.end": "2026-01-01T00:00:00.080000Z",
            "event.duration": 80_000_000,
            "flow.end_reason": "fin",
            "network.transport": "tcp",
            "network.iana_number": "6",
            "network.type": "ipv4",
            "source.ip": "10.0.0.1",
            "source.port": 40000,
            # SYN, ACK, FIN+ACK, final ACK at 40 bytes and 100 bytes of data at 140.
            "source.bytes": 4 * 40 + 140,
            "source.packets": 5,
            "destination.ip": "10.0.0.2",
            "destination.port": 80,
            # SYN+ACK, ACK, FIN+ACK at 40 bytes and 200 bytes of data at 240.
            "destination.bytes": 3 * 40 + 240,
            "destination.packets": 4,
            # Zeek's history, letters in the order first seen: SYN, SYN-ACK, ACK, data both
            # ways, FIN, ACK and FIN from the server.
            "flow.state": "SF",
            "flow.history": "ShADdFaf",
            **tcp_flags(syn=2, ack=8, psh=2, fin=2),
        }
    ] == [stable(r) for r in records]


def test_a_refused_connection_ends_on_rst() -> None:
    records, _ = meter(DATA / "tcp_rejected.pcap")
    assert [
        {
            "event.dataset": "trustwatch.flow",
            "event.start": "2026-01-01T00:00:00.000000Z",
            "event.end": "2026-01-01T00:00:00.001000Z",
            "event.duration": 1_000_000,
            "flow.end_reason": "rst",
            "network.transport": "tcp",
            "network.iana_number": "6",
            "network.type": "ipv4",
            "source.ip": "10.0.0.1",
            "source.port": 40001,
            "source.bytes": 40,
            "source.packets": 1,
            "destination.ip": "10.0.0.2",
            "destination.port": 23,
            "destination.bytes": 40,
            "destination.packets": 1,
            "flow.state": "REJ",
            "flow.history": "Sr",
            **tcp_flags(syn=1, rst=1, ack=1),
        }
    ] == [stable(r) for r in records]


def test_a_dns_exchange_is_one_udp_flow_with_its_question_and_answer() -> None:
    records, _ = meter(DATA / "dns.pcap")
    assert [
        {
            "event.dataset": "trustwatch.flow",
            "event.start": "2026-01-01T00:00:00.000000Z",
            "event.end": "2026-01-01T00:00:00.002000Z",
            "event.duration": 2_000_000,
            "flow.end_reason": "end_of_capture",
            "network.transport": "udp",
            "network.iana_number": "17",
            "network.type": "ipv4",
            "source.ip": "10.0.0.1",
            "source.port": 33333,
            # IP 20 + UDP 8 + DNS header 12 + question 17; the answer adds a 27-byte record
            # (scapy writes the name in full, without compression).
            "source.bytes": 57,
            "source.packets": 1,
            "destination.ip": "10.0.0.53",
            "destination.port": 53,
            "destination.bytes": 84,
            "destination.packets": 1,
            "flow.state": "SF",
            "dns.question.name": "example.org",
            "dns.question.type": "A",
            "dns.response_code": "NOERROR",
            "flow.dns.queries": 1,
            "flow.dns.unique_names": 1,
            "flow.dns.max_name_length": 11,
        }
    ] == [stable(r) for r in records]


def test_echo_requests_and_replies_share_one_icmp_flow() -> None:
    records, _ = meter(DATA / "icmp.pcap")
    assert [stable(r) for r in records] == [
        {
            "event.dataset": "trustwatch.flow",
            "event.start": "2026-01-01T00:00:00.000000Z",
            "event.end": "2026-01-01T00:00:02.001000Z",
            "event.duration": 2_001_000_000,
            "flow.end_reason": "end_of_capture",
            "network.transport": "icmp",
            "network.iana_number": "1",
            "network.type": "ipv4",
            "source.ip": "10.0.0.1",
            "source.bytes": 3 * 28,
            "source.packets": 3,
            "destination.ip": "10.0.0.2",
            "destination.bytes": 3 * 28,
            "destination.packets": 3,
            "icmp.type": 8,
            "icmp.code": 0,
            "flow.state": "SF",
        }
    ]


def test_an_ipv6_session_is_metered_like_ipv4() -> None:
    records, _ = meter(DATA / "ipv6_session.pcap")
    assert len(records) == 1
    record = records[0]
    assert (
        record["source.ip"],
        record["source.port"],
        record["destination.ip"],
        record["destination.port"],
        record["network.type"],
        record["flow.end_reason"],
    ) == ("2001:db8::1", 40002, "2001:db8::2", 443, "ipv6", "fin")
    # IPv6 header 40 + TCP 20 = 60 bytes per empty segment.
    assert (
        record["source.bytes"],
        record["source.packets"],
        record["destination.bytes"],
        record["destination.packets"],
    ) == (4 * 60 + 160, 5, 3 * 60 + 260, 4)


def test_the_same_five_tuple_on_two_vlans_is_two_flows() -> None:
    records, _ = meter(DATA / "vlan.pcap")
    assert sorted((r["network.vlan.id"], r["source.ip"], r["source.port"]) for r in records) == [
        ("100", "10.1.0.1", 41000),
        ("200", "10.1.0.1", 41000),
    ]


def test_the_mixed_capture_gives_the_flows_its_script_describes() -> None:
    records, flow_meter = meter(DATA / "mixed.pcap")
    assert len(records) == 19
    reasons: dict[str, int] = {}
    for record in records:
        reasons[record["flow.end_reason"]] = reasons.get(record["flow.end_reason"], 0) + 1
    # 2 FIN sessions and 11 refused connections. The packet at +210 s moves packet time past
    # the 120 s idle timeout of everything still open (two DNS flows, the pings, two VLAN
    # flows); the last DNS flow is open when the capture ends.
    assert reasons == {"fin": 2, "rst": 11, "idle_timeout": 5, "end_of_capture": 1}
    assert len({r["event.id"] for r in records}) == 19
    assert (
        flow_meter.counters.packets,
        flow_meter.counters.flows_started,
        flow_meter.counters.flows_ended,
        flow_meter.counters.flows_evicted,
    ) == (56, 19, 19, 0)


def test_event_ids_are_stable_per_sensor_and_differ_between_sensors() -> None:
    first, _ = meter(DATA / "mixed.pcap")
    again, _ = meter(DATA / "mixed.pcap")
    assert [r["event.id"] for r in first] == [r["event.id"] for r in again]
    other = FlowMeter()
    decoder = PacketDecoder()
    for frame in read_frames(DATA / "mixed.pcap"):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        if packet is not None:
            other.add(packet)
    other.flush()
    ids = {FlowExporter("sensor-2").record(f)["event.id"] for f in other.drain()}
    assert not ids & {r["event.id"] for r in first}


def _packet(
    ts: float,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    flags: int = 0x10,
    proto: int = 6,
    size: int = 40,
) -> Packet:
    import socket

    return Packet(
        int(T0 + ts * NS),
        4,
        socket.inet_aton(src),
        socket.inet_aton(dst),
        proto,
        sport,
        dport,
        size,
        flags,
        -1,
    )


def test_community_id_matches_the_specification_test_vector() -> None:
    # From the Community ID spec's baseline: TCP 128.232.110.120:34855 -> 66.35.250.204:80.
    flow_meter = FlowMeter()
    flow_meter.add(_packet(0, "128.232.110.120", 34855, "66.35.250.204", 80, flags=0x02))
    flow_meter.flush()
    record = FlowExporter("s").record(flow_meter.drain()[0])
    assert record["network.community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_idle_flows_end_when_packet_time_passes_the_timeout() -> None:
    flow_meter = FlowMeter(MeterConfig(idle_timeout=10))
    flow_meter.add(_packet(0, "10.0.0.1", 1000, "10.0.0.2", 53, proto=17))
    flow_meter.add(_packet(5, "10.0.0.3", 1000, "10.0.0.2", 53, proto=17))
    flow_meter.add(_packet(12, "10.0.0.4", 1000, "10.0.0.2", 53, proto=17))
    ended = flow_meter.drain()
    assert [(f.reason.value, f.src[-1]) for f in ended] == [("idle_timeout", 1)]
    assert len(flow_meter) == 2


def test_a_long_flow_is_reported_in_active_timeout_slices() -> None:
    flow_meter = FlowMeter(MeterConfig(active_timeout=60, idle_timeout=30))
    for second in range(0, 150, 10):
        flow_meter.add(_packet(second, "10.0.0.1", 5000, "10.0.0.2", 443))
    flow_meter.flush()
    ended = flow_meter.drain()
    assert [(f.reason.value, f.src_packets) for f in ended] == [
        ("active_timeout", 6),
        ("active_timeout", 6),
        ("end_of_capture", 3),
    ]
    assert all(f.src == ended[0].src and f.sport == 5000 for f in ended)


def test_a_full_table_ends_a_lingering_flow_as_it_ended_not_as_evicted() -> None:
    flow_meter = FlowMeter(MeterConfig(max_flows=1))
    flow_meter.add(_packet(0.00, "10.0.0.1", 1, "10.0.0.9", 80, flags=0x04))  # RST: lingers
    flow_meter.add(_packet(0.10, "10.0.0.2", 1, "10.0.0.9", 80))
    assert [("rst", 1)] == [(f.reason.value, f.src[-1]) for f in flow_meter.drain()]
    assert 0 == flow_meter.counters.flows_evicted


def test_a_full_table_evicts_the_least_recently_active_flow_and_counts_it() -> None:
    flow_meter = FlowMeter(MeterConfig(max_flows=2))
    flow_meter.add(_packet(0.0, "10.0.0.1", 1, "10.0.0.9", 80))
    flow_meter.add(_packet(0.1, "10.0.0.2", 1, "10.0.0.9", 80))
    flow_meter.add(_packet(0.2, "10.0.0.1", 1, "10.0.0.9", 80))  # flow 1 is now the fresher
    flow_meter.add(_packet(0.3, "10.0.0.3", 1, "10.0.0.9", 80))
    ended = flow_meter.drain()
    assert [(f.reason.value, f.src[-1]) for f in ended] == [("evicted", 2)]
    assert (flow_meter.counters.flows_evicted, len(flow_meter)) == (1, 2)


def test_linger_absorbs_the_final_ack_and_a_new_syn_starts_a_new_flow() -> None:
    flow_meter = FlowMeter(MeterConfig(linger=1.0))
    c, s = "10.0.0.1", "10.0.0.2"
    flow_meter.add(_packet(0.00, c, 4000, s, 80, flags=0x02))
    flow_meter.add(_packet(0.01, s, 80, c, 4000, flags=0x12))
    flow_meter.add(_packet(0.02, c, 4000, s, 80, flags=0x11))
    flow_meter.add(_packet(0.03, s, 80, c, 4000, flags=0x11))
    flow_meter.add(_packet(0.04, c, 4000, s, 80, flags=0x10))  # the final ACK: same flow
    assert flow_meter.drain() == []
    flow_meter.add(_packet(0.50, c, 4000, s, 80, flags=0x02))  # port reused at once
    first = flow_meter.drain()
    assert [(f.reason.value, f.src_packets, f.dst_packets) for f in first] == [("fin", 3, 2)]
    flow_meter.add(_packet(2.0, "10.0.0.7", 1, s, 81, flags=0x02))  # time passes
    assert flow_meter.drain() == []  # the second connection has not closed
    assert len(flow_meter) == 2


def test_a_syn_ack_seen_first_names_its_receiver_as_the_source() -> None:
    flow_meter = FlowMeter()
    flow_meter.add(_packet(0, "10.0.0.2", 443, "10.0.0.1", 5555, flags=0x12))
    flow_meter.flush()
    flow = flow_meter.drain()[0]
    assert (bytes([10, 0, 0, 1]), 5555, 0, 1) == (
        flow.src,
        flow.sport,
        flow.src_packets,
        flow.dst_packets,
    )


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        MeterConfig(idle_timeout=0)
    with pytest.raises(ValueError, match="max_flows"):
        MeterConfig(max_flows=0)


def _tshark_conversations(path: Path) -> int:
    out = subprocess.run(
        ["tshark", "-n", "-q", "-r", str(path), "-z", "conv,tcp", "-z", "conv,udp"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return sum(1 for line in out.splitlines() if "<->" in line)


@pytest.mark.parametrize(
    "capture",
    [
        "zeek-traces/ssh/sshguess.pcap",
        "zeek-traces/ftp/bruteforce.pcap",
        "slips/test7-malicious.pcap",
        "malicious-dns/dnscat2.pcap",
    ],
)
def test_tcp_and_udp_flow_counts_agree_with_tshark(capture: str) -> None:
    """tshark counts a conversation per 5-tuple (no timeouts, no port reuse), so with timeouts
    long enough to never fire, the meter must find exactly as many TCP/UDP flows."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (tests/run installs it)")
    path = shared_capture(capture)
    records, _ = meter(path, MeterConfig(idle_timeout=WEEK, active_timeout=WEEK, linger=WEEK))
    ours = sum(
        1
        for r in records
        if r["network.transport"] in ("tcp", "udp") and "network.vlan.id" not in r
    )
    assert _tshark_conversations(path) == ours


def test_one_packet_from_the_far_future_does_not_stall_expiry() -> None:
    flow_meter = FlowMeter(MeterConfig(idle_timeout=60))
    flow_meter.add(_packet(10**9, "10.9.9.9", 1, "10.0.0.2", 53, proto=17))  # 30 years ahead
    for i in range(10):
        flow_meter.add(_packet(300 * i, "10.0.0.1", 1000, "10.0.0.2", 53, proto=17))
        flow_meter.add(_packet(300 * i + 0.01, "10.0.0.2", 53, "10.0.0.1", 1000, proto=17))
    flow_meter.flush()
    ended = flow_meter.drain()
    assert ["idle_timeout"] * 9 + ["end_of_capture"] == [
        f.reason.value for f in ended if f.src == bytes([10, 0, 0, 1])
    ]
    assert (1, 11) == (flow_meter.counters.clock_steps_back, len(ended))


def test_the_linger_queue_stays_bounded_after_a_bogus_timestamp() -> None:
    flow_meter = FlowMeter(MeterConfig(max_flows=1000))
    flow_meter.add(_packet(10**9, "10.9.9.9", 1, "10.0.0.2", 80))
    c, s = "10.0.0.1", "10.0.0.2"
    for i in range(3000):
        t, port = i * 0.01, 1024 + i
        flow_meter.add(_packet(t, c, port, s, 80, flags=0x02))
        flow_meter.add(_packet(t + 0.001, s, 80, c, port, flags=0x12))
        flow_meter.add(_packet(t + 0.002, c, port, s, 80, flags=0x11))
        flow_meter.add(_packet(t + 0.003, s, 80, c, port, flags=0x11))
    assert len(flow_meter._lingering) <= 200  # one second of closes, at 100 a second
    flow_meter.flush()
    reasons: dict[str, int] = {}
    for flow in flow_meter.drain():
        reasons[flow.reason.value] = reasons.get(flow.reason.value, 0) + 1
    assert {"fin": 3000, "idle_timeout": 1} == reasons
    assert 0 == flow_meter.counters.flows_evicted


def test_every_slice_of_a_long_flow_keeps_its_direction() -> None:
    flow_meter = FlowMeter(MeterConfig(active_timeout=60, idle_timeout=120))
    client, server = "10.0.0.1", "10.0.0.2"
    flow_meter.add(_packet(0, client, 40000, server, 8080, flags=0x02))
    for second in range(1, 180, 5):
        # The server speaks first in each new slice: the direction must not flip.
        flow_meter.add(_packet(second, server, 8080, client, 40000, flags=0x18))
        flow_meter.add(_packet(second + 1, client, 40000, server, 8080, flags=0x10))
    flow_meter.flush()
    ended = flow_meter.drain()
    assert [(bytes([10, 0, 0, 1]), 40000)] * 3 == [(f.src, f.sport) for f in ended]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 8 * 86_400.0])
def test_config_refuses_timeouts_that_are_not_finite_or_absurd(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        MeterConfig(idle_timeout=value)


APP_PREFIXES = ("dns.", "tls.", "http.", "url.", "user_agent.", "flow.dns.")


def app_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k.startswith(APP_PREFIXES)}


def test_a_client_hello_split_over_two_segments_still_gives_its_server_name() -> None:
    (record,) = meter(DATA / "tls_split_hello.pcap")[0]
    assert {
        "tls.client.server_name": "portal.example.gov",
        "tls.client.ja3": "abce7074cba1bd34d1db46b85ac26d72",
        "tls.version": "1.3",
        "tls.version_protocol": "tls",
    } == app_fields(record)
    assert ("SF", "ShADdFf") == (record["flow.state"], record["flow.history"])


def test_an_http_request_and_its_status() -> None:
    (record,) = meter(DATA / "http_unauthorized.pcap")[0]
    assert {
        "http.request.method": "GET",
        "http.version": "1.1",
        "url.original": "/admin",
        "url.domain": "intranet.example",
        "user_agent.original": "Mozilla/5.0 (hydra)",
        "http.response.status_code": 401,
    } == app_fields(record)


def test_without_the_frames_the_meter_reads_no_application_data() -> None:
    decoder, flow_meter = PacketDecoder(), FlowMeter()
    for frame in read_frames(DATA / "http_unauthorized.pcap"):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        assert packet is not None
        flow_meter.add(packet)
    flow_meter.flush()
    assert {} == app_fields(FlowExporter("s").record(flow_meter.drain()[0]))


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        # (flows carrying DNS, most queries in one flow, most distinct names, longest name in
        # octets):
        # iodine and dns2tcp keep one socket, so one flow carries every tunnelled query.
        ("iodine", (1, 12, 12, 71)),  # a short capture: the handshake, before bulk data
        ("dns2tcp", (1, 22, 22, 193)),
        ("dnscat2", (12, 1, 1, 46)),
        ("dnsextrator", (14, 1, 1, 246)),
        ("sods", (487, 2, 2, 212)),
    ],
)
def test_dns_tunnels_show_as_long_names(tool: str, expected: tuple[int, int, int, int]) -> None:
    records, _ = meter(shared_capture(f"malicious-dns/{tool}.pcap"))
    dns = [r for r in records if "flow.dns.queries" in r]
    assert expected == (
        len(dns),
        max(r["flow.dns.queries"] for r in dns),
        max(r["flow.dns.unique_names"] for r in dns),
        max(r["flow.dns.max_name_length"] for r in dns),
    )
