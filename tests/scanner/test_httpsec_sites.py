"""The HTTP area end to end: whole scans of real loopback sites (HTTP and HTTPS with
trustme certificates) serving chosen headers, redirect chains, CORS and broken certificates.
The evaluators on constructed snapshots are in test_httpsec.py."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme

from sensors.scanner import httpsec
from sensors.scanner.context import ScanContext
from sensors.scanner.httpsec_snapshot import (
    HttpSnapshot,
)
from sensors.scanner.httpsec_transport import (
    evaluate_redirection,
)
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.registry import AreaSpec
from sensors.scanner.result import Area, SubGrade
from sensors.scanner.runner import scan_host
from sensors.scanner.target import Target, make_resolver
from sensors.wire import validate_record
from tests.scanner.conftest import Route, Site, loopback_policy, server_context
from tests.scanner.test_httpsec import ORIGIN, STRONG_CSP, outcome

# --- whole scans of loopback sites -----------------------------------------------------------

SPEC = AreaSpec(
    Area.HTTP,
    httpsec.fetch_http,
    httpsec.CHECKS,
    httpsec.grade_observatory,
    "http_observatory_compat",
)
STRONG_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Security-Policy", STRONG_CSP),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Set-Cookie", "__Host-SESSIONID=x; Path=/; Secure; HttpOnly; SameSite=Strict"),
    ("Set-Cookie", "theme=dark; Path=/; Secure; SameSite=Lax"),
)
STRONG_BODY = (
    b'<!doctype html><title>ok</title><script src="/app.js" integrity="sha384-x"></script>'
)


def _to_https(site: Site, host: str = "127.0.0.1") -> Route:
    return Route(301, (("Location", f"https://{host}:{site.port}/"),), b"")


def _scan(policy: ScanPolicy) -> tuple[dict[str, tuple[str, int | None]], SubGrade | None]:
    """Scan 127.0.0.1 with the HTTP area alone: each check's (outcome, modifier), the grade."""
    report = asyncio.run(scan_host("127.0.0.1", policy, areas=(SPEC,)))
    validate_record(report.to_record("0" * 32))  # the evidence fits the wire format
    outcomes = {
        c.id: (str(c.evidence.get("result", c.status.value)), c.modifier) for c in report.checks
    }
    return outcomes, report.grade("http_observatory_compat")


def _endless(request: BaseHTTPRequestHandler) -> Route:
    """A redirect loop that never repeats a URL: / -> /?1 -> /?2 -> ..."""
    step = int(request.path.partition("?")[2] or 0) + 1
    return Route(301, (("Location", f"/?{step}"),), b"")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_strong_site_earns_a_plus(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    https = sites({"/": Route(200, STRONG_HEADERS, STRONG_BODY)}, server_context(ca))
    http = sites({"/": _to_https(https)})
    outcomes, grade = _scan(loopback_policy(https=https, http=http, ca_file=ca_file))
    assert {
        "http.redirection": ("redirection-to-https", 0),
        "http.content-security-policy": ("csp-implemented-with-no-unsafe-default-src-none", 10),
        "http.cookies": ("cookies-secure-with-httponly-sessions-and-samesite", 5),
        "http.cors": ("cross-origin-resource-sharing-not-implemented", 0),
        "http.referrer-policy": ("referrer-policy-private", 5),
        "http.strict-transport-security": ("hsts-implemented-max-age-at-least-six-months", 0),
        "http.subresource-integrity": ("sri-implemented-and-all-scripts-loaded-securely", 5),
        "http.x-content-type-options": ("x-content-type-options-nosniff", 0),
        "http.x-frame-options": ("x-frame-options-implemented-via-csp", 5),
        "http.cross-origin-resource-policy": ("corp-implemented-with-same-origin", 10),
        "http.cross-origin-embedder-policy": ("coep-implemented-with-require-corp", 10),
        "http.cross-origin-opener-policy": ("coop-implemented-with-same-origin", 10),
    } == outcomes
    assert grade is not None
    assert ("A+", 160.0) == (grade.grade, grade.score)
    methods = [(m, p, h.get("Origin")) for m, p, h in https.requests]
    assert [("GET", "/", None), ("GET", "/", ORIGIN), ("OPTIONS", "/", ORIGIN)] == methods


def test_a_typical_weak_site(sites: Callable[..., Site], ca: trustme.CA, ca_file: Path) -> None:
    body = b'<title>portal</title><script src="https://cdn.example.net/jquery.js"></script>'
    headers = (("Content-Type", "text/html"), ("Set-Cookie", "PHPSESSID=abc; path=/"))
    https = sites({"/": Route(200, headers, body)}, server_context(ca))
    http = sites({"/": _to_https(https)})
    outcomes, grade = _scan(loopback_policy(https=https, http=http, ca_file=ca_file))
    negatives = {k: v for k, v in outcomes.items() if (v[1] or 0) < 0}
    assert {
        "http.content-security-policy": ("csp-not-implemented", -25),
        "http.cookies": ("cookies-session-without-secure-flag", -40),
        "http.strict-transport-security": ("hsts-not-implemented", -20),
        "http.subresource-integrity": (
            "sri-not-implemented-but-external-scripts-loaded-securely",
            -5,
        ),
        "http.x-content-type-options": ("x-content-type-options-not-implemented", -5),
        "http.x-frame-options": ("x-frame-options-not-implemented", -20),
    } == negatives
    assert grade is not None
    assert ("F", 0.0) == (grade.grade, grade.score)


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ("same-host", ("redirection-to-https", 0)),
        ("to-http-first", ("redirection-not-to-https-on-initial-redirection", -10)),
        ("stays-http", ("redirection-not-to-https", -20)),
        ("no-redirect", ("redirection-missing", -20)),
        ("loop", ("redirection-not-to-https", -20)),
        ("no-http", ("redirection-not-needed-no-http", 0)),
    ],
)
def test_redirect_chains(
    sites: Callable[..., Site],
    ca: trustme.CA,
    ca_file: Path,
    routes: str,
    expected: tuple[str, int],
) -> None:
    https = sites({"/": Route()}, server_context(ca))
    table: dict[str, dict[str, Route | Any]] = {
        "same-host": {"/": _to_https(https)},
        "to-http-first": {
            "/": Route(302, (("Location", "/next"),), b""),
            "/next": _to_https(https),
        },
        "stays-http": {"/": Route(301, (("Location", "/home"),), b""), "/home": Route()},
        "no-redirect": {"/": Route()},
        "loop": {"/": _endless},
    }
    if routes == "no-http":
        policy = loopback_policy(https=https, ca_file=ca_file, http_port=_free_port())
        http = None
    else:
        http = sites(table[routes])
        policy = loopback_policy(https=https, http=http, ca_file=ca_file, max_redirects=3)
    outcomes, _ = _scan(policy)
    assert expected == outcomes["http.redirection"]
    if routes == "loop":
        assert http is not None
        # The first request and three redirects, then the chain is cut.
        assert ["/", "/?1", "/?2", "/?3"] == [path for _, path, _ in http.requests]


