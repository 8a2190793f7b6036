"""GET /api/v1/alerts: bad parameters are 422, never 500."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Tokens


@pytest.mark.parametrize(
    "params",
    [
        {"status": "open"},
        {"severity": "urgent"},
        {"limit": 0},
        {"limit": 1001},
        {"start": "2026-01-01T00:00:00"},
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"cursor": "!!!"},
        {"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OmFiYw"},
    ],
)
def test_bad_parameters_are_422(
    client: httpx.Client, tokens: Tokens, params: dict[str, object]
) -> None:
    assert (
        422 == client.get("/api/v1/alerts", params=params, headers=tokens.of("analyst")).status_code
    )


def test_an_alert_id_of_the_wrong_form_is_422(client: httpx.Client, tokens: Tokens) -> None:
    assert 422 == client.get("/api/v1/alerts/XYZ", headers=tokens.of("analyst")).status_code


def test_no_alerts_is_an_empty_page(client: httpx.Client, tokens: Tokens) -> None:
    response = client.get("/api/v1/alerts", headers=tokens.of("admin"))
    assert (200, {"items": [], "next_cursor": None}) == (response.status_code, response.json())
