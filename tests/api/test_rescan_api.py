"""POST /api/v1/providers/{provider_id}/rescan through the real app under uvicorn: 202 with what
was scheduled, 429 with Retry-After within the cooldown, 404 for an unknown provider, 503 when
the scheduler does not run in this process; and the app's lifespan runs the scheduler, whose
scans reach the store through the rating service."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme

from api.app import create_app
from api.dependencies import Clock
from api.providers import NewProvider, Site, SiteRole
from api.scheduler import LOCK_FILE
from api.settings import Settings, load_settings
from api.store import SqliteStore
from api.store.protocol import ScanQuery
from tests.conftest import NOW, LiveServer, Tokens
from tests.scanner.conftest import Route, server_context
from tests.scanner.conftest import Site as WebSite
from tests.scanner.dnszone import ZoneServer

ALL = ["tls", "http", "dns", "exposure", "availability", "disclosure"]
PORTAL_ZONE = """$ORIGIN portal.test.
$TTL 300
@ SOA ns.portal.test. hostmaster.portal.test. 1 3600 600 86400 300
@ NS ns.portal.test.
@ A 127.0.0.1
ns A 127.0.0.1
"""


@pytest.fixture
def dns() -> Iterator[ZoneServer]:
    """A resolver that knows only portal.test: whatever the scheduler scans in these tests, its
    questions stay on loopback (and other names fail at once)."""
    server = ZoneServer([PORTAL_ZONE]).start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, dns: ZoneServer) -> Settings:
    return load_settings(data_dir=tmp_path / "data", scan_nameservers=(f"127.0.0.1:{dns.port}",))


def register(store: SqliteStore, provider_id: str, *domains: str) -> None:
    sites = tuple(Site(domain, SiteRole.OTHER) for domain in domains)
    store.add_provider(NewProvider(provider_id, "Ministry", "Agency", 3, sites), NOW)


@contextmanager
def serve(settings: Settings, store: SqliteStore, clock: Clock) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(settings, store=store, clock=clock)) as live,
        httpx.Client(base_url=live.url, timeout=10) as client,
    ):
        yield client


def test_a_rescan_is_accepted_then_refused_within_the_cooldown(
    settings: Settings, store: SqliteStore, tokens: Tokens
) -> None:
    register(store, "ministry", "portal.test", "pay.test")
    now = datetime.now(UTC).replace(microsecond=0)
    with serve(settings, store, lambda: now) as client:
        accepted = client.post("/api/v1/providers/ministry/rescan", headers=tokens.of("analyst"))
        refused = client.post("/api/v1/providers/ministry/rescan", headers=tokens.of("admin"))
        unknown = client.post("/api/v1/providers/nobody/rescan", headers=tokens.of("admin"))
    ticket = {
        "provider": "ministry",
        "scheduled_at": now.isoformat().replace("+00:00", "Z"),
        "areas": ALL,
        "domains": ["portal.test", "pay.test"],
    }
    assert (202, ticket) == (accepted.status_code, accepted.json())
    assert (429, "900") == (refused.status_code, refused.headers["Retry-After"])
    assert (404, {"detail": "no provider 'nobody'"}) == (unknown.status_code, unknown.json())


@pytest.mark.parametrize("why", ["switched off", "another process has it"])
def test_no_scheduler_in_this_process_is_503(
    settings: Settings, store: SqliteStore, tokens: Tokens, why: str
) -> None:
    register(store, "ministry", "portal.test")
    if why == "switched off":
        settings = settings.model_copy(update={"scheduler": False})
    with (settings.data_dir / LOCK_FILE).open("ab") as held:
        if why == "another process has it":  # another open file description: as another process
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with serve(settings, store, lambda: NOW) as client:
            response = client.post(
                "/api/v1/providers/ministry/rescan", headers=tokens.of("analyst")
            )
    assert 503 == response.status_code
    assert response.json()["detail"].startswith("the scan scheduler does not run in this process")


def test_the_app_runs_the_scheduler_and_its_scans_reach_the_store(
    tmp_path: Path, dns: ZoneServer, store: SqliteStore
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    https = WebSite({"/": Route()}).start(server_context(ca, "portal.test"))
    try:
        settings = load_settings(
            data_dir=tmp_path / "data",
            scan_nameservers=(f"127.0.0.1:{dns.port}",),
            scan_allow_networks=("127.0.0.0/8",),
            scan_trust_ca=ca_file,
            scan_https_port=https.port,
            scan_http_port=https.port,
            scan_timeout_seconds=2.0,
            scan_budget_seconds=20.0,
        )
        register(store, "ministry", "portal.test")
        app = create_app(settings, store=store)
        with LiveServer(app):
            scheduler = app.state.scheduler
            assert (True, ["first", "scan"]) == (
                scheduler.running,
                sorted({job.kind for job in scheduler.jobs()}),
            )
            deadline = time.monotonic() + 30  # the new site's first scan, within seconds
            while not store.query_scans(ScanQuery(domain="portal.test", limit=1)).items:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (None, False) == (app.state.scheduler, scheduler.running)
    finally:
        https.stop()
    (stored,) = store.query_scans(ScanQuery(domain="portal.test", limit=1)).items
    assert ("scheduler", "portal.test") == (stored["observer.name"], stored["url.domain"])
