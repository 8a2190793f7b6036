"""What a site's finding states and streams say before any scoring: the counted observation
of each check (None when it could not be tested), whether the site has HTTPS at all, and the
R points that come from the streams rather than from a check.

>>> from scoring.trust import METHODOLOGY as TNM
>>> stream_points(StreamStats(observations=8640, availability=0.992, ttfb_p95=0.4), TNM)
(2, 1)
>>> stream_points(None, TNM)
(None, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scoring.trust_model import FindingState, Observation, SiteInput, StreamStats
from scoring.trust_points import DEDUCTING, ERROR, NOT_APPLICABLE
from scoring.trust_table import Methodology, step_points

__all__ = ["SiteFacts", "facts", "integrity_points", "stream_points"]


@dataclass(frozen=True)
class SiteFacts:
    """What the site's finding states say, before any scoring."""

    states: Mapping[str, FindingState]
    no_https: bool

    def counted(self, check: str) -> Observation | None:
        """The observation that counts, or None when the check could not be tested."""
        state = self.states.get(check)
        if state is None or state.counted.status == ERROR:
            return None
        return state.counted


def facts(site: SiteInput, table: Methodology) -> SiteFacts:
    states = {f.check: f for f in site.findings}
    hsts = states.get(table.http.hsts_check)
    no_https = (
        hsts is not None
        and hsts.counted.status != ERROR
        and hsts.counted.evidence.get("result") in table.http.no_https_results
    )
    return SiteFacts(states, no_https)


def stream_points(streams: StreamStats | None, table: Methodology) -> tuple[float | None, ...]:
    """R2 (availability) and R3 (p95 time to first byte); None where nothing was measured."""
    r = table.reputation
    if streams is None or streams.observations <= 0:
        return (None, None)
    availability = (
        None if streams.availability is None else step_points(r.availability, streams.availability)
    )
    ttfb = (
        None
        if streams.ttfb_p95 is None
        else (r.ttfb_points if streams.ttfb_p95 <= r.ttfb_limit_seconds else 0)
    )
    return (availability, ttfb)


def integrity_points(site: SiteInput, f: SiteFacts, table: Methodology) -> float | None:
    """R4: 2 when clean; 1 while a suspicion is unconfirmed (one observation of it, a pending
    one, or the streams' page-structure anomaly); 0 once confirmed."""
    r = table.reputation
    state = f.states.get(r.integrity_check)
    obs = f.counted(r.integrity_check)
    if state is None or obs is None or obs.status == NOT_APPLICABLE:
        return None
    if obs.status in DEDUCTING:
        confirmed = state.confirmations >= r.integrity_confirmations
        return 0 if confirmed else r.integrity_unconfirmed_points
    pending = state.pending is not None and state.pending.status in DEDUCTING
    if pending or (site.streams is not None and site.streams.content_anomaly):
        return r.integrity_unconfirmed_points
    return r.integrity_points
