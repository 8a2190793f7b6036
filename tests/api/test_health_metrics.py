"""/healthz, /metrics, response headers, and the access log's discretion."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from api.logs import OWN_LOGGERS, configure_logging
from api.pipeline import BUILTIN_RULES
from api.settings import Settings, load_settings
from api.store import SqliteStore
from rules.loader import load_rules
from tests.conftest import LiveServer, Tokens


def test_healthz_reports_the_store_and_the_rules(client: httpx.Client, store: SqliteStore) -> None:
    response = client.get("/healthz")
    pack = load_rules([BUILTIN_RULES])
    assert (
        200,
        {
            "status": "ok",
            "store": "ok",
            "version": response.json()["version"],
            "rules": len(pack.rules),
            "correlations": len(pack.correlations),
            "rule_problems": 0,
            "anomaly": {
                "state": "fresh",
                "sensors": 0,
                "warming_up": [],
                "flows_judged": 0,
                "findings": 0,
                "beacon_keys": 0,
            },
            "sites": {
                "state": "fresh",
                "tracked": 0,
                "evicted": 0,
                "scans": 0,
                "probes": 0,
                "late_scans": 0,
                "unreadable": 0,
                "events": {},
            },
        },
    ) == (response.status_code, response.json())
    store.close()
    broken = client.get("/healthz")
    assert (
        broken.status_code,
        broken.json(),
    ) == (503, {"status": "unavailable", "store": "unavailable"})


def test_every_response_carries_the_security_headers(client: httpx.Client) -> None:
    for response in (client.get("/healthz"), client.get("/api/v1/flows"), client.get("/nowhere")):
        assert {
            k: response.headers[k]
            for k in (
                "x-content-type-options",
                "x-frame-options",
                "referrer-policy",
                "cache-control",
            )
        } == {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        }


def test_metrics_are_prometheus_text_by_route_template(
    client: httpx.Client, tokens: Tokens
) -> None:
    client.get("/api/v1/flows", params={"port": 22}, headers=tokens.of("analyst"))
    client.get("/nowhere/at/all")
    response = client.get("/metrics", headers=tokens.of("admin"))
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert (
        'trustwatch_http_requests_total{method="GET",route="/api/v1/flows",status="200"} 1.0'
        in lines
    )
    assert (
        'trustwatch_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    )
    assert "trustwatch_sensors 2.0" in lines


def test_metrics_can_be_made_public(tmp_path: object, store: SqliteStore) -> None:
    settings = load_settings(data_dir=tmp_path, metrics_public=True)  # type: ignore[arg-type]
    with LiveServer(create_app(settings, store=store)) as live:
        assert httpx.get(f"{live.url}/metrics").status_code == 200


def test_the_access_log_never_records_tokens_or_query_strings(
    client: httpx.Client, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="trustwatch.access"):
        client.get("/api/v1/flows", params={"ip": "10.9.8.7"}, headers=tokens.of("analyst"))
        # The line is written once the response has gone out: the client may be first.
        deadline = time.monotonic() + 2
        while not any(r.name == "trustwatch.access" for r in caplog.records):
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.01)
    records = [r for r in caplog.records if r.name == "trustwatch.access"]
    assert len(records) == 1
    text = str(vars(records[0]))
    assert (records[0].path, records[0].status) == ("/api/v1/flows", 200)  # type: ignore[attr-defined]
    assert tokens.analyst not in text
    assert "10.9.8.7" not in text


def test_openapi_documents_the_ingest_body(client: httpx.Client, settings: Settings) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/ingest"]["post"]["requestBody"]
    assert list(body["content"]) == ["application/json"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in OWN_LOGGERS})
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_the_log_level_setting_governs_our_own_loggers_too() -> None:
    logging.getLogger("trustwatch").setLevel(logging.INFO)  # as the CLI leaves it
    configure_logging("warning")
    assert [False, False, True] == [
        logging.getLogger("trustwatch.access").isEnabledFor(logging.INFO),
        logging.getLogger("api.service").isEnabledFor(logging.INFO),
        logging.getLogger("api.service").isEnabledFor(logging.WARNING),
    ]
    configure_logging("debug")
    assert logging.getLogger("trustwatch.access").isEnabledFor(logging.DEBUG)
