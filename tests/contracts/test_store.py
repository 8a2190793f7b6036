"""The contract every :class:`~api.store.protocol.Store` backend must pass.

Parametrised over the backends; today the embedded SQLite one. (The Elasticsearch backend,
when it lands, joins the list and runs where TRUSTWATCH_TEST_ES_URL names a cluster.)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest

from api.errors import ConflictError
from api.lifecycle import (
    MAX_NOTES_PER_ALERT,
    TRANSITIONS,
    AlertStatus,
    TransitionError,
    allowed_next,
)
from api.settings import load_settings
from api.store import BACKENDS, Store, open_store
from api.store.protocol import (
    Alert,
    AlertQuery,
    AuditField,
    AuditPage,
    BulkAssign,
    BulkResult,
    BulkSkip,
    BulkTransition,
    FlowQuery,
    NewPrincipal,
)
from api.systems import InformationSystem, NewSystem
from api.tokens import Principal, Role, hash_secret
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


# -- the alert lifecycle ------------------------------------------------------------------------

ANALYST = Principal(id=7, name="lan", role=Role.ANALYST, sensor_id=None)
OTHER = Principal(id=8, name="minh", role=Role.ANALYST, sensor_id=None)
_FLOW_IDS = itertools.count(1000)
# The transitions that bring a new alert to each status.
PATH_TO: dict[AlertStatus, tuple[AlertStatus, ...]] = {
    AlertStatus.NEW: (),
    AlertStatus.ACKNOWLEDGED: (AlertStatus.ACKNOWLEDGED,),
    AlertStatus.IN_PROGRESS: (AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS),
    AlertStatus.RESOLVED: (
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.IN_PROGRESS,
        AlertStatus.RESOLVED,
    ),
    AlertStatus.FALSE_POSITIVE: (AlertStatus.FALSE_POSITIVE,),
}


def an_alert(
    store: Store,
    entity: str = "10.0.0.9",
    *,
    source: str = "rule:r1",
    level: str = "high",
    at: datetime = NOW,
) -> Alert:
    """One alert, opened (or merged into) through ingest as detections are."""
    if "s1" not in {sensor.sensor_id for sensor in store.list_sensors()}:
        a_sensor(store)
    found = FakeDetection(source, entity, at, level=level)
    store.ingest("s1", [a_flow(next(_FLOW_IDS))], [], at, detect=detector(found))
    return store.query_alerts(AlertQuery(source=source, entity=entity, limit=1)).items[0]


def moved(store: Store, alert: Alert, status: AlertStatus) -> Alert:
    for step in PATH_TO[status]:
        changed = store.transition_alert(alert.id, step, ANALYST, NOW)
        assert changed is not None
        alert = changed
    return alert


def test_transitions_are_exactly_the_table(backend: Store) -> None:
    expected, actual = {}, {}
    for i, (current, to) in enumerate(itertools.product(AlertStatus, AlertStatus)):
        alert = moved(backend, an_alert(backend, f"10.1.0.{i}"), current)
        expected[(current, to)] = (
            (to.value, None)
            if to in TRANSITIONS[current]
            else (current.value, (current, allowed_next(current)))
        )
        refusal = None
        try:
            backend.transition_alert(alert.id, to, ANALYST, NOW)
        except TransitionError as exc:
            refusal = (exc.current, exc.allowed)
        stored = backend.get_alert(alert.id)
        assert stored is not None
        actual[(current, to)] = (stored.status, refusal)
    assert expected == actual


def test_a_transition_is_audited_with_its_note(backend: Store) -> None:
    alert = an_alert(backend)
    later = NOW + timedelta(minutes=5)
    changed = backend.transition_alert(
        alert.id, AlertStatus.ACKNOWLEDGED, ANALYST, later, note="looking"
    )
    assert changed is not None
    assert ("acknowledged", later, alert.severity) == (
        changed.status,
        changed.updated_at,
        changed.severity,
    )
    page = backend.alert_audit(alert.id, 0, 100)
    assert page is not None
    assert [
        (alert.id, later, 7, "lan", AuditField.STATUS, "new", "acknowledged"),
        (alert.id, later, 7, "lan", AuditField.NOTE, None, "looking"),
    ] == [(e.alert_id, e.at, e.actor_id, e.actor, e.field, e.old, e.new) for e in page.items]
    assert [(alert.id, 7, "lan", later, "looking")] == [
        (n.alert_id, n.author_id, n.author, n.created_at, n.text)
        for n in backend.alert_notes(alert.id)
    ]


def test_a_refused_transition_changes_nothing(backend: Store) -> None:
    alert = an_alert(backend)
    with pytest.raises(TransitionError, match="is new and cannot go to resolved"):
        backend.transition_alert(alert.id, AlertStatus.RESOLVED, ANALYST, NOW, note="done")
    assert (alert, [], AuditPage([], None)) == (
        backend.get_alert(alert.id),
        backend.alert_notes(alert.id),
        backend.alert_audit(alert.id, 0, 100),
    )


def test_racing_transitions_one_wins(backend: Store) -> None:
    for i in range(10):
        alert = an_alert(backend, f"10.2.0.{i}")
        barrier = threading.Barrier(2)

        def acknowledge(
            actor: Principal, alert_id: str = alert.id, barrier: threading.Barrier = barrier
        ) -> str:
            barrier.wait()
            try:
                backend.transition_alert(alert_id, AlertStatus.ACKNOWLEDGED, actor, NOW)
            except TransitionError:
                return "refused"
            return "moved"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(acknowledge, (ANALYST, OTHER)))
        page = backend.alert_audit(alert.id, 0, 100)
        assert page is not None
        assert (["moved", "refused"], 1) == (outcomes, len(page.items))


def test_assignment_is_audited_when_it_changes(backend: Store) -> None:
    alert = an_alert(backend)
    for assignee in ("lan", "lan", "minh", None, None):
        changed = backend.assign_alert(alert.id, assignee, ANALYST, NOW)
        assert changed is not None
        assert assignee == changed.assignee
    page = backend.alert_audit(alert.id, 0, 100)
    assert page is not None
    assert [(None, "lan"), ("lan", "minh"), ("minh", None)] == [
        (e.old, e.new) for e in page.items if e.field is AuditField.ASSIGNEE
    ]


def test_notes_are_appended_bounded_and_audited(backend: Store) -> None:
    alert = an_alert(backend)
    notes = [backend.add_note(alert.id, f"note {i}", OTHER, NOW) for i in range(3)]
    assert [f"note {i}" for i in range(3)] == [n.text for n in notes if n is not None]
    assert notes == backend.alert_notes(alert.id)
    assert [("minh", "note 0"), ("minh", "note 1"), ("minh", "note 2")] == [
        (n.author, n.text) for n in backend.alert_notes(alert.id)
    ]
    for i in range(3, MAX_NOTES_PER_ALERT):
        backend.add_note(alert.id, f"note {i}", OTHER, NOW)
    with pytest.raises(ConflictError, match="maximum of 200 notes"):
        backend.add_note(alert.id, "one too many", OTHER, NOW)
    with pytest.raises(ConflictError, match="maximum of 200 notes"):
        backend.transition_alert(alert.id, AlertStatus.ACKNOWLEDGED, OTHER, NOW, note="x")
    stored = backend.get_alert(alert.id)
    assert stored is not None
    assert ("new", MAX_NOTES_PER_ALERT) == (stored.status, len(backend.alert_notes(alert.id)))


def test_the_audit_trail_pages_oldest_first(backend: Store) -> None:
    alert = an_alert(backend)
    for i in range(5):
        backend.add_note(alert.id, f"n{i}", ANALYST, NOW)
    pages, after = [], 0
    while True:
        page = backend.alert_audit(alert.id, after, 2)
        assert page is not None
        pages.append([e.new for e in page.items])
        if page.next_after is None:
            break
        after = page.next_after
    assert [["n0", "n1"], ["n2", "n3"], ["n4"]] == pages


def test_an_unknown_alert_is_none_everywhere(backend: Store) -> None:
    unknown = "0" * 32
    assert [None, None, None, None, []] == [
        backend.transition_alert(unknown, AlertStatus.ACKNOWLEDGED, ANALYST, NOW),
        backend.assign_alert(unknown, "lan", ANALYST, NOW),
        backend.add_note(unknown, "x", ANALYST, NOW),
        backend.alert_audit(unknown, 0, 10),
        backend.alert_notes(unknown),
    ]


def test_bulk_changes_the_valid_and_lists_the_rest(backend: Store) -> None:
    alerts = [an_alert(backend, f"10.3.0.{i}", at=NOW + timedelta(seconds=i)) for i in range(4)]
    for alert in alerts[:2]:
        moved(backend, alert, AlertStatus.ACKNOWLEDGED)
    an_alert(backend, "10.9.9.9", source="rule:other")  # outside the filter
    result = backend.bulk_update(
        AlertQuery(source="rule:r1"),
        BulkTransition(AlertStatus.IN_PROGRESS, note="on it"),
        OTHER,
        NOW,
    )
    reason = (
        "alert {} is new and cannot go to in_progress;"
        " from new it can go to: acknowledged, false_positive"
    )
    assert (
        BulkResult(
            matched=4,
            changed=2,
            unchanged=0,
            skipped=[BulkSkip(a.id, "new", reason.format(a.id)) for a in reversed(alerts[2:])],
            truncated=False,
        )
        == result
    )
    statuses = {a.entity: a.status for a in backend.query_alerts(AlertQuery()).items}
    assert {
        "10.3.0.0": "in_progress",
        "10.3.0.1": "in_progress",
        "10.3.0.2": "new",
        "10.3.0.3": "new",
        "10.9.9.9": "new",
    } == statuses
    assert [1, 1, 0, 0] == [len(backend.alert_notes(a.id)) for a in alerts]


def test_bulk_assignment_counts_unchanged_and_stops_at_the_limit(backend: Store) -> None:
    alerts = [an_alert(backend, f"10.4.0.{i}", at=NOW + timedelta(seconds=i)) for i in range(3)]
    backend.assign_alert(alerts[2].id, "lan", ANALYST, NOW)
    result = backend.bulk_update(AlertQuery(status="new", limit=2), BulkAssign("lan"), ANALYST, NOW)
    assert BulkResult(matched=2, changed=1, unchanged=1, skipped=[], truncated=True) == result
    assert ["lan", "lan", None] == [a.assignee for a in backend.query_alerts(AlertQuery()).items]


def test_closed_alerts_absorb_no_repeats_and_a_reopened_one_does(backend: Store) -> None:
    for closed in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE):
        entity = f"10.5.0.{len(closed)}"
        first = moved(backend, an_alert(backend, entity), closed)
        repeat = an_alert(backend, entity, at=NOW + timedelta(minutes=1))
        assert (first.id != repeat.id, 1, 1) == (
            True,
            repeat.count,
            backend.get_alert(first.id).count,  # type: ignore[union-attr]
        )
        moved(backend, repeat, AlertStatus.FALSE_POSITIVE)
        reopened = backend.transition_alert(first.id, AlertStatus.ACKNOWLEDGED, ANALYST, NOW)
        assert reopened is not None
        again = an_alert(backend, entity, at=NOW + timedelta(minutes=2))
        assert (first.id, 2, "acknowledged") == (again.id, again.count, again.status)


# -- information systems --------------------------------------------------------------------


def a_system(system_id: str, level: int, *networks: str, hosts: tuple[str, ...] = ()) -> NewSystem:
    return NewSystem(
        id=system_id,
        name=f"System {system_id}",
        agency="Ministry of Examples",
        level=level,
        networks=tuple(ip_network(n) for n in networks),
        hosts=hosts,
    )


def test_systems_round_trip_and_ids_are_unique(backend: Store) -> None:
    declared = a_system("portal", 4, "10.6.0.0/16", "2001:db8::/48", hosts=("portal.gov.vn",))
    stored = backend.add_system(declared, NOW)
    assert InformationSystem(**vars(declared), created_at=NOW) == stored
    with pytest.raises(ConflictError, match="'portal' exists"):
        backend.add_system(a_system("portal", 1, "10.7.0.0/16"), NOW)
    assert [stored] == backend.list_systems()


def test_an_alert_about_a_system_is_raised_by_its_level(backend: Store) -> None:
    for level in range(1, 6):
        backend.add_system(a_system(f"l{level}", level, f"10.8.{level}.0/24"), NOW)
    backend.add_system(a_system("dns", 5, hosts=("ns1.gov.vn",)), NOW)
    raised = {
        (entity, base): (alert.severity, alert.system_id)
        for entity in ("10.8.1.5", "10.8.2.5", "10.8.3.5", "10.8.4.5", "10.8.5.5", "10.9.0.1")
        for base in ("low", "high")
        for alert in [an_alert(backend, entity, source=f"rule:{base}", level=base)]
    }
    assert {
        ("10.8.1.5", "low"): ("low", "l1"),
        ("10.8.1.5", "high"): ("high", "l1"),
        ("10.8.2.5", "low"): ("low", "l2"),
        ("10.8.2.5", "high"): ("high", "l2"),
        ("10.8.3.5", "low"): ("medium", "l3"),
        ("10.8.3.5", "high"): ("critical", "l3"),
        ("10.8.4.5", "low"): ("medium", "l4"),
        ("10.8.4.5", "high"): ("critical", "l4"),
        ("10.8.5.5", "low"): ("high", "l5"),
        ("10.8.5.5", "high"): ("critical", "l5"),
        ("10.9.0.1", "low"): ("low", None),
        ("10.9.0.1", "high"): ("high", None),
    } == raised
    by_host = an_alert(backend, "NS1.gov.vn", level="medium")
    pair = an_alert(backend, "203.0.113.7 10.8.3.9", level="medium")  # a correlation's entity
    assert [("critical", "dns"), ("high", "l3")] == [
        (by_host.severity, by_host.system_id),
        (pair.severity, pair.system_id),
    ]


def test_the_highest_level_wins_and_repeats_are_raised_too(backend: Store) -> None:
    backend.add_system(a_system("wide", 3, "10.10.0.0/16"), NOW)
    alert = an_alert(backend, "10.10.1.1", level="low")
    backend.add_system(a_system("core", 5, "10.10.1.0/24"), NOW)  # declared after it opened
    repeat = an_alert(backend, "10.10.1.1", level="medium", at=NOW + timedelta(minutes=1))
    assert (alert.id, "wide", "high", 2) == (
        repeat.id,
        repeat.system_id,
        repeat.severity,
        repeat.count,
    )
    fresh = an_alert(backend, "10.10.1.2", source="rule:r2", level="low")
    assert ("core", "high") == (fresh.system_id, fresh.severity)