def test_a_first_redirect_to_another_host(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    """site.test (pinned to 127.0.0.1) sends http:// straight to https://127.0.0.1, another
    host: the redirect is followed (the policy allows it) and costs 5 points."""
    https = sites({"/": Route()}, server_context(ca, "site.test", "127.0.0.1"))
    http = sites({"/": _to_https(https)})
    policy = loopback_policy(https=https, http=http, ca_file=ca_file)
    target = Target("site.test", (ipaddress.ip_address("127.0.0.1"),))

    async def go() -> HttpSnapshot:
        async with ScanContext(target, policy, make_resolver(policy)) as ctx:
            return await httpsec.fetch_http(ctx)

    snapshot = asyncio.run(go())
    result = evaluate_redirection(snapshot)
    assert ("redirection-off-host-from-http", -5) == outcome(result)[:2]
    assert [f"http://site.test:{http.port}/", f"https://127.0.0.1:{https.port}/"] == [
        hop.url for hop in snapshot.http_chain
    ]


def test_a_reflected_origin_with_credentials(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    def reflect(request: BaseHTTPRequestHandler) -> Route:
        origin = request.headers.get("Origin")
        if origin is None:
            return Route()
        cors = (
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        )
        return Route(200, (("Content-Type", "text/html"), *cors))

    https = sites({"/": reflect}, server_context(ca))
    http = sites({"/": _to_https(https)})
    outcomes, _ = _scan(loopback_policy(https=https, http=http, ca_file=ca_file))
    expected = ("cross-origin-resource-sharing-implemented-with-universal-access", -50)
    assert expected == outcomes["http.cors"]


def test_an_invalid_certificate_is_graded_but_penalised(
    sites: Callable[..., Site], ca_file: Path
) -> None:
    """A certificate from a CA nobody trusts: the headers are still read (nosniff counts)."""
    stranger = trustme.CA()
    headers = (
        ("Content-Type", "text/html"),
        ("X-Content-Type-Options", "nosniff"),
        ("Strict-Transport-Security", "max-age=31536000"),
    )
    https = sites({"/": Route(200, headers)}, server_context(stranger))
    http = sites({"/": _to_https(https)})
    outcomes, grade = _scan(loopback_policy(https=https, http=http, ca_file=ca_file))
    assert {
        "http.redirection": ("redirection-invalid-cert", -20),
        "http.strict-transport-security": ("hsts-invalid-cert", -20),
        "http.x-content-type-options": ("x-content-type-options-nosniff", 0),
    } == {
        k: outcomes[k]
        for k in (
            "http.redirection",
            "http.strict-transport-security",
            "http.x-content-type-options",
        )
    }
    assert grade is not None
    assert grade.grade == "F"


def test_the_worst_endpoint_is_reported(
    sites: Callable[..., Site], ca: trustme.CA, ca_file: Path
) -> None:
    """site.test has two addresses on the same port: a strong server and a weak one."""
    strong = sites({"/": Route(200, STRONG_HEADERS, STRONG_BODY)}, server_context(ca, "site.test"))
    weak = Site(routes={"/": Route()}, port=strong.port, address="127.0.0.2")
    weak.start(server_context(ca, "site.test"))
    try:
        policy = loopback_policy(https=strong, ca_file=ca_file, http_port=_free_port())
        addresses = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2"))

        async def go() -> HttpSnapshot:
            async with ScanContext(
                Target("site.test", addresses), policy, make_resolver(policy)
            ) as ctx:
                return await httpsec.fetch_http(ctx)

        snapshot = asyncio.run(go())
    finally:
        weak.stop()
    assert snapshot.final is not None
    assert "127.0.0.2" == snapshot.final.address
    scores = [(e.address, e.score) for e in snapshot.endpoints]
    assert [("127.0.0.1", 160), ("127.0.0.2", 30)] == scores
    grade = httpsec.grade_observatory(snapshot, httpsec.evaluate_all(snapshot))
    assert ("D", "worst of 2 endpoints graded (127.0.0.2)") == (
        grade.grade,
        grade.reason.split("; ")[-1],
    )
