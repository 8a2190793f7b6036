"""Beaconing: regular check-ins are found, random arrivals are not, a beacon fires once per
quiet period, state is bounded and survives a checkpoint."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring.beacon import (
    BeaconConfig,
    BeaconCounters,
    BeaconDetector,
    BeaconFinding,
    BeaconKey,
    IntervalStats,
    interval_stats,
)
from scoring.errors import ScoringError, StateError
from tests.conftest import LAB
from tests.sensors.test_flows import meter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = BeaconKey("sensor-1", "10.0.0.5", "203.0.113.9", 443, "tcp")


def flow(i: int, seconds: float, **fields: Any) -> dict[str, Any]:
    return {
        "event.id": f"e{i:04d}",
        "event.dataset": "trustwatch.flow",
        "event.start": (T0 + timedelta(seconds=seconds)).isoformat(),
        "observer.name": "sensor-1",
        "source.ip": "10.0.0.5",
        "source.port": 40000 + i,
        "destination.ip": "203.0.113.9",
        "destination.port": 443,
        "network.transport": "tcp",
        "flow.end_reason": "fin",
        **fields,
    }


def fired_at(detector: BeaconDetector, records: list[dict[str, Any]]) -> list[int]:
    """The indices of the records that raised a finding."""
    return [i for i, r in enumerate(records) if detector.observe(r) is not None]


def test_a_regular_beacon_is_found_at_its_twelfth_check_in() -> None:
    # Check-ins 2 s early or late in turn: intervals 62, 58, 58, 62, ... seconds.
    records = [flow(i, 60 * i + (0, 2, 0, -2)[i % 4]) for i in range(12)]
    detector = BeaconDetector()
    findings = [detector.observe(r) for r in records]
    # 11 intervals, six of 58 s and five of 62 s: the median is 58 and so is every other
    # interval's distance to it but five (MAD 0); Q1 = 58, Q3 = 62: Bowley skew 1, but over
    # a spread of 4/58, so |skew| x spread = 0.069 <= 0.1.
    assert [None] * 11 + [
        BeaconFinding(
            key=KEY,
            connections=12,
            median_interval=58.0,
            dispersion=0.0,
            skew=1.0,
            spread=4 / 58,
            first_seen=T0,
            last_seen=T0 + timedelta(seconds=658),
            event_ids=("e0007", "e0008", "e0009", "e0010", "e0011"),
        )
    ] == findings


def test_a_jittered_beacon_is_found_and_random_arrivals_are_not() -> None:
    rng = random.Random(4)
    beacon, poisson, t, u = [], [], 0.0, 0.0
    for i in range(300):
        t += 60 * (1 + rng.uniform(-0.1, 0.1))  # a 60 s timer with 10 % jitter
        u += rng.expovariate(1 / 60)  # independent arrivals, 60 s apart on average
        beacon.append(flow(i, t))
        poisson.append(flow(i, u, **{"destination.ip": "198.51.100.1"}))
    assert ([11], []) == (fired_at(BeaconDetector(), beacon), fired_at(BeaconDetector(), poisson))


def test_a_beacon_fires_again_only_after_the_quiet_period() -> None:
    records = [flow(i, 60.0 * i) for i in range(200)]
    detector = BeaconDetector(BeaconConfig(quiet_period=3600))
    # First at the 12th check-in (660 s), then at the first one an hour later, and so on.
    assert ([11, 71, 131, 191], 4) == (fired_at(detector, records), detector.counters.findings)


def test_connections_in_a_burst_are_one_check_in() -> None:
    """An implant that opens two connections per check-in is still a beacon; a client that
    never pauses is one burst."""
    pairs = [flow(2 * i + k, 300 * i + 0.2 * k) for i in range(12) for k in (0, 1)]
    chatty = [flow(i, 0.5 * i, **{"destination.ip": "198.51.100.1"}) for i in range(2000)]
    detector = BeaconDetector()
    assert ([22], []) == (fired_at(detector, pairs), fired_at(detector, chatty))
    assert (13, 12 + 1999) == (detector.counters.connections, detector.counters.merged)


def test_check_ins_reported_out_of_order_are_put_in_place() -> None:
    # Flows are reported when they end: a neighbour may arrive first.
    times = [60.0 * i for i in range(12)]
    order = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10]
    detector = BeaconDetector()
    assert ([11], 0) == (
        fired_at(detector, [flow(i, times[i]) for i in order]),
        detector.counters.late,
    )


def test_slices_of_a_long_connection_are_not_check_ins() -> None:
    """The sensor cuts a day-long session every 30 minutes; the slices keep the ports."""
    slices = [
        flow(0, 1800.0 * i, **{"source.port": 50000, "flow.end_reason": "active_timeout"})
        for i in range(48)
    ]
    detector = BeaconDetector()
    assert ([], 1, 47) == (
        fired_at(detector, slices),
        detector.counters.connections,
        detector.counters.continuations,
    )


def test_the_server_name_is_the_destination_when_the_flow_has_one() -> None:
    """A beacon behind a CDN: a new address each time, the same name."""
    records = [
        flow(i, 60.0 * i, **{"destination.ip": f"192.0.2.{i}", "tls.client.server_name": "C2.X."})
        for i in range(12)
    ]
    detector = BeaconDetector()
    findings = detector.observe_all(records)
    assert [BeaconKey("sensor-1", "10.0.0.5", "c2.x", 443, "tcp")] == [f.key for f in findings]


def test_multicast_broadcast_and_listed_destinations_are_ignored() -> None:
    config = BeaconConfig(ignore_destinations=("10.0.0.53", "192.0.2.0/24"))
    destinations = ["224.0.0.251", "239.255.255.250", "255.255.255.255", "ff02::fb"]
    destinations += ["10.0.0.53", "192.0.2.77"]
    records = [flow(i, 60.0 * i, **{"destination.ip": d}) for d in destinations for i in range(12)]
    records.append({"event.dataset": "trustwatch.scan", "url.domain": "example.org"})
    detector = BeaconDetector(config)
    assert ([], 0, 6 * 12 + 1) == (
        detector.observe_all(records),
        len(detector),
        detector.counters.ignored,
    )


def test_keys_are_bounded_and_the_least_recently_seen_goes() -> None:
    detector = BeaconDetector(BeaconConfig(max_keys=3))
    for i, port in enumerate((1, 2, 3, 1, 4, 5)):
        detector.observe(flow(i, float(i), **{"destination.port": port}))
    assert ([1, 4, 5], 2) == (
        [entry["key"][3] for entry in detector.state()["keys"]],
        detector.counters.keys_evicted,
    )


def test_a_restored_checkpoint_behaves_as_the_original() -> None:
    rng = random.Random(7)
    records = []
    for key in range(20):
        t = rng.uniform(0, 60)
        period = rng.choice((30.0, 60.0, 90.0))
        for i in range(30):
            t += period * (1 + rng.uniform(-0.05, 0.05)) if key % 2 else rng.expovariate(1 / 60)
            records.append(flow(100 * key + i, t, **{"source.ip": f"10.0.1.{key}"}))
    records.sort(key=lambda r: r["event.start"])
    config = BeaconConfig(max_keys=15, quiet_period=600)
    original = BeaconDetector(config)
    original.observe_all(records[:300])
    checkpoint = json.loads(json.dumps(original.state()))
    restored = BeaconDetector.from_state(checkpoint, config)
    assert (original.counters, checkpoint) == (restored.counters, restored.state())
    later = original.observe_all(records[300:])
    assert (later, original.state()) == (restored.observe_all(records[300:]), restored.state())
    assert len(later) > 0  # the comparison covers findings, not only silence


def test_restoring_with_smaller_bounds_keeps_the_newest() -> None:
    detector = BeaconDetector()
    for i in range(40):
        detector.observe(flow(i, 60.0 * i))
        detector.observe(flow(i, 60.0 * i, **{"destination.port": 80}))
    smaller = BeaconConfig(window=12, max_keys=1, max_evidence=2)
    restored = BeaconDetector.from_state(detector.state(), smaller)
    (entry,) = restored.state()["keys"]
    start = int(T0.timestamp()) * 1_000_000_000
    minute = 60 * 1_000_000_000
    assert ([KEY.source, 80], [start + minute * i for i in range(28, 40)], ["e0038", "e0039"]) == (
        [entry["key"][1], entry["key"][3]],
        entry["times"],
        entry["events"],
    )


def _state(**changes: Any) -> dict[str, Any]:
    detector = BeaconDetector()
    detector.observe(flow(0, 0.0))
    state = detector.state()
    entry = state["keys"][0]
    for name, value in changes.items():
        if name in entry:
            entry[name] = value
        else:
            state[name] = value
    return state


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([], "not a beacon detector's state (format is not 'trustwatch.beacon')"),
        (
            {"format": "river.anomaly"},
            "not a beacon detector's state (format is not 'trustwatch.beacon')",
        ),
        (_state(version=2), "beacon state version 2 is not 1"),
        (
            _state(counters={"records": 1}),
            "counters: expected the keys ['connections', "
            "'continuations', 'findings', 'ignored', 'keys_evicted', 'late', 'merged', "
            "'records', 'without_time']",
        ),
        (_state(keys={}), "keys: expected a list"),
        (_state(times=[2, 1]), "keys[0].times: not in order"),
        (_state(times=["0"]), "keys[0].times: expected a 64-bit integer, got '0'"),
        (_state(fired=True), "keys[0].fired: expected a 64-bit integer, got True"),
        (_state(last=2**64), f"keys[0].last: expected a 64-bit integer, got {2**64}"),
        (_state(key=["s", "10.0.0.5"]), "keys[0].key: expected 5 parts"),
        (_state(key=["s", 5, "d", 1, "tcp"]), "keys[0].key.source: expected a string, got 5"),
        (_state(events=None), "keys[0].events: expected a list"),
    ],
)
def test_a_foreign_or_broken_state_is_refused(state: Any, message: str) -> None:
    with pytest.raises(StateError) as caught:
        BeaconDetector.from_state(state)
    assert (message, True) == (str(caught.value), isinstance(caught.value, ScoringError))


def test_interval_statistics() -> None:
    # Intervals 10, 10, 10, 10, 40: the median is 10, most deviate by 0 from it.
    assert IntervalStats(median=10.0, dispersion=0.0, skew=0.0, spread=0.0) == interval_stats(
        [0, 10, 20, 30, 40, 80]
    )
    # Intervals 1..9: symmetric, quartiles 3 and 7 around the median 5.
    assert IntervalStats(median=5.0, dispersion=0.4, skew=0.0, spread=0.8) == interval_stats(
        [0, 1, 3, 6, 10, 15, 21, 28, 36, 45]
    )
    assert (None, None) == (interval_stats([0, 10]), interval_stats([5, 5, 5]))


@pytest.mark.parametrize(
    "changes",
    [
        {"min_connections": 2},
        {"min_connections": 40},
        {"min_interval": 0.0},
        {"max_interval": 1.0},
        {"max_dispersion": -0.1},
        {"max_keys": 0},
        {"ignore_destinations": ("not-a-network",)},
    ],
)
def test_a_config_that_cannot_work_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        BeaconConfig(**changes)


def test_the_counters_account_for_every_record() -> None:
    detector = BeaconDetector()
    detector.observe_all(
        [flow(0, 0.0), flow(1, 1.0), flow(2, 60.0, **{"event.start": None}), {"x": 1}]
    )
    assert (
        BeaconCounters(records=4, connections=1, merged=1, ignored=1, without_time=1)
        == detector.counters
    )


def lab_flows(capture: str) -> list[dict[str, Any]]:
    return sorted(meter(LAB / capture)[0], key=lambda r: r["event.start"])


def test_the_lab_beacon_is_found_at_its_twelfth_check_in() -> None:
    """Real traffic: curl polls the lab's web server every 2 s, 15 times
    (api/demo/lab/beacon.labels.json). Below a 2 s period, ``min_interval`` goes down."""
    labels = json.loads((LAB / "beacon.labels.json").read_text(encoding="utf-8"))
    (label,) = labels["activities"]
    records = lab_flows("beacon.pcap")
    web = [r for r in records if r.get("destination.port") == 80]
    detector = BeaconDetector(BeaconConfig(min_interval=1.0))
    (finding,) = detector.observe_all(records)
    assert (
        (
            BeaconKey("", "10.203.0.10", "10.203.0.2", 80, "tcp"),  # url.domain: the Host header
            12,
            label["parameters"]["interval_seconds"],
            web[0]["event.start"],
            web[11]["event.start"],
            tuple(r["event.id"] for r in web[7:12]),
        )
        == (
            finding.key,
            finding.connections,
            round(finding.median_interval, 2),
            finding.first_seen.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            finding.last_seen.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            finding.event_ids,
        )
    )
    assert finding.dispersion < 0.01
    # Curl's timing makes the Bowley skew of two-second intervals anything; the spread it
    # describes is a few milliseconds, so it does not count.
    assert abs(finding.skew) * finding.spread < 0.01


@pytest.mark.parametrize(
    "capture",
    [
        "browse.pcap",
        "dns.pcap",
        "nmap_syn.pcap",
        "nmap_connect.pcap",
        "bruteforce.pcap",
        "dns_tunnel.pcap",
    ],
)
def test_other_lab_traffic_is_no_beacon(capture: str) -> None:
    detector = BeaconDetector(BeaconConfig(min_interval=1.0))
    assert [] == detector.observe_all(lab_flows(capture))
