"""Triage over a real server: transitions allowed and refused, the race between two analysts,
assignment, notes and the audit trail, bulk actions, roles, bad bodies and unknown ids."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.lifecycle import MAX_NOTE_CHARS, TRANSITIONS, AlertStatus
from api.settings import Settings
from api.store import SqliteStore
from tests.conftest import NOW, LiveServer, Tokens
from tests.contracts.test_store import an_alert

UNKNOWN = "0" * 32


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live(settings: Settings, store: SqliteStore, clock: Clock) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, store=store, clock=clock)) as server:
        yield server


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


def principal_id(store: SqliteStore, name: str) -> int:
    (found,) = [p.id for p in store.list_principals() if p.name == name]
    return found


def test_every_transition_is_allowed_or_refused_as_the_table_says(
    http: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    paths = {
        AlertStatus.NEW: [],
        AlertStatus.ACKNOWLEDGED: ["acknowledged"],
        AlertStatus.IN_PROGRESS: ["acknowledged", "in_progress"],
        AlertStatus.RESOLVED: ["acknowledged", "in_progress", "resolved"],
        AlertStatus.FALSE_POSITIVE: ["false_positive"],
    }
    analyst = tokens.of("analyst")
    expected, actual = {}, {}
    for i, (current, to) in enumerate(itertools.product(AlertStatus, AlertStatus)):
        alert = an_alert(store, f"10.1.0.{i}")
        for step in paths[current]:
            moved = http.post(
                f"/api/v1/alerts/{alert.id}/transition", json={"to": step}, headers=analyst
            )
            assert 200 == moved.status_code
        response = http.post(
            f"/api/v1/alerts/{alert.id}/transition", json={"to": to.value}, headers=analyst
        )
        after = http.get(f"/api/v1/alerts/{alert.id}", headers=analyst).json()["status"]
        actual[(current, to)] = (response.status_code, after)
        expected[(current, to)] = (200, to) if to in TRANSITIONS[current] else (409, current)
    assert expected == actual


def test_a_refusal_names_the_status_and_where_it_may_go(
    http: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    alert = an_alert(store)
    response = http.post(
        f"/api/v1/alerts/{alert.id}/transition", json={"to": "resolved"}, headers=tokens.of("admin")
    )
    assert (
        409,
        {
            "detail": f"alert {alert.id} is new and cannot go to resolved;"
            " from new it can go to: acknowledged, false_positive"
        },
    ) == (response.status_code, response.json())


def test_two_analysts_racing_get_one_200_and_one_409(
    live: LiveServer, tokens: Tokens, store: SqliteStore
) -> None:
    alerts = [an_alert(store, f"10.2.0.{i}") for i in range(10)]

    def acknowledge(alert_id: str, role: str, barrier: threading.Barrier) -> int:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            barrier.wait()
            return client.post(
                f"/api/v1/alerts/{alert_id}/transition",
                json={"to": "acknowledged"},
                headers=tokens.of(role),
            ).status_code

    outcomes = []
    with ThreadPoolExecutor(2) as pool:
        for alert in alerts:
            barrier = threading.Barrier(2)
            racing = [pool.submit(acknowledge, alert.id, r, barrier) for r in ("analyst", "admin")]
            outcomes.append(sorted(future.result() for future in racing))
    assert [[200, 409]] * 10 == outcomes
    trails = [store.alert_audit(alert.id, 0, 10) for alert in alerts]
    assert [1] * 10 == [len(trail.items) for trail in trails if trail is not None]


def test_notes_assignment_and_the_audit_trail(
    http: httpx.Client, tokens: Tokens, store: SqliteStore, clock: Clock
) -> None:
    alert = an_alert(store)
    analyst, admin = principal_id(store, "analyst"), principal_id(store, "admin")
    base = f"/api/v1/alerts/{alert.id}"
    steps: list[tuple[str, str, dict[str, Any], str]] = [
        ("post", f"{base}/transition", {"to": "acknowledged", "note": "  seen it  "}, "analyst"),
        ("patch", base, {"assignee": " Nguyễn Văn An "}, "admin"),
        ("post", f"{base}/notes", {"text": "port scan from\na lab host"}, "analyst"),
        ("patch", base, {"assignee": None}, "analyst"),
    ]
    answers = []
    for minute, (method, path, body, role) in enumerate(steps, start=1):
        clock.now = NOW + timedelta(minutes=minute)
        response = http.request(method, path, json=body, headers=tokens.of(role))
        answers.append(response.status_code)
    assert [200, 200, 201, 200] == answers

    audit = http.get(f"{base}/audit", headers=tokens.of("analyst")).json()
    at = [(NOW + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in range(5)]
    rows = [
        (at[1], analyst, "analyst", "status", "new", "acknowledged"),
        (at[1], analyst, "analyst", "note", None, "seen it"),
        (at[2], admin, "admin", "assignee", None, "Nguyễn Văn An"),
        (at[3], analyst, "analyst", "note", None, "port scan from\na lab host"),
        (at[4], analyst, "analyst", "assignee", "Nguyễn Văn An", None),
    ]
    assert rows == [
        (e["at"], e["actor_id"], e["actor"], e["field"], e["old"], e["new"]) for e in audit["items"]
    ]
    assert None is audit["next_after"]

    detail = http.get(base, headers=tokens.of("analyst")).json()
    assert ("acknowledged", None, at[4]) == (
        detail["status"],
        detail["assignee"],
        detail["updated_at"],
    )
    assert [
        (analyst, "analyst", at[1], "seen it"),
        (analyst, "analyst", at[3], "port scan from\na lab host"),
    ] == [(n["author_id"], n["author"], n["created_at"], n["text"]) for n in detail["notes"]]


def test_audit_pages_with_after(http: httpx.Client, tokens: Tokens, store: SqliteStore) -> None:
    alert = an_alert(store)
    for i in range(3):
        http.post(
            f"/api/v1/alerts/{alert.id}/notes", json={"text": f"n{i}"}, headers=tokens.of("admin")
        )
    first = http.get(
        f"/api/v1/alerts/{alert.id}/audit", params={"limit": 2}, headers=tokens.of("admin")
    ).json()
    rest = http.get(
        f"/api/v1/alerts/{alert.id}/audit",
        params={"limit": 2, "after": first["next_after"]},
        headers=tokens.of("admin"),
    ).json()
    assert (["n0", "n1"], ["n2"], None) == (
        [e["new"] for e in first["items"]],
        [e["new"] for e in rest["items"]],
        rest["next_after"],
    )


def test_bulk_changes_the_valid_alerts_and_lists_the_skipped(
    http: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    alerts = [
        an_alert(store, f"10.3.0.{i}", source="rule:scan", at=NOW + timedelta(seconds=i))
        for i in range(4)
    ]
    an_alert(store, "10.3.1.1", source="rule:other")
    for alert in alerts[:2]:
        http.post(
            f"/api/v1/alerts/{alert.id}/transition",
            json={"to": "acknowledged"},
            headers=tokens.of("admin"),
        )
    response = http.post(
        "/api/v1/alerts/bulk",
        json={"filter": {"source": "rule:scan"}, "action": {"to": "in_progress"}},
        headers=tokens.of("analyst"),
    )
    skipped = [
        {
            "id": a.id,
            "status": "new",
            "reason": f"alert {a.id} is new and cannot go to in_progress;"
            " from new it can go to: acknowledged, false_positive",
        }
        for a in (alerts[3], alerts[2])
    ]
    assert (
        200,
        {"matched": 4, "changed": 2, "unchanged": 0, "skipped": skipped, "truncated": False},
    ) == (response.status_code, response.json())
    listed = http.get("/api/v1/alerts", headers=tokens.of("analyst")).json()["items"]
    assert {
        "10.3.0.0": "in_progress",
        "10.3.0.1": "in_progress",
        "10.3.0.2": "new",
        "10.3.0.3": "new",
        "10.3.1.1": "new",
    } == {a["entity"]: a["status"] for a in listed}

    assigned = http.post(
        "/api/v1/alerts/bulk",
        json={"filter": {"status": "new"}, "action": {"assignee": "lan"}, "limit": 2},
        headers=tokens.of("admin"),
    )
    assert {"matched": 2, "changed": 2, "unchanged": 0, "skipped": [], "truncated": True} == (
        assigned.json()
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/transition", {"to": "acknowledged"}),
        ("PATCH", "", {"assignee": "lan"}),
        ("POST", "/notes", {"text": "x"}),
        ("GET", "/audit", None),
    ],
)
def test_a_sensor_token_is_403_and_changes_nothing(
    http: httpx.Client,
    tokens: Tokens,
    store: SqliteStore,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    alert = an_alert(store)
    response = http.request(
        method, f"/api/v1/alerts/{alert.id}{suffix}", json=body, headers=tokens.of("sensor")
    )
    assert (403, alert, []) == (
        response.status_code,
        store.get_alert(alert.id),
        store.alert_notes(alert.id),
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/transition", {"to": "acknowledged"}),
        ("PATCH", "", {"assignee": "lan"}),
        ("POST", "/notes", {"text": "x"}),
        ("GET", "/audit", None),
        ("GET", "", None),
    ],
)
def test_an_unknown_alert_is_404(
    http: httpx.Client, tokens: Tokens, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    response = http.request(
        method, f"/api/v1/alerts/{UNKNOWN}{suffix}", json=body, headers=tokens.of("analyst")
    )
    assert (404, {"detail": f"no alert {UNKNOWN}"}) == (response.status_code, response.json())


BAD_BODIES = [
    ("/transition", {}),
    ("/transition", {"to": "closed"}),
    ("/transition", {"to": "acknowledged", "extra": 1}),
    ("/transition", {"to": "acknowledged", "note": ""}),
    ("/transition", {"to": "acknowledged", "note": "x" * (MAX_NOTE_CHARS + 1)}),
    ("/transition", {"to": "acknowledged", "note": "bell\x07"}),
    ("/transition", {"to": None}),
    ("/transition", ["acknowledged"]),
    ("", {}),
    ("", {"assignee": ""}),
    ("", {"assignee": "x" * 129}),
    ("", {"assignee": "lan", "status": "resolved"}),
    ("", {"assignee": 5}),
    ("/notes", {}),
    ("/notes", {"text": "   "}),
    ("/notes", {"text": "x", "author": "someone else"}),
    ("/notes", {"text": "x" * (MAX_NOTE_CHARS + 1)}),
]


@pytest.mark.parametrize(("suffix", "body"), BAD_BODIES)
def test_bad_bodies_are_422_and_change_nothing(
    http: httpx.Client, tokens: Tokens, store: SqliteStore, suffix: str, body: object
) -> None:
    alert = an_alert(store)
    method = "PATCH" if suffix == "" else "POST"
    response = http.request(
        method, f"/api/v1/alerts/{alert.id}{suffix}", json=body, headers=tokens.of("analyst")
    )
    assert (422, alert, []) == (
        response.status_code,
        store.get_alert(alert.id),
        store.alert_notes(alert.id),
    )


def test_a_body_that_is_not_json_is_422(
    http: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    alert = an_alert(store)
    response = http.post(
        f"/api/v1/alerts/{alert.id}/transition",
        content=b"{to: acknowledged",
        headers={"Content-Type": "application/json", **tokens.of("analyst")},
    )
    assert 422 == response.status_code


@pytest.mark.parametrize(
    "body",
    [
        {"filter": {}, "action": {"to": "acknowledged"}},
        {"filter": {"status": "new"}},
        {"action": {"to": "acknowledged"}},
        {"filter": {"status": "new"}, "action": {"to": "acknowledged", "assignee": "lan"}},
        {"filter": {"status": "new"}, "action": {}},
        {"filter": {"status": "open"}, "action": {"to": "acknowledged"}},
        {"filter": {"severity": "urgent"}, "action": {"to": "acknowledged"}},
        {"filter": {"status": "new", "ip": "10.0.0.1"}, "action": {"to": "acknowledged"}},
        {"filter": {"start": "2026-01-01T00:00:00"}, "action": {"to": "acknowledged"}},
        {
            "filter": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "action": {"to": "acknowledged"},
        },
        {"filter": {"status": "new"}, "action": {"to": "acknowledged"}, "limit": 0},
        {"filter": {"status": "new"}, "action": {"to": "acknowledged"}, "limit": 1001},
        {"filter": {"status": "new"}, "action": {"to": "acknowledged"}, "dry_run": True},
    ],
)
def test_bad_bulk_bodies_are_422_and_change_nothing(
    http: httpx.Client, tokens: Tokens, store: SqliteStore, body: dict[str, Any]
) -> None:
    alert = an_alert(store)
    response = http.post("/api/v1/alerts/bulk", json=body, headers=tokens.of("analyst"))
    assert (422, alert) == (response.status_code, store.get_alert(alert.id))
