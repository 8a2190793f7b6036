"""The contract every :class:`~api.store.protocol.Store` backend must pass.

Parametrised over the backends; today the embedded SQLite one. (The Elasticsearch backend,
when it lands, joins the list and runs where TRUSTWATCH_TEST_ES_URL names a cluster.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from api.errors import ConflictError
from api.settings import load_settings
from api.store import BACKENDS, Store, open_store
from api.store.protocol import AlertQuery, FlowQuery, NewPrincipal
from api.tokens import Role, hash_secret
from sensors.wire import FlowRecord, ScanRecord, validate_record
from tests.conftest import NOW
from tests.sensors.test_wire import flow, scan


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(load_settings(data_dir=tmp_path, store=request.param))
    yield opened
    opened.close()


def a_flow(
    i: int,
    *,
    start_s: int = 0,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 80,
) -> FlowRecord:
    start = NOW + timedelta(seconds=start_s)
    record = validate_record(
        flow(
            **{
                "event.id": f"flow{i:028d}",
                "event.start": start.isoformat(),
                "event.end": (start + timedelta(seconds=1)).isoformat(),
                "source.ip": src,
                "destination.ip": dst,
                "source.port": sport,
                "destination.port": dport,
                **({"network.type": "ipv6"} if ":" in src else {}),
            }
        )
    )
    assert isinstance(record, FlowRecord)
    return record


def a_sensor(store: Store, sensor_id: str = "s1") -> None:
    store.add_principal(
        NewPrincipal(
            name=sensor_id,
            role=Role.SENSOR,
            key_id=f"{sensor_id:0>12}"[:12],
            secret_hash=hash_secret(sensor_id),
            sensor_id=sensor_id,
        ),
        NOW,
    )


def test_principals_round_trip_and_credentials_carry_the_hash(backend: Store) -> None:
    info = backend.add_principal(
        NewPrincipal(name="ana", role=Role.ANALYST, key_id="0123456789ab", secret_hash=b"h" * 32),
        NOW,
    )
    creds = backend.credentials("0123456789ab")
    assert creds is not None
    assert (info, b"h" * 32) == (creds.info, creds.secret_hash)
    assert (
        info.role,
        info.sensor_id,
        info.created_at,
        info.revoked_at,
    ) == (Role.ANALYST, None, NOW, None)
    assert backend.credentials("ba9876543210") is None
    assert [info] == backend.list_principals()


def test_a_sensor_principal_registers_its_sensor(backend: Store) -> None:
    a_sensor(backend, "edge-1")
    (sensor,) = backend.list_sensors()
    assert (
        sensor.sensor_id,
        sensor.created_at,
        sensor.last_seen,
        sensor.records_received,
        sensor.batches_received,
        sensor.version,
        sensor.counters,
        sensor.last_heartbeat,
    ) == ("edge-1", NOW, None, 0, 0, None, {}, None)


def test_a_principal_needs_a_sensor_id_exactly_when_it_is_a_sensor(backend: Store) -> None:
    with pytest.raises(ValueError, match="sensor id"):
        backend.add_principal(
            NewPrincipal(name="x", role=Role.SENSOR, key_id="aaaaaaaaaaaa", secret_hash=b"h"), NOW
        )
    with pytest.raises(ValueError, match="sensor id"):
        backend.add_principal(
            NewPrincipal(
                name="x", role=Role.ADMIN, key_id="aaaaaaaaaaaa", secret_hash=b"h", sensor_id="s"
            ),
            NOW,
        )
    assert backend.list_principals() == []


def test_revocation_and_the_last_admin(backend: Store) -> None:
    first = backend.add_principal(
        NewPrincipal(name="a1", role=Role.ADMIN, key_id="a" * 12, secret_hash=b"1"), NOW
    )
    with pytest.raises(ConflictError):
        backend.revoke_principal(first.id, NOW)
    second = backend.add_principal(
        NewPrincipal(name="a2", role=Role.ADMIN, key_id="b" * 12, secret_hash=b"2"), NOW
    )
    assert backend.count_active_admins() == 2
    later = NOW + timedelta(hours=1)
    revoked = backend.revoke_principal(first.id, later)
    assert revoked is not None
    assert later == revoked.revoked_at
    assert revoked == backend.revoke_principal(first.id, later + timedelta(hours=1))  # idempotent
    assert backend.count_active_admins() == 1
    assert backend.revoke_principal(9999, later) is None
    with pytest.raises(ConflictError):
        backend.revoke_principal(second.id, later)


def test_ingest_stores_once_and_counts_duplicates(backend: Store) -> None:
    a_sensor(backend)
    flows = [a_flow(i) for i in range(5)]
    scans = [validate_record(scan())]
    assert all(isinstance(s, ScanRecord) for s in scans)
    first = backend.ingest("s1", flows, scans, NOW)  # type: ignore[arg-type]
    again = backend.ingest("s1", [*flows[:3], a_flow(7)], [], NOW + timedelta(seconds=5))
    assert (
        (first.inserted, first.duplicates),
        (again.inserted, again.duplicates),
    ) == ((6, 0), (1, 3))
    (sensor,) = backend.list_sensors()
    assert (7, 2, NOW + timedelta(seconds=5)) == (
        sensor.records_received,
        sensor.batches_received,
        sensor.last_seen,
    )
    assert len(backend.query_flows(FlowQuery()).items) == 6


def test_the_same_event_id_from_two_sensors_is_two_records(backend: Store) -> None:
    a_sensor(backend, "s1")
    a_sensor(backend, "s2")
    backend.ingest("s1", [a_flow(1)], [], NOW)
    counts = backend.ingest("s2", [a_flow(1)], [], NOW)
    assert (counts.inserted, counts.duplicates) == (1, 0)
    assert sorted(i["observer.name"] for i in backend.query_flows(FlowQuery()).items) == [
        "s1",
        "s2",
    ]


def test_stored_flows_are_the_wire_record_plus_observer_and_ingest_time(backend: Store) -> None:
    a_sensor(backend)
    record = a_flow(1)
    backend.ingest("s1", [record], [], NOW)
    (item,) = backend.query_flows(FlowQuery()).items
    expected = record.model_dump(by_alias=True, mode="json", exclude_none=True)
    expected |= {"observer.name": "s1", "event.ingested": "2026-01-02T03:04:05.000000Z"}
    assert expected == item


def test_heartbeats_update_version_counters_and_last_seen(backend: Store) -> None:
    a_sensor(backend)
    backend.record_heartbeat("s1", "1.2.3", {"packets": 10, "drops": 0}, NOW)
    (sensor,) = backend.list_sensors()
    assert (
        sensor.version,
        sensor.counters,
        sensor.last_heartbeat,
        sensor.last_seen,
    ) == ("1.2.3", {"packets": 10, "drops": 0}, NOW, NOW)


def test_flow_queries_filter_and_page_newest_first(backend: Store) -> None:
    a_sensor(backend, "s1")
    a_sensor(backend, "s2")
    backend.ingest(
        "s1",
        [
            a_flow(1, start_s=10, src="10.0.0.5", dport=22),
            a_flow(2, start_s=20, dst="10.0.0.5", sport=22, dport=5555),
            a_flow(3, start_s=30, dport=443),
            a_flow(4, start_s=30, src="2001:db8::1", dst="2001:db8::2", dport=443),
        ],
        [],
        NOW,
    )
    backend.ingest("s2", [a_flow(5, start_s=40, dport=53)], [], NOW)

    def ids(query: FlowQuery) -> list[str]:
        return [item["event.id"][-1] for item in backend.query_flows(query).items]

    assert ids(FlowQuery()) == ["5", "4", "3", "2", "1"]
    assert ids(FlowQuery(ip=ip_address("10.0.0.5"))) == ["2", "1"]
    assert ids(FlowQuery(ip=ip_address("2001:0db8:0:0::1"))) == ["4"]
    assert ["1"] == ids(FlowQuery(port=22))  # the service port; flow 2 has 22 as its source
    assert ids(FlowQuery(sensor_id="s2")) == ["5"]
    assert ids(
        FlowQuery(
            start=NOW + timedelta(seconds=20),
            end=NOW + timedelta(seconds=40),
            ip=ip_address("10.0.0.1"),
        )
    ) == ["3", "2"]
    assert ids(FlowQuery(port=8080)) == []

    pages, after = [], None
    while True:
        page = backend.query_flows(FlowQuery(limit=2, after=after))
        pages.append([item["event.id"][-1] for item in page.items])
        after = page.next_after
        if after is None:
            break
    assert pages == [["5", "4"], ["3", "2"], ["1"]]


@dataclass(frozen=True)
class FakeDetection:
    """What a detector hands the store (the shape of rules.engine.Detection)."""

    source: str
    entity: str
    first_seen: datetime
    count: int = 1
    rule_id: str = "r1"
    title: str = "A rule"
    level: str = "high"
    tags: tuple[str, ...] = ("attack.t1046",)
    event_ids: tuple[str, ...] = ("e1",)
    values: dict[str, Any] = field(default_factory=lambda: {"destination.port": 22})

    @property
    def last_seen(self) -> datetime:
        return self.first_seen


def detector(*detections: FakeDetection) -> Any:
    calls: list[list[dict[str, Any]]] = []

    def detect(records: list[dict[str, Any]]) -> list[FakeDetection]:
        calls.append(records)
        return list(detections)

    detect.calls = calls  # type: ignore[attr-defined]
    return detect


def test_detections_become_alerts_in_the_ingest_transaction(backend: Store) -> None:
    a_sensor(backend)
    first = detector(FakeDetection("rule:r1", "10.0.0.9", NOW, count=15))
    counts = backend.ingest("s1", [a_flow(1), a_flow(2)], [], NOW, detect=first)
    assert (1, 0) == (counts.alerts_opened, counts.alerts_merged)
    assert [["flow" + "0" * 27 + "1", "flow" + "0" * 27 + "2"]] == [
        sorted(r["event.id"] for r in call) for call in first.calls
    ]
    (alert,) = backend.query_alerts(AlertQuery()).items
    assert ("rule:r1", "10.0.0.9", "high", "new", 1, ["attack.t1046"]) == (
        alert.source,
        alert.entity,
        alert.severity,
        alert.status,
        alert.count,
        alert.tags,
    )
    assert {"events": 15, "event_ids": ["e1"], "values": {"destination.port": 22}} == alert.evidence
    assert alert == backend.get_alert(alert.id)
    assert backend.get_alert("0" * 32) is None


def test_a_repeat_merges_and_a_late_one_opens_a_new_alert(backend: Store) -> None:
    a_sensor(backend)
    backend.ingest("s1", [a_flow(1)], [], NOW, detect=detector(FakeDetection("rule:r1", "h", NOW)))
    soon = NOW + timedelta(minutes=10)
    merged = backend.ingest(
        "s1", [a_flow(2)], [], soon, detect=detector(FakeDetection("rule:r1", "h", soon))
    )
    late = NOW + timedelta(hours=3)
    opened = backend.ingest(
        "s1", [a_flow(3)], [], late, detect=detector(FakeDetection("rule:r1", "h", late))
    )
    assert ((0, 1), (1, 0)) == (
        (merged.alerts_opened, merged.alerts_merged),
        (opened.alerts_opened, opened.alerts_merged),
    )
    alerts = backend.query_alerts(AlertQuery()).items
    assert [(1, late, late), (2, NOW, soon)] == [
        (a.count, a.first_seen, a.last_seen) for a in alerts
    ]


def test_a_worse_repeat_raises_the_severity_and_a_milder_one_does_not_lower_it(
    backend: Store,
) -> None:
    a_sensor(backend)
    for i, level in enumerate(("medium", "critical", "low"), start=1):
        moment = NOW + timedelta(minutes=i)
        found = FakeDetection("anomaly:flow", "h", moment, level=level)
        backend.ingest("s1", [a_flow(i)], [], moment, detect=detector(found))
    (alert,) = backend.query_alerts(AlertQuery()).items
    assert (3, "critical") == (alert.count, alert.severity)


def test_only_new_records_are_given_to_the_detector(backend: Store) -> None:
    a_sensor(backend)
    backend.ingest("s1", [a_flow(1)], [], NOW)
    detect = detector()
    backend.ingest("s1", [a_flow(1), a_flow(2), a_flow(2)], [], NOW, detect=detect)
    assert [["flow" + "0" * 27 + "2"]] == [[r["event.id"] for r in call] for call in detect.calls]
    resend = detector()
    backend.ingest("s1", [a_flow(1), a_flow(2)], [], NOW, detect=resend)
    assert [] == resend.calls


def test_alert_queries_filter_and_page(backend: Store) -> None:
    a_sensor(backend)
    detections = [
        FakeDetection(
            f"rule:r{i % 2}",
            f"10.0.0.{i}",
            NOW + timedelta(minutes=i),
            level="high" if i % 2 else "low",
        )
        for i in range(5)
    ]
    backend.ingest("s1", [a_flow(1)], [], NOW, detect=detector(*detections))
    entities = [a.entity for a in backend.query_alerts(AlertQuery()).items]
    assert ["10.0.0.4", "10.0.0.3", "10.0.0.2", "10.0.0.1", "10.0.0.0"] == entities
    assert ["10.0.0.3", "10.0.0.1"] == [
        a.entity for a in backend.query_alerts(AlertQuery(severity="high")).items
    ]
    assert ["10.0.0.4", "10.0.0.2", "10.0.0.0"] == [
        a.entity for a in backend.query_alerts(AlertQuery(source="rule:r0")).items
    ]
    pages, after = [], None
    while True:
        page = backend.query_alerts(AlertQuery(limit=2, after=after))
        pages.append([a.entity for a in page.items])
        if (after := page.next_after) is None:
            break
    assert [["10.0.0.4", "10.0.0.3"], ["10.0.0.2", "10.0.0.1"], ["10.0.0.0"]] == pages
