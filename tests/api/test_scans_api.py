"""GET /api/v1/scans: stored scan records by domain, newest first, paged; bad parameters
refused with 422."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_ingest import envelope, post
from tests.conftest import Tokens
from tests.sensors.test_wire import scan


def _seed(client: httpx.Client, tokens: Tokens) -> None:
    records = [
        scan(
            **{
                "event.id": f"s{i:031d}",
                "event.start": f"2026-01-01T00:0{i}:00Z",
                "event.end": f"2026-01-01T00:0{i}:30Z",
                "url.domain": "Portal.Example.gov" if i % 2 else "mail.example.gov",
            }
        )
        for i in range(5)
    ]
    assert 5 == post(client, tokens, envelope(records)).json()["accepted"]


def test_scans_by_domain_newest_first_and_paged(client: httpx.Client, tokens: Tokens) -> None:
    _seed(client, tokens)
    analyst = tokens.of("analyst")

    def ids(**params: object) -> list[str]:
        response = client.get("/api/v1/scans", params=params, headers=analyst)
        assert 200 == response.status_code
        return [item["event.id"][-1] for item in response.json()["items"]]

    assert ["4", "3", "2", "1", "0"] == ids()
    assert ["3", "1"] == ids(domain="portal.example.gov.")  # case and trailing dot as typed
    assert ["4"] == ids(domain="mail.example.gov", limit=1)
    assert [] == ids(domain="other.example")
    first = client.get("/api/v1/scans", params={"limit": 3}, headers=analyst).json()
    rest = client.get(
        "/api/v1/scans", params={"limit": 3, "cursor": first["next_cursor"]}, headers=analyst
    ).json()
    assert (["1", "0"], None) == (
        [i["event.id"][-1] for i in rest["items"]],
        rest["next_cursor"],
    )


@pytest.mark.parametrize(
    "params",
    [
        {"domain": "a b"},
        {"domain": "x" * 254},
        {"domain": ""},
        {"limit": 0},
        {"limit": 101},
        {"cursor": "not a cursor"},
    ],
)
def test_bad_parameters_are_422(
    client: httpx.Client, tokens: Tokens, params: dict[str, object]
) -> None:
    response = client.get("/api/v1/scans", params=params, headers=tokens.of("analyst"))
    assert 422 == response.status_code, response.text
