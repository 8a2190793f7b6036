"""Site early warnings through the real service: scan records shipped to POST /api/v1/ingest
with a sensor token become alerts (GET /api/v1/alerts), once per episode, each kind its own
source; the site streams feed Pipeline.site_stats and /healthz, and survive a restart."""

from __future__ import annotations

import random
import stat
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from api import checkpoint
from api.app import create_app
from api.pipeline import BUILTIN_RULES, Pipeline
from api.settings import Settings
from api.store import SqliteStore
from rules.loader import load_rules
from scoring.anomaly import AnomalyDetectors
from scoring.state import dumps
from tests.api.test_ingest import envelope, post
from tests.conftest import LiveServer, Tokens
from tests.scoring.test_sitestream import HOST, MINUTES_5, T0, home_page, scan

DOWN = "anomaly:site.site_down"


def pipeline() -> Pipeline:
    """Flow anomaly detection off: the site streams run regardless."""
    return Pipeline(load_rules([BUILTIN_RULES]))


def ship(client: httpx.Client, tokens: Tokens, records: list[dict[str, Any]]) -> None:
    # The sensor sends what its scanner wrote: the service adds observer.name and ingest time.
    sent = [
        {k: v for k, v in r.items() if k not in ("observer.name", "event.ingested")}
        for r in records
    ]
    response = post(client, tokens, envelope(sent))
    assert (200, len(records), []) == (
        response.status_code,
        response.json()["accepted"],
        response.json()["rejected"],
    )


def alerts(client: httpx.Client, tokens: Tokens, source: str) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/alerts", params={"source": source, "entity": HOST}, headers=tokens.of("analyst")
    )
    assert 200 == response.status_code, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda a: a["first_seen"])


