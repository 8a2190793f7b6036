"""One site's state in :class:`~scoring.sitestream.SiteStreams`: its statistics and the
episodes of its early warnings, with the parameters and the values they come out as.

Each of :class:`SiteState`'s steps takes one scan (in time order) and returns the
:class:`SiteEvent` it completes, if any. An episode fires once: ``site_down`` after
``down_after`` failed probes in a row until a probe finds the site up; ``certificate_expiring``
once under ``certificate_days`` and once more when expired, per certificate (``not_after``);
``defacement_suspected`` on keywords, or on a structure flagged ``confirmations`` times in a
row, until a page shows neither; ``response_time_drift`` (:mod:`scoring.sitestream_latency`)
until the mean comes down again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scoring.sitestream_availability import AvailabilityWindow
from scoring.sitestream_content import ContentBaseline, ContentVerdict
from scoring.sitestream_latency import ResponseTimes
from scoring.sitestream_scan import Certificate, Integrity, SiteScan
from sensors.wire import utc


class SiteEventKind(enum.StrEnum):
    SITE_DOWN = "site_down"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    DEFACEMENT_SUSPECTED = "defacement_suspected"
    RESPONSE_TIME_DRIFT = "response_time_drift"


@dataclass(frozen=True)
class SiteEvent:
    """An early warning about one site. ``at`` is the scan that completed it, ``first_seen``
    when the episode began (the first failed probe, the first odd page); ``severity`` is
    low, medium or high; ``values`` say why, JSON-able."""

    kind: SiteEventKind
    domain: str
    at: datetime
    severity: str
    title: str
    values: Mapping[str, Any]
    event_ids: tuple[str, ...]
    first_seen: datetime
    sensor: str = ""


@dataclass(frozen=True)
class SiteStreamsConfig:
    """The parameters (apart from what is learned). Cadences assumed: availability every 5
    minutes, TLS weekly (``scoring.trust`` has the table)."""

    max_sites: int = 10_000  # ~20 kB of memory each, ~15 kB pickled in a checkpoint
    period: timedelta = timedelta(days=30)  # TNM-1's availability window
    bucket: timedelta = timedelta(hours=1)
    trend_fading: float = 0.05  # the trend follows about the last 20 probes (under 2 hours)
    down_after: int = 2
    """Failed probes in a row before ``site_down``: one is a blip (a lost packet on our side);
    two, five minutes apart at the default cadence, is an outage worth a look."""
    certificate_days: float = 14.0  # TNM-1's T2 step below which the margin is worth 1 point
    certificate_urgent_days: float = 7.0  # medium below this, low above, high once expired
    ttfb_window: int = 288  # answers in the p95: a day at the 5-minute cadence
    drift_delta: float = 0.002  # ADWIN's confidence (river's default)
    drift_min_ratio: float = 1.5
    drift_min_seconds: float = 0.25
    content_fading: float = 0.1  # the usual page follows about the last 10-20 pages
    content_warm_up: int = 12  # pages learned before one may be flagged (an hour at 5 min)
    content_threshold: float = 6.0  # |z| at which a page is flagged (a defacement scores ~10)
    confirmations: int = 2  # flagged pages in a row before ``defacement_suspected``
    rebaseline_after: timedelta = timedelta(days=3)
    explain: int = 3


class SiteState:
    """One site's learned state and its episodes."""

    def __init__(self, config: SiteStreamsConfig) -> None:
        self.config = config
        self.availability = AvailabilityWindow(config.period, config.bucket, config.trend_fading)
        self.latency = ResponseTimes(
            config.ttfb_window, config.drift_delta, config.drift_min_ratio, config.drift_min_seconds
        )
        self.content = ContentBaseline(
            config.content_fading,
            config.content_warm_up,
            config.content_threshold,
            config.rebaseline_after,
            config.explain,
        )
        self.scans = 0
        self.last_at: datetime | None = None
        self.last_probe: SiteScan | None = None
        self.ttfb_at: datetime | None = None
        self.down_since: datetime | None = None
        self.down_probes = 0
        self.down_ids: list[str] = []
        self.down_fired = False
        self.certificate: Certificate | None = None
        self.certificate_key: str | None = None
        self.certificate_stage = 0  # 0 fine, 1 expiring told, 2 expired told
        self.verdict: ContentVerdict | None = None
        self.verdict_at: datetime | None = None
        self.flagged_run = 0
        self.keywords: Integrity | None = None
        self.content_since: datetime | None = None
        self.content_fired = False

    def on_probe(self, scan: SiteScan) -> SiteEvent | None:
        """Follow the run of failed probes (the caller has counted the probe itself)."""
        if scan.up is None:
            return None
        self.last_probe = scan
        if scan.up:
            self.down_since, self.down_probes, self.down_ids = None, 0, []
            self.down_fired = False
            return None
        if self.down_since is None:
            self.down_since = scan.at
        self.down_probes += 1
        if len(self.down_ids) < self.config.down_after:
            self.down_ids.append(scan.event_id)
        if self.down_fired or self.down_probes < self.config.down_after:
            return None
        self.down_fired = True
        up, probes = self.availability.counts(scan.at)
        return _event(
            SiteEventKind.SITE_DOWN,
            scan,
            "medium",
            "Site down: the home page does not answer or fails",
            {
                "down_since": utc(self.down_since),
                "failed_probes": self.down_probes,
                "status": scan.status_code,
                "summary": scan.probe_summary,
                "availability_30d": round(up / probes, 4) if probes else None,
            },
            tuple(self.down_ids),
            self.down_since,
        )

    def on_certificate(self, scan: SiteScan) -> SiteEvent | None:
        """Tell once per certificate that it expires soon, and once that it has expired."""
        cert = scan.certificate
        if cert is None:
            return None
        self.certificate = cert
        key = "" if cert.not_after is None else utc(cert.not_after)
        expired = cert.days_left < 0
        stage = 2 if expired else 1 if cert.days_left < self.config.certificate_days else 0
        if key != self.certificate_key or stage == 0:
            self.certificate_key, self.certificate_stage = key, 0  # re-armed: another one
        if stage <= self.certificate_stage:
            return None
        self.certificate_stage = stage
        urgent = cert.days_left < self.config.certificate_urgent_days
        days = self.config.certificate_days
        return _event(
            SiteEventKind.CERTIFICATE_EXPIRING,
            scan,
            "high" if expired else "medium" if urgent else "low",
            "Certificate expired" if expired else f"Certificate expires in under {days:g} days",
            {
                "not_after": key or None,
                "days_left": round(cert.days_left, 1),
                "expired": expired,
                "address": cert.address,
            },
            (scan.event_id,),
            scan.at,
        )

    def on_page(self, scan: SiteScan) -> SiteEvent | None:
        """Judge the page's structure and keywords; a page with keywords is not learned."""
        integrity = scan.integrity
        suspected = integrity is not None and bool(integrity.suspected)
        if integrity is not None:
            self.keywords = integrity
        verdict = None
        if scan.page is not None:
            verdict = self.content.judge(scan.page, scan.at, learnable=not suspected)
            self.verdict, self.verdict_at = verdict, scan.at
            self.flagged_run = self.flagged_run + 1 if verdict.flagged else 0
        flagged = verdict is not None and verdict.flagged
        if integrity is None and verdict is None:
            return None  # nothing seen of the page: the episode neither starts nor ends
        if not (suspected or flagged):
            self.content_since, self.content_fired = None, False
            return None
        if self.content_since is None:
            self.content_since = scan.at
        structure = flagged and self.flagged_run >= self.config.confirmations
        if self.content_fired or not (suspected or structure):
            return None
        self.content_fired = True
        kinds = integrity.suspected if integrity is not None else ()
        signal = " and ".join(
            s for s, on in (("keywords", suspected), ("structure", flagged)) if on
        )
        explanation = [
            {"feature": d.feature, "value": d.value, "typical": d.typical, "z": d.z}
            for d in (verdict.deviations if verdict is not None else ())
        ]
        return _event(
            SiteEventKind.DEFACEMENT_SUSPECTED,
            scan,
            "high" if "defacement" in kinds or (suspected and structure) else "medium",
            "Defacement or injected content suspected",
            {
                "signal": signal,
                "suspected": list(kinds),
                "keywords": list(integrity.words) if integrity is not None else [],
                "score": verdict.score if verdict is not None else None,
                "threshold": self.config.content_threshold,
                "explanation": explanation,
            },
            (scan.event_id,),
            self.content_since,
        )

    def on_ttfb(self, scan: SiteScan) -> SiteEvent | None:
        """Take the time to first byte; tell when its mean has risen."""
        if scan.ttfb is None:
            return None
        self.ttfb_at = scan.at
        change = self.latency.add(scan.ttfb)
        if change is None:
            return None
        p95 = self.latency.p95()
        return _event(
            SiteEventKind.RESPONSE_TIME_DRIFT,
            scan,
            "low",
            "Response time rising",
            {
                "mean_before": round(change.before, 3),
                "mean_now": round(change.after, 3),
                "p95": None if p95 is None else round(p95, 3),
                "answers": change.samples,
            },
            (scan.event_id,),
            scan.at,
        )


def _event(
    kind: SiteEventKind,
    scan: SiteScan,
    severity: str,
    title: str,
    values: dict[str, Any],
    event_ids: tuple[str, ...],
    first_seen: datetime,
) -> SiteEvent:
    return SiteEvent(
        kind, scan.domain, scan.at, severity, title, values, event_ids, first_seen, scan.sensor
    )
