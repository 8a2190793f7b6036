"""One site's posture under TNM-1: category points from the counted finding states and the
site's streams, what could not be tested, the caps its findings trigger, and whether it meets
the site-level conditions of A+.

**What could not be tested** (a check that is only ``error``, or was never observed) loses no
points and earns none: it is left out of both what was earned and what could be earned. The
site's posture is the tested part scaled to 100, ``100 * earned / testable``, so a site is
judged on what was verified and an unreachable check neither costs nor gives points;
``testable`` is the share of the points that could be tested (the provider is Not rated above
30 % untested). H and X subtract from a start value; there each check counts for its largest
possible deduction, and the tested share of those scales the category.

A ``not_applicable`` check (a DNS check of a site given as an IP address) is left out of the
points altogether. A site whose HTTP checks found no HTTPS at all loses the T points whose
checks could not connect: there is nothing to test, which is a failure, not a gap. A site never
scanned at all (no finding, no probe) has nothing tested and takes no part in the aggregate.

>>> from datetime import UTC, datetime
>>> from scoring.trust import METHODOLOGY as TNM
>>> from scoring.trust_model import FindingState, Observation
>>> at = datetime(2026, 11, 1, tzinfo=UTC)
>>> caa = FindingState.first(Observation("dns.caa", "fail", at, {"found_at": None}))
>>> rated = rate_site(SiteInput("www.example.gov", 3, (caa,)), at, TNM)
>>> rated.posture, rated.testable  # only CAA (2 points) and the blocklist (4) tested
(66.67, 0.06)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from scoring.trust_explain import explain
from scoring.trust_facts import SiteFacts, facts, integrity_points, stream_points
from scoring.trust_model import AppliedCap, Category, SiteInput, SiteRating
from scoring.trust_points import (
    NOT_APPLICABLE,
    caps_of,
    deduction_loss,
    expiry_points,
    scored_points,
)
from scoring.trust_table import Methodology, ScoredCheck

__all__ = ["Tally", "eligible", "posture", "rate_site", "site_caps", "tallies"]

_DECIMALS: Final = 2  # points and postures are published to the hundredth


@dataclass
class Tally:
    """A category on one site: points earned and earnable among what was tested, the maximum
    of what applies, and the checks that could not be tested."""

    earned: float = 0.0
    testable: float = 0.0
    applicable: float = 0.0
    untested: list[str] = field(default_factory=list)

    def add(self, points: float, earned: float | None, check: str) -> None:
        """One additive item: ``earned`` None means it could not be tested."""
        self.applicable += points
        if earned is None:
            self.untested.append(check)
        else:
            self.testable += points
            self.earned += earned


def _scored(tally: Tally, item: ScoredCheck, f: SiteFacts, *, lost_without_https: bool) -> None:
    obs = f.counted(item.check)
    if obs is not None and obs.status == NOT_APPLICABLE:
        return
    if obs is None:
        tally.add(item.points, 0 if lost_without_https and f.no_https else None, item.check)
        return
    tally.add(item.points, scored_points(item, obs), item.check)


def _tls(f: SiteFacts, now: datetime, table: Methodology) -> Tally:
    t = table.tls
    tally = Tally()
    _scored(tally, t.grade, f, lost_without_https=True)
    obs = f.counted(t.expiry.check)
    earned = None if obs is None else expiry_points(t.expiry, obs, now)
    if earned is None and f.no_https:
        earned = 0
    tally.add(t.expiry.points, earned, t.expiry.check)
    _scored(tally, t.names, f, lost_without_https=True)
    _scored(tally, t.consistency, f, lost_without_https=True)
    return tally


def _scaled(points: float, tested: float, total: float, kept: float, untested: list[str]) -> Tally:
    """A subtractive category keeping ``kept`` of its ``points``: the tested share of its
    stakes scales it (exactly 1 when everything was tested)."""
    share = tested / total if total else 1.0
    return Tally(share * kept, share * points, points, untested)


def _http(f: SiteFacts, table: Methodology) -> Tally:
    rules = table.http
    tested = total = 0.0
    negative = 0
    untested: list[str] = []
    for check in rules.checks:
        total += -check.worst
        obs = f.counted(check.check)
        if obs is None or (obs.modifier is None and obs.status != NOT_APPLICABLE):
            untested.append(check.check)
            continue
        tested += -check.worst
        negative += min(0, obs.modifier or 0)
    # Multiply before dividing: 25 * 45 / 100 is exactly 11.25, 25 * 0.45 need not be.
    kept = rules.points * max(0.0, rules.start + negative) / rules.start
    return _scaled(rules.points, tested, total, kept, untested)


def _exposure(f: SiteFacts, table: Methodology) -> Tally:
    rules = table.exposure
    tested = total = lost = 0.0
    untested: list[str] = []
    for item in rules.deductions:
        total += item.points
        obs = f.counted(item.check)
        if obs is None:
            untested.append(item.check)
            continue
        tested += item.points
        lost += deduction_loss(item, obs)
    return _scaled(rules.points, tested, total, max(0.0, rules.points - lost), untested)


def _reputation(site: SiteInput, f: SiteFacts, table: Methodology) -> Tally:
    r = table.reputation
    tally = Tally()
    tally.add(r.blocklist_points, 0 if site.blocklisted else r.blocklist_points, r.blocklist_check)
    availability, ttfb = stream_points(site.streams, table)
    tally.add(r.availability[0].points, availability, r.availability_check)
    tally.add(r.ttfb_points, ttfb, r.ttfb_check)
    tally.add(r.integrity_points, integrity_points(site, f, table), r.integrity_check)
    return tally


def tallies(
    site: SiteInput, f: SiteFacts, now: datetime, table: Methodology
) -> dict[Category, Tally]:
    dns = Tally()
    for item in table.dns:
        _scored(dns, item, f, lost_without_https=False)
    disclosure = Tally()
    _scored(disclosure, table.disclosure.security_txt, f, lost_without_https=False)
    _scored(disclosure, table.disclosure.privacy_policy, f, lost_without_https=False)
    return {
        Category.T: _tls(f, now, table),
        Category.H: _http(f, table),
        Category.D: dns,
        Category.X: _exposure(f, table),
        Category.R: _reputation(site, f, table),
        Category.G: disclosure,
    }


def site_caps(site: SiteInput, f: SiteFacts, table: Methodology) -> tuple[AppliedCap, ...]:
    """One cap per trigger among the counted findings (pending ones trigger nothing yet)."""
    caps: list[AppliedCap] = []
    for check in f.states:
        obs = f.counted(check)
        if obs is not None:
            caps += [AppliedCap(g, reason, check, site.domain) for g, reason in caps_of(obs, table)]
    return tuple(caps)


def eligible(f: SiteFacts, table: Methodology) -> bool:
    """The site-level conditions of A+: TLS sub-grade A+, HSTS of a year, an Observatory
    penalty-only score of 90 with every HTTP test run, DMARC quarantine or reject, DNSSEC
    secure and a valid security.txt. Each must be verified: an untested one fails."""
    a = table.a_plus
    for requirement in a.requirements:
        obs = f.counted(requirement.check)
        if obs is None or obs.status == "fail":
            return False
        if str(obs.evidence.get(requirement.key)) not in requirement.values:
            return False
    modifiers = [f.counted(c.check) for c in table.http.checks]
    if any(m is None or m.modifier is None for m in modifiers):
        return False
    penalty_only = table.http.start + sum(min(0, m.modifier or 0) for m in modifiers if m)
    hsts = f.counted(table.http.hsts_check)
    max_age = None if hsts is None else hsts.evidence.get("max_age")
    return (
        penalty_only >= a.observatory_min
        and isinstance(max_age, int)
        and max_age >= a.hsts_min_seconds
    )


def posture(tally: Mapping[Category, Tally]) -> tuple[float, float]:
    """(posture scaled to 100 from the tested part, share of the points testable)."""
    earned = sum(t.earned for t in tally.values())
    testable = sum(t.testable for t in tally.values())
    applicable = sum(t.applicable for t in tally.values())
    scaled = 100 * earned / testable if testable else 0.0
    return scaled, (testable / applicable if applicable else 0.0)


def rate_site(site: SiteInput, now: datetime, table: Methodology) -> SiteRating:
    """The site's posture (0-100, the tested part scaled), its raw category points, its caps,
    its explanations, and the share of points it could test."""
    measured = site.streams is not None and site.streams.observations > 0
    if not site.findings and not measured:
        # Never scanned: the blocklist alone (always known) must not pass for a tested site.
        return SiteRating(site.domain, site.importance, 0.0, {}, (), (), 0.0)
    f = facts(site, table)
    tally = tallies(site, f, now, table)
    scaled, testable = posture(tally)
    caps = site_caps(site, f, table)
    return SiteRating(
        domain=site.domain,
        importance=site.importance,
        posture=round(scaled, _DECIMALS),
        categories={c: round(t.earned, _DECIMALS) for c, t in tally.items()},
        caps=caps,
        findings=explain(site, f, caps, now, table),
        testable=round(testable, 4),
    )
