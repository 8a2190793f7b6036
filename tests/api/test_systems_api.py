"""Information systems over a real server: admins declare them, and an alert about a system of
security level 3 or more opens with its severity raised."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.store import SqliteStore
from tests.conftest import Tokens
from tests.contracts.test_store import an_alert

PORTAL = {
    "id": "dvc-portal",
    "name": "National public service portal",
    "agency": "Government Office",
    "level": 4,
    "networks": ["10.20.0.0/16", "10.20.0.0/16", "2001:db8:20::/48", "192.0.2.7"],
    "hosts": ["DVC.gov.vn.", "dvc.gov.vn"],
}


def test_an_admin_declares_a_system_and_analysts_read_it(
    client: httpx.Client, tokens: Tokens
) -> None:
    created = client.post("/api/v1/systems", json=PORTAL, headers=tokens.of("admin"))
    expected = {
        **PORTAL,
        "networks": ["10.20.0.0/16", "2001:db8:20::/48", "192.0.2.7/32"],
        "hosts": ["dvc.gov.vn"],
        "created_at": created.json()["created_at"],
    }
    assert (201, expected) == (created.status_code, created.json())
    listed = client.get("/api/v1/systems", headers=tokens.of("analyst"))
    assert (200, [expected]) == (listed.status_code, listed.json())
    again = client.post("/api/v1/systems", json=PORTAL, headers=tokens.of("admin"))
    assert (409, "an information system with id 'dvc-portal' exists") == (
        again.status_code,
        again.json()["detail"],
    )
    by_analyst = client.post(
        "/api/v1/systems", json={**PORTAL, "id": "other"}, headers=tokens.of("analyst")
    )
    assert 403 == by_analyst.status_code


@pytest.mark.parametrize(
    "change",
    [
        {"level": 0},
        {"level": 6},
        {"level": "high"},
        {"id": "Has Spaces"},
        {"id": ""},
        {"name": ""},
        {"agency": "x" * 201},
        {"networks": ["10.20.0.1/16"]},  # host bits set: say the network
        {"networks": ["not-a-network"]},
        {"networks": [f"10.0.{i}.0/24" for i in range(257)]},
        {"hosts": ["10.0.0.1"]},  # an address belongs under networks
        {"hosts": ["bad host"]},
        {"networks": [], "hosts": []},
        {"owner": "someone"},
    ],
)
def test_bad_systems_are_422(
    client: httpx.Client, tokens: Tokens, store: SqliteStore, change: dict[str, Any]
) -> None:
    response = client.post("/api/v1/systems", json=PORTAL | change, headers=tokens.of("admin"))
    assert (422, []) == (response.status_code, store.list_systems())


def test_alerts_about_level_3_and_above_open_with_a_raised_severity(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    for level in range(1, 6):
        system = {
            "id": f"level-{level}",
            "name": f"System at level {level}",
            "agency": "Ministry of Examples",
            "level": level,
            "networks": [f"10.30.{level}.0/24"],
        }
        assert 201 == (
            client.post("/api/v1/systems", json=system, headers=tokens.of("admin")).status_code
        )
    alerts = {level: an_alert(store, f"10.30.{level}.9", level="medium") for level in range(1, 6)}
    outside = an_alert(store, "10.31.0.9", level="medium")
    seen = {
        level: client.get(f"/api/v1/alerts/{alert.id}", headers=tokens.of("analyst")).json()
        for level, alert in {**alerts, 0: outside}.items()
    }
    assert {
        0: ("medium", None),
        1: ("medium", "level-1"),
        2: ("medium", "level-2"),
        3: ("high", "level-3"),
        4: ("high", "level-4"),
        5: ("critical", "level-5"),
    } == {level: (a["severity"], a["system_id"]) for level, a in seen.items()}
