"""The trust report: where providers stand, who moved, what fails most; as CSV or a page.

Pure over rows the store returns (:meth:`~api.store.protocol_trust.TrustStore.current_ratings`
and :meth:`~api.store.protocol_trust.TrustStore.rating_history_since`), with the time passed
in. Three tables, each a pandas DataFrame:

* ``grades`` -- how many providers of each agency hold each grade (A+ ... F, Provisional,
  Not rated), one row per agency, with a ``total``;
* ``movers`` -- the providers whose score changed most over the last ``days``: the current
  score against the first point of the window, the ``top`` biggest rises and the ``top``
  biggest falls, with the grade before and after (a provider without a score then or now, or
  without a point in the window, is not a mover);
* ``failed_checks`` -- per check id, how many *rated* providers have a counted finding of it
  that loses points or sets a cap (pending, unconfirmed findings do not count), and their
  share of the rated providers.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 11, 23, tzinfo=UTC)
>>> doc = b'{"methodology": "TNM-1", "findings": [{"check": "dns.dmarc", "points_lost": 4}]}'
>>> rated = StoredRating("p1", "Portal", "Ministry", 3, "rated", "B", 74.0, False, now, doc)
>>> report = build_trust_report([rated], [], now)
>>> report.grades.loc["Ministry", ["B", "total"]].tolist()
[1, 1]
>>> report.failed_checks.to_dict("records")
[{'check': 'dns.dmarc', 'providers': 1, 'share': 1.0}]
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import pandas as pd

from api.store.protocol_trust import RatingPoint, StoredRating
from scoring.trust_model import NOT_RATED, PROVISIONAL, RatingStatus
from sensors.wire import utc

__all__ = ["GRADE_COLUMNS", "MAX_DAYS", "TrustReport", "build_trust_report"]

GRADE_COLUMNS: Final = ("A+", "A", "B", "C", "D", "F", PROVISIONAL, NOT_RATED)
MAX_DAYS: Final = 3650
MOVER_COLUMNS: Final = (
    "direction",
    "provider",
    "name",
    "agency",
    "since",
    "score_before",
    "score_after",
    "change",
    "grade_before",
    "grade_after",
)
CHECK_COLUMNS: Final = ("check", "providers", "share")
# A cell a spreadsheet would run as a formula (CSV injection): such texts get a leading "'".
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, eq=False)  # DataFrames compare element by element, not to a bool
class TrustReport:
    """The report's tables and what they were made from. ``methodology`` names the methodology
    versions of the current ratings ("TNM-1"; several, comma-separated, during a change-over);
    ``unreadable`` counts stored rating documents that are not JSON objects (their findings
    are missing from ``failed_checks``)."""

    generated_at: datetime
    days: int
    methodology: str
    providers: int
    rated: int
    unreadable: int
    grades: Any  # pd.DataFrame: index "agency"; columns GRADE_COLUMNS (+ unknown), "total"
    movers: Any  # pd.DataFrame: MOVER_COLUMNS
    failed_checks: Any  # pd.DataFrame: CHECK_COLUMNS

    def summary(self) -> Any:
        """One row: when, over how many days, which methodology, how many providers."""
        return pd.DataFrame(
            [
                {
                    "generated_at": utc(self.generated_at),
                    "days": self.days,
                    "methodology": self.methodology,
                    "providers": self.providers,
                    "rated": self.rated,
                    "unreadable": self.unreadable,
                }
            ]
        )

    def to_csv(self) -> str:
        """One CSV: a ``section`` column (report, grades, movers, failed_checks) and the union
        of the sections' columns, empty where a column is not the section's.

        Read it back with ``pandas.read_csv(io.StringIO(text), keep_default_na=False,
        na_values=[""])`` (without ``keep_default_na=False`` pandas reads an agency named "NA"
        as missing) and select a section with ``df[df.section == "movers"].dropna(axis=1,
        how="all")``. Texts that a spreadsheet would take for a formula start with ``'``.
        """
        sections = {
            "report": self.summary(),
            "grades": self.grades.reset_index(),
            "movers": self.movers,
            "failed_checks": self.failed_checks,
        }
        rows: list[dict[str, Any]] = []
        columns: dict[str, None] = {"section": None}  # the union, in order of appearance
        for name, frame in sections.items():
            columns.update(dict.fromkeys(frame.columns))
            rows.extend(
                {"section": name, **{k: _defuse(v) for k, v in record.items()}}
                for record in frame.to_dict("records")
            )
        # dtype object: counts stay whole numbers beside the other sections' blank cells
        table = pd.DataFrame(rows, columns=list(columns), dtype=object)
        text: str = table.to_csv(index=False, lineterminator="\n")
        return text

    def to_html(self) -> str:
        """A complete page: no scripts, no external resources, every value escaped."""
        title = "TrustWatch trust report"
        facts = (
            f"Generated {utc(self.generated_at)} · methodology {self.methodology or 'n/a'} · "
            f"{self.providers} providers, {self.rated} rated · movers over {self.days} days"
        )
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            # No script or remote resource may load, even if a value slipped through escaping.
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            f"<title>{title}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{title}</h1>",
            f"<p>{html.escape(facts)}</p>",
        ]
        if self.unreadable:
            parts.append(
                f"<p>{self.unreadable} stored rating documents could not be read; their "
                "findings are not counted below.</p>"
            )
        for heading, note, frame, formatters in (
            (
                "Grades by agency",
                "Providers per current grade.",
                self.grades.reset_index(),
                None,
            ),
            (
                "Biggest movers",
                f"Score now against the first rating in the last {self.days} days.",
                self.movers,
                None,
            ),
            (
                "Most common failed checks",
                f"Rated providers ({self.rated}) with a finding that loses points or caps "
                "the grade.",
                self.failed_checks,
                {"share": "{:.1%}".format},
            ),
        ):
            parts.append(f"<h2>{heading}</h2><p>{html.escape(note)}</p>")
            if frame.empty:
                parts.append("<p>None.</p>")
            else:
                table: str = frame.to_html(
                    index=False, escape=True, border=0, na_rep="", formatters=formatters
                )
                parts.append(table)
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}"
    "table{border-collapse:collapse;margin-bottom:1.5rem}"
    "th,td{border:1px solid #c8c8c8;padding:.25rem .6rem;text-align:right}"
    "th{background:#f0f0f0}td:nth-child(-n+2){text-align:left}"
)


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def build_trust_report(
    current: Sequence[StoredRating],
    history: Sequence[RatingPoint],
    now: datetime,
    *,
    days: int = 30,
    top: int = 10,
    top_checks: int = 20,
) -> TrustReport:
    """The report at ``now``: grades of ``current``, movers over the ``days`` before ``now``
    from ``history`` (points outside the window are ignored), and the ``top_checks`` most
    common failed checks."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be from 1 to {MAX_DAYS}, not {days}")
    if top < 1 or top_checks < 1:
        raise ValueError("top and top_checks must be at least 1")
    docs = [_document(rating.doc) for rating in current]
    versions = sorted({str(d["methodology"]) for d in docs if d and d.get("methodology")})
    rated = [
        (rating, doc)
        for rating, doc in zip(current, docs, strict=True)
        if rating.status == RatingStatus.RATED
    ]
    return TrustReport(
        generated_at=now,
        days=days,
        methodology=", ".join(versions),
        providers=len(current),
        rated=len(rated),
        unreadable=sum(1 for d in docs if d is None),
        grades=_grades(current),
        movers=_movers(current, history, now - timedelta(days=days), now, top),
        failed_checks=_failed_checks(rated, top_checks),
    )


