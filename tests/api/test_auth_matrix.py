"""Every endpoint, called with every role and with none, answers with the status its role
table says. A route added without an entry here fails the test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
from fastapi.routing import APIRoute
from starlette.routing import Route

from api.principals import create_principal
from api.store import SqliteStore
from api.tokens import Role
from tests.api.test_ingest import envelope, flows
from tests.conftest import NOW, LiveServer, Tokens

ROLES = (None, "sensor", "analyst", "admin")
PUBLIC = dict.fromkeys(ROLES, 200)


def _ingest(store: SqliteStore) -> dict[str, Any]:
    return {
        "content": orjson.dumps(envelope(flows(1))),
        "headers": {"Content-Type": "application/json"},
    }


def _heartbeat(store: SqliteStore) -> dict[str, Any]:
    beat = {
        "schema_version": 1,
        "sensor_id": "sensor-1",
        "sent_at": "2026-01-02T03:04:05Z",
        "sensor_version": "test",
        "counters": {"packets": 1},
    }
    return {"content": orjson.dumps(beat), "headers": {"Content-Type": "application/json"}}


def _new_token(store: SqliteStore) -> dict[str, Any]:
    return {"json": {"role": "analyst", "name": "made-in-test"}}


def _throwaway(store: SqliteStore) -> dict[str, Any]:
    _, info = create_principal(store, Role.ANALYST, "throwaway", None, NOW)
    return {"path": {"token_id": info.id}}


def _unknown_alert(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"alert_id": "0" * 32}}


def _transition_unknown(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"alert_id": "0" * 32}, "json": {"to": "acknowledged"}}


def _assign_unknown(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"alert_id": "0" * 32}, "json": {"assignee": "lan"}}


def _note_unknown(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"alert_id": "0" * 32}, "json": {"text": "seen"}}


def _bulk(store: SqliteStore) -> dict[str, Any]:
    return {"json": {"filter": {"status": "new"}, "action": {"assignee": "lan"}}}


def _system(store: SqliteStore) -> dict[str, Any]:
    body = {"id": "portal", "name": "Portal", "agency": "A", "level": 3, "networks": ["10.0.0.0/8"]}
    return {"json": body}


def _nothing(store: SqliteStore) -> dict[str, Any]:
    return {}


def _unknown_notification(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"notification_id": "msg_" + "0" * 32}}


def _silence(store: SqliteStore) -> dict[str, Any]:
    matchers = [{"field": "entity", "value": "10.0.0.9"}]
    return {"json": {"matchers": matchers, "duration_seconds": 3600, "comment": "maintenance"}}


def _unknown_silence(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"silence_id": "0" * 32}}


def _unknown_suppression(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"suppression_id": "0" * 32}}


def _rescan_unknown(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"provider_id": "no-such-provider"}}


_PROVIDER_FIELDS = {
    "name": "Portal",
    "agency": "Ministry",
    "level": 3,
    "sites": [{"domain": "portal.gov.example"}],
}
_NEW_IDS = iter(range(1_000_000))


def _new_provider(store: SqliteStore) -> dict[str, Any]:
    n = next(_NEW_IDS)
    sites = [{"domain": f"p{n}.gov.example"}]
    return {"json": {**_PROVIDER_FIELDS, "id": f"p{n}", "sites": sites}}


def _unknown_provider(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"provider_id": "nobody"}}


def _replace_unknown(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"provider_id": "nobody"}, "json": _PROVIDER_FIELDS}


def _incident_of_unknown(store: SqliteStore) -> dict[str, Any]:
    incident = {"kind": "outage", "started": "2026-01-01T00:00:00Z"}
    return {"path": {"provider_id": "nobody"}, "json": incident}


def _change_unknown_incident(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"incident_id": "inc-" + "0" * 16}, "json": {"state": "resolved"}}


def _confirm_unknown_alert(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"alert_id": "0" * 32}, "json": {"kind": "defacement"}}


def _search(store: SqliteStore) -> dict[str, Any]:
    return {"params": {"q": "portal"}}


def _unknown_key(store: SqliteStore) -> dict[str, Any]:
    return {"path": {"key": "nobody.example"}}


READER_404 = {None: 401, "sensor": 403, "analyst": 404, "admin": 404}
ADMIN_404 = {None: 401, "sensor": 403, "analyst": 403, "admin": 404}
NOT_FOUND = dict.fromkeys(ROLES, 404)

# (method, path template) -> (request builder, expected status per role)
MATRIX: dict[
    tuple[str, str], tuple[Callable[[SqliteStore], dict[str, Any]], dict[str | None, int]]
] = {
    ("GET", "/healthz"): (_nothing, PUBLIC),
    ("GET", "/openapi.json"): (_nothing, PUBLIC),
    ("GET", "/docs"): (_nothing, PUBLIC),
    ("GET", "/docs/oauth2-redirect"): (_nothing, PUBLIC),
    ("GET", "/redoc"): (_nothing, PUBLIC),
    ("GET", "/metrics"): (_nothing, {None: 401, "sensor": 403, "analyst": 200, "admin": 200}),
    ("POST", "/api/v1/ingest"): (_ingest, {None: 401, "sensor": 200, "analyst": 403, "admin": 403}),
    ("POST", "/api/v1/sensors/heartbeat"): (
        _heartbeat,
        {None: 401, "sensor": 204, "analyst": 403, "admin": 403},
    ),
    ("GET", "/api/v1/sensors"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("GET", "/api/v1/flows"): (_nothing, {None: 401, "sensor": 403, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/scans"): (_nothing, {None: 401, "sensor": 403, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/alerts"): (_nothing, {None: 401, "sensor": 403, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/alerts/{alert_id}"): (
        _unknown_alert,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/alerts/{alert_id}/transition"): (
        _transition_unknown,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("PATCH", "/api/v1/alerts/{alert_id}"): (
        _assign_unknown,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/alerts/{alert_id}/notes"): (
        _note_unknown,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("GET", "/api/v1/alerts/{alert_id}/audit"): (
        _unknown_alert,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/alerts/bulk"): (
        _bulk,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("GET", "/api/v1/deliveries"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("GET", "/api/v1/deliveries/{notification_id}"): (
        _unknown_notification,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/deliveries/{notification_id}/replay"): (
        _unknown_notification,
        {None: 401, "sensor": 403, "analyst": 403, "admin": 404},
    ),
    ("POST", "/api/v1/silences"): (
        _silence,
        {None: 401, "sensor": 403, "analyst": 201, "admin": 201},
    ),
    ("GET", "/api/v1/silences"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("DELETE", "/api/v1/silences/{silence_id}"): (
        _unknown_silence,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("GET", "/api/v1/suppressions"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): (
        _unknown_suppression,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/systems"): (
        _system,
        {None: 401, "sensor": 403, "analyst": 403, "admin": 201},
    ),
    ("GET", "/api/v1/systems"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("POST", "/api/v1/tokens"): (
        _new_token,
        {None: 401, "sensor": 403, "analyst": 403, "admin": 201},
    ),
    ("GET", "/api/v1/tokens"): (_nothing, {None: 401, "sensor": 403, "analyst": 403, "admin": 200}),
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        _throwaway,
        {None: 401, "sensor": 403, "analyst": 403, "admin": 200},
    ),
    ("POST", "/api/v1/providers/{provider_id}/rescan"): (
        _rescan_unknown,
        {None: 401, "sensor": 403, "analyst": 404, "admin": 404},
    ),
    ("POST", "/api/v1/providers"): (
        _new_provider,
        {None: 401, "sensor": 403, "analyst": 403, "admin": 201},
    ),
    ("GET", "/api/v1/providers"): (
        _nothing,
        {None: 401, "sensor": 403, "analyst": 200, "admin": 200},
    ),
    ("GET", "/api/v1/providers/{provider_id}"): (_unknown_provider, READER_404),
    ("GET", "/api/v1/providers/{provider_id}/rating"): (_unknown_provider, READER_404),
    ("PUT", "/api/v1/providers/{provider_id}"): (_replace_unknown, ADMIN_404),
    ("DELETE", "/api/v1/providers/{provider_id}"): (_unknown_provider, ADMIN_404),
    ("POST", "/api/v1/providers/{provider_id}/incidents"): (_incident_of_unknown, READER_404),
    ("GET", "/api/v1/providers/{provider_id}/incidents"): (_unknown_provider, READER_404),
    ("PATCH", "/api/v1/incidents/{incident_id}"): (_change_unknown_incident, READER_404),
    ("POST", "/api/v1/alerts/{alert_id}/incident"): (_confirm_unknown_alert, READER_404),
    ("GET", "/public/v1/providers"): (_search, PUBLIC),
    ("GET", "/public/v1/providers/{key}"): (_unknown_key, NOT_FOUND),
    ("GET", "/public/v1/providers/{key}/history"): (_unknown_key, NOT_FOUND),
    ("GET", "/public/v1/providers/{key}/badge.svg"): (_unknown_key, NOT_FOUND),
    ("GET", "/public/v1/methodology"): (_nothing, PUBLIC),
    ("GET", "/public/v1/methodology.md"): (_nothing, PUBLIC),
    ("GET", "/methodology"): (_nothing, PUBLIC),
}


def _routes(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI nests included routers
        if included is not None:
            inner_prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            found |= _routes(included.routes, prefix + inner_prefix)
        elif isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, prefix + route.path))
    return found


def test_the_matrix_names_every_route(server: LiveServer) -> None:
    assert set(MATRIX) == _routes(server.app.routes)


def test_every_route_with_every_role(
    server: LiveServer, client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    actual: dict[tuple[str, str, str | None], int] = {}
    expected: dict[tuple[str, str, str | None], int] = {}
    for (method, template), (build, statuses) in MATRIX.items():
        for role in ROLES:
            request = build(store)
            path = template.format(**request.pop("path", {}))
            headers = {**request.pop("headers", {}), **tokens.of(role)}
            response = client.request(method, path, headers=headers, **request)
            actual[(method, template, role)] = response.status_code
            expected[(method, template, role)] = statuses[role]
    assert expected == actual


def test_a_revoked_token_is_refused(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    assert client.get("/api/v1/flows", headers=tokens.of("analyst")).status_code == 200
    (analyst,) = [p for p in store.list_principals() if p.name == "analyst"]
    store.revoke_principal(analyst.id, NOW)
    response = client.get("/api/v1/flows", headers=tokens.of("analyst"))
    assert (response.status_code, response.json()["detail"]) == (401, "invalid or revoked token")
