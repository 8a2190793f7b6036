"""The shape of the trust-rating methodology table: frozen values, no numbers of their own.

The numbers themselves live in one place, :data:`scoring.trust.METHODOLOGY`; this module only
says what each row means, so that the scorer (:mod:`scoring.trust_posture`,
:mod:`scoring.trust_incidents`, :mod:`scoring.trust_stability`) and the published document
(:mod:`scoring.methodology`) read the same rows.

>>> steps = (Step(30, 3, strict=True), Step(14, 2), Step(7, 1))
>>> [step_points(steps, days) for days in (31, 30, 14, 13.9, 7, 6.5)]
[3, 2, 2, 1, 1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from scoring.trust_model import Category, IncidentKind

__all__ = [
    "APlusRules",
    "Aggregation",
    "Bands",
    "CategoryInfo",
    "Deduction",
    "DisclosureRules",
    "ExpiryCheck",
    "ExposureRules",
    "FindingCap",
    "HttpCheck",
    "HttpRules",
    "IncidentRule",
    "IncidentRules",
    "Methodology",
    "NotRatedRules",
    "Note",
    "ReputationRules",
    "Requirement",
    "ScanCadences",
    "ScoredCheck",
    "Stability",
    "Step",
    "TlsCapRules",
    "TlsRules",
    "step_points",
]


@dataclass(frozen=True)
class Step:
    """``points`` when a value is at least ``bound`` (more than ``bound`` when ``strict``)."""

    bound: float
    points: float
    strict: bool = False

    def reached(self, value: float) -> bool:
        return value > self.bound if self.strict else value >= self.bound


def step_points(steps: Sequence[Step], value: float) -> float:
    """The points of the first step ``value`` reaches (steps best first), else 0."""
    return next((s.points for s in steps if s.reached(value)), 0)


@dataclass(frozen=True)
class CategoryInfo:
    category: Category
    name: str
    points: float


@dataclass(frozen=True)
class ScoredCheck:
    """An item that earns points from one check's counted result. ``reads`` is ``"status"``
    or an evidence key; ``earns`` maps its value to points (anything else earns 0). With
    ``fail_earns_nothing`` a failed check earns 0 whatever its evidence says."""

    key: str
    category: Category
    check: str
    points: float
    earns: tuple[tuple[str, float], ...]
    expectation: str
    recommendation: str
    reads: str = "status"
    fail_earns_nothing: bool = False


@dataclass(frozen=True)
class ExpiryCheck:
    """T2: points by the days the certificate has left at rating time (worst address)."""

    key: str
    check: str
    points: float
    days: tuple[Step, ...]
    expectation: str
    recommendation: str


@dataclass(frozen=True)
class TlsRules:
    """Category T. ``grade`` (T1) reads the SSL-Labs-compatible sub-grade's letter."""

    grade: ScoredCheck
    expiry: ExpiryCheck
    names: ScoredCheck
    consistency: ScoredCheck


@dataclass(frozen=True)
class HttpCheck:
    """One Observatory-v6 test. ``worst`` is its most negative modifier: the share of H it can
    decide, used only to size what is not testable when it could not run."""

    check: str
    worst: int
    expectation: str


@dataclass(frozen=True)
class HttpRules:
    """Category H = ``points`` * max(0, ``start`` + sum of negative modifiers) / ``start``."""

    points: float
    start: float
    checks: tuple[HttpCheck, ...]
    recommendation: str
    hsts_check: str
    no_https_results: tuple[str, ...]  # HSTS outcomes that mean the site has no HTTPS


@dataclass(frozen=True)
class Deduction:
    """A category-X deduction: ``points`` when ``check`` warns or fails, per unit counted by
    the evidence key ``per`` (service classes) when set."""

    key: str
    check: str
    points: float
    expectation: str
    recommendation: str
    per: str | None = None


@dataclass(frozen=True)
class ExposureRules:
    """Category X: start at ``points``, subtract every deduction, floor 0."""

    points: float
    deductions: tuple[Deduction, ...]


@dataclass(frozen=True)
class ReputationRules:
    """Category R: blocklist, 30-day availability, p95 time to first byte (from the site's
    streams) and content integrity (the scanner's check, confirmed over two observations)."""

    blocklist_check: str
    blocklist_points: float
    availability_check: str
    availability: tuple[Step, ...]  # by the fraction of probes that found the site up
    window_days: int
    ttfb_check: str
    ttfb_limit_seconds: float
    ttfb_points: float
    integrity_check: str
    integrity_points: float
    integrity_unconfirmed_points: float
    integrity_confirmations: int  # observations that confirm a suspected defacement
    expectations: tuple[tuple[str, str, str], ...]  # (check, expectation, recommendation)


@dataclass(frozen=True)
class DisclosureRules:
    security_txt: ScoredCheck
    privacy_policy: ScoredCheck


