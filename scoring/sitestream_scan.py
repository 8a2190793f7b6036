"""What the site streams read from one scan record: a :class:`SiteScan`, typed and frozen.

A scan record (``event.dataset`` ``trustwatch.scan``, :class:`sensors.wire.ScanRecord` dumped
with its ECS names) carries a list of checks. The streams need five of them
(``sensors/scanner/CHECKS.md``, categories R and T):

- ``availability.status``: a *probe*. ``pass`` (2xx, 3xx, 401, 403) is up; ``fail`` (5xx, no
  answer) and ``warn`` (another 4xx: the server answers but the home page does not work) are
  down. ``error`` is "could not check" (the scanner's time budget ran out, a bug of ours): not
  a probe at all, so it neither breaks nor ends a run of failures.
- ``availability.ttfb``: evidence ``seconds``, the time to the first byte.
- ``availability.fingerprint``: the page-structure features (``schema`` 1), read only when the
  home page answered 2xx: a 401/403 page or a redirect is not the site's content.
- ``availability.content-integrity``: ``warn`` with evidence ``suspected`` (defacement, spam)
  and the keyword ``hits``; ``pass`` means no keyword.
- ``tls.expiry``: ``days_left`` and ``not_after``, flat or per address (the scanner reports
  each endpoint under its address; the worst endpoint counts).

>>> scan = read_scan({
...     "event.id": "scan-0000000000000001", "event.dataset": "trustwatch.scan",
...     "event.start": "2026-03-01T00:00:00Z", "event.end": "2026-03-01T00:00:04Z",
...     "url.domain": "Portal.Example.gov.", "observer.name": "scheduler",
...     "checks": [
...         {"id": "availability.status", "status": "fail", "evidence": {"status": 503}},
...         {"id": "availability.ttfb", "status": "pass", "evidence": {"seconds": 0.25}},
...     ],
... })
>>> (scan.domain, scan.up, scan.status_code, scan.ttfb, scan.page, scan.certificate)
('portal.example.gov', False, 503, 0.25, None, None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sensors.wire import SCAN_DATASET, parse_time

FINGERPRINT_SCHEMA: Final = 1  # the page-structure schema these streams understand
_MAX_WORDS: Final = 10  # keyword hits kept as evidence


@dataclass(frozen=True)
class PageShape:
    """The structure of the home page, from ``availability.fingerprint``."""

    sha256: str
    title: str
    size: int
    scripts: int
    inline_scripts: int
    script_domains: tuple[str, ...]
    iframes: int
    iframe_domains: tuple[str, ...]
    forms: int
    links: int
    foreign_domains: int  # the total, before the scanner's bound on the list
    hidden_links: int
    keyword_hits: int


@dataclass(frozen=True)
class Integrity:
    """``availability.content-integrity``: ``suspected`` kinds (``defacement``, ``spam``),
    empty when the page has no keyword; ``words`` the first keywords found."""

    suspected: tuple[str, ...]
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Certificate:
    """``tls.expiry`` of the worst endpoint: its expiry and the days left at the scan."""

    not_after: datetime | None
    days_left: float
    address: str | None = None


@dataclass(frozen=True)
class SiteScan:
    """One scan of one site, as far as the streams care. ``up`` is None when the scan has no
    usable ``availability.status`` (not a probe)."""

    domain: str
    event_id: str
    at: datetime  # event.end (the scan's own time), else event.start
    sensor: str
    up: bool | None = None
    status_code: int | None = None
    probe_summary: str = ""
    ttfb: float | None = None
    page: PageShape | None = None
    integrity: Integrity | None = None
    certificate: Certificate | None = None


def is_scan(doc: Mapping[str, Any]) -> bool:
    return doc.get("event.dataset") == SCAN_DATASET


def read_scan(doc: Mapping[str, Any]) -> SiteScan | None:
    """The scan in ``doc``; None if it is not a scan, or names no site or no time."""
    if not is_scan(doc):
        return None
    domain = doc.get("url.domain")
    at = parse_time(doc.get("event.end")) or parse_time(doc.get("event.start"))
    if not isinstance(domain, str) or not domain.strip(".") or at is None:
        return None
    checks: dict[str, Mapping[str, Any]] = {}
    for check in doc.get("checks") or ():
        if isinstance(check, Mapping) and isinstance(check.get("id"), str):
            checks[check["id"]] = check
    status = checks.get("availability.status", {})
    evidence = _evidence(status)
    up = {"pass": True, "fail": False, "warn": False}.get(str(status.get("status")))
    code = evidence.get("status")
    return SiteScan(
        domain=domain.lower().rstrip("."),
        event_id=str(doc.get("event.id", "")),
        at=at,
        sensor=str(doc.get("observer.name", "")),
        up=up,
        status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        probe_summary=str(status.get("summary", ""))[:200],
        ttfb=_ttfb(checks.get("availability.ttfb")),
        page=_page(checks.get("availability.fingerprint")) if _answered_2xx(code) else None,
        integrity=_integrity(checks.get("availability.content-integrity")),
        certificate=_certificate(checks.get("tls.expiry"), at),
    )


def _evidence(check: Mapping[str, Any] | None) -> Mapping[str, Any]:
    evidence = None if check is None else check.get("evidence")
    return evidence if isinstance(evidence, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: object) -> int:
    number = _number(value)
    return 0 if number is None else max(0, int(number))


def _answered_2xx(code: object) -> bool:
    """A fingerprint counts only from a 2xx page; an older record without the status code
    in its evidence is taken at its word."""
    return code is None or (isinstance(code, int) and 200 <= code < 300)


def _ttfb(check: Mapping[str, Any] | None) -> float | None:
    if check is None or check.get("status") not in ("pass", "warn"):
        return None
    seconds = _number(_evidence(check).get("seconds"))
    return seconds if seconds is not None and seconds >= 0.0 else None


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(sorted({v.lower() for v in value if isinstance(v, str)}))


def _page(check: Mapping[str, Any] | None) -> PageShape | None:
    if check is None or check.get("status") != "info":
        return None
    f = _evidence(check)
    if f.get("schema") != FINGERPRINT_SCHEMA:
        return None  # another page-structure version: its numbers may mean something else
    hits = f.get("hits")
    return PageShape(
        sha256=str(f.get("sha256", "")),
        title=str(f.get("title", "")),
        size=_count(f.get("size")),
        scripts=_count(f.get("scripts")),
        inline_scripts=_count(f.get("inline_scripts")),
        script_domains=_names(f.get("script_domains")),
        iframes=_count(f.get("iframes")),
        iframe_domains=_names(f.get("iframe_domains")),
        forms=_count(f.get("forms")),
        links=_count(f.get("links")),
        foreign_domains=_count(f.get("foreign_domains_total")),
        hidden_links=_count(f.get("hidden_links")),
        keyword_hits=len(hits) if isinstance(hits, list) else 0,
    )


def _integrity(check: Mapping[str, Any] | None) -> Integrity | None:
    if check is None:
        return None
    if check.get("status") == "pass":
        return Integrity(())
    evidence = _evidence(check)
    if check.get("status") != "warn":
        return None  # could not check
    suspected = _names(evidence.get("suspected")) or ("unknown",)
    hits = evidence.get("hits")
    words = sorted(
        {h["word"] for h in hits if isinstance(h, Mapping) and isinstance(h.get("word"), str)}
        if isinstance(hits, list)
        else set()
    )
    return Integrity(suspected, tuple(words[:_MAX_WORDS]))


def _certificate(check: Mapping[str, Any] | None, at: datetime) -> Certificate | None:
    """The worst endpoint's expiry. ``days_left`` is recomputed from ``not_after`` when it is
    there: the scanner truncates it to whole days, so a certificate 6 hours past its expiry
    still says 0."""
    if check is None or check.get("status") not in ("pass", "warn", "fail"):
        return None
    evidence = _evidence(check)
    endpoints: list[tuple[str | None, Mapping[str, Any]]] = [(None, evidence)]
    if "days_left" not in evidence and "not_after" not in evidence:
        endpoints = [(str(k), v) for k, v in evidence.items() if isinstance(v, Mapping)]
    worst: Certificate | None = None
    for address, fields in endpoints:
        not_after = parse_time(fields.get("not_after"))
        days = (
            (not_after - at).total_seconds() / 86_400
            if not_after is not None
            else _number(fields.get("days_left"))
        )
        if days is None:
            continue
        if worst is None or days < worst.days_left:
            worst = Certificate(not_after, days, address)
    return worst
