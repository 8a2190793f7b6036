"""Providers over a real server: admins register, change and remove them; analysts read them;
every change rates the provider at once (Provisional until its sites are scanned)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.store import SqliteStore
from scoring.trust_model import FindingState, Observation
from tests.conftest import NOW, Tokens

PORTAL: dict[str, Any] = {
    "id": "dvc",
    "name": "National Public Service Portal",
    "agency": "Government Office",
    "level": 4,
    "sites": [
        {"domain": "DVC.gov.example.", "role": "primary"},
        {"domain": "pay.dvc.gov.example", "role": "transaction"},
        {"domain": "news.dvc.gov.example"},
    ],
}


def test_an_admin_registers_a_provider_and_it_is_rated_provisionally(
    client: httpx.Client, tokens: Tokens
) -> None:
    created = client.post("/api/v1/providers", json=PORTAL, headers=tokens.of("admin"))
    assert 201 == created.status_code, created.text
    body = created.json()
    assert {
        "id": "dvc",
        "name": "National Public Service Portal",
        "agency": "Government Office",
        "level": 4,
        "sites": [
            {"domain": "dvc.gov.example", "role": "primary", "importance": 3},
            {"domain": "pay.dvc.gov.example", "role": "transaction", "importance": 2},
            {"domain": "news.dvc.gov.example", "role": "other", "importance": 1},
        ],
    } == {k: body[k] for k in ("id", "name", "agency", "level", "sites")}
    # Nothing scanned yet: not enough is testable, and the provider is new.
    assert ("provisional", "Provisional", None) == (
        body["rating"]["status"],
        body["rating"]["grade"],
        body["rating"]["score"],
    )
    listed = client.get("/api/v1/providers", headers=tokens.of("analyst"))
    assert (200, [body]) == (listed.status_code, listed.json())
    one = client.get("/api/v1/providers/dvc", headers=tokens.of("analyst"))
    assert (200, body) == (one.status_code, one.json())
    rating = client.get("/api/v1/providers/dvc/rating", headers=tokens.of("analyst")).json()
    assert ("TNM-1", "Provisional", "dvc") == (rating["methodology"], rating["grade"], rating["id"])


def test_ids_and_sites_are_unique_across_providers(client: httpx.Client, tokens: Tokens) -> None:
    admin = tokens.of("admin")
    assert 201 == client.post("/api/v1/providers", json=PORTAL, headers=admin).status_code
    again = client.post("/api/v1/providers", json=PORTAL, headers=admin)
    assert (409, "a provider with id 'dvc' exists") == (again.status_code, again.json()["detail"])
    other = {**PORTAL, "id": "other", "sites": [{"domain": "pay.dvc.gov.example"}]}
    taken = client.post("/api/v1/providers", json=other, headers=admin)
    assert (
        409,
        "site(s) already registered to another provider: pay.dvc.gov.example (provider dvc)",
    ) == (
        taken.status_code,
        taken.json()["detail"],
    )
    assert (
        403
        == client.post(
            "/api/v1/providers", json={**PORTAL, "id": "x"}, headers=tokens.of("analyst")
        ).status_code
    )
    assert 401 == client.get("/api/v1/providers").status_code


@pytest.mark.parametrize(
    "change",
    [
        {"sites": []},
        {"sites": [{"domain": "192.0.2.7"}]},
        {"sites": [{"domain": "localhost"}]},
        {"sites": [{"domain": "a.example"}, {"domain": "A.example."}]},
        {"sites": [{"domain": "a.example", "role": "vip"}]},
        {"sites": [{"domain": "a b.example"}]},
        {"sites": [{"domain": f"s{i}.example"} for i in range(65)]},
        {"level": 0},
        {"level": 6},
        {"id": "Has Spaces"},
        {"name": ""},
        {"name": "bell\x07"},
        {"agency": "x" * 201},
        {"extra": 1},
    ],
)
def test_bad_registrations_are_422_and_store_nothing(
    client: httpx.Client, tokens: Tokens, store: SqliteStore, change: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/providers", json={**PORTAL, **change}, headers=tokens.of("admin")
    )
    assert 422 == response.status_code, response.text
    assert [] == store.list_providers()


def test_changing_sites_forgets_what_was_learned_about_removed_ones(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    admin = tokens.of("admin")
    client.post("/api/v1/providers", json=PORTAL, headers=admin)
    for domain in ("dvc.gov.example", "news.dvc.gov.example"):
        seen = Observation("dns.caa", "fail", NOW)
        store.save_finding_states(domain, [FindingState.first(seen)])
    fields = {k: v for k, v in PORTAL.items() if k != "id"}
    changed = client.put(
        "/api/v1/providers/dvc",
        json={**fields, "name": "DVC", "sites": [{"domain": "dvc.gov.example", "role": "primary"}]},
        headers=admin,
    )
    assert (200, "DVC", ["dvc.gov.example"]) == (
        changed.status_code,
        changed.json()["name"],
        [s["domain"] for s in changed.json()["sites"]],
    )
    assert ["dvc.gov.example"] == sorted(
        store.finding_states(["dvc.gov.example", "news.dvc.gov.example"])
    )
    # The freed name can now go to another provider.
    other = {**PORTAL, "id": "news", "sites": [{"domain": "news.dvc.gov.example"}]}
    assert 201 == client.post("/api/v1/providers", json=other, headers=admin).status_code
    missing = client.put("/api/v1/providers/nobody", json=fields, headers=admin)
    assert 404 == missing.status_code


def test_removing_a_provider_removes_its_rating(client: httpx.Client, tokens: Tokens) -> None:
    admin = tokens.of("admin")
    client.post("/api/v1/providers", json=PORTAL, headers=admin)
    assert 204 == client.delete("/api/v1/providers/dvc", headers=admin).status_code
    assert 404 == client.get("/api/v1/providers/dvc", headers=admin).status_code
    assert 404 == client.get("/public/v1/providers/dvc").status_code
    assert 404 == client.delete("/api/v1/providers/dvc", headers=admin).status_code
