"""The values the trust rating reads and writes: typed and frozen, so that the service, the
public API and the reports all see the same thing.

What goes in: for each site of a provider, the *finding state* of every check (the scan
observation that counts and, if a worse one was seen once, the one waiting for confirmation),
the site's stream statistics (availability, response time, content drift, kept with river by
:mod:`scoring.sitestream`), and the provider's incidents. What comes out: a :class:`Rating`
with score, grade, methodology version, per-category points, active caps with their reasons,
incident penalties and one :class:`Explanation` per finding.

Every value here round-trips through JSON (``to_json`` / ``from_json``): the service stores
finding states and ratings as documents.

>>> from datetime import UTC, datetime
>>> at = datetime(2026, 11, 1, tzinfo=UTC)
>>> obs = Observation("dns.caa", "fail", at, evidence={"records": []})
>>> Observation.from_json(obs.to_json()) == obs
True
>>> state = FindingState.first(obs)
>>> FindingState.from_json(state.to_json()) == state
True
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sensors.wire import utc

__all__ = [
    "NOT_RATED",
    "PROVISIONAL",
    "AppliedCap",
    "Category",
    "Explanation",
    "FindingState",
    "IncidentKind",
    "IncidentRecord",
    "Observation",
    "Penalty",
    "Rating",
    "RatingStatus",
    "SiteInput",
    "SiteRating",
    "StreamStats",
]

NOT_RATED: Final = "Not rated"
PROVISIONAL: Final = "Provisional"


class Category(enum.StrEnum):
    """TNM-1's six categories, by their letters."""

    T = "T"  # TLS & certificates
    H = "H"  # HTTP security
    D = "D"  # DNS & e-mail
    X = "X"  # exposure & hygiene
    R = "R"  # reputation, availability, integrity
    G = "G"  # disclosure


class RatingStatus(enum.StrEnum):
    RATED = "rated"
    PROVISIONAL = "provisional"  # would be Not rated, but the provider is under 14 days old
    NOT_RATED = "not_rated"


class IncidentKind(enum.StrEnum):
    """The incident types of TNM-1's incident table."""

    DEFACEMENT = "defacement"
    INJECTED_CONTENT = "injected_content"
    MALWARE = "malware"
    PHISHING = "phishing"
    DATA_BREACH = "data_breach"
    DNS_HIJACK = "dns_hijack"
    CERTIFICATE = "certificate"  # invalid or expired certificate for 24 h or more
    OUTAGE = "outage"  # total outage over 24 h
    UNCONFIRMED_ALERT = "unconfirmed_alert"  # an open SOC alert about the provider


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc(value)


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class Observation:
    """One check of one scan, as the scanner reported it (``status`` is a wire
    :class:`~sensors.wire.CheckStatus` value: pass, fail, warn, info, error, not_applicable).
    ``modifier`` is the Observatory-v6 modifier of an ``http.*`` check."""

    check: str
    status: str
    observed_at: datetime
    evidence: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    advice: str = ""
    modifier: int | None = None
    references: tuple[str, ...] = ()
    vantage: str = ""  # who observed it (the sensor id): two vantage points also confirm

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "observed_at": utc(self.observed_at),
            "evidence": dict(self.evidence),
            "summary": self.summary,
            "advice": self.advice,
            "modifier": self.modifier,
            "references": list(self.references),
            "vantage": self.vantage,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Observation:
        return cls(
            check=doc["check"],
            status=doc["status"],
            observed_at=datetime.fromisoformat(doc["observed_at"]),
            evidence=doc.get("evidence", {}),
            summary=doc.get("summary", ""),
            advice=doc.get("advice", ""),
            modifier=doc.get("modifier"),
            references=tuple(doc.get("references", ())),
            vantage=doc.get("vantage", ""),
        )


