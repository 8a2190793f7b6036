"""A scan report as text for people: the findings grouped by area, worst first within each,
then the two compatibility sub-grades. Pure: a report in, a string out."""

from __future__ import annotations

from typing import Final

from sensors.scanner.result import Area, CheckStatus, ScanReport

_MARK: Final = {
    CheckStatus.PASS: "PASS",
    CheckStatus.FAIL: "FAIL",
    CheckStatus.WARN: "WARN",
    CheckStatus.INFO: "INFO",
    CheckStatus.ERROR: "ERR ",
    CheckStatus.NOT_APPLICABLE: "n/a ",
}
_ORDER: Final = {
    CheckStatus.FAIL: 0,
    CheckStatus.WARN: 1,
    CheckStatus.ERROR: 2,
    CheckStatus.INFO: 3,
    CheckStatus.PASS: 4,
    CheckStatus.NOT_APPLICABLE: 5,
}
_TITLE: Final = {
    Area.TLS: "TLS and certificates",
    Area.HTTP: "HTTP security",
    Area.DNS: "DNS and e-mail",
    Area.EXPOSURE: "Exposure",
    Area.AVAILABILITY: "Availability and integrity",
    Area.DISCLOSURE: "Disclosure",
}


def render_text(report: ScanReport) -> str:
    """The report as a terminal shows it (advice indented under each finding that is not a
    pass)."""
    seconds = (report.finished - report.started).total_seconds()
    lines = [
        f"{report.host}  ({', '.join(report.addresses)})  scanned in {seconds:.1f} s",
        "",
    ]
    for area, checks in report.by_area().items():
        counts = {s: sum(1 for c in checks if c.status is s) for s in CheckStatus}
        tally = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        lines.append(f"{_TITLE[area]}  [{tally}]")
        for check in sorted(checks, key=lambda c: (_ORDER[c.status], c.id)):
            lines.append(f"  {_MARK[check.status]}  {check.id:<38} {check.summary}")
            if check.advice and check.status not in (CheckStatus.PASS, CheckStatus.INFO):
                lines.append(f"        → {check.advice}")
        lines.append("")
    for grade in report.grades:
        shown = grade.grade or f"not graded ({grade.reason})"
        score = f"  score {grade.score:g}" if grade.score is not None else ""
        caps = f"  caps: {'; '.join(grade.caps)}" if grade.caps else ""
        lines.append(f"{grade.name:<24} {shown}{score}{caps}")
    return "\n".join(lines).rstrip() + "\n"
