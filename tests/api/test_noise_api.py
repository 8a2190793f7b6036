"""Silences and suppressions over a real server: what analysts send, what they get back, and
the bodies that are refused without changing anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from api.store import SqliteStore
from tests.conftest import NOW, LiveServer, Tokens
from tests.contracts.test_store import an_alert


@pytest.fixture
def http(settings: Settings, store: SqliteStore) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(settings, store=store, clock=lambda: NOW)) as live,
        httpx.Client(base_url=live.url, timeout=10) as client,
    ):
        yield client


SILENCE = {
    "matchers": [{"field": "entity", "op": "=~", "value": r"10\.0\.0\..*"}],
    "duration_seconds": 3600,
    "comment": "patching the web farm",
}


def test_a_silence_is_made_listed_and_ended(http: httpx.Client, tokens: Tokens) -> None:
    made = http.post("/api/v1/silences", json=SILENCE, headers=tokens.of("analyst"))
    assert 201 == made.status_code, made.text
    silence = made.json()
    assert (
        "analyst",
        "patching the web farm",
        NOW + timedelta(hours=1),
        [{"field": "entity", "op": "=~", "value": r"10\.0\.0\..*"}],
    ) == (
        silence["author"],
        silence["comment"],
        _time(silence["ends_at"]),
        silence["matchers"],
    )
    listed = http.get("/api/v1/silences", headers=tokens.of("admin")).json()["items"]
    assert [silence["id"]] == [s["id"] for s in listed]
    ended = http.delete(f"/api/v1/silences/{silence['id']}", headers=tokens.of("admin"))
    assert (200, "admin", NOW) == (
        ended.status_code,
        ended.json()["expired_by"],
        _time(ended.json()["ends_at"]),
    )
    assert [] == http.get("/api/v1/silences", headers=tokens.of("admin")).json()["items"]
    every = http.get("/api/v1/silences?expired=true", headers=tokens.of("admin")).json()
    assert [silence["id"]] == [s["id"] for s in every["items"]]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"matchers": []}, "at least 1 item"),
        ({"matchers": [{"field": "password", "value": "x"}]}, "literal_error"),
        ({"matchers": [{"field": "entity", "op": "=~", "value": "("}]}, "not a regular"),
        ({"matchers": [{"field": "entity", "op": "~", "value": "x"}]}, "literal_error"),
        ({"duration_seconds": None}, "one of them"),
        ({"ends_at": "2026-01-02T05:00:00Z"}, "one of them"),
        ({"duration_seconds": 10}, "greater than or equal to 60"),
        ({"duration_seconds": 91 * 86400}, "less than or equal to"),
        ({"comment": ""}, "at least 1 character"),
        ({"extra": 1}, "extra_forbidden"),
        ({"starts_at": "9999-12-31T23:00:00Z"}, "within 90 days of now"),
        ({"starts_at": "9999-12-31T23:00:00-14:00"}, "within 90 days of now"),
        ({"matchers": [{"field": "entity", "op": "=~", "value": "(?<=x)y"}]}, "RE2 syntax"),
    ],
)
def test_bad_silences_are_422_and_change_nothing(
    http: httpx.Client, tokens: Tokens, change: dict[str, Any], detail: str
) -> None:
    body = {k: v for k, v in {**SILENCE, **change}.items() if v is not None}
    response = http.post("/api/v1/silences", json=body, headers=tokens.of("analyst"))
    assert 422 == response.status_code
    assert detail in response.text
    assert [] == http.get("/api/v1/silences", headers=tokens.of("analyst")).json()["items"]


def test_a_silence_that_ended_already_is_422(http: httpx.Client, tokens: Tokens) -> None:
    body = {**SILENCE, "ends_at": "2020-01-01T00:00:00Z"}
    body.pop("duration_seconds")
    response = http.post("/api/v1/silences", json=body, headers=tokens.of("analyst"))
    assert (422, "the silence must end after it starts, and in the future") == (
        response.status_code,
        response.json()["detail"],
    )


def test_a_false_positive_verdict_makes_a_suppression_unless_told_not_to(
    http: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    first, second, third = (an_alert(store, f"10.0.0.{i}") for i in (1, 2, 3))
    analyst = tokens.of("analyst")
    verdict = {"to": "false_positive", "note": "the backup server"}
    assert (
        200
        == http.post(
            f"/api/v1/alerts/{first.id}/transition", json=verdict, headers=analyst
        ).status_code
    )
    no = {**verdict, "suppress": False}
    assert (
        200
        == http.post(f"/api/v1/alerts/{second.id}/transition", json=no, headers=analyst).status_code
    )
    narrow = {**verdict, "suppress": {"fields": ["nope"], "days": 3}}
    refused = http.post(f"/api/v1/alerts/{third.id}/transition", json=narrow, headers=analyst)
    assert 422 == refused.status_code
    assert "no value nope" in refused.json()["detail"]
    assert "new" == http.get(f"/api/v1/alerts/{third.id}", headers=analyst).json()["status"]
    narrow = {**verdict, "suppress": {"fields": ["destination.port"], "days": 3}}
    assert (
        200
        == http.post(
            f"/api/v1/alerts/{third.id}/transition", json=narrow, headers=analyst
        ).status_code
    )

    listed = http.get("/api/v1/suppressions", headers=analyst).json()["items"]
    assert [
        (third.id, {"destination.port": 22}, NOW + timedelta(days=3)),
        (first.id, {}, NOW + timedelta(days=30)),
    ] == sorted(
        ((s["alert_id"], s["values"], _time(s["expires_at"])) for s in listed),
        key=lambda s: s[2],
    )
    lifted = next(s for s in listed if s["alert_id"] == first.id)
    response = http.delete(f"/api/v1/suppressions/{lifted['id']}", headers=analyst)
    assert (200, NOW) == (response.status_code, _time(response.json()["expires_at"]))
    remaining = http.get("/api/v1/suppressions", headers=analyst).json()["items"]
    assert [third.id] == [s["alert_id"] for s in remaining]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
