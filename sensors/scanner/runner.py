"""Running a scan: resolve and check the target, run every area's fetch at once within the
host's time budget, then the pure checks on what was fetched, then the sub-grades.

An area whose fetch fails or runs out of time yields ``error`` for each of its checks (could
not check), never ``fail``; a check that raises is a bug, reported as ``error`` and logged,
and does not take the scan down with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import dns.asyncresolver
import dns.exception
import httpx

from sensors.scanner.context import ScanContext
from sensors.scanner.policy import ScanPolicy
from sensors.scanner.registry import AREAS, AreaSpec
from sensors.scanner.result import CheckResult, ScanReport, SubGrade, could_not_check
from sensors.scanner.target import make_resolver, resolve

log = logging.getLogger(__name__)

# What a site or the network can do to a fetch: reported as "could not check", not logged.
_SITE_FAILURES: Final = (
    OSError,
    TimeoutError,
    ValueError,
    httpx.HTTPError,
    dns.exception.DNSException,
)


async def scan_host(
    host: str,
    policy: ScanPolicy,
    *,
    areas: Sequence[AreaSpec[Any]] = AREAS,
    resolver: dns.asyncresolver.Resolver | None = None,
) -> ScanReport:
    """Scan one host. Raises :class:`~sensors.errors.ScanError` only when the scan cannot
    start (not a host name, no address, an address the policy refuses)."""
    resolver = resolver or make_resolver(policy)
    started = datetime.now(UTC)
    target = await resolve(host, policy, resolver)
    async with ScanContext(target, policy, resolver) as context:
        fetches = [asyncio.ensure_future(area.fetch(context)) for area in areas]
        _, pending = await asyncio.wait(fetches, timeout=policy.host_budget)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        checks: list[CheckResult] = []
        grades: list[SubGrade] = []
        for area, task in zip(areas, fetches, strict=True):
            area_checks, grade = _evaluate(area, task, policy.host_budget)
            checks.extend(area_checks)
            if grade is not None:
                grades.append(grade)
    return ScanReport(
        host=target.host,
        started=started,
        finished=datetime.now(UTC),
        addresses=tuple(str(a) for a in target.addresses),
        checks=tuple(checks),
        grades=tuple(grades),
    )


def _evaluate(
    area: AreaSpec[Any], task: asyncio.Future[Any], budget: float
) -> tuple[list[CheckResult], SubGrade | None]:
    if task.cancelled():
        reason = f"the host's time budget ({budget:g} s) ran out"
        return [could_not_check(i, area.area, reason) for i, _ in area.checks], _no_grade(
            area, reason
        )
    problem = task.exception()
    if problem is not None:
        reason = f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__
        if not isinstance(problem, _SITE_FAILURES):  # anything else is a bug of ours
            log.error("the %s fetch failed", area.area.value, exc_info=problem)
        return [could_not_check(i, area.area, reason) for i, _ in area.checks], _no_grade(
            area, reason
        )
    snapshot = task.result()
    results = []
    for check_id, evaluate in area.checks:
        try:
            result = evaluate(snapshot)
        except Exception as exc:  # a bug in one check must not cost the others
            log.exception("check %s failed on %r", check_id, snapshot)
            result = could_not_check(check_id, area.area, f"internal error ({type(exc).__name__})")
        results.append(result)
    grade = None
    if area.grade is not None:
        try:
            grade = area.grade(snapshot, tuple(results))
        except Exception as exc:
            log.exception("grading %s failed", area.area.value)
            grade = _no_grade(area, f"internal error ({type(exc).__name__})")
    return results, grade


def _no_grade(area: AreaSpec[Any], reason: str) -> SubGrade | None:
    return None if area.grade_name is None else SubGrade(area.grade_name, None, reason=reason)


async def scan_hosts(
    hosts: Sequence[str], policy: ScanPolicy, *, concurrency: int = 4
) -> list[ScanReport | Exception]:
    """Scan several hosts, ``concurrency`` at a time; a host that cannot be scanned gives its
    :class:`~sensors.errors.ScanError` in its place."""
    resolver = make_resolver(policy)
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str) -> ScanReport:
        async with gate:
            return await scan_host(host, policy, resolver=resolver)

    results = await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)
    out: list[ScanReport | Exception] = []
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
        out.append(result)
    return out
