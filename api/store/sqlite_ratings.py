"""Finding states, current ratings and rating history in the SQLite store.

Part of :class:`~api.store.sqlite.SqliteStore`. A rating is stored as the public JSON document
(orjson bytes) beside the few values that are filtered and sorted on, so that the public
lookup reads one row and sends its bytes as they are.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

import orjson

from api.store.protocol_trust import RatingPoint, StoredRating
from api.store.timeconv import from_us, to_us
from scoring.trust_model import FindingState

_RATING: Final = (
    "r.provider_id, p.name, p.agency, p.level, r.status, r.grade, r.score, r.warning,"
    " r.computed_us, r.doc"
)


def finding_states(
    conn: sqlite3.Connection, domains: Sequence[str]
) -> dict[str, list[FindingState]]:
    found: dict[str, list[FindingState]] = defaultdict(list)
    if not domains:
        return {}
    marks = ", ".join("?" * len(domains))
    for domain, doc in conn.execute(
        f"SELECT domain, doc FROM findings WHERE domain IN ({marks}) ORDER BY domain, check_id",
        tuple(domains),
    ):
        found[domain].append(FindingState.from_json(orjson.loads(doc)))
    return dict(found)


def save_finding_states(
    conn: sqlite3.Connection, domain: str, states: Sequence[FindingState]
) -> None:
    conn.executemany(
        "INSERT INTO findings (domain, check_id, doc) VALUES (?, ?, ?)"
        " ON CONFLICT (domain, check_id) DO UPDATE SET doc = excluded.doc",
        [(domain, state.check, orjson.dumps(state.to_json())) for state in states],
    )


def save_rating(conn: sqlite3.Connection, stored: StoredRating, *, history: bool) -> bool:
    """False if the provider is gone (deleted while it was being rated)."""
    if conn.execute("SELECT 1 FROM providers WHERE id = ?", (stored.provider,)).fetchone() is None:
        return False
    computed = to_us(stored.computed_at)
    conn.execute(
        "INSERT INTO ratings (provider_id, status, grade, score, warning, computed_us, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider_id) DO UPDATE SET"
        " status = excluded.status, grade = excluded.grade, score = excluded.score,"
        " warning = excluded.warning, computed_us = excluded.computed_us, doc = excluded.doc",
        (
            stored.provider,
            stored.status,
            stored.grade,
            stored.score,
            int(stored.warning),
            computed,
            stored.doc,
        ),
    )
    if history:
        conn.execute(
            "INSERT INTO rating_history (provider_id, at_us, status, grade, score)"
            " VALUES (?, ?, ?, ?, ?)",
            (stored.provider, computed, stored.status, stored.grade, stored.score),
        )
    return True


def current_rating(conn: sqlite3.Connection, provider_id: str) -> StoredRating | None:
    row = conn.execute(
        f"SELECT {_RATING} FROM ratings r JOIN providers p ON p.id = r.provider_id"
        " WHERE r.provider_id = ?",
        (provider_id,),
    ).fetchone()
    return None if row is None else _rating(row)


def rating_doc(conn: sqlite3.Connection, id_or_domain: str) -> bytes | None:
    """The stored document of the provider with this id or owning this domain: the public
    lookup's one query."""
    row = conn.execute(
        "SELECT doc FROM ratings WHERE provider_id = ?1 UNION ALL"
        " SELECT r.doc FROM provider_sites s JOIN ratings r ON r.provider_id = s.provider_id"
        " WHERE s.domain = ?2 LIMIT 1",
        (id_or_domain, id_or_domain.lower().rstrip(".")),
    ).fetchone()
    return None if row is None else bytes(row[0])


def current_ratings(conn: sqlite3.Connection) -> list[StoredRating]:
    rows = conn.execute(
        f"SELECT {_RATING} FROM ratings r JOIN providers p ON p.id = r.provider_id"
        " ORDER BY r.provider_id"
    )
    return [_rating(row) for row in rows]


def _rating(row: Sequence[Any]) -> StoredRating:
    return StoredRating(
        provider=row[0],
        name=row[1],
        agency=row[2],
        level=row[3],
        status=row[4],
        grade=row[5],
        score=row[6],
        warning=bool(row[7]),
        computed_at=from_us(row[8]),
        doc=bytes(row[9]),
    )


def _point(row: Sequence[Any]) -> RatingPoint:
    return RatingPoint(
        provider=row[0], at=from_us(row[1]), status=row[2], grade=row[3], score=row[4]
    )


_POINT: Final = "provider_id, at_us, status, grade, score"


def last_history_point(conn: sqlite3.Connection, provider_id: str) -> RatingPoint | None:
    row = conn.execute(
        f"SELECT {_POINT} FROM rating_history WHERE provider_id = ?"
        " ORDER BY at_us DESC, seq DESC LIMIT 1",
        (provider_id,),
    ).fetchone()
    return None if row is None else _point(row)


def rating_history(
    conn: sqlite3.Connection, provider_id: str, since_us: int | None, limit: int
) -> list[RatingPoint]:
    rows = conn.execute(
        f"SELECT {_POINT} FROM rating_history WHERE provider_id = ? AND at_us >= ?"
        " ORDER BY at_us DESC, seq DESC LIMIT ?",
        (provider_id, since_us if since_us is not None else -(2**62), limit),
    ).fetchall()
    return [_point(row) for row in reversed(rows)]


def rating_history_since(conn: sqlite3.Connection, since_us: int) -> list[RatingPoint]:
    rows = conn.execute(
        f"SELECT {_POINT} FROM rating_history WHERE at_us >= ? ORDER BY at_us, seq", (since_us,)
    )
    return [_point(row) for row in rows]
