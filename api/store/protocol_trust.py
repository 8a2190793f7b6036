"""The storage contract for trust ratings: providers, incidents, finding states, ratings.

Part of :class:`~api.store.protocol.Store` (which extends :class:`TrustStore`). Ratings are
kept as the JSON documents :meth:`scoring.trust_model.Rating.to_json` makes, serialised once
when stored, so that the public lookup sends stored bytes without re-encoding them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from api.providers import Incident, IncidentState, NewIncident, NewProvider, Provider, SiteRef
from scoring.trust_model import FindingState


@dataclass(frozen=True)
class StoredRating:
    """A provider's current rating as stored: the headline values and the whole document."""

    provider: str
    name: str
    agency: str
    level: int
    status: str
    grade: str
    score: float | None
    warning: bool
    computed_at: datetime
    doc: bytes  # the Rating as JSON (orjson bytes)


@dataclass(frozen=True)
class RatingPoint:
    """One point of a provider's rating history."""

    provider: str
    at: datetime
    status: str
    grade: str
    score: float | None


@dataclass(frozen=True)
class ProviderMatch:
    """A search hit for the public lookup."""

    id: str
    name: str
    agency: str
    domains: tuple[str, ...]
    grade: str | None
    score: float | None
    computed_at: datetime | None


@dataclass(frozen=True)
class ProviderAlert:
    """An alert about one of a provider's sites: until confirmed (an incident) or dismissed
    (a false positive) it counts as an unconfirmed alert in the rating."""

    id: str
    rule_id: str
    status: str
    title: str
    entity: str
    first_seen: datetime
    updated_at: datetime
    incident: bool  # it became an incident (which counts instead)


class TrustStore(Protocol):
    # -- providers ------------------------------------------------------------------------------

    def add_provider(self, provider: NewProvider, now: datetime) -> Provider:
        """Register a provider; :class:`~api.errors.ConflictError` if its id exists or one of
        its domains belongs to another provider."""

    def replace_provider(self, provider: NewProvider, now: datetime) -> Provider | None:
        """Change a provider's name, agency, level and sites; ``None``: no such provider;
        :class:`~api.errors.ConflictError` if a domain belongs to another provider. Finding
        states of removed sites are dropped."""

    def delete_provider(self, provider_id: str) -> bool:
        """Remove a provider with its sites, incidents, finding states and ratings."""

    def get_provider(self, provider_id: str) -> Provider | None: ...

    def find_provider(self, id_or_domain: str) -> Provider | None:
        """The provider with this id, or owning this site domain."""

    def list_providers(self) -> list[Provider]: ...

    def providers_for_domains(self, domains: Sequence[str]) -> list[Provider]:
        """Every provider that owns one of ``domains``."""

    def list_sites(self) -> list[SiteRef]: ...

    def search_providers(self, text: str, limit: int) -> list[ProviderMatch]:
        """Providers whose name contains ``text`` (case-insensitive) or whose domain equals
        it or ends with ``.text``; best matches first."""

    # -- incidents ------------------------------------------------------------------------------

    def add_incident(self, incident: NewIncident, author: str, now: datetime) -> Incident:
        """Record an incident; :class:`~api.errors.NotFoundError` if the provider is unknown;
        :class:`~api.errors.ConflictError` if the alert already became an incident."""

    def update_incident(
        self,
        incident_id: str,
        now: datetime,
        *,
        state: IncidentState | None = None,
        resolved: datetime | None = None,
        summary: str | None = None,
    ) -> Incident | None: ...

    def dismiss_alert_incidents(self, alert_id: str, now: datetime) -> list[str]:
        """Dismiss the incident confirmed from ``alert_id`` (now a false positive): the ids
        of the providers whose rating changes."""

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def list_incidents(self, provider_id: str) -> list[Incident]: ...

    def provider_alerts(self, domains: Sequence[str]) -> list[ProviderAlert]:
        """Alerts whose entity is one of ``domains``, oldest first."""

    # -- finding states and ratings -----------------------------------------------------------

    def finding_states(self, domains: Sequence[str]) -> dict[str, list[FindingState]]: ...

    def save_finding_states(self, domain: str, states: Sequence[FindingState]) -> None:
        """Replace the stored states of these checks of ``domain`` (others are kept)."""

    def save_rating(self, stored: StoredRating, *, history: bool) -> None:
        """Make ``stored`` the provider's current rating; with ``history`` also append a point
        to its history."""

    def current_rating(self, provider_id: str) -> StoredRating | None: ...

    def rating_doc(self, id_or_domain: str) -> bytes | None:
        """The current rating document of the provider with this id or owning this domain."""

    def current_ratings(self) -> list[StoredRating]: ...

    def last_history_point(self, provider_id: str) -> RatingPoint | None: ...

    def rating_history(
        self, provider_id: str, since: datetime | None, limit: int
    ) -> list[RatingPoint]:
        """Oldest first, from ``since`` on (the newest ``limit`` points)."""

    def rating_history_since(self, since: datetime) -> list[RatingPoint]:
        """Every provider's points from ``since`` on (for reports), oldest first."""
