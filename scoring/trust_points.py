"""What one observation of one check is worth under the methodology table: the points it
earns or costs, and the caps it triggers, on its own (no site context).

The site scorer (:mod:`scoring.trust_site`) adds the context (what could not be tested, the
streams, pending observations); the confirmation rule (:mod:`scoring.trust_stability`) uses
:func:`severity` to tell a worse observation from a better one.

>>> from datetime import UTC, datetime
>>> from scoring.trust import METHODOLOGY as TNM
>>> at = datetime(2026, 11, 1, tzinfo=UTC)
>>> spf = Observation("dns.spf", "fail", at, {"all": "+", "cap": "B"})
>>> loss(spf, TNM, at), caps_of(spf, TNM)
(3, [('B', 'SPF ends in +all')])
>>> csp = Observation("http.content-security-policy", "fail", at, {}, modifier=-25)
>>> loss(csp, TNM, at), severity(csp, TNM)
(6.25, (0, 6.25, 2))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from scoring.trust_model import Observation
from scoring.trust_table import (
    Deduction,
    ExpiryCheck,
    FindingCap,
    HttpCheck,
    Methodology,
    ScoredCheck,
    step_points,
)
from sensors.wire import parse_time

__all__ = [
    "ERROR",
    "NOT_APPLICABLE",
    "cap_rank",
    "caps_of",
    "deduction_loss",
    "expiry_days",
    "expiry_points",
    "find_deduction",
    "find_http",
    "find_scored",
    "http_loss",
    "loss",
    "scored_points",
    "severity",
    "triggers",
    "worst_cap",
]

ERROR: Final = "error"  # could not check: never a failure
NOT_APPLICABLE: Final = "not_applicable"
DEDUCTING: Final = frozenset({"warn", "fail"})
_STATUS_RANK: Final = {"warn": 1, "fail": 2}  # pass, info and not_applicable rank 0
_SECONDS_PER_DAY: Final = 86400.0


def find_scored(table: Methodology, check: str) -> ScoredCheck | None:
    return next((s for s in table.scored_checks if s.check == check), None)


def find_http(table: Methodology, check: str) -> HttpCheck | None:
    return next((c for c in table.http.checks if c.check == check), None)


def find_deduction(table: Methodology, check: str) -> Deduction | None:
    return next((d for d in table.exposure.deductions if d.check == check), None)


def scored_points(item: ScoredCheck, obs: Observation) -> float:
    """The points ``obs`` earns for ``item`` (0 for anything the table does not list)."""
    if item.fail_earns_nothing and obs.status == "fail":
        return 0
    value = obs.status if item.reads == "status" else obs.evidence.get(item.reads)
    return dict(item.earns).get(str(value), 0) if value is not None else 0


def _addresses(evidence: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The per-address records of a TLS check's evidence (or the evidence itself)."""
    if "days_left" in evidence or "not_after" in evidence:
        yield evidence
    for value in evidence.values():
        if isinstance(value, Mapping) and ("days_left" in value or "not_after" in value):
            yield value


def expiry_days(obs: Observation, now: datetime) -> float | None:
    """Days the certificate has left at ``now`` on the worst address: from ``not_after`` when
    the evidence has it (exact), else ``days_left`` less the time since the observation. A
    certificate not valid yet counts as expired. None when the evidence says neither."""
    days: list[float] = []
    for record in _addresses(obs.evidence):
        not_before = parse_time(record.get("not_before"))
        not_after = parse_time(record.get("not_after"))
        if not_before is not None and not_before > now:
            days.append(-1.0)
        elif not_after is not None:
            days.append((not_after - now).total_seconds() / _SECONDS_PER_DAY)
        elif isinstance(record.get("days_left"), int | float):
            elapsed = (now - obs.observed_at) / timedelta(days=1)
            days.append(float(record["days_left"]) - elapsed)
    return min(days, default=None)


def expiry_points(item: ExpiryCheck, obs: Observation, now: datetime) -> float | None:
    days = expiry_days(obs, now)
    return None if days is None else step_points(item.days, days)


