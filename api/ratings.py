"""Turning scans, incidents and alerts into stored ratings: the service side of
:mod:`scoring.trust`.

Whenever a scan of a registered site arrives (from a sensor through ingest, or from the
scheduler), each of its checks advances that site's finding state (:func:`scoring.trust.observe`:
a new negative finding waits for confirmation) and every provider owning the site is rated
again. An incident recorded or changed, an alert confirmed or dismissed, and the periodic
re-scoring (incidents decay with time even when nothing is scanned) do the same.

A rating is stored as the public document the lookup serves, and a point is added to the
provider's history when its grade, score or status changed, or a day after the last point.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from anyio import to_thread

from api.errors import StoreError, UnprocessableError
from api.lifecycle import AlertStatus
from api.pipeline import Pipeline
from api.providers import Incident, IncidentState, Provider
from api.store import Store
from api.store.protocol import IngestCounts
from api.store.protocol_trust import ProviderAlert, StoredRating
from scoring.trust import observe, rate_provider
from scoring.trust_model import (
    AppliedCap,
    FindingState,
    IncidentKind,
    IncidentRecord,
    Observation,
    Rating,
    RatingStatus,
    SiteInput,
)
from sensors.wire import ScanRecord, validate_record

log = logging.getLogger(__name__)

HISTORY_EVERY: Final = timedelta(days=1)
"""A history point at least daily, so a chart of a steady provider is not one lonely dot."""

# Alerts about a site that measure what the posture already scores (availability in R, the
# certificate margin in T): counting them again as "unconfirmed alerts" would punish twice.
POSTURE_ALERT_RULES: Final = frozenset(
    {"site.site_down", "site.certificate_expiring", "site.response_time_drift"}
)

Clock = Callable[[], datetime]


class RatingService:
    """Rates providers from what the store holds; see the module docstring."""

    def __init__(self, store: Store, pipeline: Pipeline) -> None:
        self.store = store
        self.pipeline = pipeline

    # -- scans ------------------------------------------------------------------------------

    def record_scans(
        self, sensor_id: str, records: Sequence[dict[str, Any]], now: datetime
    ) -> IngestCounts:
        """Store scan records made here (the scheduler's), raise their alerts, rate again."""
        scans: list[ScanRecord] = []
        for index, raw in enumerate(records):
            record = validate_record(raw)
            if not isinstance(record, ScanRecord):
                raise UnprocessableError(f"record {index} is not a scan record")
            scans.append(record)
        counts = self.store.ingest(sensor_id, [], scans, now, detect=self.pipeline.detect)
        self.after_scans(sensor_id, scans, now)
        return counts

    def after_scans(
        self, sensor_id: str, scans: Sequence[ScanRecord], now: datetime
    ) -> list[Rating]:
        """Advance the finding states of the scanned registered sites and rate their
        providers again. Scans of unregistered names are stored but rate nobody."""
        by_domain: dict[str, list[ScanRecord]] = defaultdict(list)
        for scan in scans:
            by_domain[scan.url_domain].append(scan)
        providers = self.store.providers_for_domains(sorted(by_domain))
        registered = {site.domain for p in providers for site in p.sites} & set(by_domain)
        if not registered:
            return []
        known = self.store.finding_states(sorted(registered))
        for domain in sorted(registered):
            states = {state.check: state for state in known.get(domain, [])}
            changed = _advance(states, by_domain[domain], sensor_id)
            if changed:
                self.store.save_finding_states(domain, [states[c] for c in sorted(changed)])
        return [self.rescore(provider, now) for provider in providers]

    # -- rating -----------------------------------------------------------------------------

    def rescore_id(self, provider_id: str, now: datetime) -> Rating | None:
        provider = self.store.get_provider(provider_id)
        return None if provider is None else self.rescore(provider, now)

    def rescore_all(self, now: datetime) -> int:
        """Rate every provider again (incidents decay and probations end with time)."""
        count = 0
        for provider in self.store.list_providers():
            self.rescore(provider, now)
            count += 1
        return count

    def rescore(self, provider: Provider, now: datetime) -> Rating:
        domains = [site.domain for site in provider.sites]
        findings = self.store.finding_states(domains)
        sites = [
            SiteInput(
                domain=site.domain,
                importance=site.importance,
                findings=tuple(findings.get(site.domain, ())),
                streams=self.pipeline.site_stats(site.domain, now),
                **self._blocklist(site.domain),
            )
            for site in provider.sites
        ]
        incidents = [_record(i) for i in self.store.list_incidents(provider.id)]
        incidents += _unconfirmed(self.store.provider_alerts(domains))
        rating = rate_provider(
            provider.id,
            sites,
            incidents,
            now,
            registered_at=provider.created_at,
            previous=self._previous(provider.id),
        )
        last = self.store.last_history_point(provider.id)
        history = (
            last is None
            or (last.status, last.grade, last.score)
            != (rating.status.value, rating.grade, rating.score)
            or now - last.at >= HISTORY_EVERY
        )
        self.store.save_rating(
            StoredRating(
                provider=provider.id,
                name=provider.name,
                agency=provider.agency,
                level=provider.level,
                status=rating.status.value,
                grade=rating.grade,
                score=rating.score,
                warning=rating.warning,
                computed_at=now,
                doc=orjson.dumps(public_document(provider, rating)),
            ),
            history=history,
        )
        return rating

    def _previous(self, provider_id: str) -> Rating | None:
        """The stored rating, as much of it as hysteresis needs (grade, band and score)."""
        stored = self.store.current_rating(provider_id)
        if stored is None:
            return None
        doc = orjson.loads(stored.doc)
        return Rating(
            provider=provider_id,
            computed_at=stored.computed_at,
            methodology=doc.get("methodology", ""),
            status=RatingStatus(stored.status),
            grade=stored.grade,
            score=stored.score,
            band=doc.get("band"),
            posture=doc.get("posture"),
            categories={},
            caps=tuple(AppliedCap(**cap) for cap in doc.get("caps", ())),
            penalties=(),
            findings=(),
            sites=(),
            a_plus_eligible=bool(doc.get("a_plus_eligible")),
            warning=stored.warning,
        )

    def _blocklist(self, domain: str) -> dict[str, Any]:
        matcher = self.pipeline.intel
        if matcher is None:
            return {}
        hit = matcher.intel.lookup_name(domain)
        if hit is None:
            return {}
        return {"blocklisted": True, "blocklist_evidence": {"listed": hit.value}}

    # -- alerts and incidents ---------------------------------------------------------------

    def alert_changed(self, alert_id: str, entity: str, status: str, now: datetime) -> None:
        """An analyst's verdict on an alert: a false positive dismisses the incident
        confirmed from it (retroactively) and the providers of its entity are rated again."""
        affected = {p.id: p for p in self.store.providers_for_domains([entity.lower()])}
        if status == AlertStatus.FALSE_POSITIVE:
            for provider_id in self.store.dismiss_alert_incidents(alert_id, now):
                provider = self.store.get_provider(provider_id)
                if provider is not None:
                    affected[provider.id] = provider
        for provider in affected.values():
            self.rescore(provider, now)


async def run_rescoring(ratings: RatingService, clock: Clock, every_seconds: float) -> None:
    """Rate every provider again every ``every_seconds``, until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            count = await to_thread.run_sync(ratings.rescore_all, clock())
        except StoreError as exc:
            log.error("periodic re-scoring failed", extra={"error": str(exc)})
        else:
            log.info("providers rated again", extra={"providers": count})


def _advance(
    states: dict[str, FindingState], scans: Sequence[ScanRecord], sensor_id: str
) -> set[str]:
    """Feed each scan's checks, oldest scan first, into ``states``; the checks changed."""
    changed: set[str] = set()
    for scan in sorted(scans, key=lambda s: s.event_start):
        for check in scan.checks:
            previous = states.get(check.id)
            if previous is not None and not _newer(previous, scan.event_start):
                continue  # a record shipped twice, or out of order: it was seen already
            states[check.id] = observe(
                previous,
                Observation(
                    check=check.id,
                    status=check.status.value,
                    observed_at=scan.event_start,
                    evidence=check.evidence,
                    summary=check.summary,
                    advice=check.advice,
                    modifier=check.modifier,
                    references=tuple(check.references),
                    vantage=sensor_id,
                ),
            )
            changed.add(check.id)
    return changed


def _newer(state: FindingState, at: datetime) -> bool:
    latest = state.last_verified
    if state.pending is not None:
        latest = max(latest, state.pending.observed_at)
    return at > latest


def _record(incident: Incident) -> IncidentRecord:
    return IncidentRecord(
        id=incident.id,
        kind=incident.kind,
        started=incident.started,
        resolved=incident.resolved,
        site=incident.site,
        dismissed=incident.state is IncidentState.DISMISSED,
        summary=incident.summary,
    )


def _unconfirmed(alerts: Sequence[ProviderAlert]) -> list[IncidentRecord]:
    """Alerts about the provider not (yet) confirmed as incidents: TNM-1's "unconfirmed alert
    about the provider". Resolved ones decay from their resolution; false positives vanish."""
    return [
        IncidentRecord(
            id=f"alert:{alert.id}",
            kind=IncidentKind.UNCONFIRMED_ALERT,
            started=alert.first_seen,
            resolved=alert.updated_at if alert.status == AlertStatus.RESOLVED else None,
            site=alert.entity,
            dismissed=alert.status == AlertStatus.FALSE_POSITIVE,
            summary=alert.title,
        )
        for alert in alerts
        if not alert.incident and alert.rule_id not in POSTURE_ALERT_RULES
    ]


def public_document(provider: Provider, rating: Rating) -> dict[str, Any]:
    """What the public lookup answers: who the provider is and its rating. The declared
    security level and incident summaries (internal notes) are not published."""
    doc = rating.to_json()
    doc.pop("provider", None)
    rated = {site["domain"]: site for site in doc.pop("sites", ())}
    sites = [
        {
            "domain": site.domain,
            "role": site.role.value,
            **rated.get(site.domain, {"importance": site.importance, "posture": None}),
        }
        for site in provider.sites
    ]
    return {
        "id": provider.id,
        "name": provider.name,
        "agency": provider.agency,
        "sites": sites,
        **doc,
    }
