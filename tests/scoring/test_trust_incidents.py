"""Incident penalties: the decay curve of every row, the 1.5x repeat, dismissal, and the
caps incidents trigger (active compromise F with a warning, breach C for 30 days, probation)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scoring.trust import METHODOLOGY, incident_penalties, rate_provider
from scoring.trust_model import AppliedCap, IncidentKind, IncidentRecord, Penalty
from tests.scoring.test_trust_examples import NOW, REGISTERED, scan

DAY = timedelta(days=1)
K = IncidentKind


def resolved(
    kind: IncidentKind,
    days_ago: float,
    *,
    id: str = "i1",
    lasted: float = 2,
    dismissed: bool = False,
) -> IncidentRecord:
    end = NOW - days_ago * DAY
    return IncidentRecord(id, kind, end - lasted * DAY, end, dismissed=dismissed)


def points(*incidents: IncidentRecord) -> list[float]:
    return [p.points for p in incidents_penalties(*incidents)]


def incidents_penalties(*incidents: IncidentRecord) -> tuple[Penalty, ...]:
    return incident_penalties(incidents, NOW)


@pytest.mark.parametrize(
    ("kind", "curve"),
    [
        # (P0 at resolution, after one half-life, after two, just before max age, at max age)
        (K.DEFACEMENT, (20, 10, 5, 0.07, None)),  # 90 d half-life, 730 d max age
        (K.INJECTED_CONTENT, (20, 10, 5, 0.07, None)),
        (K.MALWARE, (20, 10, 5, 0.07, None)),
        (K.PHISHING, (20, 10, 5, 0.07, None)),
        (K.DATA_BREACH, (25, 12.5, 6.25, 0.37, None)),  # 120 d, 730 d
        (K.DNS_HIJACK, (15, 7.5, 3.75, 0.05, None)),  # 90 d, 730 d
        (K.CERTIFICATE, (5, 2.5, 1.25, 0.08, None)),  # 30 d, 180 d
        (K.OUTAGE, (3, 1.5, 0.75, 0.05, None)),  # 30 d, 180 d
        (K.UNCONFIRMED_ALERT, (2, 1, 0.5, 0.11, None)),  # 14 d, 60 d
    ],
)
def test_the_decay_curve_of_every_incident_row(
    kind: IncidentKind, curve: tuple[float | None, ...]
) -> None:
    rule = METHODOLOGY.incidents.rule(kind)
    ages = (0, rule.half_life_days, 2 * rule.half_life_days, rule.max_age_days - 1,
            rule.max_age_days)  # fmt: skip
    actual = tuple(next(iter(points(resolved(kind, age))), None) for age in ages)
    assert curve == actual
    assert [] == points(resolved(kind, rule.max_age_days + 30))


def test_an_active_incident_costs_its_full_penalty() -> None:
    active = IncidentRecord("i1", K.OUTAGE, NOW - 400 * DAY)
    assert [
        Penalty("i1", K.OUTAGE, 3, 3, 1.0, True, None, "total outage over 24 h active since "
                "2025-09-27: full penalty 3"),
    ] == list(incidents_penalties(active))  # fmt: skip


def test_an_incident_resolved_after_now_is_active_and_one_starting_after_now_ignored() -> None:
    later = IncidentRecord("i1", K.OUTAGE, NOW - DAY, NOW + DAY)
    future = IncidentRecord("i2", K.OUTAGE, NOW + DAY)
    assert [("i1", True, 3)] == [
        (p.incident, p.active, p.points) for p in incidents_penalties(later, future)
    ]


def test_a_second_compromise_within_365_days_counts_one_and_a_half_times() -> None:
    first = resolved(K.PHISHING, 400, id="a")  # started 402 days ago
    second = resolved(K.DEFACEMENT, 0, id="b", lasted=38)  # started 364 days after the first
    third = resolved(K.OUTAGE, 0, id="c")  # not a compromise: never repeated
    assert [("a", 1.0, 0.92), ("b", 1.5, 30.0), ("c", 1.0, 3.0)] == [
        (p.incident, p.factor, p.points) for p in incidents_penalties(first, second, third)
    ]
    apart = resolved(K.DEFACEMENT, 0, id="b", lasted=36)  # 366 days after the first started
    assert [1.0, 1.0] == [p.factor for p in incidents_penalties(first, apart)]


def test_a_dismissed_incident_counts_nothing_not_even_as_an_earlier_compromise() -> None:
    dismissed = resolved(K.PHISHING, 100, id="a", dismissed=True)
    second = resolved(K.DEFACEMENT, 0, id="b")
    assert [("b", 1.0, 20.0)] == [
        (p.incident, p.factor, p.points) for p in incidents_penalties(dismissed, second)
    ]
    assert () == incidents_penalties(resolved(K.DATA_BREACH, 0, dismissed=True))


@pytest.mark.parametrize(
    ("incident", "cap", "warning", "grade"),
    [
        (IncidentRecord("i1", K.DEFACEMENT, NOW - 2 * DAY, site="www.x.gov"), "F", True, "F"),
        (IncidentRecord("i1", K.INJECTED_CONTENT, NOW - 2 * DAY), "F", True, "F"),
        (IncidentRecord("i1", K.MALWARE, NOW - 2 * DAY), "F", True, "F"),
        (IncidentRecord("i1", K.PHISHING, NOW - 2 * DAY), "F", True, "F"),
        (IncidentRecord("i1", K.DNS_HIJACK, NOW - 2 * DAY), "F", True, "F"),
        (IncidentRecord("i1", K.DATA_BREACH, NOW - 29 * DAY), "C", False, "C"),
        (IncidentRecord("i1", K.DATA_BREACH, NOW - 31 * DAY), None, False, "B"),  # 75 points
        (IncidentRecord("i1", K.CERTIFICATE, NOW - 2 * DAY), None, False, "A"),
        (resolved(K.DEFACEMENT, 29), "C", False, "C"),
        (resolved(K.DEFACEMENT, 30), "B", False, "B"),
        (resolved(K.DNS_HIJACK, 89), "B", False, "B"),
        (resolved(K.DNS_HIJACK, 90), None, False, "A"),
        (resolved(K.DATA_BREACH, 10, lasted=100), "C", False, "C"),  # probation
        (resolved(K.OUTAGE, 1), None, False, "A"),  # no A+ within 180 days of an incident
    ],
)
def test_the_caps_incidents_trigger(
    incident: IncidentRecord, cap: str | None, warning: bool, grade: str
) -> None:
    rating = rate_provider("p1", [scan()], [incident], NOW, registered_at=REGISTERED)
    caps = tuple(c.grade for c in rating.caps)
    assert ((cap,) if cap else (), warning, grade) == (caps, rating.warning, rating.grade)


def test_an_incident_cap_names_its_incident_and_site() -> None:
    active = IncidentRecord("i7", K.PHISHING, NOW - 2 * DAY, site="pay.example.gov")
    rating = rate_provider("p1", [scan()], [active], NOW, registered_at=REGISTERED)
    expected = (AppliedCap("F", "active phishing on the domain", "i7", "pay.example.gov"),)
    assert (expected, 80.0, "F") == (rating.caps, rating.score, rating.grade)


def test_no_a_plus_within_180_days_of_an_incident() -> None:
    def eligible(*incidents: IncidentRecord) -> bool:
        return rate_provider(
            "p1", [scan()], incidents, NOW, registered_at=REGISTERED
        ).a_plus_eligible

    assert (True, False, True, True) == (
        eligible(),
        eligible(resolved(K.UNCONFIRMED_ALERT, 179)),
        eligible(resolved(K.UNCONFIRMED_ALERT, 181)),
        eligible(resolved(K.DEFACEMENT, 100, dismissed=True)),
    )
