"""TNM-1's explanation records: one per finding of a site that costs points, triggers a cap,
waits for confirmation, warns or fails, or could not be tested. Passing findings are not
listed (the published page shows what is wrong and how to fix it).

A *pending* record shows the observation that awaits confirmation (its status, evidence and
fix) with ``pending`` set; its ``points_lost`` and ``cap`` are those of the result still
counted, since a pending observation costs nothing yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from scoring.trust_facts import SiteFacts, integrity_points, stream_points
from scoring.trust_model import AppliedCap, Category, Explanation, SiteInput
from scoring.trust_points import ERROR, loss, worst_cap
from scoring.trust_table import Methodology

__all__ = ["explain"]

_DECIMALS: Final = 2
_UNTESTED: Final = (
    "Could not check: make sure the scanner can reach the site. Until it can, this check is "
    "left out of the score (neither lost nor earned)."
)
_NO_HTTPS: Final = "Serve the site over HTTPS with a publicly trusted certificate."
_SHOWN: Final = frozenset({"warn", "fail"})


@dataclass(frozen=True)
class _Entry:
    check: str
    category: Category
    expectation: str
    recommendation: str
    needed: bool  # a scored check: never observed or only errors means "not testable"


def _catalogue(table: Methodology) -> Iterator[_Entry]:
    """Every check the table knows, in category order."""
    t = table.tls
    for item in (t.grade, t.expiry, t.names, t.consistency):
        yield _Entry(item.check, Category.T, item.expectation, item.recommendation, True)
    for note in table.notes:
        if note.category is Category.T:
            yield _Entry(note.check, note.category, note.expectation, "", False)
    for http in table.http.checks:
        yield _Entry(http.check, Category.H, http.expectation, table.http.recommendation, True)
    for dns in table.dns:
        yield _Entry(dns.check, Category.D, dns.expectation, dns.recommendation, True)
    for d in table.exposure.deductions:
        yield _Entry(d.check, Category.X, d.expectation, d.recommendation, True)
    r = table.reputation
    for check, expectation, recommendation in r.expectations:
        if check == r.integrity_check:
            yield _Entry(check, Category.R, expectation, recommendation, True)
    for note in table.notes:
        if note.category is not Category.T:
            yield _Entry(note.check, note.category, note.expectation, "", False)
    for g in (table.disclosure.security_txt, table.disclosure.privacy_policy):
        yield _Entry(g.check, Category.G, g.expectation, g.recommendation, True)


def _lost(check: str, site: SiteInput, f: SiteFacts, now: datetime, table: Methodology) -> float:
    """Points the counted result of ``check`` loses on this site: as on its own
    (:func:`scoring.trust_points.loss`), except content integrity, which also reads the
    confirmations, the pending observation and the streams."""
    obs = f.counted(check)
    if obs is None:
        return 0
    if check == table.reputation.integrity_check:
        earned = integrity_points(site, f, table)
        return 0 if earned is None else table.reputation.integrity_points - earned
    return loss(obs, table, now)


def _record(
    entry: _Entry,
    site: SiteInput,
    f: SiteFacts,
    caps: tuple[AppliedCap, ...],
    now: datetime,
    table: Methodology,
) -> Explanation | None:
    state = f.states.get(entry.check)
    lost_without_https = entry.category is Category.T and entry.needed and f.no_https
    untested = state is None or state.counted.status == ERROR
    if untested and lost_without_https:
        points = next(
            (
                i.points
                for i in (table.tls.grade, table.tls.expiry, table.tls.names, table.tls.consistency)
                if i.check == entry.check
            ),
            0.0,
        )
        evidence = {"https": False, "source": table.http.hsts_check}
        return _explanation(entry, site, table, "fail", points, None, evidence, _NO_HTTPS)
    if state is None:
        if not entry.needed:
            return None
        return _explanation(
            entry, site, table, ERROR, 0, None, {"error": "not observed yet"}, _UNTESTED
        )
    lost = _lost(entry.check, site, f, now, table)
    cap = worst_cap(table, *(c.grade for c in caps if c.source == entry.check)) or None
    obs = state.counted
    listed = (
        obs.status in _SHOWN
        or lost > 0
        or cap is not None
        or state.pending is not None
        or (obs.status == ERROR and entry.needed)
    )
    if not listed:
        return None
    shown = state.pending or obs
    advice = shown.advice or (_UNTESTED if shown.status == ERROR else entry.recommendation)
    return Explanation(
        check=entry.check,
        status=shown.status,
        expectation=entry.expectation,
        category=entry.category,
        points_lost=round(lost, _DECIMALS),
        cap=cap,
        evidence=shown.evidence,
        first_seen=state.first_seen,
        last_verified=state.last_verified,
        confirmations=state.confirmations,
        recommendation=advice,
        references=shown.references,
        methodology=table.version,
        site=site.domain,
        pending=state.pending is not None,
    )


def _explanation(
    entry: _Entry,
    site: SiteInput,
    table: Methodology,
    status: str,
    lost: float,
    confirmations: int | None,
    evidence: dict[str, Any],
    recommendation: str,
) -> Explanation:
    return Explanation(
        check=entry.check,
        status=status,
        expectation=entry.expectation,
        category=entry.category,
        points_lost=round(lost, _DECIMALS),
        cap=None,
        evidence=evidence,
        first_seen=None,
        last_verified=None,
        confirmations=confirmations or 0,
        recommendation=recommendation,
        references=(),
        methodology=table.version,
        site=site.domain,
    )


def _streams(site: SiteInput, table: Methodology) -> Iterator[Explanation]:
    """R1-R3, which come from the site's settings and streams rather than a check."""
    r = table.reputation
    entries = {check: (expectation, rec) for check, expectation, rec in r.expectations}

    def entry(check: str) -> _Entry:
        expectation, recommendation = entries[check]
        return _Entry(check, Category.R, expectation, recommendation, True)

    if site.blocklisted:
        yield _explanation(
            entry(r.blocklist_check),
            site,
            table,
            "fail",
            r.blocklist_points,
            None,
            dict(site.blocklist_evidence),
            entries[r.blocklist_check][1],
        )
    streams = site.streams
    measured = 0 if streams is None else streams.observations
    availability, ttfb = stream_points(streams, table)
    rows = (
        (r.availability_check, availability, r.availability[0].points, "availability"),
        (r.ttfb_check, ttfb, r.ttfb_points, "ttfb_p95"),
    )
    for check, earned, points, key in rows:
        if earned is None:
            evidence = {"error": "no measurement in the window yet", "observations": measured}
            yield _explanation(entry(check), site, table, ERROR, 0, measured, evidence, _UNTESTED)
        elif earned < points:
            value = getattr(streams, key)
            evidence = {key: value, "observations": measured, "window_days": r.window_days}
            if key == "ttfb_p95":
                evidence["limit_seconds"] = r.ttfb_limit_seconds
            status = "warn" if earned > 0 else "fail"
            yield _explanation(
                entry(check),
                site,
                table,
                status,
                points - earned,
                measured,
                evidence,
                entries[check][1],
            )


def explain(
    site: SiteInput,
    f: SiteFacts,
    caps: tuple[AppliedCap, ...],
    now: datetime,
    table: Methodology,
) -> tuple[Explanation, ...]:
    """The site's explanation records, in category order, then any check the table does not
    know that warned or failed (so a new scanner check is never silently dropped)."""
    out: list[Explanation] = []
    known: set[str] = set()
    for entry in _catalogue(table):
        known.add(entry.check)
        if entry.check == table.reputation.integrity_check:
            out += _streams(site, table)
        record = _record(entry, site, f, caps, now, table)
        if record is not None:
            out.append(record)
    for check, state in f.states.items():
        category = table.category_of(check)
        if check in known or category is None or state.counted.status not in _SHOWN:
            continue
        entry = _Entry(check, category, "the check passes", "", False)
        record = _record(entry, site, f, caps, now, table)
        if record is not None:
            out.append(record)
    return tuple(out)
