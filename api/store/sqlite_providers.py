"""Providers, their sites and their incidents in the SQLite store.

Part of :class:`~api.store.sqlite.SqliteStore`; the functions take the connection the store
gives them and times in microseconds. A site's domain belongs to one provider at most (the
``provider_sites`` primary key), so a scan of a domain rates exactly one provider.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from api.errors import ConflictError, NotFoundError
from api.providers import (
    MAX_INCIDENTS_PER_PROVIDER,
    MAX_PROVIDERS,
    Incident,
    IncidentState,
    NewIncident,
    NewProvider,
    Provider,
    Site,
    SiteRef,
    SiteRole,
)
from api.store.protocol_trust import ProviderAlert, ProviderMatch
from api.store.timeconv import from_us, opt_from_us, to_us
from scoring.trust_model import IncidentKind

_PROVIDER: Final = "id, name, agency, level, created_us, updated_us"
_INCIDENT: Final = (
    "id, provider_id, kind, state, site, started_us, resolved_us, summary, alert_id, author,"
    " created_us, updated_us"
)


# -- providers -------------------------------------------------------------------------------


def add_provider(conn: sqlite3.Connection, provider: NewProvider, now: int) -> Provider:
    count, exists = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE id = ?) FROM providers", (provider.id,)
    ).fetchone()
    if exists:
        raise ConflictError(f"a provider with id {provider.id!r} exists")
    if count >= MAX_PROVIDERS:
        raise ConflictError(f"the store holds its maximum of {MAX_PROVIDERS} providers")
    conn.execute(
        f"INSERT INTO providers ({_PROVIDER}) VALUES (?, ?, ?, ?, ?, ?)",
        (provider.id, provider.name, provider.agency, provider.level, now, now),
    )
    _put_sites(conn, provider)
    return _provider_row(conn, provider.id)


def replace_provider(
    conn: sqlite3.Connection, provider: NewProvider, now: int
) -> tuple[Provider, list[str]] | None:
    """The provider as changed, and the domains it no longer has (their findings go)."""
    if conn.execute("SELECT 1 FROM providers WHERE id = ?", (provider.id,)).fetchone() is None:
        return None
    before = {row[0] for row in _site_rows(conn, provider.id)}
    conn.execute(
        "UPDATE providers SET name = ?, agency = ?, level = ?, updated_us = ? WHERE id = ?",
        (provider.name, provider.agency, provider.level, now, provider.id),
    )
    conn.execute("DELETE FROM provider_sites WHERE provider_id = ?", (provider.id,))
    _put_sites(conn, provider)
    removed = sorted(before - {site.domain for site in provider.sites})
    conn.executemany("DELETE FROM findings WHERE domain = ?", [(domain,) for domain in removed])
    return _provider_row(conn, provider.id), removed


def delete_provider(conn: sqlite3.Connection, provider_id: str) -> list[str] | None:
    """Remove a provider with its sites, incidents and ratings; its domains, or None."""
    domains = [row[0] for row in _site_rows(conn, provider_id)]
    if conn.execute("DELETE FROM providers WHERE id = ?", (provider_id,)).rowcount == 0:
        return None
    conn.executemany("DELETE FROM findings WHERE domain = ?", [(d,) for d in domains])
    return domains


def _put_sites(conn: sqlite3.Connection, provider: NewProvider) -> None:
    domains = [site.domain for site in provider.sites]
    placeholders = ", ".join("?" * len(domains))
    taken = conn.execute(
        f"SELECT domain, provider_id FROM provider_sites WHERE domain IN ({placeholders})"
        " AND provider_id != ?",
        (*domains, provider.id),
    ).fetchall()
    if taken:
        owned = ", ".join(f"{domain} (provider {owner})" for domain, owner in taken)
        raise ConflictError(f"site(s) already registered to another provider: {owned}")
    conn.executemany(
        "INSERT INTO provider_sites (domain, provider_id, role, position) VALUES (?, ?, ?, ?)",
        [
            (site.domain, provider.id, site.role.value, position)
            for position, site in enumerate(provider.sites)
        ],
    )


def _site_rows(conn: sqlite3.Connection, provider_id: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT domain, role FROM provider_sites WHERE provider_id = ? ORDER BY position",
        (provider_id,),
    ).fetchall()


def _provider_row(conn: sqlite3.Connection, provider_id: str) -> Provider:
    row = conn.execute(f"SELECT {_PROVIDER} FROM providers WHERE id = ?", (provider_id,)).fetchone()
    return _provider(row, _site_rows(conn, provider_id))


def _provider(row: Sequence[Any], sites: Sequence[tuple[str, str]]) -> Provider:
    return Provider(
        id=row[0],
        name=row[1],
        agency=row[2],
        level=row[3],
        sites=tuple(Site(domain, SiteRole(role)) for domain, role in sites),
        created_at=from_us(row[4]),
        updated_at=from_us(row[5]),
    )


def get_provider(conn: sqlite3.Connection, provider_id: str) -> Provider | None:
    row = conn.execute(f"SELECT {_PROVIDER} FROM providers WHERE id = ?", (provider_id,)).fetchone()
    return None if row is None else _provider(row, _site_rows(conn, provider_id))


def provider_id_for(conn: sqlite3.Connection, id_or_domain: str) -> str | None:
    """The id of the provider with this id or owning this domain."""
    row = conn.execute(
        "SELECT id FROM providers WHERE id = ?"
        " UNION ALL SELECT provider_id FROM provider_sites WHERE domain = ? LIMIT 1",
        (id_or_domain, id_or_domain.lower().rstrip(".")),
    ).fetchone()
    return None if row is None else str(row[0])


def list_providers(conn: sqlite3.Connection, ids: Sequence[str] | None = None) -> list[Provider]:
    if ids is None:
        rows = conn.execute(f"SELECT {_PROVIDER} FROM providers ORDER BY id").fetchall()
        site_rows = conn.execute(
            "SELECT provider_id, domain, role FROM provider_sites ORDER BY provider_id, position"
        ).fetchall()
    else:
        marks = ", ".join("?" * len(ids))
        rows = conn.execute(
            f"SELECT {_PROVIDER} FROM providers WHERE id IN ({marks}) ORDER BY id", tuple(ids)
        ).fetchall()
        site_rows = conn.execute(
            "SELECT provider_id, domain, role FROM provider_sites"
            f" WHERE provider_id IN ({marks}) ORDER BY provider_id, position",
            tuple(ids),
        ).fetchall()
    sites: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for provider_id, domain, role in site_rows:
        sites[provider_id].append((domain, role))
    return [_provider(row, sites[row[0]]) for row in rows]


def providers_for_domains(conn: sqlite3.Connection, domains: Sequence[str]) -> list[Provider]:
    if not domains:
        return []
    marks = ", ".join("?" * len(domains))
    ids = [
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT provider_id FROM provider_sites WHERE domain IN ({marks})",
            tuple(domains),
        )
    ]
    return list_providers(conn, ids) if ids else []


def list_sites(conn: sqlite3.Connection) -> list[SiteRef]:
    return [
        SiteRef(domain, provider_id, SiteRole(role).importance)
        for domain, provider_id, role in conn.execute(
            "SELECT domain, provider_id, role FROM provider_sites ORDER BY provider_id, position"
        )
    ]


def search_providers(conn: sqlite3.Connection, text: str, limit: int) -> list[ProviderMatch]:
    """Exact id or domain first, then a domain under ``text``, then a name starting with it,
    then a name containing it; ties by name."""
    needle = text.strip().lower().rstrip(".")
    like = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        """
        SELECT p.id, p.name, p.agency, r.grade, r.score, r.computed_us, min(
            CASE
                WHEN p.id = :text OR s.domain = :text THEN 0
                WHEN s.domain LIKE '%.' || :like ESCAPE '\\' THEN 1
                WHEN lower(p.name) LIKE :like || '%' ESCAPE '\\' THEN 2
                WHEN lower(p.name) LIKE '%' || :like || '%' ESCAPE '\\' THEN 3
            END) AS rank
        FROM providers p
        LEFT JOIN provider_sites s ON s.provider_id = p.id
        LEFT JOIN ratings r ON r.provider_id = p.id
        GROUP BY p.id
        HAVING rank IS NOT NULL
        ORDER BY rank, p.name, p.id
        LIMIT :limit
        """,
        {"text": needle, "like": like, "limit": limit},
    ).fetchall()
    sites: dict[str, list[str]] = defaultdict(list)
    if rows:
        marks = ", ".join("?" * len(rows))
        for provider_id, domain in conn.execute(
            f"SELECT provider_id, domain FROM provider_sites WHERE provider_id IN ({marks})"
            " ORDER BY position",
            tuple(row[0] for row in rows),
        ):
            sites[provider_id].append(domain)
    return [
        ProviderMatch(
            id=row[0],
            name=row[1],
            agency=row[2],
            domains=tuple(sites[row[0]]),
            grade=row[3],
            score=row[4],
            computed_at=opt_from_us(row[5]),
        )
        for row in rows
    ]


# -- incidents -------------------------------------------------------------------------------


def add_incident(
    conn: sqlite3.Connection, incident: NewIncident, author: str, now: int
) -> Incident:
    if (
        conn.execute("SELECT 1 FROM providers WHERE id = ?", (incident.provider,)).fetchone()
        is None
    ):
        raise NotFoundError(f"no provider {incident.provider!r}")
    (count,) = conn.execute(
        "SELECT count(*) FROM incidents WHERE provider_id = ?", (incident.provider,)
    ).fetchone()
    if count >= MAX_INCIDENTS_PER_PROVIDER:
        raise ConflictError(
            f"the provider has its maximum of {MAX_INCIDENTS_PER_PROVIDER} incidents"
        )
    if incident.alert_id is not None:
        row = conn.execute(
            "SELECT id FROM incidents WHERE alert_id = ?", (incident.alert_id,)
        ).fetchone()
        if row is not None:
            raise ConflictError(f"alert {incident.alert_id} is already incident {row[0]}")
    incident_id = "inc-" + secrets.token_hex(8)
    state = IncidentState.ACTIVE if incident.resolved is None else IncidentState.RESOLVED
    conn.execute(
        f"INSERT INTO incidents ({_INCIDENT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            incident_id,
            incident.provider,
            incident.kind.value,
            state.value,
            incident.site,
            to_us(incident.started),
            None if incident.resolved is None else to_us(incident.resolved),
            incident.summary,
            incident.alert_id,
            author,
            now,
            now,
        ),
    )
    return _incident(
        conn.execute(f"SELECT {_INCIDENT} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    )


def update_incident(
    conn: sqlite3.Connection,
    incident_id: str,
    now: int,
    *,
    state: IncidentState | None,
    resolved_us: int | None,
    summary: str | None,
) -> Incident | None:
    current = get_incident(conn, incident_id)
    if current is None:
        return None
    new_state = state or current.state
    if resolved_us is not None and new_state is IncidentState.ACTIVE:
        new_state = IncidentState.RESOLVED
    if new_state is IncidentState.RESOLVED and resolved_us is None and current.resolved is None:
        resolved_us = now
    if resolved_us is not None and resolved_us < to_us(current.started):
        raise ConflictError("an incident cannot be resolved before it started")
    conn.execute(
        "UPDATE incidents SET state = ?, resolved_us = coalesce(?, resolved_us),"
        " summary = coalesce(?, summary), updated_us = ? WHERE id = ?",
        (new_state.value, resolved_us, summary, now, incident_id),
    )
    if new_state is IncidentState.ACTIVE:
        conn.execute("UPDATE incidents SET resolved_us = NULL WHERE id = ?", (incident_id,))
    return get_incident(conn, incident_id)


def dismiss_alert_incidents(conn: sqlite3.Connection, alert_id: str, now: int) -> list[str]:
    """Dismiss the incident made from ``alert_id`` (it was a false positive); its provider."""
    rows = conn.execute(
        "UPDATE incidents SET state = 'dismissed', updated_us = ? WHERE alert_id = ?"
        " AND state != 'dismissed' RETURNING provider_id",
        (now, alert_id),
    ).fetchall()
    return [row[0] for row in rows]


def get_incident(conn: sqlite3.Connection, incident_id: str) -> Incident | None:
    row = conn.execute(f"SELECT {_INCIDENT} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return None if row is None else _incident(row)


def list_incidents(conn: sqlite3.Connection, provider_id: str) -> list[Incident]:
    rows = conn.execute(
        f"SELECT {_INCIDENT} FROM incidents WHERE provider_id = ? ORDER BY started_us, id",
        (provider_id,),
    )
    return [_incident(row) for row in rows]


def _incident(row: Sequence[Any]) -> Incident:
    return Incident(
        id=row[0],
        provider=row[1],
        kind=IncidentKind(row[2]),
        state=IncidentState(row[3]),
        site=row[4],
        started=from_us(row[5]),
        resolved=opt_from_us(row[6]),
        summary=row[7],
        alert_id=row[8],
        author=row[9],
        created_at=from_us(row[10]),
        updated_at=from_us(row[11]),
    )


def provider_alerts(conn: sqlite3.Connection, domains: Sequence[str]) -> list[ProviderAlert]:
    """Alerts whose entity is one of ``domains``, with whether one became an incident."""
    if not domains:
        return []
    marks = ", ".join("?" * len(domains))
    rows = conn.execute(
        "SELECT a.id, a.status, a.first_seen_us, a.updated_us, a.title, a.entity,"
        " i.id IS NOT NULL, a.rule_id FROM alerts a LEFT JOIN incidents i ON i.alert_id = a.id"
        f" WHERE a.entity IN ({marks}) ORDER BY a.first_seen_us, a.id",
        tuple(domains),
    )
    return [
        ProviderAlert(
            id=row[0],
            status=row[1],
            first_seen=from_us(row[2]),
            updated_at=from_us(row[3]),
            title=row[4],
            entity=row[5],
            incident=bool(row[6]),
            rule_id=row[7],
        )
        for row in rows
    ]
