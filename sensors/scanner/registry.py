"""The registry of checks, written out: every area, its fetch, its checks in report order,
and the sub-grade it computes. Nothing is discovered; a check runs because it is listed here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sensors.scanner import (
    availability,
    disclosure,
    dnsmail,
    exposure,
    httpsec,
    tls,
    tls_fetch,
    tls_grade,
)
from sensors.scanner.context import ScanContext
from sensors.scanner.result import Area, CheckResult, SubGrade

S = TypeVar("S")


@dataclass(frozen=True)
class AreaSpec(Generic[S]):
    """One area: ``fetch`` does the I/O and returns a snapshot; each check is a pure function
    of the snapshot; ``grade`` (optional) computes the area's compatibility sub-grade from the
    snapshot and the check results."""

    area: Area
    fetch: Callable[[ScanContext], Awaitable[S]]
    checks: tuple[tuple[str, Callable[[S], CheckResult]], ...]
    grade: Callable[[S, tuple[CheckResult, ...]], SubGrade] | None = None
    grade_name: str | None = None


AREAS: tuple[AreaSpec[Any], ...] = (
    AreaSpec(
        Area.TLS,
        tls_fetch.fetch_tls,
        tls.CHECKS,
        tls_grade.grade_ssllabs,
        "tls_ssllabs_compat",
    ),
    AreaSpec(
        Area.HTTP,
        httpsec.fetch_http,
        httpsec.CHECKS,
        httpsec.grade_observatory,
        "http_observatory_compat",
    ),
    AreaSpec(Area.DNS, dnsmail.fetch_dns, dnsmail.CHECKS),
    AreaSpec(Area.EXPOSURE, exposure.fetch_exposure, exposure.CHECKS),
    AreaSpec(Area.AVAILABILITY, availability.fetch_availability, availability.CHECKS),
    AreaSpec(Area.DISCLOSURE, disclosure.fetch_disclosure, disclosure.CHECKS),
)
