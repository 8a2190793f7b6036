"""The anomaly detectors: warm-up, never learning what they flag, per-sensor models,
explanations, host-minutes closed in event time, bounded state, and river's own checks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from river import checks

from scoring.anomaly import (
    AnomalyDetectors,
    DetectorConfig,
    FlowDetector,
    HostMinuteDetector,
)
from scoring.features import FLOW_FEATURES, flow_features
from scoring.guarded import GuardedHalfSpaceTrees

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SMALL = DetectorConfig(window_size=100, warm_up=400)


def flow(i: int, rng: random.Random, sensor: str = "s1", **fields: Any) -> dict[str, Any]:
    """A plausible web flow: a few packets each way, kilobytes back, under a second."""
    start = T0 + timedelta(seconds=i * 0.5)
    packets = rng.randint(5, 12)
    record: dict[str, Any] = {
        "event.id": f"{sensor}-{i}",
        "event.dataset": "trustwatch.flow",
        "observer.name": sensor,
        "event.start": start.isoformat(),
        "event.end": (start + timedelta(seconds=0.3)).isoformat(),
        "event.duration": int(rng.uniform(0.05, 0.8) * 1e9),
        "source.ip": f"10.0.0.{rng.randint(2, 30)}",
        "destination.ip": f"192.0.2.{rng.randint(1, 40)}",
        "destination.port": rng.choice((80, 443)),
        "network.transport": "tcp",
        "flow.state": "SF",
        "source.packets": packets,
        "destination.packets": packets + rng.randint(0, 4),
        "source.bytes": packets * rng.randint(60, 120),
        "destination.bytes": packets * rng.randint(600, 1400),
    }
    record.update(fields)
    return record


def normal(n: int, seed: int = 1, sensor: str = "s1", start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [flow(i, rng, sensor) for i in range(start, start + n)]


def exfiltration(i: int) -> dict[str, Any]:
    """One flow sending 3 GB out over an hour: nothing like the web traffic above."""
    return flow(
        i,
        random.Random(i),
        **{
            "source.bytes": 3_000_000_000,
            "source.packets": 2_100_000,
            "destination.bytes": 90_000_000,
            "destination.packets": 1_500_000,
            "event.duration": 3600 * 10**9,
        },
    )


def test_nothing_alerts_while_warming_up() -> None:
    detector = FlowDetector(SMALL)
    findings = [detector.process(r) for r in normal(SMALL.warm_up - 1)]
    findings.append(detector.process(exfiltration(SMALL.warm_up)))
    assert [] == [f for f in findings if f is not None]


def test_an_unusual_flow_alerts_and_is_explained_by_what_deviated() -> None:
    detector = FlowDetector(SMALL)
    for record in normal(2000):
        detector.process(record)
    finding = detector.process(exfiltration(2001))
    assert finding is not None
    assert ("flow", "s1", "s1-2001") == (finding.detector, finding.sensor, finding.event_ids[0])
    assert finding.score > finding.threshold
    changed = {
        "source.bytes",
        "source.packets",
        "destination.bytes",
        "destination.packets",
        "event.duration (s)",
        "source bytes per packet",
        "destination bytes per packet",
    }
    named = {d.feature for d in finding.deviations}
    assert (3, set()) == (len(named), named - changed)
    assert all(abs(d.z) > 5 for d in finding.deviations), finding.deviations


def test_the_explanation_names_the_features_that_deviated_in_their_own_units() -> None:
    detector = FlowDetector(SMALL)
    for record in normal(2000):
        detector.process(record)
    upload = flow(2001, random.Random(5), **{"source.bytes": 50_000_000})
    explained = detector.models()["s1"].explain(flow_features(upload), top=2)
    assert {"source.bytes", "source bytes per packet"} == {d.feature for d in explained}
    outbound = next(d for d in explained if d.feature == "source.bytes")
    assert 5e7 == outbound.value
    assert 200 < outbound.typical < 2000, outbound  # about 90 bytes x 8 packets


def test_a_burst_of_one_attack_keeps_alerting_because_flagged_points_are_not_learned() -> None:
    detector = FlowDetector(SMALL)
    for record in normal(3000):
        detector.process(record)
    model = detector.models()["s1"]
    learned_before = model.learned
    burst = [detector.process(exfiltration(3000 + i)) for i in range(20)]
    assert 20 * [True] == [f is not None for f in burst]
    assert learned_before == model.learned  # none of the burst became "normal"


def test_plain_half_space_trees_learn_the_same_burst_as_normal() -> None:
    """The baseline the guard is measured against: river's HST learning every point."""
    from river import anomaly

    hst = anomaly.HalfSpaceTrees(
        window_size=100, limits={f.key: (f.low, f.high) for f in FLOW_FEATURES}, seed=42
    )
    for record in normal(3000):
        hst.learn_one(flow_features(record))
    scores = []
    for i in range(300):
        x = flow_features(exfiltration(3000 + i))
        scores.append(hst.score_one(x))
        hst.learn_one(x)
    assert scores[-1] < scores[0] / 2, (scores[0], scores[-1])


def test_each_sensor_has_its_own_model_and_warm_up() -> None:
    detector = FlowDetector(SMALL)
    for record in normal(2000, sensor="big"):
        detector.process(record)
    assert detector.process(exfiltration(1) | {"observer.name": "new"}) is None
    assert {"big": True, "new": False} == {
        name: model.warmed_up for name, model in detector.models().items()
    }


