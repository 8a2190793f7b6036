"""The outbox and noise control, against every store backend: routing by severity and agency,
grouping windows, silences, inhibition, suppressions from false-positive verdicts, and the
notification states the delivery worker moves through (claim, retry, dead, replay, recovery).
Time is the test's: ingest and claims are given their ``now``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from api.delivery.signing import SigningKey
from api.errors import UnprocessableError
from api.lifecycle import AlertStatus
from api.noise import Matcher
from api.settings import load_settings
from api.store import BACKENDS, Store, open_store
from api.store.protocol import Alert, AlertQuery, AttemptResult, Suppress
from api.systems import NewSystem
from tests.conftest import NOW
from tests.contracts.test_store import ANALYST, FakeDetection, a_flow, a_sensor, detector, moved

KEY = SigningKey(b"outbox test key")
_FLOWS = iter(range(10_000, 1_000_000))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    secret = tmp_path / "secret"
    secret.write_text(KEY.secret)
    receivers = [
        {"name": "ncc", "url": "https://ncc.example/hook", "secret_file": str(secret)},
        {
            "name": "mof-cert",
            "url": "https://cert.mof.example/hook",
            "secret_file": str(secret),
            "min_severity": "high",
            "agencies": ["MOF"],
        },
    ]
    settings = load_settings(
        data_dir=tmp_path, store=request.param, receivers=receivers, group_window_seconds=60
    )
    opened = open_store(settings)
    a_sensor(opened)
    yield opened
    opened.close()


def detect(
    store: Store,
    entity: str,
    at: datetime = NOW,
    *,
    rule: str = "r1",
    level: str = "medium",
    values: dict[str, Any] | None = None,
) -> tuple[Alert | None, int]:
    """A detection through ingest, as a batch brings it: the alert (None if suppressed) and
    how many detections suppressions swallowed."""
    found = FakeDetection(
        f"rule:{rule}", entity, at, rule_id=rule, level=level, values=values or {"n": 15}
    )
    counts = store.ingest("s1", [a_flow(next(_FLOWS))], [], at, detect=detector(found))
    alerts = [a for a in all_alerts(store) if a.source == f"rule:{rule}" and a.entity == entity]
    return (max(alerts, key=lambda a: a.updated_at) if alerts else None), counts.alerts_suppressed


def all_alerts(store: Store) -> list[Alert]:
    return store.query_alerts(AlertQuery(limit=1000)).items


def delivery(store: Store, alert: Alert) -> tuple[str, list[str], str | None]:
    found = store.get_alert(alert.id)
    assert found is not None
    assert found.delivery is not None
    view = found.delivery
    return view.state, [n.receiver for n in view.notifications], view.muted_by


def claim(store: Store, at: datetime) -> list[tuple[str, list[str]]]:
    return [(c.receiver, c.alert_ids) for c in store.claim_deliveries(at, 100)]


def test_routing_by_severity_and_agency(store: Store) -> None:
    store.add_system(
        NewSystem("mof-portal", "MOF portal", "MOF", 1, (ip_network("10.8.0.0/16"),), ()), NOW
    )
    low, _ = detect(store, "10.0.0.1", level="low")
    medium, _ = detect(store, "10.0.0.2", level="medium")
    high_mof, _ = detect(store, "10.8.0.3", level="high")
    high_other, _ = detect(store, "10.0.0.4", level="high")
    assert low
    assert medium
    assert high_mof
    assert high_other
    assert ("not_routed", [], None) == delivery(store, low)
    assert ("pending", ["ncc"], None) == delivery(store, medium)
    assert ("pending", ["mof-cert", "ncc"], None) == delivery(store, high_mof)
    assert ("pending", ["ncc"], None) == delivery(store, high_other)


def test_a_repeat_that_raises_the_severity_is_routed_then(store: Store) -> None:
    alert, _ = detect(store, "10.0.0.5", level="low")
    assert alert is not None
    assert "not_routed" == delivery(store, alert)[0]
    again, _ = detect(store, "10.0.0.5", NOW + timedelta(seconds=5), level="medium")
    assert again is not None
    assert again.id == alert.id
    assert ("pending", ["ncc"], None) == delivery(store, alert)
    detect(store, "10.0.0.5", NOW + timedelta(seconds=9), level="medium")  # queued once only
    assert [("ncc", [alert.id])] == claim(store, NOW + timedelta(seconds=10))


def test_a_group_gets_one_notification_per_window(store: Store) -> None:
    at = NOW
    first, _ = detect(store, "10.0.1.1", at)
    assert first is not None
    assert [("ncc", [first.id])] == claim(store, at)  # the group's first goes at once
    second, _ = detect(store, "10.0.1.2", at + timedelta(seconds=10))
    third, _ = detect(store, "10.0.1.3", at + timedelta(seconds=20))
    other_rule, _ = detect(store, "10.0.1.4", at + timedelta(seconds=20), rule="r2")
    assert second
    assert third
    assert other_rule
    # Another group is not held back; this one waits for its window's end.
    assert [("ncc", [other_rule.id])] == claim(store, at + timedelta(seconds=30))
    assert [] == claim(store, at + timedelta(seconds=59))
    assert [("ncc", sorted([second.id, third.id]))] == claim(store, at + timedelta(seconds=60))
    # The next window starts where that one went out.
    fourth, _ = detect(store, "10.0.1.5", at + timedelta(seconds=61))
    assert fourth is not None
    assert [] == claim(store, at + timedelta(seconds=119))
    assert [("ncc", [fourth.id])] == claim(store, at + timedelta(seconds=120))


def test_a_silence_mutes_matching_alerts_while_it_lasts(store: Store) -> None:
    silence = store.add_silence(
        [Matcher(field="entity", op="=~", value=r"10\.0\.2\..*")],
        NOW,
        NOW + timedelta(hours=1),
        "maintenance window",
        ANALYST,
        NOW,
    )
    muted, _ = detect(store, "10.0.2.1")
    heard, _ = detect(store, "10.0.3.1")
    assert muted
    assert heard
    assert ("silenced", [], f"silence:{silence.id}") == delivery(store, muted)
    assert ("pending", ["ncc"], None) == delivery(store, heard)
    assert [silence.id] == [s.id for s in store.list_silences(NOW)]
    # After its end, a new alert of the kind is delivered again.
    later = NOW + timedelta(hours=2)
    after, _ = detect(store, "10.0.2.9", later)
    assert after is not None
    assert "pending" == delivery(store, after)[0]
    assert [] == store.list_silences(later)
    assert [silence.id] == [s.id for s in store.list_silences(later, include_expired=True)]


def test_a_silence_made_before_the_send_still_mutes(store: Store) -> None:
    alert, _ = detect(store, "10.0.4.1")
    assert alert is not None
    silence = store.add_silence(
        [Matcher(field="rule_id", value="r1")], NOW, NOW + timedelta(hours=1), "noisy", ANALYST, NOW
    )
    assert [] == claim(store, NOW + timedelta(seconds=1))
    assert ("silenced", [], f"silence:{silence.id}") == delivery(store, alert)
    ended = store.expire_silence(silence.id, ANALYST, NOW + timedelta(seconds=2))
    assert ended is not None
    assert ended.expired_by == "lan"


def test_a_critical_alert_inhibits_lower_ones_about_the_same_host(store: Store) -> None:
    critical, _ = detect(store, "10.0.5.2", rule="ransomware", level="critical")
    scan, _ = detect(store, "10.0.5.66 10.0.5.2", rule="scan", level="high")
    elsewhere, _ = detect(store, "10.0.6.66 10.0.6.2", rule="scan", level="high")
    assert critical
    assert scan
    assert elsewhere
    assert ("pending", ["ncc"], None) == delivery(store, critical)
    assert ("inhibited", [], f"inhibited:{critical.id}") == delivery(store, scan)
    assert "pending" == delivery(store, elsewhere)[0]
    # Once the critical alert is resolved, lower alerts about the host are heard again.
    moved(store, critical, AlertStatus.RESOLVED)
    later, _ = detect(store, "10.0.5.2", rule="beacon", level="medium")
    assert later is not None
    assert "pending" == delivery(store, later)[0]


def test_a_false_positive_verdict_suppresses_the_same_detection(store: Store) -> None:
    alert, _ = detect(store, "10.0.7.1", values={"destination.port": 22, "n": 15})
    assert alert is not None
    moved(store, alert, AlertStatus.ACKNOWLEDGED)
    store.transition_alert(
        alert.id, AlertStatus.FALSE_POSITIVE, ANALYST, NOW, suppress=Suppress(days=7)
    )
    (suppression,) = store.list_suppressions(NOW)
    assert ("rule:r1", "10.0.7.1", {}, alert.id, "lan", NOW + timedelta(days=7)) == (
        suppression.source,
        suppression.entity,
        suppression.values,
        suppression.alert_id,
        suppression.author,
        suppression.expires_at,
    )
    later = NOW + timedelta(hours=2)  # past the dedupe window: it would open a new alert
    again, swallowed = detect(store, "10.0.7.1", later, values={"destination.port": 80})
    assert (alert.id, 1) == (again.id if again else None, swallowed)
    other, swallowed = detect(store, "10.0.7.2", later)
    assert other is not None
    assert 0 == swallowed
    (suppression,) = store.list_suppressions(later)
    assert (1, later) == (suppression.hits, suppression.last_hit)

    # Reopening says it was no false positive: the suppression is lifted.
    store.transition_alert(alert.id, AlertStatus.ACKNOWLEDGED, ANALYST, later)
    assert [] == store.list_suppressions(later + timedelta(seconds=1))
    reopened, swallowed = detect(store, "10.0.7.1", later + timedelta(seconds=2))
    assert 0 == swallowed
    assert reopened is not None


def test_a_narrowed_suppression_needs_the_same_evidence_values(store: Store) -> None:
    alert, _ = detect(store, "10.0.8.1", values={"destination.port": 22, "n": 15})
    assert alert is not None
    store.transition_alert(
        alert.id,
        AlertStatus.FALSE_POSITIVE,
        ANALYST,
        NOW,
        suppress=Suppress(fields=("destination.port",)),
    )
    later = NOW + timedelta(hours=2)
    _, swallowed = detect(store, "10.0.8.1", later, values={"destination.port": 22, "n": 40})
    assert 1 == swallowed
    other_port, swallowed = detect(store, "10.0.8.1", later, values={"destination.port": 23})
    assert other_port is not None
    assert 0 == swallowed


def test_narrowing_by_evidence_the_alert_lacks_changes_nothing(store: Store) -> None:
    alert, _ = detect(store, "10.0.9.1")
    assert alert is not None
    with pytest.raises(UnprocessableError, match=r"no value source\.ip"):
        store.transition_alert(
            alert.id,
            AlertStatus.FALSE_POSITIVE,
            ANALYST,
            NOW,
            suppress=Suppress(fields=("source.ip",)),
        )
    found = store.get_alert(alert.id)
    assert found is not None
    assert "new" == found.status
    assert [] == store.list_suppressions(NOW)


def test_a_notification_moves_through_retry_dead_replay_and_recovery(store: Store) -> None:
    alert, _ = detect(store, "10.0.10.1")
    assert alert is not None
    (taken,) = store.claim_deliveries(NOW, 10)
    assert (None, 0, [alert.id]) == (taken.payload, taken.attempts, taken.alert_ids)
    assert [] == store.claim_deliveries(NOW, 10)  # sending: nobody else takes it
    retry_at = NOW + timedelta(seconds=5)
    store.record_delivery_attempts(
        [AttemptResult(taken.id, NOW, 12.5, "retry", b'{"frozen":1}', 503, "HTTP 503", retry_at)]
    )
    assert retry_at == store.next_delivery_due()
    assert [] == store.claim_deliveries(retry_at - timedelta(microseconds=1), 10)
    (again,) = store.claim_deliveries(retry_at, 10)
    assert (taken.id, b'{"frozen":1}', 1) == (again.id, again.payload, again.attempts)

    # The service dies mid-attempt: at start-up the notification is due again, same id.
    assert 1 == store.recover_deliveries()
    (recovered,) = store.claim_deliveries(retry_at, 10)
    assert taken.id == recovered.id
    store.record_delivery_attempts(
        [AttemptResult(taken.id, retry_at, 3.0, "dead", b'{"frozen":1}', 410, "410 Gone")]
    )
    assert "dead" == delivery(store, alert)[0]
    assert [] == store.claim_deliveries(retry_at + timedelta(days=2), 10)

    replayed = store.replay_notification(taken.id, retry_at)
    assert replayed is not None
    assert "pending" == replayed.state
    (last,) = store.claim_deliveries(retry_at, 10)
    store.record_delivery_attempts(
        [AttemptResult(last.id, retry_at, 2.0, "delivered", b'{"frozen":1}', 200)]
    )
    notification = store.get_notification(taken.id)
    assert notification is not None
    assert notification.attempt_log is not None
    assert [("retry", 503), ("dead", 410), ("delivered", 200)] == [
        (a.outcome, a.status) for a in notification.attempt_log
    ]
    assert ("delivered", 3) == (notification.state, notification.attempts)
    assert "delivered" == delivery(store, alert)[0]
    assert {("ncc", "delivered"): 1} == store.delivery_counts()


def test_ports_and_other_words_of_an_entity_are_not_hosts_for_inhibition(store: Store) -> None:
    critical, _ = detect(store, "10.5.5.5 10.1.1.1 22", rule="ransomware", level="critical")
    other, _ = detect(store, "203.0.113.7 10.2.2.2 22", rule="scan", level="high")
    assert critical is not None
    assert other is not None
    assert "pending" == delivery(store, other)[0]


def test_a_full_notification_overflows_into_another_of_the_same_window(store: Store) -> None:
    first, _ = detect(store, "10.0.20.1")
    assert first is not None
    claim(store, NOW)  # the group's first notification is out: the rest wait for the window
    later = [detect(store, f"10.0.21.{i}", NOW + timedelta(seconds=1))[0] for i in range(101)]
    notifications = claim(store, NOW + timedelta(seconds=60))
    assert [100, 1] == sorted((len(ids) for _, ids in notifications), reverse=True)
    assert sorted(a.id for a in later if a) == sorted(i for _, ids in notifications for i in ids)


def test_a_silence_pattern_cannot_backtrack_for_ever(store: Store) -> None:
    # With backtracking (Python's re) this pattern takes hours on a 60-character entity that
    # almost matches; RE2 answers at once.
    pattern = Matcher(field="entity", op="=~", value=r"(\w+\.?)*\.evil\.example")
    assert not pattern.matches({"entity": "a" * 60 + "!"})
    assert pattern.matches({"entity": "c2.evil.example"})
