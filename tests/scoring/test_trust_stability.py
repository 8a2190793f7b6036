"""Principle 6: when an observation counts (confirmation of worse results, fixes at once,
errors beside), and the 1-point band hysteresis."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scoring.trust import METHODOLOGY, band, observe, rate_provider
from scoring.trust_model import (
    FindingState,
    IncidentKind,
    IncidentRecord,
    Observation,
    Rating,
    RatingStatus,
    SiteInput,
)
from scoring.trust_stability import with_hysteresis
from tests.scoring.test_trust_examples import AT, NOW, REGISTERED, http, obs, scan

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
CAA = "dns.caa"


def caa(status: str, at_minutes: float = 0, vantage: str = "") -> Observation:
    evidence = {"issue": ["letsencrypt.org"]} if status == "pass" else {"found_at": None}
    return obs(CAA, status, evidence, at=AT + at_minutes * MINUTE, vantage=vantage)


def fold(*observations: Observation) -> FindingState:
    state: FindingState | None = None
    for o in observations:
        state = observe(state, o)
    assert state is not None
    return state


def test_the_first_observation_counts_at_once() -> None:
    first = caa("fail")
    assert FindingState(CAA, first, AT, AT) == fold(first)


def test_a_worse_observation_waits_for_confirmation() -> None:
    ok, bad = caa("pass"), caa("fail", 5, "s1")
    assert FindingState(CAA, ok, AT, AT, 1, bad, bad.observed_at, ("s1",)) == fold(ok, bad)


def test_a_second_worse_observation_an_hour_later_confirms_it() -> None:
    ok, bad, again = caa("pass"), caa("fail", 5), caa("fail", 65)
    expected = FindingState(CAA, again, bad.observed_at, again.observed_at, 2)
    assert expected == fold(ok, bad, again)


def test_within_the_hour_from_the_same_vantage_it_still_waits() -> None:
    ok, bad, again = caa("pass"), caa("fail", 5, "s1"), caa("fail", 64, "s1")
    expected = FindingState(CAA, ok, AT, AT, 1, again, bad.observed_at, ("s1",))
    assert expected == fold(ok, bad, again)


def test_a_second_vantage_point_confirms_at_once() -> None:
    ok, bad, other = caa("pass"), caa("fail", 5, "s1"), caa("fail", 6, "s2")
    expected = FindingState(CAA, other, bad.observed_at, other.observed_at, 2)
    assert expected == fold(ok, bad, other)


def test_an_unknown_vantage_never_counts_as_another() -> None:
    state = fold(caa("pass"), caa("fail", 5, ""), caa("fail", 6, "s2"))
    assert ("pass", "fail") == (state.counted.status, state.pending and state.pending.status)


def test_a_fix_counts_at_once() -> None:
    bad, ok = caa("fail"), caa("pass", 5)
    assert FindingState(CAA, ok, ok.observed_at, ok.observed_at) == fold(bad, ok)


def test_the_same_result_refreshes_the_evidence_and_clears_a_pending_one() -> None:
    ok, bad, ok_again = caa("pass"), caa("fail", 5), caa("pass", 70)
    expected = FindingState(CAA, ok_again, AT, ok_again.observed_at, 2)
    assert expected == fold(ok, bad, ok_again)


def test_a_worse_result_within_the_same_status_also_waits() -> None:
    """-5 then -40 for cookies: both fail or warn, but the second costs far more and caps."""
    hsts = http("cookies", "cookies-without-secure-flag-but-protected-by-hsts", -5)
    worse = replace(
        http("cookies", "cookies-session-without-secure-flag", -40), observed_at=AT + MINUTE
    )
    assert (hsts, worse) == (fold(hsts, worse).counted, fold(hsts, worse).pending)


def test_when_the_second_is_worse_still_the_level_both_agree_on_counts() -> None:
    one = obs("exposure.high-risk-services", "fail", {"classes": 1}, at=AT + 5 * MINUTE)
    two = obs("exposure.high-risk-services", "fail", {"classes": 2}, at=AT + 70 * MINUTE)
    start = obs("exposure.high-risk-services", "pass", {})
    state = fold(start, one, two)
    expected = FindingState(
        start.check, one, one.observed_at, two.observed_at, 2, two, two.observed_at, ("",)
    )
    assert expected == state


def test_an_error_never_replaces_a_counted_result() -> None:
    ok = caa("pass")
    error = obs(CAA, "error", {"error": "timeout"}, at=AT + HOUR)
    assert fold(ok) == fold(ok, error)


def test_a_check_that_is_only_error_stays_untestable_until_a_real_result() -> None:
    e1 = obs(CAA, "error", {"error": "timeout"})
    e2 = obs(CAA, "error", {"error": "timeout"}, at=AT + HOUR)
    assert FindingState(CAA, e2, AT, e2.observed_at, 2) == fold(e1, e2)
    ok = caa("pass", 61)
    assert FindingState(CAA, ok, ok.observed_at, ok.observed_at) == fold(e1, ok)
    bad = caa("fail", 61)
    assert (e1, bad) == (fold(e1, bad).counted, fold(e1, bad).pending)


def test_an_observation_older_than_the_counted_one_is_ignored() -> None:
    later = caa("pass", 30)
    assert fold(later) == fold(later, caa("fail", 10))


def test_an_observation_of_another_check_is_refused() -> None:
    with pytest.raises(ValueError, match=r"dns\.spf given to dns\.caa"):
        observe(fold(caa("pass")), obs("dns.spf", "pass", {}))


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        (85.5, "B", "B"),  # within a point above B's top edge: still B
        (85.99, "B", "B"),
        (86.0, "B", "A"),  # a full point past the edge: A
        (69.1, "B", "B"),  # within a point below B's floor
        (69.0, "B", "C"),
        (84.5, "A", "A"),  # from A, downwards
        (83.9, "A", "B"),
        (70.5, "C", "C"),
        (71.0, "C", "B"),
        (50.0, "B", "D"),  # far away: the previous band is irrelevant
        (85.5, None, "A"),
        (39.5, "D", "D"),
        (40.5, "F", "F"),
    ],
)
def test_hysteresis_at_band_edges(score: float, previous: str | None, expected: str) -> None:
    actual = with_hysteresis(score, eligible=False, previous=previous, table=METHODOLOGY)
    assert expected == actual


def test_hysteresis_around_a_plus() -> None:
    def held(score: float, previous: str, eligible: bool = True) -> str:
        return with_hysteresis(score, eligible=eligible, previous=previous, table=METHODOLOGY)

    assert ("A", "A+", "A+", "A", "A") == (
        held(95.5, "A"),
        held(96.0, "A"),
        held(94.5, "A+"),
        held(93.9, "A+"),
        held(99.0, "A+", eligible=False),  # A+ needs eligibility: no hysteresis keeps it
    )


def test_band_without_eligibility() -> None:
    assert ["A", "A", "B", "C", "D", "F", "F"] == [
        band(s) for s in (100, 85, 84.99, 55, 40, 39.99, 0)
    ]


def test_rate_provider_holds_the_previous_band_but_caps_still_apply() -> None:
    # H 11.25 (-55, none of it capping) makes the posture 86.25; an outage resolved 60 days
    # ago costs 3 * 2^-2 = 0.75: the score is 85.5, within a point above B's edge.
    negatives = (
        http("content-security-policy", "csp-not-implemented", -25),
        http("x-frame-options", "x-frame-options-not-implemented", -20),
        http("referrer-policy", "referrer-policy-unsafe", -5),
        http("x-content-type-options", "x-content-type-options-not-implemented", -5),
    )
    outage = IncidentRecord(
        "o1", IncidentKind.OUTAGE, NOW - timedelta(days=62), NOW - timedelta(days=60)
    )

    def rating(site: SiteInput, previous: Rating | None) -> tuple[object, ...]:
        r = rate_provider("p1", [site], [outage], NOW, registered_at=REGISTERED, previous=previous)
        return (r.score, r.band, r.grade)

    fresh = rate_provider("p1", [scan(*negatives)], [outage], NOW, registered_at=REGISTERED)
    was_b = replace(fresh, band="B", grade="B")
    assert (85.5, "A", "A") == rating(scan(*negatives), None)
    assert (85.5, "B", "B") == rating(scan(*negatives), was_b)
    not_published = replace(was_b, status=RatingStatus.NOT_RATED)
    assert (85.5, "A", "A") == rating(scan(*negatives), not_published)
    # Redirection missing costs the same -20 as the frame options, but caps at C.
    capped = (*negatives[:1], http("redirection", "redirection-missing", -20), *negatives[2:])
    was_a = replace(fresh, band="A", grade="A")
    assert (85.5, "A", "C") == rating(scan(*capped), was_a)
