"""A provider's rating (TNM-1 "Score", "Aggregation", "Bands"): its sites aggregated, the
incident penalties subtracted, every cap applied, the band held by hysteresis, and the
decision to rate at all.

**Aggregation.** Each site's posture ``s`` (the tested part scaled to 100, see
:mod:`scoring.trust_site`) is weighted ``w = importance * exp(-(s - s_min)^2 / 450)``, so the
weakest site pulls the mean harder than a plain mean; categories use the same weights. A site
with nothing testable yet takes no part. Caps from any site apply (principle 4).

**Not rated** when more than 30 % of the points could not be tested (importance-weighted over
the sites), when every site has been unreachable for 7 days, or when nothing could be tested
at all; shown as Provisional in the first 14 days after registration. The score, band and
caps are still computed when they can be (the public page decides what to show), and
``reason`` says why. When some points were untested but the provider is rated, ``reason``
says how much and that the posture is scaled from the tested part.

>>> from scoring.trust import METHODOLOGY as TNM
>>> sites = [SiteRating("www.x.gov", 3, 95.0, {}, (), (), 1.0),
...          SiteRating("forms.x.gov", 1, 55.0, {}, (), (), 1.0)]
>>> [round(s.weight, 3) for s in aggregate(sites, TNM)]  # the plain weights: 0.75, 0.25
[0.079, 0.921]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from scoring import trust_incidents
from scoring.trust_facts import facts
from scoring.trust_model import (
    NOT_RATED,
    PROVISIONAL,
    AppliedCap,
    IncidentRecord,
    Rating,
    RatingStatus,
    SiteInput,
    SiteRating,
)
from scoring.trust_points import worst_cap
from scoring.trust_site import eligible, rate_site
from scoring.trust_stability import with_hysteresis
from scoring.trust_table import Methodology

__all__ = ["aggregate", "rate_provider"]

_DAY: Final = timedelta(days=1)
_DECIMALS: Final = 2
_LISTED: Final = 8  # untested checks named in the reason


def aggregate(ratings: Sequence[SiteRating], table: Methodology) -> tuple[SiteRating, ...]:
    """``ratings`` with their weights filled in (normalised to sum to 1 over the sites that
    could be tested; 0 for the others)."""
    tested = [r.posture for r in ratings if r.testable > 0]
    if not tested:
        return tuple(ratings)
    low = min(tested)
    divisor = table.aggregation.weight_divisor
    raw = [
        r.importance * math.exp(-((r.posture - low) ** 2) / divisor) if r.testable > 0 else 0.0
        for r in ratings
    ]
    total = math.fsum(raw)
    return tuple(
        replace(r, weight=w / total if total else 0.0) for r, w in zip(ratings, raw, strict=True)
    )


def _mean(ratings: Sequence[SiteRating], value: Sequence[float]) -> float:
    included = [(r.weight, v) for r, v in zip(ratings, value, strict=True) if r.weight > 0]
    if len(included) == 1:
        return included[0][1]  # exactly the site's value: no rounding noise
    return math.fsum(w * v for w, v in included) / math.fsum(w for w, _ in included)


def _untestable(sites: Sequence[SiteInput], ratings: Sequence[SiteRating]) -> float:
    weights = [max(s.importance, 1) for s in sites]
    tested = math.fsum(w * r.testable for w, r in zip(weights, ratings, strict=True))
    # Rounded so that exactly 30 % (1 - 0.7 is 0.30000000000000004 in floats) is not "more".
    return round(1 - tested / sum(weights), 6) if weights else 1.0


def _unreachable(sites: Sequence[SiteInput], now: datetime, table: Methodology) -> bool:
    limit = now - table.not_rated.unreachable_days * _DAY
    return bool(sites) and all(
        s.streams is not None
        and s.streams.unreachable_since is not None
        and s.streams.unreachable_since <= limit
        for s in sites
    )


def _last_scanned(sites: Sequence[SiteInput]) -> datetime | None:
    times = [
        t
        for s in sites
        for f in s.findings
        for t in (
            f.last_verified,
            f.counted.observed_at,
            f.pending.observed_at if f.pending else None,
        )
        if t is not None
    ]
    return max(times, default=None)


def _untested_checks(ratings: Sequence[SiteRating]) -> str:
    names = [f"{r.domain}: {f.check}" for r in ratings for f in r.findings if f.status == "error"]
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def rate_provider(
    provider: str,
    sites: Sequence[SiteInput],
    incidents: Sequence[IncidentRecord],
    now: datetime,
    *,
    registered_at: datetime,
    previous: Rating | None,
    table: Methodology,
) -> Rating:
    """The provider's rating at ``now``; ``previous`` (its last rating) feeds the hysteresis
    when it was rated."""
    ratings = aggregate([rate_site(s, now, table) for s in sites], table)
    included = [r for r in ratings if r.weight > 0]
    posture = round(_mean(ratings, [r.posture for r in ratings]), _DECIMALS) if included else None
    categories = (
        {
            info.category: round(
                # A never-scanned site has no categories; its weight is 0 in the mean anyway.
                _mean(ratings, [r.categories.get(info.category, 0.0) for r in ratings]),
                _DECIMALS,
            )
            for info in table.categories
        }
        if included
        else {}
    )
    assessed = trust_incidents.assess(incidents, now, table)
    penalty = math.fsum(a.exact for a in assessed)
    score = None if posture is None else round(max(0.0, posture - penalty), table.score_decimals)
    caps: tuple[AppliedCap, ...] = tuple(c for r in ratings for c in r.caps) + tuple(
        a.cap for a in assessed if a.cap is not None
    )
    a_plus = (
        bool(included)
        and not caps
        and all(
            eligible(facts(s, table), table)
            for s, r in zip(sites, ratings, strict=True)
            if r.weight > 0
        )
        and not trust_incidents.recent(incidents, now, table.a_plus.incident_free_days)
    )
    held = previous.band if previous is not None and previous.status is RatingStatus.RATED else None
    band = (
        None
        if score is None
        else with_hysteresis(score, eligible=a_plus, previous=held, table=table)
    )
    untestable = _untestable(sites, ratings)
    unreachable = _unreachable(sites, now, table)
    problems = _not_rated(sites, score, untestable, unreachable, ratings, table)
    status, grade = RatingStatus.RATED, worst_cap(table, band or "", *(c.grade for c in caps))
    reason = "; ".join(problems)
    if problems:
        young = now - registered_at < table.not_rated.provisional_days * _DAY
        status = RatingStatus.PROVISIONAL if young else RatingStatus.NOT_RATED
        grade = PROVISIONAL if young else NOT_RATED
        if young:
            reason += (
                f"; Provisional for the first {table.not_rated.provisional_days:g} days after "
                "registration"
            )
    elif untestable > 0:
        reason = (
            f"{untestable * 100:.1f} % of the points could not be tested "
            f"({_untested_checks(ratings)}); the posture is that of the tested part, scaled "
            "to 100"
        )
    return Rating(
        provider=provider,
        computed_at=now,
        methodology=table.version,
        status=status,
        grade=grade,
        score=score,
        band=band,
        posture=posture,
        categories=categories,
        caps=caps,
        penalties=tuple(a.penalty for a in assessed),
        findings=tuple(f for r in ratings for f in r.findings),
        sites=ratings,
        a_plus_eligible=a_plus,
        warning=any(a.warning for a in assessed),
        reason=reason,
        last_scanned=_last_scanned(sites),
    )


def _not_rated(
    sites: Sequence[SiteInput],
    score: float | None,
    untestable: float,
    unreachable: bool,
    ratings: Sequence[SiteRating],
    table: Methodology,
) -> list[str]:
    limit = table.not_rated.max_untestable
    problems: list[str] = []
    if not sites:
        problems.append("no site registered")
    elif score is None:
        problems.append("nothing could be tested yet")
    elif untestable > limit:
        problems.append(
            f"{untestable * 100:.1f} % of the points could not be tested (more than "
            f"{limit * 100:g} %): {_untested_checks(ratings)}"
        )
    if unreachable:
        problems.append(
            f"every site unreachable for {table.not_rated.unreachable_days:g} days or more"
        )
    return problems