def _document(doc: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _grades(current: Iterable[StoredRating]) -> Any:
    by_agency: dict[str, Counter[str]] = {}
    for rating in current:
        by_agency.setdefault(rating.agency, Counter())[rating.grade] += 1
    # A grade this report does not know (a later methodology's) gets its own column, not lost.
    seen = {grade for counts in by_agency.values() for grade in counts}
    columns = [*GRADE_COLUMNS, *sorted(seen - set(GRADE_COLUMNS))]
    agencies = sorted(by_agency)
    rows = [[by_agency[a][g] for g in columns] + [sum(by_agency[a].values())] for a in agencies]
    return pd.DataFrame(
        rows,
        index=pd.Index(agencies, name="agency", dtype="str"),
        columns=[*columns, "total"],
        dtype="int64",
    )


def _movers(
    current: Iterable[StoredRating],
    history: Iterable[RatingPoint],
    start: datetime,
    now: datetime,
    top: int,
) -> Any:
    first: dict[str, RatingPoint] = {}
    for point in sorted(history, key=lambda p: p.at):
        if point.score is not None and start <= point.at <= now:
            first.setdefault(point.provider, point)
    rises: list[dict[str, Any]] = []
    falls: list[dict[str, Any]] = []
    for rating in current:
        before = first.get(rating.provider)
        if before is None or before.score is None or rating.score is None:
            continue
        # Scores carry one decimal; rounding keeps 80.9 - 57.2 from showing as 23.700000000003.
        change = round(rating.score - before.score, 1)
        row = {
            "provider": rating.provider,
            "name": rating.name,
            "agency": rating.agency,
            "since": utc(before.at),
            "score_before": before.score,
            "score_after": rating.score,
            "change": change,
            "grade_before": before.grade,
            "grade_after": rating.grade,
        }
        if change > 0:
            rises.append({"direction": "up", **row})
        elif change < 0:
            falls.append({"direction": "down", **row})
    rises.sort(key=lambda r: (-r["change"], r["provider"]))
    falls.sort(key=lambda r: (r["change"], r["provider"]))
    rows = rises[:top] + falls[:top]
    frame = pd.DataFrame(rows, columns=list(MOVER_COLUMNS))
    return frame.astype({"score_before": "float64", "score_after": "float64", "change": "float64"})


def _failed_checks(rated: Sequence[tuple[StoredRating, dict[str, Any] | None]], top: int) -> Any:
    providers: Counter[str] = Counter()
    for _, doc in rated:
        failing = set()
        findings = doc.get("findings") if doc else None
        for finding in findings if isinstance(findings, list) else ():
            if not isinstance(finding, dict) or finding.get("pending"):
                continue
            check = finding.get("check")
            lost = finding.get("points_lost")
            if isinstance(check, str) and (
                (isinstance(lost, int | float) and lost > 0) or finding.get("cap")
            ):
                failing.add(check)
        providers.update(failing)  # a provider counts once per check, however many sites
    ranked = sorted(providers.items(), key=lambda item: (-item[1], item[0]))[:top]
    rows = [
        {"check": check, "providers": count, "share": round(count / len(rated), 4)}
        for check, count in ranked
    ]
    frame = pd.DataFrame(rows, columns=list(CHECK_COLUMNS))
    return frame.astype({"providers": "int64", "share": "float64"})
