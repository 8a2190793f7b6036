"""A provider's rating beyond the worked examples: what could not be tested, Not rated and
Provisional, no HTTPS, the R category's streams and content integrity, expiry measured at
rating time, and several sites."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from scoring.trust import observe, rate_provider, rate_site
from scoring.trust_model import (
    AppliedCap,
    Category,
    Explanation,
    FindingState,
    Rating,
    RatingStatus,
    SiteInput,
    StreamStats,
)
from tests.scoring.test_trust_examples import (
    AT,
    GOOD_STREAMS,
    HOST,
    NOW,
    TYPICAL,
    expiry,
    http,
    modern_checks,
    obs,
    scan,
)

DAY = timedelta(days=1)
TLS_CHECKS = ("grade.tls_ssllabs_compat", "tls.expiry", "tls.name_match", "tls.consistency")


def rate(*sites: SiteInput, registered_days_ago: float = 400) -> Rating:
    return rate_provider("p1", sites, [], NOW, registered_at=NOW - registered_days_ago * DAY)


def categories(rating: Rating) -> tuple[float, ...]:
    return tuple(rating.categories[c] for c in Category)


def test_what_could_not_be_tested_is_neither_lost_nor_earned() -> None:
    # CORS could not run (its stake, 50 of H's 250, is 5 points) and no probe yet (R2+R3, 4
    # points): 91 points testable. CSP missing costs 25 % of the tested H (20 points).
    cors = obs("http.cors", "error", {"error": "both CORS probes failed"})
    csp = http("content-security-policy", "csp-not-implemented", -25)
    rating = rate(scan(cors, csp, streams=None))
    earned = 30 + 15 + 15 + 15 + 6 + 5
    assert (
        (30, 15, 15, 15, 6, 5),
        round(100 * earned / 91, 2),
        round(100 * earned / 91, 1),
        RatingStatus.RATED,
        "A",
        0.91,
    ) == (
        categories(rating),
        rating.posture,
        rating.score,
        rating.status,
        rating.grade,
        rating.sites[0].testable,
    )
    assert rating.reason == (
        "9.0 % of the points could not be tested (portal.example.gov: http.cors, "
        "portal.example.gov: availability.uptime, portal.example.gov: availability.ttfb-p95); "
        "the posture is that of the tested part, scaled to 100"
    )


def test_an_untested_check_is_listed_as_could_not_check() -> None:
    rating = rate(scan(drop=("dns.caa",)))
    assert [("dns.caa", "error", 0.0, {"error": "not observed yet"})] == [
        (f.check, f.status, f.points_lost, dict(f.evidence)) for f in rating.findings
    ]


def test_exactly_30_percent_untested_is_still_rated() -> None:
    rating = rate(scan(drop=TLS_CHECKS))
    # A+ needs a verified TLS A+: without TLS results it is out of reach.
    assert (RatingStatus.RATED, "A", 100.0, 0.7) == (
        rating.status,
        rating.grade,
        rating.score,
        rating.sites[0].testable,
    )


def test_more_than_30_percent_untested_is_not_rated_or_provisional() -> None:
    site = scan(drop=TLS_CHECKS, streams=None)
    old, young = rate(site), rate(site, registered_days_ago=13)
    why = (
        "34.0 % of the points could not be tested (more than 30 %): "
        "portal.example.gov: grade.tls_ssllabs_compat, portal.example.gov: tls.expiry, "
        "portal.example.gov: tls.name_match, portal.example.gov: tls.consistency, "
        "portal.example.gov: availability.uptime, portal.example.gov: availability.ttfb-p95"
    )
    assert (RatingStatus.NOT_RATED, "Not rated", why, 100.0) == (
        old.status,
        old.grade,
        old.reason,
        old.score,
    )
    assert (RatingStatus.PROVISIONAL, "Provisional") == (young.status, young.grade)
    assert young.reason == why + "; Provisional for the first 14 days after registration"


def test_a_provider_never_scanned_has_no_score() -> None:
    rating = rate(SiteInput(HOST, 3), registered_days_ago=1)
    assert (RatingStatus.PROVISIONAL, None, None, None, {}, "nothing could be tested yet") == (
        rating.status,
        rating.score,
        rating.band,
        rating.posture,
        rating.categories,
        rating.reason.split(";")[0],
    )


def test_unreachable_for_7_days_on_every_site_is_not_rated() -> None:
    def down(days: float) -> StreamStats:
        return replace(GOOD_STREAMS, availability=0.7, unreachable_since=NOW - days * DAY)

    week = rate(scan(streams=down(7)), scan(streams=down(8), domain="b.example.gov"))
    assert (RatingStatus.NOT_RATED, "every site unreachable for 7 days or more") == (
        week.status,
        week.reason,
    )
    assert RatingStatus.RATED == rate(scan(streams=down(6.9))).status
    assert RatingStatus.RATED == rate(scan(streams=down(30)), scan(domain="b.x.gov")).status


def test_no_https_at_all_loses_t_and_caps_at_d() -> None:
    no_tls = [obs(c, "error", {"error": "connection refused"}) for c in TLS_CHECKS]
    site = scan(
        *no_tls,
        http("redirection", "redirection-missing", -20, status=200),
        http("strict-transport-security", "hsts-not-implemented-no-https", -20),
    )
    rating = rate(site)
    assert ((0, 15, 15, 15, 10, 5), 60.0, "C", "D", 1.0) == (
        categories(rating),
        rating.score,
        rating.band,
        rating.grade,
        rating.sites[0].testable,
    )
    assert (
        AppliedCap("C", "HTTP is not redirected to HTTPS", "http.redirection", HOST),
        AppliedCap("D", "no HTTPS at all", "http.strict-transport-security", HOST),
    ) == rating.caps
    assert [("fail", 24), ("fail", 3), ("fail", 1), ("fail", 2)] == [
        (f.status, f.points_lost) for f in rating.findings if f.check in TLS_CHECKS
    ]


def test_a_site_given_as_an_ip_address_is_rated_without_dns() -> None:
    na = [obs(c, "not_applicable", {"host": "192.0.2.10"}) for c in modern_checks() if "dns." in c]
    rating = rate(scan(*na))
    assert ((30, 25, 0, 15, 10, 5), 100.0, 1.0) == (
        categories(rating),
        rating.score,
        rating.sites[0].testable,
    )


def test_reputation_from_the_streams_and_the_blocklist() -> None:
    slow = StreamStats(observations=900, availability=0.991, ttfb_p95=1.4)
    site = replace(scan(streams=slow), blocklisted=True, blocklist_evidence={"list": "urlhaus"})
    rating = rate(site)
    assert (4.0, 94.0) == (rating.categories[Category.R], rating.score)
    assert [
        ("reputation.blocklist", "fail", 4, {"list": "urlhaus"}),
        ("availability.uptime", "warn", 1, {"availability": 0.991, "observations": 900,
                                            "window_days": 30}),
        ("availability.ttfb-p95", "fail", 1, {"ttfb_p95": 1.4, "observations": 900,
                                              "window_days": 30, "limit_seconds": 1.0}),
    ] == [
        (f.check, f.status, f.points_lost, dict(f.evidence)) for f in rating.findings
    ]  # fmt: skip


def integrity(*statuses_and_minutes: tuple[str, float]) -> FindingState:
    state = None
    for status, minutes in statuses_and_minutes:
        evidence = {"suspected": ["defacement"]} if status == "warn" else {}
        observation = obs("availability.content-integrity", status, evidence)
        state = observe(
            state, replace(observation, observed_at=AT + minutes * timedelta(minutes=1))
        )
    assert state is not None
    return state


def test_content_integrity_counts_one_point_until_a_suspicion_is_confirmed() -> None:
    def r_points(state: FindingState, streams: StreamStats = GOOD_STREAMS) -> float:
        site = scan(streams=streams)
        findings = (*(f for f in site.findings if f.check != state.check), state)
        return rate_site(replace(site, findings=findings), NOW).categories[Category.R]

    anomaly = replace(GOOD_STREAMS, content_anomaly=True)
    assert (10, 9, 9, 9, 8) == (
        r_points(integrity(("pass", 0))),
        r_points(integrity(("pass", 0)), anomaly),  # the page structure drifted
        r_points(integrity(("pass", 0), ("warn", 5))),  # pending
        r_points(integrity(("warn", 0))),  # first observation ever: counted, unconfirmed
        r_points(integrity(("pass", 0), ("warn", 5), ("warn", 70))),  # confirmed
    )


def test_a_pending_finding_is_explained_but_costs_nothing_yet() -> None:
    state = integrity(("pass", 0), ("warn", 5))
    site = scan()
    site = replace(site, findings=(*site.findings[:-3], state, *site.findings[-2:]))
    (record,) = rate(site).findings
    assert (
        Explanation(
            check="availability.content-integrity",
            status="warn",
            expectation="no defacement, injected spam or unexpected page change",
            category=Category.R,
            points_lost=1,
            cap=None,
            evidence={"suspected": ["defacement"]},
            first_seen=AT,
            last_verified=AT,
            confirmations=1,
            recommendation="Look at the page and the server for injected content; restore a clean "
            "copy.",
            references=(),
            methodology="TNM-1",
            site=HOST,
            pending=True,
        )
        == record
    )
    assert AT + 5 * timedelta(minutes=1) == rate(site).last_scanned


def test_certificate_expiry_is_measured_at_rating_time() -> None:
    def t2(days_later: float) -> float:
        site = scan(expiry(35))
        return rate_site(site, AT + days_later * DAY).categories[Category.T]

    assert (30, 29, 28, 27) == (t2(0), t2(10), t2(25), t2(40))


def test_several_sites_lean_to_the_weakest_and_every_cap_applies() -> None:
    strong = scan(domain="www.example.gov", importance=3)
    weak = scan(*TYPICAL, domain="forms.example.gov", importance=1)
    rating = rate(strong, weak)
    w_strong = 3 * math.exp(-((100 - 57.25) ** 2) / 450)
    expected = round((w_strong * 100 + 1 * 57.25) / (w_strong + 1), 2)
    plain = (3 * 100 + 57.25) / 4
    assert (expected, round(expected, 1), "C") == (rating.posture, rating.score, rating.grade)
    assert rating.posture is not None
    assert rating.posture < plain - 25
    assert (
        round(w_strong / (w_strong + 1), 6),
        round(1 / (w_strong + 1), 6),
    ) == tuple(round(s.weight, 6) for s in rating.sites)
    assert {"forms.example.gov"} == {c.site for c in rating.caps}
    assert {"forms.example.gov"} == {f.site for f in rating.findings}
    assert round((w_strong * 30 + 21) / (w_strong + 1), 2) == rating.categories[Category.T]


def test_a_site_not_yet_scanned_takes_no_part_beside_a_scanned_one() -> None:
    scanned = scan(domain="www.example.gov", importance=1)
    waiting = SiteInput("new.example.gov", 3)  # registered, no scan yet
    rating = rate(scanned, waiting)
    assert (rate(scanned).categories, (1.0, 0.0)) == (
        rating.categories,
        tuple(s.weight for s in rating.sites),
    )


def test_equal_sites_weigh_by_importance_alone() -> None:
    a, b = scan(domain="a.gov", importance=3), scan(domain="b.gov", importance=1)
    assert (0.75, 0.25) == tuple(s.weight for s in rate(a, b).sites)


def test_the_tnm1_weight_is_not_monotone_for_far_apart_sites() -> None:
    """Pinned on purpose: under TNM-1's weight, improving a strong site far above a weak one
    lowers the provider's posture (its weight falls faster than its score rises). A change
    of the formula must be a deliberate new methodology version."""
    weak = scan(*TYPICAL, domain="forms.example.gov", importance=1)
    fair = scan(
        http("content-security-policy", "csp-not-implemented", -25),
        http("strict-transport-security", "hsts-not-implemented", -20),
        domain="www.example.gov",
    )
    worse_site, better_site = rate(fair, weak), rate(scan(domain="www.example.gov"), weak)
    assert (True, 88.75, 100.0) == (
        (better_site.posture or 0) < (worse_site.posture or 0),
        worse_site.sites[0].posture,
        better_site.sites[0].posture,
    )