def seen(alert: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(alert["first_seen"]), datetime.fromisoformat(alert["last_seen"])


def probes(start: int, at: datetime, statuses: list[int | None]) -> list[dict[str, Any]]:
    return [
        scan(start + k, at + k * MINUTES_5, status=s, page_checks=False)
        for k, s in enumerate(statuses)
    ]


def test_an_outage_is_one_alert_per_episode(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    later = T0 + timedelta(hours=3)  # past the store's hour of merging repeats
    with (
        LiveServer(create_app(settings, store=store, pipeline=pipeline())) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        ship(client, tokens, probes(0, T0, [200, 503, None, None, 503]))
        ship(client, tokens, probes(5, T0 + 5 * MINUTES_5, [None]))  # same episode
        ship(client, tokens, probes(10, T0 + timedelta(hours=1), [200, 200]))
        ship(client, tokens, probes(20, later, [None]))  # one failure: a blip, so far
        assert 1 == len(alerts(client, tokens, DOWN))
        ship(client, tokens, probes(21, later + MINUTES_5, [None, None]))
        found = alerts(client, tokens, DOWN)
    assert [
        (
            "Site down: the home page does not answer or fails",
            "medium",
            "site.site_down",
            ["attack.impact", "attack.t1499"],
            1,
            ["scan-portal-000000000001", "scan-portal-000000000002"],
            (T0 + MINUTES_5, T0 + 2 * MINUTES_5),
        ),
        (
            "Site down: the home page does not answer or fails",
            "medium",
            "site.site_down",
            ["attack.impact", "attack.t1499"],
            1,
            ["scan-portal-000000000020", "scan-portal-000000000021"],
            (later, later + MINUTES_5),
        ),
    ] == [
        (
            a["title"],
            a["severity"],
            a["rule_id"],
            a["tags"],
            a["count"],
            a["evidence"]["event_ids"],
            seen(a),
        )
        for a in found
    ]
    values = found[0]["evidence"]["values"]
    assert {
        "observer.name": "sensor-1",
        "url.domain": HOST,
        "down_since": "2026-03-02T00:05:00.000000Z",
        "failed_probes": 2,
        "status": None,
        "summary": "the home page did not answer",
        "availability_30d": round(1 / 3, 4),
    } == values


def test_defacement_and_an_expiring_certificate_are_alerts_of_their_own(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    usual = [scan(i, T0 + i * MINUTES_5) for i in range(30)]
    last = T0 + 29 * MINUTES_5
    defaced = home_page(random.Random(0), defaced=True)
    expires = last + MINUTES_5 + timedelta(days=5)
    attacked = [
        scan(100, last + MINUTES_5, body=defaced, not_after=expires),
        scan(101, last + 2 * MINUTES_5, body=defaced, not_after=expires),  # both: once each
    ]
    with (
        LiveServer(create_app(settings, store=store, pipeline=pipeline())) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        ship(client, tokens, usual)
        ship(client, tokens, attacked)
        defacement = alerts(client, tokens, "anomaly:site.defacement_suspected")
        certificate = alerts(client, tokens, "anomaly:site.certificate_expiring")
        down = alerts(client, tokens, DOWN)
    assert (
        [
            (
                "Defacement or injected content suspected",
                "high",
                ["attack.impact", "attack.t1491.002"],
                ["scan-portal-000000000100"],
                "keywords and structure",
            )
        ],
        [("Certificate expires in under 14 days", "medium", [], ["scan-portal-000000000100"], 5.0)],
        [],
    ) == (
        [
            (a["title"], a["severity"], a["tags"], a["evidence"]["event_ids"],
             a["evidence"]["values"]["signal"])
            for a in defacement
        ],
        [
            (a["title"], a["severity"], a["tags"], a["evidence"]["event_ids"],
             a["evidence"]["values"]["days_left"])
            for a in certificate
        ],
        down,
    )  # fmt: skip


def test_site_stats_and_health_follow_the_scans(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    running = pipeline()
    with (
        LiveServer(create_app(settings, store=store, pipeline=running)) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        ship(client, tokens, probes(0, T0, [200, 200, 200, None]))
        health = client.get("/healthz").json()
    stats = running.site_stats(HOST.upper() + ".", T0 + timedelta(hours=1))
    assert (4, 0.75, T0 + 3 * MINUTES_5, 0.2) == (
        stats.observations,
        stats.availability,
        stats.unreachable_since,
        stats.ttfb_p95,
    )
    assert {
        "state": "fresh",
        "tracked": 1,
        "evicted": 0,
        "scans": 4,
        "probes": 4,
        "late_scans": 0,
        "unreadable": 0,
        "events": {},
    } == health["sites"]


def test_what_the_sites_taught_survives_a_restart(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    state = checkpoint.sites_path(checkpoint.state_path(settings.data_dir))
    with (
        LiveServer(create_app(settings, store=store, pipeline=pipeline())) as first,
        httpx.Client(base_url=first.url, timeout=10) as client,
    ):
        ship(client, tokens, probes(0, T0, [200, None]))  # the first failure of a run
    assert 0o600 == stat.S_IMODE(state.stat().st_mode)
    with (
        LiveServer(create_app(settings, store=store, pipeline=pipeline())) as second,
        httpx.Client(base_url=second.url, timeout=10) as client,
    ):
        assert ("restored", 1) == tuple(
            client.get("/healthz").json()["sites"][k] for k in ("state", "tracked")
        )
        ship(client, tokens, probes(2, T0 + 2 * MINUTES_5, [None]))  # the second
        found = alerts(client, tokens, DOWN)
    assert [(T0 + MINUTES_5, T0 + 2 * MINUTES_5)] == [seen(a) for a in found]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"junk", "not a TrustWatch detector state (bad magic)"),
        (dumps(AnomalyDetectors()), "the state holds a AnomalyDetectors, not a SiteStreams"),
    ],
)
def test_a_sites_state_that_does_not_load_means_a_fresh_start_that_healthz_reports(
    settings: Settings, store: SqliteStore, tokens: Tokens, content: bytes, reason: str
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state = checkpoint.sites_path(checkpoint.state_path(settings.data_dir))
    state.write_bytes(content)
    running = Pipeline(load_rules([BUILTIN_RULES]), anomaly=AnomalyDetectors())
    with (
        LiveServer(create_app(settings, store=store, pipeline=running)) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        health = client.get("/healthz").json()
        ship(client, tokens, probes(0, T0, [200]))
    assert (f"fresh: sites.state: {reason}", "fresh") == (
        health["sites"]["state"],
        health["anomaly"]["state"],  # the other part is not affected
    )
    assert state.read_bytes().startswith(b"TWSTATE\n")  # replaced by a good one at shutdown
