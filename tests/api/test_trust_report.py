"""The trust report: its three tables from synthetic rows, CSV and HTML, and the command."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from api.providers import NewProvider, Site, SiteRole
from api.store import SqliteStore
from api.store.protocol_trust import RatingPoint, StoredRating
from api.trust_report import GRADE_COLUMNS, build_trust_report

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
DAY = timedelta(days=1)
# The installed console script, as an operator runs it; `python -m api.cli` where there is none.
_SCRIPT = shutil.which("trustwatch", path=str(Path(sys.executable).parent))
TRUSTWATCH = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "api.cli"]


def finding(check: str, points_lost: float, cap: str | None = None, **more: Any) -> dict[str, Any]:
    return {"check": check, "points_lost": points_lost, "cap": cap, **more}


def stored(
    provider: str,
    agency: str,
    grade: str,
    score: float | None,
    *,
    status: str = "rated",
    findings: Sequence[dict[str, Any]] = (),
    name: str | None = None,
    doc: bytes | None = None,
) -> StoredRating:
    body = {"methodology": "TNM-1", "grade": grade, "score": score, "findings": list(findings)}
    return StoredRating(
        provider=provider,
        name=name or provider.title(),
        agency=agency,
        level=3,
        status=status,
        grade=grade,
        score=score,
        warning=False,
        computed_at=NOW,
        doc=orjson.dumps(body) if doc is None else doc,
    )


def point(provider: str, days_ago: float, grade: str, score: float | None) -> RatingPoint:
    status = "rated" if score is not None else "not_rated"
    return RatingPoint(provider, NOW - days_ago * DAY, status, grade, score)


def at(days_ago: int) -> str:
    """A history point's time as the report shows it."""
    return (NOW - days_ago * DAY).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def test_grades_by_agency_count_every_current_rating() -> None:
    current = [
        stored("mof-portal", "Ministry of Finance", "A+", 97.0),
        stored("mof-tax", "Ministry of Finance", "B", 74.5),
        stored("mof-customs", "Ministry of Finance", "B", 71.0),
        stored("mof-new", "Ministry of Finance", "Provisional", None, status="provisional"),
        stored("health-main", "Health Agency", "F", 53.0),
        stored("health-old", "Health Agency", "Not rated", None, status="not_rated"),
    ]
    expected = pd.DataFrame(
        [[0, 0, 0, 0, 0, 1, 0, 1, 2], [1, 0, 2, 0, 0, 0, 1, 0, 4]],
        index=pd.Index(["Health Agency", "Ministry of Finance"], name="agency", dtype="str"),
        columns=[*GRADE_COLUMNS, "total"],
        dtype="int64",
    )
    report = build_trust_report(current, [], NOW)
    pd.testing.assert_frame_equal(expected, report.grades)
    assert ("TNM-1", 6, 4, 0) == (
        report.methodology,
        report.providers,
        report.rated,
        report.unreadable,
    )


def test_a_grade_the_report_does_not_know_gets_its_own_column() -> None:
    report = build_trust_report([stored("p", "Agency", "E", 20.0)], [], NOW)
    assert [*GRADE_COLUMNS, "E", "total"] == list(report.grades.columns)
    assert [0, 0, 0, 0, 0, 0, 0, 0, 1, 1] == report.grades.loc["Agency"].tolist()


def test_movers_compare_the_current_score_with_the_first_point_in_the_window() -> None:
    current = [
        stored("rising", "A", "B", 80.9, name="Rising portal"),
        stored("falling", "B", "F", 53.0),
        stored("nudged", "A", "A", 88.0),
        stored("steady", "A", "A", 90.0),
        stored("unrated-now", "A", "Not rated", None, status="not_rated"),
        stored("late-first", "A", "C", 60.0),
        stored("old-only", "A", "D", 45.0),
    ]
    history = [
        point("rising", 29, "C", 57.2),
        point("rising", 10, "C", 65.0),
        point("falling", 20, "A", 91.8),
        point("falling", 31, "A+", 99.0),  # before the window: not the baseline
        point("nudged", 5, "A", 87.0),
        point("steady", 3, "A", 90.0),
        point("unrated-now", 3, "B", 75.0),
        point("late-first", 12, "Not rated", None),  # no score: the next point is the baseline
        point("late-first", 2, "C", 58.5),
        point("old-only", 45, "B", 70.0),
        point("nudged", -1, "A", 10.0),  # after now (a skewed clock): ignored
    ]
    columns = [
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
    ]
    expected = pd.DataFrame(
        [
            ("up", "rising", "Rising portal", "A", at(29), 57.2, 80.9, 23.7, "C", "B"),
            ("up", "late-first", "Late-First", "A", at(2), 58.5, 60.0, 1.5, "C", "C"),
            ("up", "nudged", "Nudged", "A", at(5), 87.0, 88.0, 1.0, "A", "A"),
            ("down", "falling", "Falling", "B", at(20), 91.8, 53.0, -38.8, "A", "F"),
        ],
        columns=columns,
    )
    report = build_trust_report(current, history, NOW)
    pd.testing.assert_frame_equal(expected, report.movers)
    top_one = build_trust_report(current, history, NOW, top=1)
    assert [("up", "rising"), ("down", "falling")] == list(
        zip(top_one.movers["direction"], top_one.movers["provider"], strict=True)
    )
    week = build_trust_report(current, history, NOW, days=7)
    assert ["late-first", "nudged"] == week.movers["provider"].tolist()


