"""Token management through the API: shown once, stored hashed, revocable, never the last admin."""

from __future__ import annotations

import hashlib
import sqlite3

import httpx

from api.store import SqliteStore
from tests.conftest import Tokens


def test_a_created_token_works_once_shown_and_is_stored_only_as_a_hash(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    response = client.post(
        "/api/v1/tokens", json={"role": "sensor", "name": "edge-7"}, headers=tokens.of("admin")
    )
    assert response.status_code == 201
    created = response.json()
    assert (
        created["role"],
        created["name"],
        created["sensor_id"],
        created["revoked_at"],
    ) == ("sensor", "edge-7", "edge-7", None)
    token = created["token"]
    secret = token.split("_", 2)[2]

    listed = client.get("/api/v1/tokens", headers=tokens.of("admin")).json()
    assert all("token" not in entry for entry in listed)
    assert token not in str(listed)

    with sqlite3.connect(store.path) as db:
        rows = db.execute(
            "SELECT secret_hash FROM principals WHERE key_id = ?", (created["key_id"],)
        ).fetchall()
        dump = "\n".join(db.iterdump())
    assert [(hashlib.sha256(secret.encode()).digest(),)] == rows
    assert secret not in dump

    heartbeat = client.post(
        "/api/v1/sensors/heartbeat",
        json={
            "schema_version": 1,
            "sensor_id": "edge-7",
            "sent_at": "2026-01-02T03:04:05Z",
            "sensor_version": "1",
            "counters": {},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert heartbeat.status_code == 204


def test_revoking_the_last_admin_is_refused(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    (admin,) = [p for p in store.list_principals() if p.role == "admin"]
    response = client.delete(f"/api/v1/tokens/{admin.id}", headers=tokens.of("admin"))
    assert (
        response.status_code,
        response.json()["detail"],
    ) == (409, "refusing to revoke the last active admin token")
    second = client.post(
        "/api/v1/tokens", json={"role": "admin", "name": "deputy"}, headers=tokens.of("admin")
    ).json()
    response = client.delete(f"/api/v1/tokens/{admin.id}", headers=tokens.of("admin"))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    # The revoked admin can no longer act; the deputy can.
    assert client.get("/api/v1/tokens", headers=tokens.of("admin")).status_code == 401
    assert (
        client.get(
            "/api/v1/tokens", headers={"Authorization": f"Bearer {second['token']}"}
        ).status_code
        == 200
    )


def test_bad_token_requests_are_422_or_404(client: httpx.Client, tokens: Tokens) -> None:
    admin = tokens.of("admin")
    cases = [
        client.post("/api/v1/tokens", json={"role": "root", "name": "x"}, headers=admin),
        client.post("/api/v1/tokens", json={"role": "analyst", "name": ""}, headers=admin),
        client.post(
            "/api/v1/tokens", json={"role": "analyst", "name": "x", "sensor_id": "s"}, headers=admin
        ),
        client.post("/api/v1/tokens", json={"role": "sensor", "name": "has spaces"}, headers=admin),
        client.post(
            "/api/v1/tokens", json={"role": "analyst", "name": "x", "extra": 1}, headers=admin
        ),
        client.post(
            "/api/v1/tokens", content=b"{", headers={**admin, "Content-Type": "application/json"}
        ),
        client.delete("/api/v1/tokens/999", headers=admin),
        client.delete("/api/v1/tokens/0", headers=admin),
        client.delete("/api/v1/tokens/abc", headers=admin),
    ]
    assert [r.status_code for r in cases] == [422, 422, 422, 422, 422, 422, 404, 422, 422]
    assert "sensor id 'has spaces'" in cases[3].json()["detail"]
