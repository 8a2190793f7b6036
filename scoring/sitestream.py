"""Streaming statistics per site from scan records, and the early warnings they give.

:class:`SiteStreams` reads each scan record once (:meth:`SiteStreams.observe`) and keeps, per
site (``url.domain``):

- **availability** (:mod:`scoring.sitestream_availability`): the share of probes up in the
  last 30 days, to the hour, and an exponentially weighted trend;
- **response time** (:mod:`scoring.sitestream_latency`): the rolling 95th percentile of time to
  first byte, and ADWIN drift detection on it;
- **content drift** (:mod:`scoring.sitestream_content`): how far the page structure is from
  what the site usually serves, with a warm-up, never learning a flagged page;
- the current run of failed probes (``unreachable_since``) and the certificate's expiry.

:meth:`SiteStreams.stats` answers with a :class:`~scoring.trust_model.StreamStats` for the
trust rating. Early warnings come out of :meth:`~SiteStreams.observe` as :class:`SiteEvent`
values, each once per episode (a state machine per site and kind):

=========================  ==============================================  ===================
kind                       fires                                           re-arms
=========================  ==============================================  ===================
``site_down``              ``down_after`` (2) failed probes in a row       a probe finds it up
``certificate_expiring``   under 14 days left; again once it has expired   another certificate
``defacement_suspected``   defacement/spam keywords, or the structure      a page with neither
                           flagged on ``confirmations`` (2) pages in a row
``response_time_drift``    ADWIN sees the mean rise (x1.5 and +0.25 s)     a downward change
=========================  ==============================================  ===================

Time is the records' own (``event.end``). A scan older than the newest one seen for its site
(a late delivery) counts towards availability only. At most ``max_sites`` sites are kept; the
least recently scanned goes first, and ``counters.sites_evicted`` says how many went. The state
is plain river objects and arrays: :mod:`scoring.state` saves and restores it.

>>> def probe(i, status):
...     return {"event.id": f"scan-{i:016d}", "event.dataset": "trustwatch.scan",
...             "event.start": f"2026-03-01T00:{5 * i:02d}:00Z",
...             "event.end": f"2026-03-01T00:{5 * i:02d}:03Z", "url.domain": "portal.example.gov",
...             "checks": [{"id": "availability.status", "status": status, "evidence": {}}]}
>>> streams = SiteStreams()
>>> [[e.kind.value for e in streams.observe(probe(i, s))]
...  for i, s in enumerate(["pass", "fail", "fail", "fail", "pass", "fail"])]
[[], [], ['site_down'], [], [], []]
>>> from datetime import UTC, datetime
>>> stats = streams.stats("portal.example.gov", datetime(2026, 3, 1, 1, tzinfo=UTC))
>>> (stats.observations, round(stats.availability, 2), stats.unreachable_since.minute)
(6, 0.33, 25)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scoring.sitestream_scan import SiteScan, is_scan, read_scan
from scoring.sitestream_site import SiteEvent, SiteEventKind, SiteState, SiteStreamsConfig
from scoring.trust_model import StreamStats
from sensors.wire import utc

__all__ = [
    "SiteCounters",
    "SiteEvent",
    "SiteEventKind",
    "SiteStreams",
    "SiteStreamsConfig",
]


@dataclass
class SiteCounters:
    scans: int = 0
    unreadable: int = 0  # scan records without a site name or a time
    probes: int = 0
    late_scans: int = 0  # older than the newest scan of their site: availability only
    probes_too_old: int = 0  # older than the availability window
    sites_evicted: int = 0
    events: dict[str, int] = field(default_factory=dict)


class SiteStreams:
    """Per-site streaming statistics and early warnings from scan records."""

    def __init__(self, config: SiteStreamsConfig | None = None) -> None:
        self.config = config or SiteStreamsConfig()
        self.counters = SiteCounters()
        self._sites: OrderedDict[str, SiteState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sites)

    def __contains__(self, domain: object) -> bool:
        return isinstance(domain, str) and _key(domain) in self._sites

    def observe_all(self, docs: Iterable[Mapping[str, Any]]) -> list[SiteEvent]:
        found: list[SiteEvent] = []
        for doc in docs:
            found.extend(self.observe(doc))
        return found

    def observe(self, doc: Mapping[str, Any]) -> list[SiteEvent]:
        """Learn from one record (anything but a scan record is ignored); the early warnings
        it completes."""
        if not is_scan(doc):
            return []
        self.counters.scans += 1
        scan = read_scan(doc)
        if scan is None:
            self.counters.unreadable += 1
            return []
        site = self._site(scan.domain)
        site.scans += 1
        if site.last_at is not None and scan.at < site.last_at:
            self.counters.late_scans += 1
            if scan.up is not None:
                self._count_probe(site, scan, trend=False)
            return []
        site.last_at = scan.at
        if scan.up is not None:
            self._count_probe(site, scan, trend=True)
        steps = (site.on_probe, site.on_certificate, site.on_page, site.on_ttfb)
        events = [e for step in steps if (e := step(scan)) is not None]
        for event in events:
            self.counters.events[event.kind.value] = (
                self.counters.events.get(event.kind.value, 0) + 1
            )
        return events

    def _site(self, domain: str) -> SiteState:
        found = self._sites.get(domain)
        if found is not None:
            self._sites.move_to_end(domain)
            return found
        if len(self._sites) >= self.config.max_sites:
            self._sites.popitem(last=False)
            self.counters.sites_evicted += 1
        created = self._sites[domain] = SiteState(self.config)
        return created

    def _count_probe(self, site: SiteState, scan: SiteScan, *, trend: bool) -> None:
        self.counters.probes += 1
        if not site.availability.add(scan.at, up=bool(scan.up), trend=trend):
            self.counters.probes_too_old += 1

    def stats(self, domain: str, now: datetime) -> StreamStats:
        """``domain``'s statistics at ``now`` (empty for a site never scanned)."""
        site = self._sites.get(_key(domain))
        if site is None:
            return StreamStats()
        up, probes = site.availability.counts(now)
        recent = site.ttfb_at is not None and now - site.ttfb_at < self.config.period
        p95 = site.latency.p95() if recent else None
        verdict = site.verdict
        return StreamStats(
            observations=probes,
            availability=up / probes if probes else None,
            ttfb_p95=None if p95 is None else round(p95, 4),
            content_anomaly=verdict is not None and verdict.flagged,
            anomaly_score=0.0 if verdict is None else verdict.score,
            unreachable_since=site.down_since,
            evidence=_evidence(site, up, probes, now, self.config),
        )

    def health(self) -> dict[str, Any]:
        c = self.counters
        return {
            "tracked": len(self._sites),
            "evicted": c.sites_evicted,
            "scans": c.scans,
            "probes": c.probes,
            "late_scans": c.late_scans,
            "unreadable": c.unreadable,
            "events": dict(sorted(c.events.items())),
        }