def test_models_beyond_the_bound_evict_the_least_recently_active_sensor() -> None:
    detector = FlowDetector(DetectorConfig(window_size=10, warm_up=20, max_models=2))
    for sensor in ("a", "b", "a", "c"):
        detector.process(normal(1, sensor=sensor)[0])
    assert (["a", "c"], 1) == (list(detector.models()), detector.counters.models_evicted)


def minute_of(host: str, minute: int, rng: random.Random, **fields: Any) -> list[dict[str, Any]]:
    base = T0 + timedelta(minutes=minute)
    out = []
    for i in range(rng.randint(3, 8)):
        record = flow(0, rng, source_ip=host)
        moment = base + timedelta(seconds=rng.uniform(0, 59))
        record |= {
            "event.id": f"{host}-{minute}-{i}",
            "source.ip": host,
            "event.start": moment.isoformat(),
            "event.end": moment.isoformat(),
            **fields,
        }
        out.append(record)
    return out


def scan_minute(host: str, minute: int) -> list[dict[str, Any]]:
    base = T0 + timedelta(minutes=minute)
    return [
        {
            "event.id": f"scan-{minute}-{port}",
            "observer.name": "s1",
            "event.start": (base + timedelta(milliseconds=port)).isoformat(),
            "event.end": (base + timedelta(milliseconds=port)).isoformat(),
            "source.ip": host,
            "destination.ip": "192.0.2.77",
            "destination.port": port,
            "network.transport": "tcp",
            "flow.state": "REJ",
            "source.bytes": 44,
            "source.packets": 1,
            "destination.bytes": 40,
            "destination.packets": 1,
        }
        for port in range(1, 1001)
    ]


def host_stream(minutes: int, hosts: int = 12) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    for minute in range(minutes):
        batch = []
        for h in range(hosts):
            batch.extend(minute_of(f"10.0.0.{h + 2}", minute, rng))
        batch.sort(key=lambda r: r["event.end"])
        yield from batch


def test_a_port_scanning_minute_alerts_once_the_minute_is_over() -> None:
    config = DetectorConfig(window_size=50, warm_up=300, alert_above=0.995)
    detector = HostMinuteDetector(config, grace_seconds=30)
    found = []
    for record in host_stream(60):
        found.extend(detector.process(record))
    assert [] == found  # 12 hosts x 60 quiet minutes: the model has just warmed up
    rng = random.Random(3)
    for minute in range(60, 90):
        records = [r for h in range(12) for r in minute_of(f"10.0.0.{h + 2}", minute, rng)]
        if minute == 80:
            records += scan_minute("10.0.0.5", minute)
        for record in sorted(records, key=lambda r: r["event.end"]):
            found.extend(detector.process(record))
    scans = [f for f in found if f.entity == "10.0.0.5" and f.first_seen.minute == 20]
    assert 1 == len(scans), found
    assert {"distinct destination ports", "failed-connection ratio", "flows"} & {
        d.feature for d in scans[0].deviations
    }
    assert "scan-80-1" == scans[0].event_ids[0]
    assert len(found) <= 3, found  # the scan, and at most a couple of false alerts


def test_a_minute_is_judged_only_after_the_grace_period() -> None:
    detector = HostMinuteDetector(DetectorConfig(window_size=10, warm_up=20), grace_seconds=30)
    rng = random.Random(1)
    for record in minute_of("10.0.0.2", 0, rng):
        detector.process(record)
    assert "s1" not in detector.models()  # nothing judged yet
    late = minute_of("10.0.0.3", 1, rng, **{"event.end": (T0 + timedelta(seconds=80)).isoformat()})
    for record in late:
        detector.process(record)
    assert "s1" not in detector.models()  # 0:01:20 is within the grace of minute 0
    detector.process(
        minute_of("10.0.0.3", 1, rng, **{"event.end": (T0 + timedelta(seconds=95)).isoformat()})[0]
    )
    assert 1 == detector.models()["s1"].seen  # minute 0 judged: one host-minute
    old = minute_of("10.0.0.9", 0, rng)[0]
    detector.process(old)
    assert 1 == detector.counters.late_records  # counted into the open minute, not lost
    detector.flush()
    assert 3 == detector.models()["s1"].seen


def test_scan_results_are_not_traffic() -> None:
    detectors = AnomalyDetectors()
    detectors.process_all([{"event.dataset": "trustwatch.scan", "url.domain": "example.org"}])
    assert (0, 0) == (detectors.flow.counters.records, detectors.host.counters.records)


def test_rivers_own_estimator_checks_pass() -> None:
    """river's check suite (the checks that need no scikit-learn data sets, which river
    downloads through scikit-learn; neither is a dependency here)."""
    ran = []
    missing = None
    for params in GuardedHalfSpaceTrees._unit_test_params():
        model = GuardedHalfSpaceTrees(**params)
        suite = checks.yield_checks(model)
        while True:
            try:
                check = next(suite)
            except StopIteration:
                break
            except ModuleNotFoundError as exc:  # the data-set checks start here
                missing = exc.name
                break
            check(model.clone())
            ran.append(check.__name__)
    assert "sklearn" == missing
    assert "check_pickling_supports_roundtrip" in ran
    assert len(ran) >= 8, ran