@dataclass(frozen=True)
class FindingState:
    """What scoring knows about one check of one site over time (principle 6).

    ``counted`` is the observation the score uses. A *worse* observation is held in ``pending``
    until it is confirmed (a second observation at least an hour later, or from a second
    vantage point); then it becomes ``counted``. A better one (a fix) counts at once.
    ``first_seen`` is when the counted status was first observed, ``last_verified`` the latest
    observation that agreed with it, ``confirmations`` how many observations agreed."""

    check: str
    counted: Observation
    first_seen: datetime
    last_verified: datetime
    confirmations: int = 1
    pending: Observation | None = None
    pending_since: datetime | None = None
    pending_vantages: tuple[str, ...] = ()

    @classmethod
    def first(cls, observation: Observation) -> FindingState:
        """The state after the first observation of a check on a site."""
        return cls(
            check=observation.check,
            counted=observation,
            first_seen=observation.observed_at,
            last_verified=observation.observed_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "counted": self.counted.to_json(),
            "first_seen": utc(self.first_seen),
            "last_verified": utc(self.last_verified),
            "confirmations": self.confirmations,
            "pending": None if self.pending is None else self.pending.to_json(),
            "pending_since": _time(self.pending_since),
            "pending_vantages": list(self.pending_vantages),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FindingState:
        pending = doc.get("pending")
        return cls(
            check=doc["check"],
            counted=Observation.from_json(doc["counted"]),
            first_seen=datetime.fromisoformat(doc["first_seen"]),
            last_verified=datetime.fromisoformat(doc["last_verified"]),
            confirmations=int(doc.get("confirmations", 1)),
            pending=None if pending is None else Observation.from_json(pending),
            pending_since=_parse(doc.get("pending_since")),
            pending_vantages=tuple(doc.get("pending_vantages", ())),
        )


@dataclass(frozen=True)
class StreamStats:
    """A site's streaming statistics at one moment (:mod:`scoring.sitestream`).

    ``availability`` is the fraction of availability probes in the last 30 days that found the
    site up (``None`` before any probe); ``ttfb_p95`` the 95th percentile of time to first byte
    in seconds over the same stream; ``content_anomaly`` whether the page structure currently
    deviates from what the site usually serves (an *unconfirmed* anomaly);
    ``unreachable_since`` when the current run of failed probes began (``None`` if up)."""

    observations: int = 0
    availability: float | None = None
    ttfb_p95: float | None = None
    content_anomaly: bool = False
    anomaly_score: float = 0.0
    unreachable_since: datetime | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "observations": self.observations,
            "availability": self.availability,
            "ttfb_p95": self.ttfb_p95,
            "content_anomaly": self.content_anomaly,
            "anomaly_score": self.anomaly_score,
            "unreachable_since": _time(self.unreachable_since),
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class SiteInput:
    """One site of a provider as scoring sees it. ``importance`` is TNM-1's aggregation weight:
    3 the primary site, 2 a transaction portal, 1 any other. ``blocklisted`` is whether the
    site's name is on a configured blocklist (False when none is configured)."""

    domain: str
    importance: int
    findings: tuple[FindingState, ...] = ()
    streams: StreamStats | None = None
    blocklisted: bool = False
    blocklist_evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IncidentRecord:
    """An incident of a provider. ``resolved`` is None while active. ``dismissed`` incidents
    (an alert marked false positive) count nothing, retroactively."""

    id: str
    kind: IncidentKind
    started: datetime
    resolved: datetime | None = None
    site: str | None = None
    dismissed: bool = False
    summary: str = ""


@dataclass(frozen=True)
class Penalty:
    """What one incident costs at the rating's time."""

    incident: str
    kind: IncidentKind
    points: float
    base: float
    factor: float  # 1.5 for a repeat compromise within 365 days, else 1
    active: bool
    cap: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "kind": self.kind.value,
            "points": self.points,
            "base": self.base,
            "factor": self.factor,
            "active": self.active,
            "cap": self.cap,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AppliedCap:
    """A cap in force: the highest grade allowed, why, and what triggered it (a check id or an
    incident id), on which site."""

    grade: str
    reason: str
    source: str
    site: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "grade": self.grade,
            "reason": self.reason,
            "source": self.source,
            "site": self.site,
        }


@dataclass(frozen=True)
class Explanation:
    """TNM-1's explanation record, one per finding."""

    check: str
    status: str
    expectation: str
    category: Category
    points_lost: float
    cap: str | None
    evidence: Mapping[str, Any]
    first_seen: datetime | None
    last_verified: datetime | None
    confirmations: int
    recommendation: str
    references: tuple[str, ...]
    methodology: str
    site: str | None = None
    pending: bool = False  # a worse observation awaits confirmation (not counted yet)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "expectation": self.expectation,
            "category": self.category.value,
            "points_lost": self.points_lost,
            "cap": self.cap,
            "evidence": dict(self.evidence),
            "first_seen": _time(self.first_seen),
            "last_verified": _time(self.last_verified),
            "confirmations": self.confirmations,
            "recommendation": self.recommendation,
            "references": list(self.references),
            "methodology": self.methodology,
            "site": self.site,
            "pending": self.pending,
        }


@dataclass(frozen=True)
class SiteRating:
    """One site's posture: category points, the caps its findings trigger, its findings."""

    domain: str
    importance: int
    posture: float
    categories: Mapping[Category, float]
    caps: tuple[AppliedCap, ...]
    findings: tuple[Explanation, ...]
    testable: float  # fraction of the 100 posture points that could be tested
    weight: float = 0.0  # its weight in the provider's aggregate

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "importance": self.importance,
            "posture": self.posture,
            "categories": {c.value: p for c, p in self.categories.items()},
            "caps": [c.to_json() for c in self.caps],
            "findings": [f.to_json() for f in self.findings],
            "testable": self.testable,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class Rating:
    """A provider's rating at one time.

    ``grade`` is a band letter (A+, A, B, C, D, F), or :data:`NOT_RATED` / :data:`PROVISIONAL`.
    ``score`` is rounded to one decimal (None when nothing could be tested). ``warning`` is set
    while an incident that caps the grade at F is active (the badge shows it)."""

    provider: str
    computed_at: datetime
    methodology: str
    status: RatingStatus
    grade: str
    score: float | None
    band: str | None  # the grade the score alone would earn (after hysteresis)
    posture: float | None
    categories: Mapping[Category, float]
    caps: tuple[AppliedCap, ...]
    penalties: tuple[Penalty, ...]
    findings: tuple[Explanation, ...]
    sites: tuple[SiteRating, ...]
    a_plus_eligible: bool
    warning: bool
    reason: str = ""  # why Not rated / Provisional
    last_scanned: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "computed_at": utc(self.computed_at),
            "methodology": self.methodology,
            "status": self.status.value,
            "grade": self.grade,
            "score": self.score,
            "band": self.band,
            "posture": self.posture,
            "categories": {c.value: p for c, p in self.categories.items()},
            "caps": [c.to_json() for c in self.caps],
            "penalties": [p.to_json() for p in self.penalties],
            "findings": [f.to_json() for f in self.findings],
            "sites": [s.to_json() for s in self.sites],
            "a_plus_eligible": self.a_plus_eligible,
            "warning": self.warning,
            "reason": self.reason,
            "last_scanned": _time(self.last_scanned),
        }
