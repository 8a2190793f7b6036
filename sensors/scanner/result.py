"""What a site scan finds: typed, frozen check results, the two compatibility sub-grades, and
the report of one host that holds them.

Statuses are the wire format's :class:`~sensors.wire.CheckStatus`. ``error`` means *could not
check* (a timeout, a refused connection, a time budget spent): it is never a failure, and
scoring treats it as a point not testable. ``not_applicable`` means the check has no object
(no external scripts to check for SRI, no HTTPS to check HSTS on is a *failure*, not this).

>>> r = CheckResult("http.x-content-type-options", Area.HTTP, CheckStatus.FAIL,
...                 "X-Content-Type-Options is missing", {"value": None}, "Send nosniff.")
>>> r.status.value, r.area.value
('fail', 'http')
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sensors.wire import CheckStatus, utc

__all__ = ["Area", "CheckResult", "CheckStatus", "ScanReport", "SubGrade", "worst"]


class Area(enum.StrEnum):
    """The areas of the methodology a check belongs to, in report order."""

    TLS = "tls"
    HTTP = "http"
    DNS = "dns"
    EXPOSURE = "exposure"
    AVAILABILITY = "availability"
    DISCLOSURE = "disclosure"


# Worst first: how statuses combine when one check looks at several endpoints. An error on
# one address and a pass on another is an error: the check is not complete.
_SEVERITY: Final = {
    CheckStatus.FAIL: 0,
    CheckStatus.ERROR: 1,
    CheckStatus.WARN: 2,
    CheckStatus.INFO: 3,
    CheckStatus.PASS: 4,
    CheckStatus.NOT_APPLICABLE: 5,
}


def worst(statuses: Iterable[CheckStatus]) -> CheckStatus:
    """The status that stands for several: fail over error over warn over info over pass.

    >>> worst([CheckStatus.PASS, CheckStatus.WARN]).value
    'warn'
    >>> worst([]).value
    'not_applicable'
    """
    return min(statuses, key=_SEVERITY.__getitem__, default=CheckStatus.NOT_APPLICABLE)


@dataclass(frozen=True)
class CheckResult:
    """One check of one host.

    ``id`` is ``<area>.<name>`` (lower case, e.g. ``tls.protocols``); ``summary`` one line for
    people; ``evidence`` what was observed, JSON-able, at most 64 keys; ``advice`` the fix when
    the status is not ``pass``; ``modifier`` the Observatory-v6 score modifier for HTTP checks
    (``None`` elsewhere).
    """

    id: str
    area: Area
    status: CheckStatus
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    advice: str = ""
    references: tuple[str, ...] = ()
    modifier: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "area": self.area.value,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "advice": self.advice,
        }
        if self.references:
            out["references"] = list(self.references)
        if self.modifier is not None:
            out["modifier"] = self.modifier
        return out


def could_not_check(check_id: str, area: Area, reason: str, **evidence: Any) -> CheckResult:
    """The result of a check that could not run: status ``error``, never a failure."""
    return CheckResult(
        check_id,
        area,
        CheckStatus.ERROR,
        f"could not check: {reason}",
        {"error": reason, **evidence},
    )


@dataclass(frozen=True)
class SubGrade:
    """A compatibility sub-grade published unchanged beside ours: ``tls_ssllabs_compat`` (SSL
    Labs rating guide 2009r) or ``http_observatory_compat`` (Observatory algorithm v6).
    ``grade`` is ``None`` when it could not be computed; ``reason`` then says why."""

    name: str
    grade: str | None
    score: float | None = None
    caps: tuple[str, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "grade": self.grade,
            "score": self.score,
            "caps": list(self.caps),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ScanReport:
    """Everything one scan found out about one host."""

    host: str
    started: datetime
    finished: datetime
    addresses: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    grades: tuple[SubGrade, ...] = ()

    def by_area(self) -> dict[Area, list[CheckResult]]:
        grouped: dict[Area, list[CheckResult]] = {area: [] for area in Area}
        for check in self.checks:
            grouped[check.area].append(check)
        return {area: checks for area, checks in grouped.items() if checks}

    def grade(self, name: str) -> SubGrade | None:
        return next((g for g in self.grades if g.name == name), None)

    def to_record(self, event_id: str) -> dict[str, Any]:
        """The scan as a wire-format scan record (``event.dataset`` ``trustwatch.scan``): every
        check, then each sub-grade as an ``info`` check ``grade.<name>``."""
        checks = [
            {
                "id": c.id,
                "status": c.status.value,
                "summary": c.summary[:2048],
                "evidence": dict(c.evidence),
                "advice": c.advice[:2048],
                **({"modifier": c.modifier} if c.modifier is not None else {}),
                **({"references": list(c.references[:8])} if c.references else {}),
            }
            for c in self.checks
        ]
        checks += [
            {
                "id": f"grade.{g.name}",
                "status": CheckStatus.INFO.value if g.grade else CheckStatus.ERROR.value,
                "summary": f"{g.name}: {g.grade or 'not graded'}",
                "evidence": g.to_json(),
            }
            for g in self.grades
        ]
        return {
            "event.id": event_id,
            "event.dataset": "trustwatch.scan",
            "event.start": utc(self.started),
            "event.end": utc(self.finished),
            "url.domain": self.host,
            "checks": checks,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "started": utc(self.started),
            "finished": utc(self.finished),
            "addresses": list(self.addresses),
            "grades": [g.to_json() for g in self.grades],
            "checks": [c.to_json() for c in self.checks],
        }