def test_failed_checks_count_rated_providers_with_a_counted_failing_finding() -> None:
    current = [
        stored(
            "p1",
            "A",
            "C",
            60.0,
            findings=[
                finding("http.csp", 6.25, site="www.p1.example"),
                finding("http.csp", 6.25, site="pay.p1.example"),  # counts once per provider
                finding("exposure.rdp", 8.0, "C"),
                finding("dns.dnssec", 0.0, "C"),  # a cap alone is a failure
                finding("tls.protocols", 0.0),  # neither points nor cap: not a failure
            ],
        ),
        stored(
            "p2",
            "B",
            "B",
            75.0,
            findings=[
                finding("http.csp", 6.25),
                finding("dns.dmarc", 4.0, pending=True),  # not confirmed: not counted yet
            ],
        ),
        stored("p3", "B", "A", 90.0, findings=[]),
        stored(
            "p4",
            "B",
            "Provisional",
            None,
            status="provisional",
            findings=[finding("http.csp", 25.0)],  # not rated: not in the share either
        ),
        stored("p5", "C", "B", 72.0, doc=b"not json"),
    ]
    expected = pd.DataFrame(
        [["http.csp", 2, 0.5], ["dns.dnssec", 1, 0.25], ["exposure.rdp", 1, 0.25]],
        columns=["check", "providers", "share"],
    )
    report = build_trust_report(current, [], NOW)
    pd.testing.assert_frame_equal(expected, report.failed_checks)
    assert (4, 1, "TNM-1") == (report.rated, report.unreadable, report.methodology)
    limited = build_trust_report(current, [], NOW, top_checks=1)
    assert ["http.csp"] == limited.failed_checks["check"].tolist()


def test_an_empty_store_gives_empty_tables() -> None:
    report = build_trust_report([], [], NOW)
    assert (0, 0, 0, "", (0, 9)) == (
        len(report.movers),
        len(report.failed_checks),
        report.providers,
        report.methodology,
        report.grades.shape,
    )
    assert "<p>None.</p>" in report.to_html()
    assert pd.read_csv(io.StringIO(report.to_csv()))["section"].tolist() == ["report"]


