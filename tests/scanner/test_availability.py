"""Availability and integrity: loopback sites that are up, failing, slow, redirected,
defaced or stuffed with gambling spam; the fingerprint's stability; the pure evaluators."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import trustme

from sensors.scanner import availability
from sensors.scanner.availability import (
    AvailabilitySnapshot,
    KeywordHit,
    PageFeatures,
    fetch_availability,
    page_features,
)
from sensors.scanner.context import ScanContext
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import Area, CheckResult, CheckStatus
from sensors.scanner.target import Target, make_resolver
from sensors.scanner.web import Page
from tests.scanner.conftest import Route, Site, loopback_policy, server_context

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def observe(policy: ScanPolicy) -> AvailabilitySnapshot:
    async def go() -> AvailabilitySnapshot:
        target = Target("127.0.0.1", (ipaddress.ip_address("127.0.0.1"),))
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await fetch_availability(ctx)

    return asyncio.run(go())


def html(body: str) -> Route:
    return Route(200, (("Content-Type", "text/html; charset=utf-8"),), body.encode())


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def https_site(sites: Callable[..., Site], ca: trustme.CA, routes: dict[str, Any]) -> Site:
    site: Site = sites(routes, server_context(ca))
    return site


def test_a_site_that_answers_is_up_and_fast(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    site = https_site(
        sites,
        ca,
        {"/": Route(301, (("Location", "/home"),), b""), "/home": html("<title>Home</title>")},
    )
    snapshot = observe(loopback_policy(https=site, ca_file=ca_file))
    base = f"https://127.0.0.1:{site.port}"
    status = availability.evaluate_status(snapshot)
    assert (
        CheckResult(
            "availability.status",
            Area.AVAILABILITY,
            CheckStatus.PASS,
            "the home page answers 200",
            {
                "url": f"{base}/",
                "status": 200,
                "final_url": f"{base}/home",
                "redirects": 1,
                "certificate_verified": True,
            },
        )
        == status
    )
    assert CheckStatus.PASS == availability.evaluate_ttfb(snapshot).status
    assert CheckStatus.PASS == availability.evaluate_integrity(snapshot).status


def test_a_server_error_is_down(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    site = https_site(sites, ca, {"/": Route(500, body=b"<title>Error</title>")})
    result = availability.evaluate_status(observe(loopback_policy(https=site, ca_file=ca_file)))
    assert (CheckStatus.FAIL, "the home page answers with a server error (500)") == (
        result.status,
        result.summary,
    )


def test_no_answer_at_all_is_down_and_the_rest_could_not_check() -> None:
    snapshot = observe(loopback_policy(https_port=closed_port(), http_port=closed_port()))
    assert [CheckStatus.FAIL, CheckStatus.ERROR, CheckStatus.ERROR, CheckStatus.ERROR] == [
        evaluate(snapshot).status for _, evaluate in availability.CHECKS
    ]


def test_a_certificate_for_another_name_still_counts_as_up(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    site: Site = sites({"/": html("<title>x</title>")}, server_context(ca, "other.example"))
    policy = loopback_policy(https=site, ca_file=ca_file, http_port=closed_port())
    snapshot = observe(policy)
    assert (200, False) == (snapshot.status, snapshot.verified)


def test_a_slow_first_byte_is_a_warning(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    def slow(_: BaseHTTPRequestHandler) -> Route:
        time.sleep(1.1)
        return html("<title>slow</title>")

    site = https_site(sites, ca, {"/": slow})
    result = availability.evaluate_ttfb(observe(loopback_policy(https=site, ca_file=ca_file)))
    assert CheckStatus.WARN == result.status
    assert 1.1 <= result.evidence["seconds"] < 3


def test_defacement_and_spam_are_suspected_with_words_and_places(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    defaced = "<title>Hacked by Sh4d0w</title>\n<h1>Greetz to all</h1>"
    spam = (
        "<title>Cổng thông tin</title><p>Tin tức. NỔ HŨ uy tín, nhà cái số 1</p>"
        '<div style="position:absolute; left:-9999px"><a href="https://slotgacor.example/">'
        "daftar</a><a href='https://x.example/judi-online'>link</a></div>"
    )
    site = https_site(sites, ca, {"/": html(defaced), "/spam": html(spam)})
    policy = loopback_policy(https=site, ca_file=ca_file)
    assert (
        KeywordHit("defacement", "hacked by", "title"),
        KeywordHit("defacement", "hacked by", "text"),  # the title is part of the text
        KeywordHit("defacement", "greetz", "text"),
        KeywordHit("defacement", "hacked", "title"),
    ) == _features(observe(policy)).hits
    site.routes["/"] = Route(302, (("Location", "/spam"),), b"")
    snapshot = observe(policy)
    assert (
        KeywordHit("spam", "nổ hũ", "text"),
        KeywordHit("spam", "nhà cái", "text"),
        KeywordHit("spam", "slot gacor", "link"),
        KeywordHit("spam", "judi online", "link"),
        KeywordHit("spam", "slot gacor", "hidden-link"),
        KeywordHit("spam", "judi online", "hidden-link"),
    ) == _features(snapshot).hits
    result = availability.evaluate_integrity(snapshot)
    assert (CheckStatus.WARN, "suspected spam: judi online, nhà cái, nổ hũ, slot gacor") == (
        result.status,
        result.summary,
    )


def _features(snapshot: AvailabilitySnapshot) -> PageFeatures:
    assert snapshot.features is not None
    return snapshot.features


def test_ordinary_words_near_the_keywords_are_not_hits() -> None:
    body = (
        "<title>Ministry portal</title><p>The land is owned by the state; aiding and abetting "
        "is a crime; slots for appointments.</p><a href='https://technohub.example/'>Hub</a>"
        '<nav style="display:none"><a href="/about">About</a></nav>'
    )
    features = page_features(_page(body))
    assert ((), 1) == (features.hits, features.hidden_links)


def _page(body: str, url: str = "https://portal.example.gov/") -> Page:
    headers = (("content-type", "text/html; charset=utf-8"),)
    return Page(url, 200, headers, body.encode(), False, 0.1, "HTTP/1.1")


def test_the_fingerprint_is_stable_and_follows_scripts(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    page = (
        '<title>Portal</title><script nonce="{n}" src="https://cdn.example/a.js"></script>'
        "<script>var x = 1;</script><iframe src='https://maps.example/embed'></iframe>"
        "<form action='/search'></form><a href='https://www.portal.example/'>same</a>"
        "<a href='https://news.example/a'>news</a><a href='/local'>local</a>"
    )
    site = https_site(sites, ca, {"/": html(page.format(n="r4nd0m1"))})
    policy = loopback_policy(https=site, ca_file=ca_file)
    first = _features(observe(policy))
    site.routes["/"] = html(page.format(n="0th3rr1"))
    assert first == _features(observe(policy))
    site.routes["/"] = html(page.format(n="x").replace("cdn.example/a.js", "evil.example/a.js"))
    changed = _features(observe(policy))
    assert (("cdn.example",), ("evil.example",)) == (first.script_domains, changed.script_domains)
    assert first.sha256 != changed.sha256
    assert {
        "scripts": 2,
        "inline_scripts": 1,
        "iframes": 1,
        "iframe_domains": ["maps.example"],
        "forms": 1,
        "links": 3,
        "foreign_domains": ["news.example", "www.portal.example"],
        "foreign_domains_total": 2,
        "hits": [],
    } == {
        k: v
        for k, v in first.to_json().items()
        if k
        in {
            "scripts",
            "inline_scripts",
            "iframes",
            "iframe_domains",
            "forms",
            "links",
            "foreign_domains",
            "foreign_domains_total",
            "hits",
        }
    }
    json.dumps(changed.to_json())  # JSON-able as it is


def test_foreign_domains_spare_the_site_and_its_subdomains() -> None:
    body = (
        "<a href='https://www.portal.example.gov/x'>www</a><a href='https://mail.portal.example.gov/'>"
        "mail</a><a href='https://other.example/'>o</a><a href='mailto:a@b.example'>m</a>"
    )
    assert ("other.example",) == page_features(_page(body)).foreign_domains


def _snapshot(**changes: Any) -> AvailabilitySnapshot:
    base: dict[str, Any] = {
        "observed_at": NOW,
        "url": "https://h.example/",
        "status": 404,
        "final_url": "https://h.example/",
        "redirects": 0,
        "ttfb": 0.25,
        "error": None,
        "verified": True,
        "features": None,
    }
    return AvailabilitySnapshot(**(base | changes))


def test_other_client_errors_are_warnings() -> None:
    assert CheckResult(
        "availability.status",
        Area.AVAILABILITY,
        CheckStatus.WARN,
        "the home page answers with a client error (404)",
        {
            "url": "https://h.example/",
            "status": 404,
            "final_url": "https://h.example/",
            "redirects": 0,
            "certificate_verified": True,
        },
        "Serve the home page at / (or redirect / to it).",
    ) == availability.evaluate_status(_snapshot())
    assert CheckStatus.PASS == availability.evaluate_status(_snapshot(status=403)).status


def test_ttfb_evidence() -> None:
    assert CheckResult(
        "availability.ttfb",
        Area.AVAILABILITY,
        CheckStatus.WARN,
        "first byte after 1.5 s (more than 1 s)",
        {"seconds": 1.5, "limit": 1.0, "url": "https://h.example/"},
        "Cache the home page or speed up what builds it.",
    ) == availability.evaluate_ttfb(_snapshot(ttfb=1.5))
