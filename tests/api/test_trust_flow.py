"""The whole path on local servers: a real scan of a real HTTPS site (trustme certificate, a
local authoritative DNS server) shipped by a sensor → finding states → rating → public lookup.
A regression is confirmed by a second vantage point before it costs points, as TNM-1's
principle 6 says; a fix counts at once."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from sensors.scanner.policy import ScanPolicy
from sensors.scanner.runner import scan_host
from tests.api.test_ingest import envelope
from tests.conftest import Tokens
from tests.scanner.conftest import Route, Site, server_context
from tests.scanner.dnszone import ZoneServer

NAME = "portal.gov.test"
ADDRESS = "127.0.31.1"
NAME_SERVERS = ("127.0.31.11", "127.0.32.11")
ZONE = "\n".join(
    [
        "$ORIGIN gov.test.",
        "$TTL 300",
        "@ IN SOA ns1.gov.test. hostmaster.gov.test. 1 3600 600 86400 300",
        "@ IN NS ns1.gov.test.",
        "@ IN NS ns2.gov.test.",
        f"ns1 IN A {NAME_SERVERS[0]}",
        f"ns2 IN A {NAME_SERVERS[1]}",
        f"portal IN A {ADDRESS}",
        'portal IN TXT "v=spf1 -all"',
        '_dmarc.portal IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@gov.test"',
        '@ IN CAA 0 issue "letsencrypt.org"',
    ]
)
GOOD_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("Content-Security-Policy", "default-src 'none'; img-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
HOME = b'<!doctype html><title>Portal</title><a href="/privacy">Privacy policy</a>'
SECURITY_TXT = b"Contact: mailto:security@gov.test\nExpires: 2099-01-01T00:00:00Z\n"


class Portal:
    """The provider's site: HTTPS with chosen headers, and HTTP redirecting to it."""

    def __init__(self, ca: trustme.CA) -> None:
        self.headers = list(GOOD_HEADERS)
        self.https = Site(routes={"/": self._home, "/.well-known/security.txt": Route(
            headers=(("Content-Type", "text/plain; charset=utf-8"),), body=SECURITY_TXT
        )}, address=ADDRESS).start(server_context(ca, NAME))  # fmt: skip
        target = f"https://{NAME}:{self.https.port}/"
        self.http = Site(routes={"/": Route(301, (("Location", target),), b"")}, address=ADDRESS)
        self.http.start()

    def _home(self, _: Any) -> Route:
        return Route(headers=tuple(self.headers), body=HOME)

    def stop(self) -> None:
        self.https.stop()
        self.http.stop()


@pytest.fixture
def portal(ca: trustme.CA) -> Iterator[Portal]:
    site = Portal(ca)
    yield site
    site.stop()


@pytest.fixture
def dns() -> Iterator[ZoneServer]:
    server = ZoneServer([ZONE], addresses=("127.0.0.1", *NAME_SERVERS)).start()
    yield server
    server.stop()


def _scan(portal: Portal, dns: ZoneServer, ca_file: Path) -> dict[str, Any]:
    policy = ScanPolicy(
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        https_port=portal.https.port,
        http_port=portal.http.port,
        nameservers=(f"127.0.0.1:{dns.port}",),
        dns_port=dns.port,
        ca_file=ca_file,
        connect_timeout=3.0,
        read_timeout=5.0,
        port_rate=500.0,
        high_risk_ports=(portal.https.port + 1,),  # one closed port: the scan stays quick
    )
    report = asyncio.run(scan_host(NAME, policy))
    return report.to_record(secrets.token_hex(16))


def _ship(client: httpx.Client, tokens: Tokens, record: dict[str, Any], sensor: str) -> None:
    sensor_id = {"sensor": "sensor-1", "other_sensor": "sensor-2"}[sensor]
    response = client.post(
        "/api/v1/ingest", json=envelope([record], sensor_id=sensor_id), headers=tokens.of(sensor)
    )
    assert (200, 1) == (response.status_code, response.json()["accepted"]), response.text


def _lookup(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"/public/v1/providers/{NAME}")
    assert 200 == response.status_code, response.text
    found: dict[str, Any] = response.json()
    return found


def test_scan_to_score_to_public_lookup(
    client: httpx.Client, tokens: Tokens, portal: Portal, dns: ZoneServer, ca_file: Path
) -> None:
    provider = {
        "id": "portal",
        "name": "Government Portal",
        "agency": "Ministry of Information",
        "level": 3,
        "sites": [{"domain": NAME, "role": "primary"}],
    }
    assert (
        201
        == client.post("/api/v1/providers", json=provider, headers=tokens.of("admin")).status_code
    )
    assert "Provisional" == _lookup(client)["grade"]

    first = _scan(portal, dns, ca_file)
    _ship(client, tokens, first, "sensor")
    rated = _lookup(client)
    assert ("rated", "TNM-1", first["event.start"]) == (
        rated["status"],
        rated["methodology"],
        rated["last_scanned"],
    ), rated["reason"]
    assert rated["score"] >= 70, rated
    by_check = {f["check"]: f for f in rated["findings"]}
    assert "http.strict-transport-security" not in by_check  # a pass is not a finding
    for finding in rated["findings"]:  # every finding says what to do about it
        assert ("TNM-1", True) == (finding["methodology"], bool(finding["recommendation"]))
    h_before = rated["categories"]["H"]

    # HSTS disappears: one observation is only pending, a second vantage point confirms it.
    portal.headers = [h for h in GOOD_HEADERS if h[0] != "Strict-Transport-Security"]
    _ship(client, tokens, _scan(portal, dns, ca_file), "sensor")
    pending = _lookup(client)
    hsts = next(f for f in pending["findings"] if f["check"] == "http.strict-transport-security")
    assert (True, h_before) == (hsts["pending"], pending["categories"]["H"])
    _ship(client, tokens, _scan(portal, dns, ca_file), "other_sensor")
    confirmed = _lookup(client)
    hsts = next(f for f in confirmed["findings"] if f["check"] == "http.strict-transport-security")
    assert (False, 5.0) == (hsts["pending"], hsts["points_lost"])  # 25 * 20 / 100
    assert h_before - 5.0 == confirmed["categories"]["H"]
    assert "A" == min(cap["grade"] for cap in confirmed["caps"] if cap["source"] == hsts["check"])

    # The fix counts at the next scan that sees it.
    portal.headers = list(GOOD_HEADERS)
    _ship(client, tokens, _scan(portal, dns, ca_file), "sensor")
    fixed = _lookup(client)
    assert (h_before, rated["score"]) == (fixed["categories"]["H"], fixed["score"])
    history = client.get(f"/public/v1/providers/{NAME}/history").json()["points"]
    assert ["Provisional", rated["grade"]] == [p["grade"] for p in history][:2]
    badge = client.get("/public/v1/providers/portal/badge.svg")
    assert fixed["grade"] in badge.text