def _key(domain: str) -> str:
    return domain.lower().rstrip(".")


def _evidence(
    site: SiteState, up: int, probes: int, now: datetime, config: SiteStreamsConfig
) -> dict[str, Any]:
    """What explains the numbers of :meth:`SiteStreams.stats`, JSON-able."""
    last = site.last_probe
    verdict, cert, keywords = site.verdict, site.certificate, site.keywords
    evidence: dict[str, Any] = {
        "window_days": config.period / timedelta(days=1),
        "probes": probes,
        "probes_up": up,
        "availability_trend": round(site.availability.trend.get(), 4) if last else None,
        "last_probe": None
        if last is None
        else {"at": utc(last.at), "up": last.up, "status": last.status_code},
        "failed_in_a_row": site.down_probes,
        "ttfb": {
            "answers": site.latency.samples,
            "window": config.ttfb_window,
            "last": site.latency.last,
            "mean": round(site.latency.mean(), 4),
            "drifts": site.latency.drifts,
        },
        "content": {
            "pages_learned": site.content.learned,
            "warming_up": site.content.warming_up,
            "score": None if verdict is None else verdict.score,
            "threshold": config.content_threshold,
            "flagged_in_a_row": site.flagged_run,
            "rebaselines": site.content.rebaselines,
            "judged_at": None if site.verdict_at is None else utc(site.verdict_at),
            "deviations": []
            if verdict is None
            else [
                {"feature": d.feature, "value": d.value, "typical": d.typical, "z": d.z}
                for d in verdict.deviations
            ],
            "suspected": [] if keywords is None else list(keywords.suspected),
        },
    }
    if cert is not None:
        days = cert.days_left
        if cert.not_after is not None:
            days = (cert.not_after - now).total_seconds() / 86_400
        evidence["certificate"] = {
            "not_after": None if cert.not_after is None else utc(cert.not_after),
            "days_left": round(days, 1),
            "address": cert.address,
        }
    return evidence