@pytest.mark.parametrize(
    ("days", "top", "message"),
    [
        (0, 10, "days must be from 1 to 3650, not 0"),
        (3651, 10, "days must be from 1 to 3650, not 3651"),
        (30, 0, "top and top_checks must be at least 1"),
    ],
)
def test_unusable_windows_are_refused(days: int, top: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        build_trust_report([], [], NOW, days=days, top=top)


def sample() -> tuple[list[StoredRating], list[RatingPoint]]:
    current = [
        stored("mof", "Ministry of Finance", "B", 74.0, findings=[finding("http.hsts", 5.0)]),
        stored("moh", "NA", "A", 86.0),  # pandas reads "NA" as missing unless told not to
        stored("evil", '=HYPERLINK("http://x")', "C", 56.0, name="<script>alert(1)</script>"),
    ]
    history = [point("mof", 5, "C", 60.0), point("evil", 5, "B", 70.0)]
    return current, history


def section(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    part = frame[frame["section"] == name].drop(columns="section").dropna(axis=1, how="all")
    return part.reset_index(drop=True)


def test_the_csv_loads_back_with_pandas_section_by_section() -> None:
    current, history = sample()
    report = build_trust_report(current, history, NOW)
    loaded = pd.read_csv(io.StringIO(report.to_csv()), keep_default_na=False, na_values=[""])
    grades = section(loaded, "grades").set_index("agency")
    assert ["report", "grades", "grades", "grades", "movers", "movers", "failed_checks"] == (
        loaded["section"].tolist()
    )
    # A text a spreadsheet would run as a formula is defused with a leading quote.
    assert ['\'=HYPERLINK("http://x")', "Ministry of Finance", "NA"] == (grades.index.tolist())
    pd.testing.assert_frame_equal(
        report.grades.set_axis(grades.index).astype("float64"), grades.astype("float64")
    )
    movers = section(loaded, "movers")
    assert report.movers.drop(columns="agency").to_dict("records") == movers.drop(
        columns="agency"
    ).to_dict("records")
    assert report.failed_checks.to_dict("records") == section(loaded, "failed_checks").to_dict(
        "records"
    )
    assert [
        {
            "generated_at": "2026-11-23T12:00:00.000000Z",
            "days": 30.0,
            "methodology": "TNM-1",
            "providers": 3.0,
            "rated": 3.0,
            "unreadable": 0.0,
        }
    ] == section(loaded, "report").to_dict("records")


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_page_is_standalone_and_escapes_every_value() -> None:
    current, history = sample()
    page = build_trust_report(current, history, NOW).to_html()
    parsed = Tags()
    parsed.feed(page)
    page_tags = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p"}
    table_tags = {"table", "thead", "tbody", "tr", "th", "td"}
    assert (True, 3, page_tags | table_tags) == (
        page.startswith('<!DOCTYPE html>\n<html lang="en">'),
        parsed.tags.count("table"),
        set(parsed.tags),
    )
    assert set() == parsed.attributes & {"src", "href", "srcset", "onload", "onerror"}
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text  # shown as text, not run
    assert "Generated 2026-11-23T12:00:00.000000Z · methodology TNM-1" in text
    assert "33.3%" in text  # mof's http.hsts: 1 of 3 rated providers


# -- the command --------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    return subprocess.run(
        [*TRUSTWATCH, *args], capture_output=True, text=True, timeout=120, env=clean, check=False
    )


def populate(data_dir: Path) -> None:
    """Two providers rated through the store, as the service stores them."""
    now = datetime.now(UTC)
    store = SqliteStore.open(data_dir / "trustwatch.sqlite3")
    try:
        for pid, agency, domain in (
            ("mof", "Ministry of Finance", "mof.example"),
            ("moh", "Health Agency", "moh.example"),
        ):
            store.add_provider(
                NewProvider(pid, pid.upper(), agency, 3, (Site(domain, SiteRole.PRIMARY),)),
                now - 10 * DAY,
            )
        for rating, days_ago in (
            (stored("mof", "Ministry of Finance", "C", 60.0), 5),
            (stored("mof", "Ministry of Finance", "B", 74.0, findings=[finding("dns.caa", 2)]), 0),
            (stored("moh", "Health Agency", "A", 88.0), 0),
        ):
            at = now - days_ago * DAY
            store.save_rating(dataclasses.replace(rating, computed_at=at), history=True)
    finally:
        store.close()


def test_the_command_writes_csv_and_html(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data)
    csv = run("report", "trust", "--format", "csv", "--data-dir", str(data))
    assert (0, "") == (csv.returncode, csv.stderr)
    loaded = pd.read_csv(io.StringIO(csv.stdout))
    movers = section(loaded, "movers")
    assert [("mof", 60.0, 74.0, 14.0)] == list(
        movers[["provider", "score_before", "score_after", "change"]].itertuples(
            index=False, name=None
        )
    )
    assert [("dns.caa", 1.0, 0.5)] == list(
        section(loaded, "failed_checks")[["check", "providers", "share"]].itertuples(
            index=False, name=None
        )
    )
    out = tmp_path / "report.html"
    written = run(
        "report",
        "trust",
        "--format",
        "html",
        "--days",
        "7",
        "--out",
        str(out),
        "--data-dir",
        str(data),
    )
    assert (0, "", f"trust report (html) of 2 providers written to {out}\n") == (
        written.returncode,
        written.stdout,
        written.stderr,
    )
    assert "movers over 7 days" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "argument --format: invalid choice: 'pdf'"),
        (["--format", "csv", "--days", "0"], "argument --days: '0' is not a whole number"),
        (["--format", "csv", "--days", "4000"], "trustwatch: error: --days: at most 3650\n"),
        (
            ["--format", "csv", "--out", "{tmp}/missing/report.csv"],
            "trustwatch: error: --out: cannot write {tmp}/missing/report.csv: "
            "No such file or directory\n",
        ),
        (["--format", "csv", "--out", "{tmp}"], "trustwatch: error: --out: {tmp} is a directory"),
    ],
)
def test_bad_options_exit_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "data"
    populate(data)
    result = run(
        "report", "trust", *(a.format(tmp=tmp_path) for a in args), "--data-dir", str(data)
    )
    assert (2, True, False) == (
        result.returncode,
        message.format(tmp=tmp_path) in result.stderr,
        "Traceback" in result.stderr,
    )
