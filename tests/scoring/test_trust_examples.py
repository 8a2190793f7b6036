"""The six worked examples of TRUST_METHOD.md (TNM-1) as golden tests, from finding states
shaped as the site scanner reports them (the evidence keys of sensors/scanner/*.py).

The builders here (:func:`modern_site`, :func:`obs`, :func:`scan`) are shared by the other
trust tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring.trust import METHODOLOGY, rate_provider
from scoring.trust_model import (
    AppliedCap,
    Category,
    FindingState,
    IncidentKind,
    IncidentRecord,
    Observation,
    Rating,
    SiteInput,
    StreamStats,
)
from sensors.wire import utc

AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NOW = AT + timedelta(hours=2)
REGISTERED = AT - timedelta(days=400)
HOST = "portal.example.gov"
ADDRESS = "192.0.2.10"
YEAR = 31_536_000


def obs(
    check: str,
    status: str,
    evidence: Mapping[str, Any] | None = None,
    *,
    modifier: int | None = None,
    at: datetime = AT,
    advice: str = "",
    vantage: str = "",
) -> Observation:
    return Observation(
        check, status, at, dict(evidence or {}), f"{check}: {status}", advice, modifier, (),
        vantage,
    )  # fmt: skip


def http(check: str, result: str, modifier: int, **evidence: Any) -> Observation:
    """An ``http.*`` check as ``httpsec_table.outcome_result`` makes it."""
    status = "pass" if modifier >= 0 else "warn" if modifier > -10 else "fail"
    return obs(f"http.{check}", status, {"result": result, **evidence}, modifier=modifier)


def per_address(check: str, status: str, **evidence: Any) -> Observation:
    """A TLS check: evidence per address, as ``tls._per_endpoint`` reports it."""
    return obs(check, status, {ADDRESS: {"status": status, **evidence}})


def tls_grade(grade: str, *caps: str) -> Observation:
    evidence = {"name": "tls_ssllabs_compat", "grade": grade, "score": 92.0, "caps": list(caps)}
    return obs("grade.tls_ssllabs_compat", "info", {**evidence, "reason": ""})


def expiry(days: int) -> Observation:
    status = "pass" if days > 30 else "warn" if days >= 14 else "fail"
    return per_address(
        "tls.expiry",
        status,
        days_left=days,
        not_after=utc(AT + timedelta(days=days)),
        not_before=utc(AT - timedelta(days=60)),
    )


def modern_checks() -> dict[str, Observation]:
    """Example 1, "modern, well run": every check passes, TLS A+, HSTS for two years."""
    checks = [
        tls_grade("A+"),
        per_address("tls.protocols", "pass", offered=["TLSv1.2", "TLSv1.3"]),
        per_address("tls.ciphers", "pass", accepted_count=6, broken=[]),
        per_address("tls.chain", "pass", complete=True),
        per_address("tls.name_match", "pass", host=HOST, dns_names=[HOST, "example.gov"]),
        expiry(60),
        obs("tls.consistency", "pass", {ADDRESS: {"certificate": "9f2c", "suites": 6}}),
        http("redirection", "redirection-to-https", 0),
        http("content-security-policy", "csp-implemented-with-no-unsafe-default-src-none", 10),
        http("cookies", "cookies-secure-with-httponly-sessions-and-samesite", 5),
        http("cors", "cross-origin-resource-sharing-not-implemented", 0),
        http("referrer-policy", "referrer-policy-private", 5),
        http(
            "strict-transport-security",
            "hsts-implemented-max-age-at-least-six-months",
            0,
            max_age=2 * YEAR,
            include_subdomains=True,
            preloaded=None,
        ),
        http("subresource-integrity", "sri-implemented-and-all-scripts-loaded-securely", 5),
        http("x-content-type-options", "x-content-type-options-nosniff", 0),
        http("x-frame-options", "x-frame-options-implemented-via-csp", 5),
        http("cross-origin-resource-policy", "corp-implemented-with-same-origin", 10),
        http("cross-origin-embedder-policy", "coep-not-implemented", 0),
        http("cross-origin-opener-policy", "coop-implemented-with-same-origin", 10),
        obs("dns.spf", "pass", {"domain": "example.gov", "all": "-", "lookups": 2}),
        obs("dns.dmarc", "pass", {"policy": "reject", "pct": 100, "rua": ["mailto:d@x.gov"]}),
        obs("dns.dnssec", "pass", {"zone": "example.gov", "status": "secure"}),
        obs("dns.caa", "pass", {"issue": ["letsencrypt.org"]}),
        obs("dns.nameservers", "pass", {"responsive": 2, "networks": ["a/24", "b/24"]}),
        obs("exposure.high-risk-services", "pass", {"counts": {"closed": 17}}),
        obs("exposure.ftp", "pass", {"counts": {"closed": 1}}),
        obs("exposure.git", "pass", {"url": f"https://{HOST}/.git/HEAD", "status": 404}),
        obs("exposure.env", "pass", {"url": f"https://{HOST}/.env", "status": 404}),
        obs("exposure.directory-listing", "pass", {"checked": {}}),
        obs("exposure.eol-software", "pass", {"banners": [], "end_of_life": []}),
        obs("availability.status", "pass", {"status": 200}),
        obs("availability.content-integrity", "pass", {"final_url": f"https://{HOST}/"}),
        obs("disclosure.security-txt", "pass", {"state": "valid", "contacts": ["mailto:s@x"]}),
        obs("disclosure.privacy-policy", "pass", {"href": "/privacy"}),
    ]
    return {o.check: o for o in checks}


def states(checks: Mapping[str, Observation]) -> tuple[FindingState, ...]:
    return tuple(FindingState.first(o) for o in checks.values())


GOOD_STREAMS = StreamStats(observations=8640, availability=0.9995, ttfb_p95=0.35)


def scan(
    *changes: Observation,
    drop: tuple[str, ...] = (),
    streams: StreamStats | None = GOOD_STREAMS,
    domain: str = HOST,
    importance: int = 3,
) -> SiteInput:
    """The modern site with ``changes`` replacing its checks and ``drop`` never observed."""
    checks = modern_checks() | {c.check: c for c in changes}
    kept = {k: v for k, v in checks.items() if k not in drop}
    return SiteInput(domain, importance, states(kept), streams)


def modern_site() -> SiteInput:
    return scan()


# Example 4's "good configuration": TLS A (a suite without forward secrecy beside
# forward-secret ones: a warning, no cap), HSTS one year, nosniff missing (-5), DMARC quarantine.
GOOD = (
    tls_grade("A"),
    per_address("tls.ciphers", "warn", without_forward_secrecy=["TLS_RSA_WITH_AES_128_GCM"]),
    http("x-content-type-options", "x-content-type-options-not-implemented", -5),
    http(
        "strict-transport-security",
        "hsts-implemented-max-age-at-least-six-months",
        0,
        max_age=YEAR,
    ),
    obs("dns.dmarc", "pass", {"policy": "quarantine", "pct": 100, "rua": ["mailto:d@x.gov"]}),
)

TYPICAL = (
    tls_grade("B", "B: TLS 1.0 or 1.1 offered", "A-: HSTS missing or shorter than 180 days"),
    per_address("tls.protocols", "warn", offered=["TLSv1.0", "TLSv1.2", "TLSv1.3"]),
    expiry(20),  # renewed by hand: 14-30 days left
    http("cookies", "cookies-secure-with-httponly-sessions", 0),
    http("content-security-policy", "csp-not-implemented", -25),
    http("referrer-policy", "referrer-policy-not-implemented", 0),
    http("strict-transport-security", "hsts-not-implemented", -20, preloaded=None),
    http("subresource-integrity", "sri-not-implemented-but-external-scripts-loaded-securely", -5),
    http("x-content-type-options", "x-content-type-options-not-implemented", -5),
    http("x-frame-options", "x-frame-options-sameorigin-or-deny", 5),
    http("cross-origin-resource-policy", "corp-not-implemented", 0),
    http("cross-origin-opener-policy", "coop-not-implemented", 0),
    obs("dns.spf", "pass", {"all": "~"}),
    obs("dns.dmarc", "warn", {"policy": "none", "pct": 100, "rua": ["mailto:d@x.gov"]}),
    obs("dns.dnssec", "fail", {"status": "insecure"}),
    obs("dns.caa", "fail", {"found_at": None, "issue": []}),
    obs("exposure.ftp", "fail", {"open": {"FTP": [f"{ADDRESS}:21"]}, "classes": 1}),
    obs("exposure.eol-software", "warn", {"end_of_life": [{"product": "php", "version": "5.6"}]}),
    obs("disclosure.security-txt", "fail", {"state": "missing"}),
)

EXPIRED = (
    tls_grade(
        "T", "T: certificate expired or not yet valid", "A-: HSTS missing or shorter than 180 days"
    ),
    per_address("tls.chain", "fail", complete=True, trust={"mozilla": "certificate expired"}),
    expiry(-3),
    http("redirection", "redirection-invalid-cert", -20),
    http("content-security-policy", "csp-implemented-with-unsafe-inline-in-style-src-only", 0),
    http("cookies", "cookies-not-found", 0),
    http("referrer-policy", "referrer-policy-not-implemented", 0),
    http("strict-transport-security", "hsts-invalid-cert", -20, preloaded=None),
    http("subresource-integrity", "sri-not-implemented-but-no-scripts-loaded", 0),
    http("x-frame-options", "x-frame-options-sameorigin-or-deny", 5),
    http("cross-origin-resource-policy", "corp-not-implemented", 0),
    http("cross-origin-opener-policy", "coop-not-implemented", 0),
    obs("dns.spf", "pass", {"all": "~"}),
    obs("dns.dmarc", "pass", {"policy": "quarantine", "pct": 100}),
    obs("dns.dnssec", "fail", {"status": "insecure"}),
    obs("dns.caa", "fail", {"found_at": None, "issue": []}),
    obs("disclosure.security-txt", "fail", {"state": "missing"}),
)  # fmt: skip

RDP = obs(
    "exposure.high-risk-services", "fail", {"open": {"RDP": [f"{ADDRESS}:3389"]}, "classes": 1}
)


def defacement(resolved_days_ago: float, **kw: Any) -> IncidentRecord:
    resolved = NOW - timedelta(days=resolved_days_ago)
    return IncidentRecord(
        "inc-1", IncidentKind.DEFACEMENT, resolved - timedelta(days=3), resolved, **kw
    )


def rate(site: SiteInput, incidents: tuple[IncidentRecord, ...] = ()) -> Rating:
    return rate_provider("p1", [site], incidents, NOW, registered_at=REGISTERED)


def summary(rating: Rating) -> tuple[object, ...]:
    c = rating.categories
    cats = tuple(
        c[k] for k in (Category.T, Category.H, Category.D, Category.X, Category.R, Category.G)
    )
    penalty = round(sum(p.points for p in rating.penalties), 1)
    return (*cats, penalty, rating.score, rating.band, rating.grade)


def cap(grade: str, reason: str, source: str, site: str | None = HOST) -> AppliedCap:
    return AppliedCap(grade, reason, source, site)


HSTS_A = "HSTS missing or shorter than 6 months (no A+)"


@pytest.mark.parametrize(
    ("site", "incidents", "expected", "caps"),
    [
        pytest.param(scan(), (), (30, 25, 15, 15, 10, 5, 0, 100.0, "A+", "A+"), (), id="modern"),
        pytest.param(
            scan(*TYPICAL), (), (21, 11.25, 6, 7, 10, 2, 0, 57.2, "C", "C"),
            (
                cap("B", "TLS sub-grade cap B: TLS 1.0 or 1.1 offered", "grade.tls_ssllabs_compat"),
                cap("A", HSTS_A, "http.strict-transport-security"),
            ),
            id="typical-portal",
        ),
        pytest.param(
            scan(*EXPIRED), (), (3, 15, 8, 15, 10, 2, 0, 53.0, "D", "F"),
            (
                cap("F", "TLS sub-grade cap T: certificate expired or not yet valid",
                    "grade.tls_ssllabs_compat"),
                cap("A", HSTS_A, "http.strict-transport-security"),
            ),
            id="expired-certificate",
        ),
        pytest.param(
            scan(*GOOD), (defacement(30),), (29, 23.75, 14, 15, 10, 5, 15.9, 80.9, "B", "B"),
            (cap("B", "defacement resolved less than 90 days ago (probation)", "inc-1", None),),
            id="defacement-30-days-ago",
        ),
        pytest.param(
            scan(*GOOD), (defacement(180),), (29, 23.75, 14, 15, 10, 5, 5.0, 91.8, "A", "A"), (),
            id="defacement-180-days-ago",
        ),
        pytest.param(
            scan(*GOOD, RDP), (), (29, 23.75, 14, 7, 10, 5, 0, 88.8, "A", "C"),
            (cap("C", "a high-risk service is reachable from the internet",
                 "exposure.high-risk-services"),),
            id="rdp-open",
        ),
    ],
)  # fmt: skip
def test_the_worked_examples(
    site: SiteInput,
    incidents: tuple[IncidentRecord, ...],
    expected: tuple[object, ...],
    caps: tuple[AppliedCap, ...],
) -> None:
    rating = rate(site, incidents)
    assert (expected, caps) == (summary(rating), rating.caps)


def test_only_the_modern_site_is_a_plus_eligible() -> None:
    assert (True, False, False) == tuple(
        rate(s, i).a_plus_eligible
        for s, i in ((scan(), ()), (scan(*GOOD), ()), (scan(*GOOD), (defacement(200),)))
    )


def test_the_penalties_of_the_defacement_examples() -> None:
    expected = [
        ("inc-1", 15.87, 20, 1.0, False, "B"),
        ("inc-1", 5.0, 20, 1.0, False, None),
    ]
    actual = [
        (p.incident, p.points, p.base, p.factor, p.active, p.cap)
        for days in (30, 180)
        for p in rate(scan(*GOOD), (defacement(days),)).penalties
    ]
    assert expected == actual


def test_the_typical_portal_explains_every_lost_point() -> None:
    rating = rate(scan(*TYPICAL))
    lost = {(f.check, f.status, f.points_lost, f.cap) for f in rating.findings}
    expected = {
        ("grade.tls_ssllabs_compat", "info", 8, "B"),
        ("tls.protocols", "warn", 0, None),
        ("tls.expiry", "warn", 1, None),
        ("http.content-security-policy", "fail", 6.25, None),
        ("http.strict-transport-security", "fail", 5, "A"),
        ("http.subresource-integrity", "warn", 1.25, None),
        ("http.x-content-type-options", "warn", 1.25, None),
        ("dns.dmarc", "warn", 3, None),
        ("dns.dnssec", "fail", 4, None),
        ("dns.caa", "fail", 2, None),
        ("exposure.ftp", "fail", 3, None),
        ("exposure.eol-software", "warn", 5, None),
        ("disclosure.security-txt", "fail", 3, None),
    }
    assert expected == lost
    # Every point lost is accounted for except H's floor (not reached here): 100 - 57.25.
    assert 42.75 == sum(f.points_lost for f in rating.findings)


def test_an_explanation_record_carries_the_whole_finding() -> None:
    site = scan(obs("dns.caa", "fail", {"found_at": None}, advice="Publish CAA records."))
    (record,) = rate(site).findings
    assert {
        "check": "dns.caa",
        "status": "fail",
        "expectation": "CAA records with an issue property",
        "category": "D",
        "points_lost": 2,
        "cap": None,
        "evidence": {"found_at": None},
        "first_seen": "2026-11-01T08:00:00.000000Z",
        "last_verified": "2026-11-01T08:00:00.000000Z",
        "confirmations": 1,
        "recommendation": "Publish CAA records.",
        "references": [],
        "methodology": "TNM-1",
        "site": HOST,
        "pending": False,
    } == record.to_json()


def test_the_rating_carries_the_methodology_and_the_last_scan() -> None:
    rating = rate(scan())
    assert ("TNM-1", AT, "", False) == (
        rating.methodology,
        rating.last_scanned,
        rating.reason,
        rating.warning,
    )
    assert METHODOLOGY.version == rating.methodology
