"""The trust-rating half of :class:`~api.store.sqlite.SqliteStore`: providers, incidents,
finding states and ratings (:class:`~api.store.protocol_trust.TrustStore`).

A mixin, so the store's facade stays one class while each noun keeps its own module
(:mod:`~api.store.sqlite_providers`, :mod:`~api.store.sqlite_ratings`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from api.providers import Incident, IncidentState, NewIncident, NewProvider, Provider, SiteRef
from api.store import sqlite_providers as providers
from api.store import sqlite_ratings as ratings
from api.store.protocol_trust import (
    ProviderAlert,
    ProviderMatch,
    RatingPoint,
    StoredRating,
)
from api.store.timeconv import to_us
from scoring.trust_model import FindingState


class TrustMethods:
    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...

    # -- providers ------------------------------------------------------------------------------

    def add_provider(self, provider: NewProvider, now: datetime) -> Provider:
        with self._write() as conn:
            return providers.add_provider(conn, provider, to_us(now))

    def replace_provider(self, provider: NewProvider, now: datetime) -> Provider | None:
        with self._write() as conn:
            changed = providers.replace_provider(conn, provider, to_us(now))
            return None if changed is None else changed[0]

    def delete_provider(self, provider_id: str) -> bool:
        with self._write() as conn:
            return providers.delete_provider(conn, provider_id) is not None

    def get_provider(self, provider_id: str) -> Provider | None:
        with self._read() as conn:
            return providers.get_provider(conn, provider_id)

    def find_provider(self, id_or_domain: str) -> Provider | None:
        with self._read() as conn:
            found = providers.provider_id_for(conn, id_or_domain)
            return None if found is None else providers.get_provider(conn, found)

    def list_providers(self) -> list[Provider]:
        with self._read() as conn:
            return providers.list_providers(conn)

    def providers_for_domains(self, domains: Sequence[str]) -> list[Provider]:
        with self._read() as conn:
            return providers.providers_for_domains(conn, domains)

    def list_sites(self) -> list[SiteRef]:
        with self._read() as conn:
            return providers.list_sites(conn)

    def search_providers(self, text: str, limit: int) -> list[ProviderMatch]:
        with self._read() as conn:
            return providers.search_providers(conn, text, limit)

    # -- incidents ------------------------------------------------------------------------------

    def add_incident(self, incident: NewIncident, author: str, now: datetime) -> Incident:
        with self._write() as conn:
            return providers.add_incident(conn, incident, author, to_us(now))

    def update_incident(
        self,
        incident_id: str,
        now: datetime,
        *,
        state: IncidentState | None = None,
        resolved: datetime | None = None,
        summary: str | None = None,
    ) -> Incident | None:
        with self._write() as conn:
            return providers.update_incident(
                conn,
                incident_id,
                to_us(now),
                state=state,
                resolved_us=None if resolved is None else to_us(resolved),
                summary=summary,
            )

    def dismiss_alert_incidents(self, alert_id: str, now: datetime) -> list[str]:
        with self._write() as conn:
            return providers.dismiss_alert_incidents(conn, alert_id, to_us(now))

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._read() as conn:
            return providers.get_incident(conn, incident_id)

    def list_incidents(self, provider_id: str) -> list[Incident]:
        with self._read() as conn:
            return providers.list_incidents(conn, provider_id)

    def provider_alerts(self, domains: Sequence[str]) -> list[ProviderAlert]:
        with self._read() as conn:
            return providers.provider_alerts(conn, domains)

    # -- finding states and ratings -----------------------------------------------------------

    def finding_states(self, domains: Sequence[str]) -> dict[str, list[FindingState]]:
        with self._read() as conn:
            return ratings.finding_states(conn, domains)

    def save_finding_states(self, domain: str, states: Sequence[FindingState]) -> None:
        with self._write() as conn:
            ratings.save_finding_states(conn, domain, states)

    def save_rating(self, stored: StoredRating, *, history: bool) -> None:
        with self._write() as conn:
            ratings.save_rating(conn, stored, history=history)

    def current_rating(self, provider_id: str) -> StoredRating | None:
        with self._read() as conn:
            return ratings.current_rating(conn, provider_id)

    def rating_doc(self, id_or_domain: str) -> bytes | None:
        with self._read() as conn:
            return ratings.rating_doc(conn, id_or_domain)

    def current_ratings(self) -> list[StoredRating]:
        with self._read() as conn:
            return ratings.current_ratings(conn)

    def last_history_point(self, provider_id: str) -> RatingPoint | None:
        with self._read() as conn:
            return ratings.last_history_point(conn, provider_id)

    def rating_history(
        self, provider_id: str, since: datetime | None, limit: int
    ) -> list[RatingPoint]:
        with self._read() as conn:
            return ratings.rating_history(
                conn, provider_id, None if since is None else to_us(since), limit
            )

    def rating_history_since(self, since: datetime) -> list[RatingPoint]:
        with self._read() as conn:
            return ratings.rating_history_since(conn, to_us(since))
