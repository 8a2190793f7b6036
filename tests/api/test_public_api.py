"""The public lookup over a real server: no token, search, rating by id or domain, history,
badge, methodology; rate-limited per client; bad keys are 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import load_settings
from api.store import SqliteStore
from scoring.methodology import render_markdown
from scoring.trust import METHODOLOGY
from tests.api.test_providers_api import PORTAL
from tests.conftest import LiveServer, Tokens
from tests.scoring.test_trust_examples import modern_checks, states


def _register(client: httpx.Client, tokens: Tokens, store: SqliteStore, **fields: Any) -> None:
    body = {**PORTAL, **fields}
    created = client.post("/api/v1/providers", json=body, headers=tokens.of("admin"))
    assert 201 == created.status_code, created.text


def _scanned(client: httpx.Client, tokens: Tokens, store: SqliteStore) -> None:
    """Finding states for the primary site as a scan of a well-run site leaves them, then a
    change that rates the provider again."""
    now = datetime.now(UTC)
    seen = {check: replace(o, observed_at=now) for check, o in modern_checks().items()}
    store.save_finding_states("dvc.gov.example", states(seen))
    fields = {k: v for k, v in PORTAL.items() if k != "id"}
    fields["sites"] = [{"domain": "dvc.gov.example", "role": "primary"}]
    assert (
        200
        == client.put("/api/v1/providers/dvc", json=fields, headers=tokens.of("admin")).status_code
    )


def test_search_finds_providers_by_name_or_domain(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _register(client, tokens, store)
    _register(
        client,
        tokens,
        store,
        id="tax",
        name="Tax Portal",
        sites=[{"domain": "thuedientu.gdt.gov.example", "role": "primary"}],
    )

    def ids(q: str) -> list[str]:
        response = client.get("/public/v1/providers", params={"q": q})
        assert 200 == response.status_code, response.text
        assert "public, max-age=60" == response.headers["cache-control"]
        return [item["id"] for item in response.json()["items"]]

    assert ["dvc"] == ids("public service")
    assert ["dvc"] == ids("PAY.dvc.gov.example")
    assert ["dvc", "tax"] == ids("gov.example")  # both under it: by name
    assert ["tax"] == ids("gdt.gov.example")
    assert ["dvc", "tax"] == sorted(ids("portal"))
    assert [] == ids("50%_off")  # LIKE wildcards are matched literally
    item = client.get("/public/v1/providers", params={"q": "tax portal"}).json()["items"][0]
    assert {
        "id": "tax",
        "name": "Tax Portal",
        "agency": "Government Office",
        "domains": ["thuedientu.gdt.gov.example"],
        "grade": "Provisional",
        "score": None,
    } == {k: v for k, v in item.items() if k != "computed_at"}


def test_a_rating_is_public_by_id_or_domain(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _register(client, tokens, store)
    _scanned(client, tokens, store)
    by_id = client.get("/public/v1/providers/dvc")
    by_domain = client.get("/public/v1/providers/DVC.gov.example")
    assert (200, 200) == (by_id.status_code, by_domain.status_code)
    assert by_id.content == by_domain.content
    assert ("public, max-age=60", "*", "nosniff") == (
        by_id.headers["cache-control"],
        by_id.headers["access-control-allow-origin"],
        by_id.headers["x-content-type-options"],
    )
    rating = by_id.json()
    assert {
        "id": "dvc",
        "name": "National Public Service Portal",
        "agency": "Government Office",
        "methodology": "TNM-1",
        "status": "rated",
    } == {k: rating[k] for k in ("id", "name", "agency", "methodology", "status")}
    assert [("dvc.gov.example", "primary", 3)] == [
        (site["domain"], site["role"], site["importance"]) for site in rating["sites"]
    ]
    assert "level" not in rating  # the declared security level is not published
    assert {"T", "H", "D", "X", "R", "G"} == set(rating["categories"])
    assert rating["last_scanned"] is not None
    history = client.get("/public/v1/providers/dvc.gov.example/history").json()
    assert ["Provisional", rating["grade"]] == [p["grade"] for p in history["points"]]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/public/v1/providers/unknown", 404),
        ("/public/v1/providers/unknown/history", 404),
        ("/public/v1/providers/a%20b", 422),
        ("/public/v1/providers/" + "a" * 254, 422),
        ("/public/v1/providers?q=a", 422),
        ("/public/v1/providers?q=" + "a" * 101, 422),
        ("/public/v1/providers?q=ab&limit=51", 422),
        ("/public/v1/providers", 422),
        ("/public/v1/providers/dvc/history?days=0", 422),
    ],
)
def test_bad_lookups_are_4xx(
    client: httpx.Client, tokens: Tokens, store: SqliteStore, path: str, status: int
) -> None:
    _register(client, tokens, store)
    response = client.get(path)
    assert status == response.status_code, response.text
    assert "detail" in response.json()


def test_the_badge_is_cacheable_and_revalidates(
    client: httpx.Client, tokens: Tokens, store: SqliteStore
) -> None:
    _register(client, tokens, store)
    badge = client.get("/public/v1/providers/dvc/badge.svg")
    assert (200, "image/svg+xml", "public, max-age=300") == (
        badge.status_code,
        badge.headers["content-type"],
        badge.headers["cache-control"],
    )
    assert "Provisional" in badge.text
    assert "default-src 'none'" in badge.headers["content-security-policy"]
    again = client.get(
        "/public/v1/providers/dvc/badge.svg", headers={"If-None-Match": badge.headers["etag"]}
    )
    assert (304, b"") == (again.status_code, again.content)
    unknown = client.get("/public/v1/providers/nobody/badge.svg")
    assert (404, "image/svg+xml") == (unknown.status_code, unknown.headers["content-type"])


def test_the_methodology_is_generated_from_the_table(client: httpx.Client) -> None:
    document = client.get("/public/v1/methodology")
    assert (200, "TNM-1") == (document.status_code, document.json()["version"])
    markdown = client.get("/public/v1/methodology.md")
    assert render_markdown(METHODOLOGY) == markdown.text
    page = client.get("/methodology")
    assert (200, "text/html; charset=utf-8") == (page.status_code, page.headers["content-type"])
    assert "<table>" in page.text
    assert "<script" not in page.text


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = load_settings(
        data_dir=tmp_path / "strict", public_rate_per_second=1, public_burst=3, scheduler=False
    )
    store = SqliteStore.open(settings.db_path)
    try:
        with LiveServer(create_app(settings, store=store)) as live:
            yield live
    finally:
        store.close()


def test_the_public_lookup_is_rate_limited_per_client(strict_server: LiveServer) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=10) as http:
        statuses = [http.get("/public/v1/methodology").status_code for _ in range(5)]
        assert [200, 200, 200, 429, 429] == statuses
        refused = http.get("/public/v1/providers/x")
        assert (429, True) == (refused.status_code, int(refused.headers["retry-after"]) >= 1)
        # The token-protected API and the health check are not counted against the client.
        assert 200 == http.get("/healthz").status_code