def http_loss(table: Methodology, obs: Observation) -> float:
    """H points lost to one Observatory modifier: 25 * |modifier| / 100 for a negative one."""
    if obs.modifier is None or obs.modifier >= 0:
        return 0
    return table.http.points * -obs.modifier / table.http.start


def deduction_loss(item: Deduction, obs: Observation) -> float:
    """X points a check costs: its deduction when it warns or fails, per service class."""
    if obs.status not in DEDUCTING:
        return 0
    units = 1
    if item.per is not None:
        counted = obs.evidence.get(item.per)
        opened = obs.evidence.get("open")
        if isinstance(counted, int) and counted > 0:
            units = counted
        elif isinstance(opened, Mapping) and opened:
            units = len(opened)
    return item.points * units


def loss(obs: Observation, table: Methodology, now: datetime) -> float:  # noqa: PLR0911 - a return per kind of item
    """The points one observation loses on its own (T2 measured at ``now``)."""
    if obs.status in (ERROR, NOT_APPLICABLE):
        return 0
    if (scored := find_scored(table, obs.check)) is not None:
        return scored.points - scored_points(scored, obs)
    if obs.check == table.tls.expiry.check:
        earned = expiry_points(table.tls.expiry, obs, now)
        return 0 if earned is None else table.tls.expiry.points - earned
    if find_http(table, obs.check) is not None:
        return http_loss(table, obs)
    if (deduction := find_deduction(table, obs.check)) is not None:
        return deduction_loss(deduction, obs)
    if obs.check == table.reputation.integrity_check and obs.status in DEDUCTING:
        return table.reputation.integrity_points
    return 0


def triggers(rule: FindingCap, obs: Observation) -> bool:
    if rule.check != obs.check:
        return False
    if rule.status is not None and obs.status == rule.status:
        return True
    if rule.results and obs.evidence.get("result") in rule.results:
        return True
    return any(str(obs.evidence.get(key)) == value for key, value in rule.evidence)


def _tls_caps(obs: Observation, table: Methodology) -> list[tuple[str, str]]:
    """The caps the TLS sub-grade carries over: one per cap it lists, plus its letter when no
    listed cap explains it (a D or E from the score alone)."""
    rules = table.tls_caps
    carry = dict(rules.carry)
    listed = [str(c) for c in obs.evidence.get("caps") or () if isinstance(c, str)]
    out: list[tuple[str, str]] = []
    strictest = ""
    for cap in listed:
        mapped = carry.get(cap.split(":", 1)[0].strip())
        if mapped is None:
            continue
        strictest = worst_cap(table, strictest, mapped)
        if not any(cap.startswith(prefix) for prefix, _ in rules.left_to):
            out.append((mapped, f"TLS sub-grade cap {cap}"))
    letter = obs.evidence.get("grade")
    mapped_letter = carry.get(str(letter)) if letter is not None else None
    if mapped_letter is not None and worst_cap(table, strictest, mapped_letter) != strictest:
        out.append((mapped_letter, f"TLS sub-grade {letter}"))
    return out


def caps_of(obs: Observation, table: Methodology) -> list[tuple[str, str]]:
    """``(grade, reason)`` of every cap ``obs`` triggers on its own."""
    if obs.status in (ERROR, NOT_APPLICABLE):
        return []
    out = [(r.grade, r.reason) for r in table.finding_caps if triggers(r, obs)]
    if obs.check == table.tls_caps.check:
        out += _tls_caps(obs, table)
    return out


def cap_rank(table: Methodology, grade: str) -> int:
    """0 for no cap (""), then 1 for A up to F: higher is stricter."""
    return 0 if not grade else table.bands.order.index(grade)


def worst_cap(table: Methodology, *grades: str) -> str:
    """The strictest of ``grades`` ("" is no cap)."""
    return max(grades, key=lambda g: cap_rank(table, g), default="")


def severity(obs: Observation, table: Methodology) -> tuple[int, float, int]:
    """How bad one observation is on its own: (strictest cap, points lost, status rank);
    larger is worse. Expiry is measured at the observation's own time."""
    cap = worst_cap(table, *(grade for grade, _ in caps_of(obs, table)))
    return (
        cap_rank(table, cap),
        loss(obs, table, obs.observed_at),
        _STATUS_RANK.get(obs.status, 0),
    )