@dataclass(frozen=True)
class FindingCap:
    """A cap a counted finding triggers: on ``status``, on an Observatory outcome in
    ``results`` (``evidence["result"]``), or on an evidence ``(key, value)`` pair."""

    check: str
    grade: str
    reason: str
    status: str | None = None
    results: tuple[str, ...] = ()
    evidence: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TlsCapRules:
    """How the TLS sub-grade's letter and caps (``"<letter>: <reason>"``) carry over to the
    overall grade. Caps whose text starts with one of ``left_to`` prefixes are not carried
    over: another check is the source of that cap (HSTS comes from the HTTP check)."""

    check: str
    carry: tuple[tuple[str, str], ...]  # sub-grade letter → overall cap
    left_to: tuple[tuple[str, str], ...]  # (cap prefix, the check that caps instead)


@dataclass(frozen=True)
class IncidentRule:
    """One row of the incident table. ``cap_days``: the active cap holds only that many days
    from the start (None: as long as the incident is active)."""

    kind: IncidentKind
    name: str
    base: float
    half_life_days: float
    max_age_days: float
    cap: str | None = None
    cap_days: float | None = None
    warning: bool = False
    compromise: bool = False


@dataclass(frozen=True)
class IncidentRules:
    rows: tuple[IncidentRule, ...]
    repeat_window_days: float  # a second compromise starting within it of an earlier one ...
    repeat_factor: float  # ... costs this many times its penalty
    probation: tuple[tuple[float, str], ...]  # (days since a compromise was resolved, cap)

    def rule(self, kind: IncidentKind) -> IncidentRule:
        return next(r for r in self.rows if r.kind == kind)


@dataclass(frozen=True)
class Bands:
    """Score bands best first (A+ above them is :class:`APlusRules`), the grade below the last
    one, and the hysteresis: a score must pass an edge by ``hysteresis`` points to leave the
    previous band."""

    bands: tuple[tuple[str, float], ...]
    lowest: str
    hysteresis: float
    order: tuple[str, ...]  # every grade, best first (caps compare on it)


@dataclass(frozen=True)
class Requirement:
    """A condition of A+: the counted ``check`` did not fail and its evidence ``key`` is one
    of ``values``."""

    check: str
    key: str
    values: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class APlusRules:
    """A+ needs the score, no cap at all, every requirement on every site, HSTS of
    ``hsts_min_seconds``, an Observatory penalty-only score of ``observatory_min`` with every
    HTTP test run, and no incident in ``incident_free_days``."""

    min_score: float
    requirements: tuple[Requirement, ...]
    hsts_min_seconds: int
    observatory_min: float
    incident_free_days: float


@dataclass(frozen=True)
class Aggregation:
    """Several sites: ``w = importance * exp(-(s - s_min)^2 / weight_divisor)``."""

    weight_divisor: float
    importance: tuple[tuple[str, int], ...]  # site role → importance
    max_addresses: int  # the scanner's limit: the worst address counts for T and H


@dataclass(frozen=True)
class NotRatedRules:
    max_untestable: float  # more than this share of the points not testable: Not rated
    unreachable_days: float  # every site unreachable this long: Not rated
    provisional_days: float  # Not rated shows as Provisional this long after registration


@dataclass(frozen=True)
class Stability:
    """Principle 6: a worse observation is counted once confirmed ``confirm_after`` later or
    by a second vantage point; a better one at once."""

    confirm_after: timedelta
    confirm_vantages: int


@dataclass(frozen=True)
class ScanCadences:
    """How often each scanner area runs per site (the scheduler reads these)."""

    availability: timedelta
    http: timedelta
    dns: timedelta
    disclosure: timedelta
    tls: timedelta
    exposure: timedelta


@dataclass(frozen=True)
class Note:
    """What passes for a check that scores no points itself but explains one that does."""

    check: str
    category: Category
    expectation: str


@dataclass(frozen=True)
class Methodology:
    """The whole table: rendered by :mod:`scoring.methodology`, read by the scorer."""

    version: str
    categories: tuple[CategoryInfo, ...]
    tls: TlsRules
    http: HttpRules
    dns: tuple[ScoredCheck, ...]
    exposure: ExposureRules
    reputation: ReputationRules
    disclosure: DisclosureRules
    finding_caps: tuple[FindingCap, ...]
    tls_caps: TlsCapRules
    incidents: IncidentRules
    bands: Bands
    a_plus: APlusRules
    aggregation: Aggregation
    not_rated: NotRatedRules
    stability: Stability
    cadences: ScanCadences
    score_decimals: int
    notes: tuple[Note, ...]
    areas: tuple[tuple[str, Category], ...]  # check-id prefix → category

    @property
    def scored_checks(self) -> tuple[ScoredCheck, ...]:
        """Every additive item read from a check, in category order."""
        t = self.tls
        d = self.disclosure
        return (t.grade, t.names, t.consistency, *self.dns, d.security_txt, d.privacy_policy)

    def category_of(self, check: str) -> Category | None:
        return next((c for prefix, c in self.areas if check.startswith(prefix)), None)

    def points_of(self, category: Category) -> float:
        return next(c.points for c in self.categories if c.category == category)
