"""Monotonicity: a strictly safer configuration never scores lower nor grades lower.

Each scored check has a ladder of scanner results from worst to best (statuses, Observatory
modifiers, evidence such as DMARC policy, service classes open, the TLS sub-grade and its
caps); the site's streams and blocklist status have theirs. Hypothesis draws a rung for every
ladder and a history of incidents, then climbs one ladder by one rung, or removes one
incident, and the rating must not get worse. One site: with several, TNM-1's aggregation
weight is not monotone (see test_trust_rating.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.trust import METHODOLOGY, rate_provider
from scoring.trust_model import (
    FindingState,
    IncidentKind,
    IncidentRecord,
    Observation,
    Rating,
    SiteInput,
    StreamStats,
)
from tests.scoring.test_trust_examples import (
    ADDRESS,
    HOST,
    NOW,
    REGISTERED,
    YEAR,
    expiry,
    http,
    obs,
    tls_grade,
)


def _http(check: str, *rungs: tuple[str, int]) -> list[Observation]:
    return [http(check, result, modifier) for result, modifier in rungs]


def _status(check: str, *rungs: tuple[str, dict[str, object]]) -> list[Observation]:
    return [obs(check, status, evidence) for status, evidence in rungs]


HSTS = "strict-transport-security"
LADDERS: dict[str, list[Observation]] = {
    "grade.tls_ssllabs_compat": [
        tls_grade("T", "T: certificate not trusted"),
        tls_grade("F", "F: SSL 2.0 offered"),
        tls_grade("E"),
        tls_grade("D"),
        tls_grade("C", "C: no TLS 1.2"),
        tls_grade("B", "B: TLS 1.0 or 1.1 offered", "A-: no TLS 1.3"),
        tls_grade("A-", "A-: no TLS 1.3"),
        tls_grade("A"),
        tls_grade("A+"),
    ],
    "tls.expiry": [expiry(d) for d in (-5, 3, 10, 20, 60)],
    "tls.name_match": _status("tls.name_match", ("fail", {}), ("pass", {})),
    "tls.consistency": _status("tls.consistency", ("fail", {}), ("pass", {})),
    "http.redirection": _http(
        "redirection",
        ("redirection-missing", -20),
        ("redirection-invalid-cert", -20),
        ("redirection-not-to-https-on-initial-redirection", -10),
        ("redirection-off-host-from-http", -5),
        ("redirection-to-https", 0),
    ),
    "http.content-security-policy": _http(
        "content-security-policy",
        ("csp-not-implemented", -25),
        ("csp-implemented-with-unsafe-inline", -20),
        ("csp-implemented-with-unsafe-eval", -10),
        ("csp-implemented-with-unsafe-inline-in-style-src-only", 0),
        ("csp-implemented-with-no-unsafe", 5),
        ("csp-implemented-with-no-unsafe-default-src-none", 10),
    ),
    "http.cookies": _http(
        "cookies",
        ("cookies-session-without-secure-flag", -40),
        ("cookies-session-without-httponly-flag", -30),
        ("cookies-without-secure-flag", -20),
        ("cookies-session-without-secure-flag-but-protected-by-hsts", -10),
        ("cookies-without-secure-flag-but-protected-by-hsts", -5),
        ("cookies-secure-with-httponly-sessions", 0),
        ("cookies-secure-with-httponly-sessions-and-samesite", 5),
    ),
    "http.cors": _http(
        "cors",
        ("cross-origin-resource-sharing-implemented-with-universal-access", -50),
        ("cross-origin-resource-sharing-not-implemented", 0),
    ),
    "http.referrer-policy": _http(
        "referrer-policy",
        ("referrer-policy-unsafe", -5),
        ("referrer-policy-not-implemented", 0),
        ("referrer-policy-private", 5),
    ),
    f"http.{HSTS}": [
        http(HSTS, "hsts-not-implemented-no-https", -20),
        http(HSTS, "hsts-not-implemented", -20),
        http(HSTS, "hsts-implemented-max-age-less-than-six-months", -10, max_age=86400),
        http(HSTS, "hsts-implemented-max-age-at-least-six-months", 0, max_age=15_552_000),
        http(HSTS, "hsts-implemented-max-age-at-least-six-months", 0, max_age=YEAR),
    ],
    "http.subresource-integrity": _http(
        "subresource-integrity",
        ("sri-not-implemented-and-external-scripts-not-loaded-securely", -50),
        ("sri-implemented-but-external-scripts-not-loaded-securely", -20),
        ("sri-not-implemented-but-external-scripts-loaded-securely", -5),
        ("sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0),
        ("sri-implemented-and-all-scripts-loaded-securely", 5),
    ),
    "http.x-content-type-options": _http(
        "x-content-type-options",
        ("x-content-type-options-not-implemented", -5),
        ("x-content-type-options-nosniff", 0),
    ),
    "http.x-frame-options": _http(
        "x-frame-options",
        ("x-frame-options-not-implemented", -20),
        ("x-frame-options-allow-from-origin", 0),
        ("x-frame-options-sameorigin-or-deny", 5),
    ),
    **{
        f"http.cross-origin-{name}-policy": _http(
            f"cross-origin-{name}-policy",
            (f"{short}-header-invalid", -5),
            (f"{short}-not-implemented", 0),
            (f"{short}-implemented-with-{good}", 10),
        )
        for name, short, good in (
            ("resource", "corp", "same-origin"),
            ("embedder", "coep", "require-corp"),
            ("opener", "coop", "same-origin"),
        )
    },
    "dns.spf": _status(
        "dns.spf", ("fail", {"all": "+"}), ("fail", {"all": None}), ("warn", {"all": "?"}),
        ("pass", {"all": "-"}),
    ),
    "dns.dmarc": _status(
        "dns.dmarc", ("fail", {"policy": "none"}), ("warn", {"policy": "none"}),
        ("pass", {"policy": "quarantine"}), ("pass", {"policy": "reject"}),
    ),
    "dns.dnssec": _status(
        "dns.dnssec", ("fail", {"status": "bogus"}), ("fail", {"status": "insecure"}),
        ("pass", {"status": "secure"}),
    ),
    "dns.caa": _status("dns.caa", ("fail", {}), ("pass", {})),
    "dns.nameservers": _status("dns.nameservers", ("fail", {}), ("warn", {}), ("pass", {})),
    "exposure.high-risk-services": _status(
        "exposure.high-risk-services", ("fail", {"classes": 2}), ("fail", {"classes": 1}),
        ("pass", {}),
    ),
    "exposure.ftp": _status("exposure.ftp", ("fail", {"classes": 1}), ("pass", {})),
    "exposure.eol-software": _status("exposure.eol-software", ("warn", {}), ("pass", {})),
    "exposure.git": _status("exposure.git", ("fail", {}), ("pass", {})),
    "exposure.env": _status("exposure.env", ("fail", {}), ("pass", {})),
    "exposure.directory-listing": _status("exposure.directory-listing", ("fail", {}), ("pass", {})),
    "availability.content-integrity": _status(
        "availability.content-integrity", ("warn", {"suspected": ["defacement"]}),
        ("warn", {"suspected": ["defacement"]}), ("pass", {}),
    ),
    "disclosure.security-txt": _status(
        "disclosure.security-txt", ("fail", {"state": "missing"}), ("warn", {"state": "invalid"}),
        ("pass", {"state": "valid"}),
    ),
    "disclosure.privacy-policy": _status("disclosure.privacy-policy", ("fail", {}), ("pass", {})),
}  # fmt: skip
AVAILABILITY = (0.9, 0.96, 0.992, 0.999)
TTFB = (2.0, 0.5)
BLOCKLISTED = (True, False)
STREAMS = "streams.availability", "streams.ttfb", "blocklist"
RANGES = {k: len(v) for k, v in LADDERS.items()} | dict(
    zip(STREAMS, (len(AVAILABILITY), len(TTFB), len(BLOCKLISTED)), strict=True)
)


def state(check: str, rung: int) -> FindingState:
    first = FindingState.first(LADDERS[check][rung])
    # The lowest content-integrity rung is a suspicion confirmed by a second observation.
    return replace(first, confirmations=2) if check.endswith("integrity") and rung == 0 else first


def site(rungs: dict[str, int]) -> SiteInput:
    streams = StreamStats(
        observations=500,
        availability=AVAILABILITY[rungs["streams.availability"]],
        ttfb_p95=TTFB[rungs["streams.ttfb"]],
        evidence={"address": ADDRESS},
    )
    findings = tuple(state(check, rungs[check]) for check in LADDERS)
    return SiteInput(HOST, 3, findings, streams, BLOCKLISTED[rungs["blocklist"]])


incidents_st = st.lists(
    st.builds(
        lambda i, kind, ago, lasted, active, dismissed: IncidentRecord(
            f"i{i}",
            kind,
            NOW - timedelta(days=ago),
            None if active else NOW - timedelta(days=max(0.0, ago - lasted)),
            dismissed=dismissed,
        ),
        st.integers(0, 10**6),
        st.sampled_from(list(IncidentKind)),
        st.floats(0, 900),
        st.floats(0, 120),
        st.booleans(),
        st.booleans(),
    ),
    max_size=4,
    unique_by=lambda i: i.id,
)
rungs_st = st.fixed_dictionaries({k: st.integers(0, n - 1) for k, n in RANGES.items()})


def rate(rungs: dict[str, int], incidents: list[IncidentRecord]) -> Rating:
    return rate_provider("p1", [site(rungs)], incidents, NOW, registered_at=REGISTERED)


def worse_or_equal(better: Rating, worse: Rating) -> bool:
    order = METHODOLOGY.bands.order
    assert better.score is not None
    assert worse.score is not None
    return better.score >= worse.score and order.index(better.grade) <= order.index(worse.grade)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(rungs_st, incidents_st, st.data())
def test_a_safer_finding_never_rates_lower(
    rungs: dict[str, int], incidents: list[IncidentRecord], data: st.DataObject
) -> None:
    climbable = sorted(k for k, rung in rungs.items() if rung < RANGES[k] - 1)
    if not climbable:
        return
    check = data.draw(st.sampled_from(climbable))
    before = rate(rungs, incidents)
    after = rate({**rungs, check: rungs[check] + 1}, incidents)
    assert worse_or_equal(after, before), (check, before.score, after.score)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(rungs_st, incidents_st.filter(bool), st.data())
def test_removing_an_incident_never_rates_lower(
    rungs: dict[str, int], incidents: list[IncidentRecord], data: st.DataObject
) -> None:
    gone = data.draw(st.sampled_from(incidents))
    before = rate(rungs, incidents)
    after = rate(rungs, [i for i in incidents if i is not gone])
    assert worse_or_equal(after, before), (gone, before.score, after.score)


def test_the_ladders_cover_every_scored_check() -> None:
    scored = {s.check for s in METHODOLOGY.scored_checks} | {METHODOLOGY.tls.expiry.check}
    scored |= {c.check for c in METHODOLOGY.http.checks}
    scored |= {d.check for d in METHODOLOGY.exposure.deductions}
    scored |= {METHODOLOGY.reputation.integrity_check}
    assert scored == set(LADDERS)
