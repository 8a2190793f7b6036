"""Incident penalties and caps (TNM-1, "Incidents"; principle 5: incidents decay but leave a
trace, and a compromise puts the provider on probation).

An incident costs its full penalty ``P0`` while active, then ``P0 * 2^(-t / half_life)`` for
``t`` days after its resolution, until ``t`` reaches the row's max age; from then on it costs
nothing. A compromise (defacement, injected content, malware, phishing, data breach, DNS
hijack) that *starts* within 365 days of the start of an earlier one costs 1.5 times. A
dismissed incident (an alert marked false positive) counts nothing, retroactively: it is
neither priced nor an "earlier" compromise. An incident that starts after ``now`` is ignored
(a rating can be recomputed for a past moment), and one resolved after ``now`` is active at
``now``.

Caps: an active defacement, injected content, malware, phishing or DNS hijack caps the grade
at F with a warning badge; a data breach caps at C for 30 days from its start; a compromise
resolved less than 30 days ago caps at C, less than 90 days ago at B (probation).

>>> from datetime import UTC, datetime, timedelta
>>> from scoring.trust import METHODOLOGY as TNM
>>> from scoring.trust_model import IncidentKind
>>> now = datetime(2026, 11, 1, tzinfo=UTC)
>>> hit = IncidentRecord("i1", IncidentKind.DEFACEMENT, now - timedelta(days=40),
...                      resolved=now - timedelta(days=30))
>>> [(a.penalty.points, a.penalty.cap) for a in assess([hit], now, TNM)]
[(15.87, 'B')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from scoring.trust_model import AppliedCap, IncidentRecord, Penalty
from scoring.trust_points import worst_cap
from scoring.trust_table import IncidentRule, Methodology

__all__ = ["Assessed", "assess", "recent"]

_DAY: Final = timedelta(days=1)
_DECIMALS: Final = 2  # a penalty is shown to the hundredth; the score uses the exact value


@dataclass(frozen=True)
class Assessed:
    """One incident at one moment: its published penalty, the exact points the score
    subtracts, the cap it triggers (if any) and whether it raises the warning badge."""

    penalty: Penalty
    exact: float
    cap: AppliedCap | None
    warning: bool


def _days(value: float) -> str:
    return f"{round(value, 1):g}"


def _repeat(incident: IncidentRecord, earlier: Sequence[IncidentRecord], m: Methodology) -> bool:
    """Whether ``incident`` is a compromise starting within the window of an earlier one."""
    window = m.incidents.repeat_window_days * _DAY
    return m.incidents.rule(incident.kind).compromise and any(
        m.incidents.rule(e.kind).compromise and incident.started - e.started <= window
        for e in earlier
    )


def _cap(
    incident: IncidentRecord, rule: IncidentRule, active: bool, now: datetime, m: Methodology
) -> tuple[str, str, bool]:
    """(cap or "", why, warning) for one incident at ``now``."""
    found: list[tuple[str, str, bool]] = []
    since_start = (now - incident.started) / _DAY
    if rule.cap is not None:
        if rule.cap_days is not None and since_start < rule.cap_days:
            why = f"{rule.name} within {_days(rule.cap_days)} days of its start"
            found.append((rule.cap, why, False))
        elif rule.cap_days is None and active:
            found.append((rule.cap, f"active {rule.name}", rule.warning))
    if rule.compromise and not active and incident.resolved is not None:
        since = (now - incident.resolved) / _DAY
        for days, cap in m.incidents.probation:
            if since < days:
                why = f"{rule.name} resolved less than {_days(days)} days ago (probation)"
                found.append((cap, why, False))
                break
    if not found:
        return "", "", False
    strictest = worst_cap(m, *(cap for cap, _, _ in found))
    return next(f for f in found if f[0] == strictest)


def assess(incidents: Sequence[IncidentRecord], now: datetime, m: Methodology) -> list[Assessed]:
    """Every incident that costs points or caps the grade at ``now``, oldest first."""
    live = sorted(
        (i for i in incidents if not i.dismissed and i.started <= now),
        key=lambda i: (i.started, i.id),
    )
    out: list[Assessed] = []
    for index, incident in enumerate(live):
        rule = m.incidents.rule(incident.kind)
        factor = m.incidents.repeat_factor if _repeat(incident, live[:index], m) else 1.0
        active = incident.resolved is None or incident.resolved > now
        repeat = f" * {factor:g} (a repeat compromise)" if factor != 1.0 else ""
        if active:
            exact = rule.base * factor
            reason = (
                f"{rule.name} active since {incident.started.date().isoformat()}: full "
                f"penalty {rule.base:g}{repeat}"
            )
        else:
            assert incident.resolved is not None  # noqa: S101 - not active means resolved
            age = (now - incident.resolved) / _DAY
            decayed = 2 ** (-age / rule.half_life_days) if age < rule.max_age_days else 0.0
            exact = rule.base * factor * decayed
            reason = (
                f"{rule.name} resolved {_days(age)} days ago: {rule.base:g} * "
                f"2^(-{_days(age)}/{rule.half_life_days:g}){repeat}"
            )
        cap, why, warning = _cap(incident, rule, active, now, m)
        if exact <= 0 and not cap:
            continue
        applied = AppliedCap(cap, why, incident.id, incident.site) if cap else None
        penalty = Penalty(
            incident=incident.id,
            kind=incident.kind,
            points=round(exact, _DECIMALS),
            base=rule.base,
            factor=factor,
            active=active,
            cap=cap or None,
            reason=reason + (f"; cap {cap}: {why}" if cap else ""),
        )
        out.append(Assessed(penalty, exact, applied, warning))
    return out


def recent(incidents: Sequence[IncidentRecord], now: datetime, days: float) -> bool:
    """Whether any incident that counts was active within ``days`` before ``now``."""
    horizon = now - days * _DAY
    return any(
        not i.dismissed and i.started <= now and (i.resolved is None or i.resolved > horizon)
        for i in incidents
    )
