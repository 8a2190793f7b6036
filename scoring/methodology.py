"""The published methodology, generated from the table the scorer reads
(:data:`scoring.trust.METHODOLOGY`), so the page can never disagree with the code.

:func:`methodology_document` is the whole table as plain JSON values (the public API serves
it); :func:`render_markdown` is the page people read (``scoring/METHODOLOGY.md`` is its
committed copy, and a test fails when that copy is stale).

>>> from scoring.trust import METHODOLOGY
>>> methodology_document(METHODOLOGY)["version"]
'TNM-1'
>>> render_markdown(METHODOLOGY).splitlines()[0]
'# TrustWatch trust-rating methodology TNM-1'
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Final

from scoring.trust_table import Methodology, ScoredCheck, Step

__all__ = ["methodology_document", "render_markdown"]

_DAY_SECONDS: Final = 86400


def _plain(value: Any) -> Any:
    """A JSON value: dataclasses as objects, enums as their values, durations in seconds."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def methodology_document(table: Methodology) -> dict[str, Any]:
    """Every row and number of ``table`` as JSON values (durations in seconds)."""
    document: dict[str, Any] = _plain(table)
    return document


def _n(value: float) -> str:
    return f"{value:g}"


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds % _DAY_SECONDS == 0:
        days = int(seconds // _DAY_SECONDS)
        return f"{days} day" + ("s" if days != 1 else "")
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{_n(seconds / 60)} min"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _earns(item: ScoredCheck) -> str:
    what = "status" if item.reads == "status" else f"`{item.reads}`"
    pairs = ", ".join(f"{value} {_n(points)}" for value, points in item.earns)
    guard = "; a failed check earns 0" if item.fail_earns_nothing else ""
    return f"by {what}: {pairs}; otherwise 0{guard}"


def _steps(steps: Iterable[Step], unit: str, scale: float = 1) -> str:
    parts = [
        f"{'>' if s.strict else '≥'} {_n(s.bound * scale)}{unit}: {_n(s.points)}" for s in steps
    ]
    return ", ".join(parts) + "; otherwise 0"


def _scored_rows(items: Iterable[ScoredCheck]) -> list[list[object]]:
    return [[i.key, f"`{i.check}`", _n(i.points), i.expectation, _earns(i)] for i in items]


def _score(t: Methodology) -> list[str]:
    lines = [
        "## Score",
        "",
        "`posture = T + H + D + X + R + G` (0-100); "
        "`score = max(0, posture - sum of incident penalties)`, rounded to "
        f"{t.score_decimals} decimal; `grade = min(band(score), every cap in force)`.",
        "",
    ]
    lines += _table(
        ("category", "name", "points"),
        ((c.category.value, c.name, _n(c.points)) for c in t.categories),
    )
    lines += [
        "**Not testable is not failed.** A check that could not run (`error`: a timeout, a WAF "
        "challenge) or was never observed loses no points and earns none: it leaves both what "
        "was earned and what could be earned. The posture is the tested part scaled to 100 "
        "(`100 · earned / testable`). In H and X, which subtract from a start value, each "
        "check counts for its largest deduction, and the tested share of those scales the "
        "category. A check that does not apply (`not_applicable`, e.g. DNS for a site given "
        "as an IP address) is left out. A site without HTTPS loses the T points its TLS "
        "checks could not test.",
        "",
    ]
    return lines


def _categories(t: Methodology) -> list[str]:
    header = ("item", "check", "points", "passes when", "how")
    tls = t.tls
    expiry = tls.expiry
    rows = _scored_rows((tls.grade,))
    rows.append(
        [
            expiry.key,
            f"`{expiry.check}`",
            _n(expiry.points),
            expiry.expectation,
            "days left at rating time, worst address: " + _steps(expiry.days, " days"),
        ]
    )
    rows += _scored_rows((tls.names, tls.consistency))
    lines = ["## T - TLS & certificates", "", *_table(header, rows)]
    h = t.http
    lines += [
        "## H - HTTP security",
        "",
        f"`H = {_n(h.points)} · max(0, {_n(h.start)} + sum of negative Observatory-v6 "
        f"modifiers) / {_n(h.start)}`; bonuses do not count. A finding's points lost are "
        f"`{_n(h.points)} · abs(modifier) / {_n(h.start)}`.",
        "",
        *_table(
            ("check", "worst modifier", "passes when"),
            ((f"`{c.check}`", c.worst, c.expectation) for c in h.checks),
        ),
        "## D - DNS & e-mail",
        "",
        *_table(header, _scored_rows(t.dns)),
    ]
    x = t.exposure
    lines += [
        "## X - exposure & hygiene",
        "",
        f"Start at {_n(x.points)}, subtract each deduction, never below 0.",
        "",
        *_table(
            ("item", "check", "deduction", "passes when"),
            (
                (
                    d.key,
                    f"`{d.check}`",
                    f"-{_n(d.points)}" + (f" per `{d.per}`" if d.per else ""),
                    d.expectation,
                )
                for d in x.deductions
            ),
        ),
    ]
    return lines + _reputation(t) + _disclosure(t)


def _reputation(t: Methodology) -> list[str]:
    r = t.reputation
    expected = {check: text for check, text, _ in r.expectations}
    rows = [
        (
            "R1",
            f"`{r.blocklist_check}`",
            _n(r.blocklist_points),
            expected[r.blocklist_check],
            "the site's blocklist status",
        ),
        (
            "R2",
            f"`{r.availability_check}`",
            _n(r.availability[0].points),
            expected[r.availability_check],
            f"{r.window_days}-day availability: " + _steps(r.availability, " %", 100),
        ),
        (
            "R3",
            f"`{r.ttfb_check}`",
            _n(r.ttfb_points),
            expected[r.ttfb_check],
            f"p95 time to first byte ≤ {_n(r.ttfb_limit_seconds)} s",
        ),
        (
            "R4",
            f"`{r.integrity_check}`",
            _n(r.integrity_points),
            expected[r.integrity_check],
            f"clean {_n(r.integrity_points)}; suspected but unconfirmed (one observation, a "
            f"pending one, or a page-structure anomaly) {_n(r.integrity_unconfirmed_points)}; "
            f"confirmed by {r.integrity_confirmations} observations 0",
        ),
    ]
    return [
        "## R - reputation, availability, integrity",
        "",
        "R2 and R3 come from the site's probe streams; without any probe yet they are not "
        "testable.",
        "",
        *_table(("item", "source", "points", "passes when", "how"), rows),
    ]


def _disclosure(t: Methodology) -> list[str]:
    d = t.disclosure
    return [
        "## G - disclosure",
        "",
        *_table(
            ("item", "check", "points", "passes when", "how"),
            _scored_rows((d.security_txt, d.privacy_policy)),
        ),
    ]


def _caps(t: Methodology) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    for cap in t.finding_caps:
        on = [f"status `{cap.status}`"] if cap.status else []
        on += [f"`{r}`" for r in cap.results]
        on += [f"`{k}` = `{v}`" for k, v in cap.evidence]
        rows.append((cap.reason, f"`{cap.check}`: " + ", ".join(on), cap.grade))
    carry = ", ".join(f"{a} → {b}" for a, b in t.tls_caps.carry)
    left = "; ".join(f"caps starting `{p}` come from `{c}`" for p, c in t.tls_caps.left_to)
    rows.append(
        (
            "the TLS sub-grade's letter and each cap it lists carry over",
            f"`{t.tls_caps.check}`: {carry} ({left})",
            "as mapped",
        )
    )
    for rule in t.incidents.rows:
        if rule.cap is None:
            continue
        when = (
            f"within {_n(rule.cap_days)} days of its start"
            if rule.cap_days is not None
            else "while active" + (", with a warning badge" if rule.warning else "")
        )
        rows.append((f"{rule.name} {when}", "incident", rule.cap))
    rows += [
        (f"a compromise resolved less than {_n(days)} days ago (probation)", "incident", cap)
        for days, cap in t.incidents.probation
    ]
    return [
        "## Caps on the overall grade",
        "",
        "One severe issue caps the grade; an average never hides it. Each trigger is listed "
        "with its reason and source; caps from any site apply, and they are not subject to "
        "hysteresis. A finding caps the grade only once it is counted (confirmed).",
        "",
        *_table(("trigger", "source", "max grade"), rows),
    ]


def _bands(t: Methodology) -> list[str]:
    a = t.a_plus
    rows = [("A+", f"≥ {_n(a.min_score)} and eligible")]
    rows += [(grade, f"≥ {_n(floor)}") for grade, floor in t.bands.bands]
    rows.append((t.bands.lowest, "below"))
    conditions = [
        "no cap at all",
        *(f"{r.text} (`{r.check}` `{r.key}` in {', '.join(r.values)})" for r in a.requirements),
        f"HSTS max-age ≥ {a.hsts_min_seconds} s",
        f"Observatory penalty-only score ≥ {_n(a.observatory_min)} with every HTTP test run",
        f"no incident active or resolved within {_n(a.incident_free_days)} days",
    ]
    n = t.not_rated
    return [
        "## Bands",
        "",
        *_table(("band", "score"), rows),
        "A+ eligibility, on every site: " + "; ".join(conditions) + ".",
        "",
        f"**Hysteresis**: a score must pass a band edge by {_n(t.bands.hysteresis)} point to "
        "leave the previously published band.",
        "",
        f"**Not rated**: more than {_n(n.max_untestable * 100)} % of the points not testable "
        f"(importance-weighted over the sites), every site unreachable for "
        f"{_n(n.unreachable_days)} days, or nothing tested yet. Shown as *Provisional* for the "
        f"first {_n(n.provisional_days)} days after registration.",
        "",
    ]


def _incidents(t: Methodology) -> list[str]:
    i = t.incidents
    rows = [
        (
            r.name,
            _n(r.base),
            f"{_n(r.half_life_days)} days",
            f"{_n(r.max_age_days)} days",
            r.cap or "-",
        )
        for r in i.rows
    ]
    return [
        "## Incidents",
        "",
        "Full penalty `P0` while active; after resolution `P0 · 2^(-t / half-life)` for `t` "
        "days since the resolution, until `t` reaches the max age, then 0. A compromise "
        f"(defacement, injected content, malware, phishing, data breach, DNS hijack) starting "
        f"within {_n(i.repeat_window_days)} days of an earlier one counts "
        f"{_n(i.repeat_factor)} times. A dismissed alert is removed retroactively.",
        "",
        *_table(("incident", "P0", "half-life", "max age", "cap"), rows),
    ]


def _aggregation(t: Methodology) -> list[str]:
    g = t.aggregation
    s = t.stability
    importance = ", ".join(f"{role} {weight}" for role, weight in g.importance)
    return [
        "## Aggregation",
        "",
        f"Every address of a site is scanned (at most {g.max_addresses}); the worst address "
        "counts for T and H. A provider with several sites: the weighted mean of the site "
        f"postures leaning to the weakest, `w = importance · exp(-(s - s_min)² / "
        f"{_n(g.weight_divisor)})` (importance: {importance}); categories use the same "
        "weights.",
        "",
        "## Stability",
        "",
        "A new negative finding counts once a second observation at least as bad arrives "
        f"{_duration(s.confirm_after)} or more after the first, or from another vantage point "
        f"({s.confirm_vantages} in all); until then it is shown as pending. A fix counts at "
        "once. The first observation of a check counts at once (there is no published rating "
        "to protect, and the scheduler rescans within the hour).",
        "",
    ]


def _cadences(t: Methodology) -> list[str]:
    c = t.cadences
    rows = [(f.name, _duration(getattr(c, f.name))) for f in dataclasses.fields(c)]
    return ["## Scan cadences", "", *_table(("area", "every"), rows)]


def render_markdown(table: Methodology) -> str:
    """The methodology page, as Markdown (CommonMark with tables)."""
    lines = [
        f"# TrustWatch trust-rating methodology {table.version}",
        "",
        "Generated from the table in `scoring/trust.py`; every number here is the one the "
        "rating uses. Only what a scanner can verify scores points, every finding shows the "
        "points it costs, the cap it triggers, its evidence and its fix, and what could not "
        "be checked is never counted as a failure.",
        "",
        *_score(table),
        *_categories(table),
        *_caps(table),
        *_bands(table),
        *_incidents(table),
        *_aggregation(table),
        *_cadences(table),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
