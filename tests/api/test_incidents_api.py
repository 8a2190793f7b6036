"""Incidents over a real server: recorded by analysts, resolved, dismissed, and confirmed from
a SOC alert with one call; each change rates the provider again, as TNM-1 says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.store import SqliteStore
from tests.api.test_providers_api import PORTAL
from tests.conftest import Tokens
from tests.contracts.test_store import an_alert
from tests.scoring.test_trust_examples import modern_checks, states

DOMAIN = "dvc.gov.example"


def _rated_provider(client: httpx.Client, tokens: Tokens, store: SqliteStore) -> None:
    """A provider whose one site passed every check (posture 94 of 100 without stream data)."""
    body = {**PORTAL, "sites": [{"domain": DOMAIN, "role": "primary"}]}
    assert (
        201 == client.post("/api/v1/providers", json=body, headers=tokens.of("admin")).status_code
    )
    now = datetime.now(UTC)
    seen = {check: replace(o, observed_at=now) for check, o in modern_checks().items()}
    store.save_finding_states(DOMAIN, states(seen))


def _rating(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/public/v1/providers/dvc")
    assert 200 == response.status_code, response.text
    rating: dict[str, Any] = response.json()
    return rating


def _incident(client: httpx.Client, tokens: Tokens, **fields: Any) -> httpx.Response:
    return client.post("/api/v1/providers/dvc/incidents", json=fields, headers=tokens.of("analyst"))


def test_an_active_defacement_caps_at_f_with_a_warning_until_resolved(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _rated_provider(client, tokens, store)
    started = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    created = _incident(client, tokens, kind="defacement", started=started, site=DOMAIN)
    assert 201 == created.status_code, created.text
    incident = created.json()
    assert ("active", "defacement", "analyst", None) == (
        incident["state"],
        incident["kind"],
        incident["author"],
        incident["resolved"],
    )
    rating = _rating(client)
    assert ("F", True) == (rating["grade"], rating["warning"])
    assert [("F", incident["id"])] == [
        (cap["grade"], cap["source"]) for cap in rating["caps"] if cap["source"] == incident["id"]
    ]
    (penalty,) = rating["penalties"]
    assert (20.0, True) == (penalty["points"], penalty["active"])
    badge = client.get("/public/v1/providers/dvc/badge.svg")
    assert (200, "image/svg+xml") == (badge.status_code, badge.headers["content-type"])
    assert "incident" in badge.text.lower()

    resolved = client.patch(
        f"/api/v1/incidents/{incident['id']}",
        json={"state": "resolved"},
        headers=tokens.of("analyst"),
    )
    assert (200, "resolved") == (resolved.status_code, resolved.json()["state"])
    rating = _rating(client)
    # Probation: a compromise resolved less than 30 days ago caps at C; no more warning.
    assert ("C", False) == (rating["grade"], rating["warning"])
    assert "incident" not in client.get("/public/v1/providers/dvc/badge.svg").text.lower()

    dismissed = client.patch(
        f"/api/v1/incidents/{incident['id']}",
        json={"state": "dismissed"},
        headers=tokens.of("analyst"),
    )
    assert 200 == dismissed.status_code
    assert ([], "A+") == (_rating(client)["penalties"], _rating(client)["band"])
    listed = client.get("/api/v1/providers/dvc/incidents", headers=tokens.of("analyst"))
    assert ["dismissed"] == [i["state"] for i in listed.json()]


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"kind": "alien_invasion", "started": "2026-01-01T00:00:00Z"}, 422),
        ({"kind": "defacement", "started": "2026-01-01T00:00:00"}, 422),  # no time zone
        ({"kind": "defacement", "started": "2999-01-01T00:00:00Z"}, 422),  # the future
        (
            {
                "kind": "defacement",
                "started": "2026-01-02T00:00:00Z",
                "resolved": "2026-01-01T00:00:00Z",
            },
            422,
        ),
        ({"kind": "defacement", "started": "2026-01-01T00:00:00Z", "site": "other.example"}, 422),
        ({"kind": "defacement", "started": "2026-01-01T00:00:00Z", "summary": "x" * 2001}, 422),
        ({"kind": "defacement"}, 422),
    ],
)
def test_bad_incidents_are_refused_and_store_nothing(
    client: httpx.Client,
    tokens: Tokens,
    store: SqliteStore,
    fields: dict[str, Any],
    status: int,
) -> None:
    _rated_provider(client, tokens, store)
    response = _incident(client, tokens, **fields)
    assert status == response.status_code, response.text
    assert [] == store.list_incidents("dvc")


def test_incidents_need_a_known_provider_and_an_analyst(
    client: httpx.Client, tokens: Tokens
) -> None:
    fields = {"kind": "outage", "started": "2026-01-01T00:00:00Z"}
    unknown = client.post(
        "/api/v1/providers/nobody/incidents", json=fields, headers=tokens.of("analyst")
    )
    assert 404 == unknown.status_code
    by_sensor = client.post(
        "/api/v1/providers/nobody/incidents", json=fields, headers=tokens.of("sensor")
    )
    assert 403 == by_sensor.status_code
    missing = client.patch(
        "/api/v1/incidents/inc-0000000000000000", json={}, headers=tokens.of("analyst")
    )
    assert 404 == missing.status_code


def test_a_confirmed_alert_becomes_an_incident_and_a_false_positive_dismisses_it(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _rated_provider(client, tokens, store)
    alert = an_alert(store, DOMAIN, source="rule:defacement", at=datetime.now(UTC))
    # Unconfirmed, the alert costs the provider TNM-1's 2 points.
    client.put(  # any change rates again; here the same fields
        "/api/v1/providers/dvc",
        json={k: v for k, v in PORTAL.items() if k != "id"} | {"sites": [{"domain": DOMAIN}]},
        headers=tokens.of("admin"),
    )
    assert [("unconfirmed_alert", 2.0)] == [
        (p["kind"], p["points"]) for p in _rating(client)["penalties"]
    ]
    confirmed = client.post(
        f"/api/v1/alerts/{alert.id}/incident",
        json={"kind": "defacement"},
        headers=tokens.of("analyst"),
    )
    assert 201 == confirmed.status_code, confirmed.text
    incident = confirmed.json()
    assert ("dvc", DOMAIN, alert.id, "active") == (
        incident["provider"],
        incident["site"],
        incident["alert_id"],
        incident["state"],
    )
    assert datetime.fromisoformat(incident["started"]) == alert.first_seen
    rating = _rating(client)
    assert ("F", [("defacement", 20.0)]) == (
        rating["grade"],
        [(p["kind"], p["points"]) for p in rating["penalties"]],
    )
    twice = client.post(
        f"/api/v1/alerts/{alert.id}/incident",
        json={"kind": "defacement"},
        headers=tokens.of("analyst"),
    )
    assert 409 == twice.status_code
    for step in ("acknowledged", "false_positive"):
        moved = client.post(
            f"/api/v1/alerts/{alert.id}/transition",
            json={"to": step},
            headers=tokens.of("analyst"),
        )
        assert 200 == moved.status_code, moved.text
    assert ["dismissed"] == [i.state.value for i in store.list_incidents("dvc")]
    assert ([], False) == (_rating(client)["penalties"], _rating(client)["warning"])
    again = client.post(
        f"/api/v1/alerts/{alert.id}/incident",
        json={"kind": "defacement"},
        headers=tokens.of("analyst"),
    )
    assert 409 == again.status_code


def test_an_alert_about_no_provider_needs_one_named(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _rated_provider(client, tokens, store)
    alert = an_alert(store, "10.9.9.9", at=datetime.now(UTC))
    unnamed = client.post(
        f"/api/v1/alerts/{alert.id}/incident",
        json={"kind": "malware"},
        headers=tokens.of("analyst"),
    )
    assert (422, "no provider owns 10.9.9.9: name the provider in the request") == (
        unnamed.status_code,
        unnamed.json()["detail"],
    )
    named = client.post(
        f"/api/v1/alerts/{alert.id}/incident",
        json={"kind": "malware", "provider": "dvc"},
        headers=tokens.of("analyst"),
    )
    assert (201, None) == (named.status_code, named.json()["site"])
    unknown = client.post(
        "/api/v1/alerts/nope/incident", json={"kind": "malware"}, headers=tokens.of("analyst")
    )
    assert 404 == unknown.status_code
