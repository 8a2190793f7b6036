"""Silences, inhibition and suppressions in the SQLite store (:mod:`api.noise` says what they
do). Part of :class:`~api.store.sqlite.SqliteStore`; functions take its connection."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from api.errors import ConflictError
from api.lifecycle import OPEN_STATUSES
from api.noise import Matcher, Silence, Suppression, inhibitor
from api.store.timeconv import from_us, opt_from_us
from api.tokens import Principal

_OPEN_SQL: Final = ", ".join(f"'{status.value}'" for status in sorted(OPEN_STATUSES))
_SILENCE_COLUMNS: Final = (
    "id, matchers, starts_us, ends_us, author, comment, created_us, expired_by"
)
_SUPPRESSION_COLUMNS: Final = (
    "id, source, entity, match_values, alert_id, author, created_us, expires_us, hits, last_hit_us"
)
MAX_ACTIVE_SILENCES: Final = 1000  # each is checked against every alert on its way out
MAX_ACTIVE_SUPPRESSIONS: Final = 10_000  # looked up by (source, entity): an index, not a scan


def mute_reason(
    conn: sqlite3.Connection, fields: Mapping[str, Any], now_us: int, firing_window_us: int
) -> str | None:
    """``silence:<id>`` of an active silence matching the alert, ``inhibited:<id>`` of an open
    critical alert about one of its hosts that fired within ``firing_window_us`` of ``now_us``
    (by the service's clock: a sensor's backlog must not make a firing alert look old), else
    ``None``."""
    for silence in _silences(conn, "starts_us <= ? AND ends_us > ?", (now_us, now_us)):
        if silence.matches(fields):
            return f"silence:{silence.id}"
    if fields["severity"] == "critical":
        return None
    criticals = conn.execute(
        "SELECT id, entity FROM alerts WHERE severity = 'critical'"
        f" AND status IN ({_OPEN_SQL}) AND updated_us >= ?",
        (now_us - firing_window_us,),
    ).fetchall()
    by = inhibitor(fields["severity"], fields["entity"], criticals, fields["id"])
    return None if by is None else f"inhibited:{by}"


def _silences(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Silence]:
    rows = conn.execute(
        f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE {where} ORDER BY created_us, id", params
    ).fetchall()
    return [_silence(row) for row in rows]


def _silence(row: Sequence[Any]) -> Silence:
    return Silence(
        id=row[0],
        matchers=tuple(Matcher.model_validate(m) for m in orjson.loads(row[1])),
        starts_at=from_us(row[2]),
        ends_at=from_us(row[3]),
        author=row[4],
        comment=row[5],
        created_at=from_us(row[6]),
        expired_by=row[7],
    )


def add_silence(
    conn: sqlite3.Connection,
    matchers: Sequence[Matcher],
    starts_us: int,
    ends_us: int,
    comment: str,
    actor: Principal,
    now_us: int,
) -> Silence:
    active = conn.execute("SELECT count(*) FROM silences WHERE ends_us > ?", (now_us,)).fetchone()
    if active[0] >= MAX_ACTIVE_SILENCES:
        raise ConflictError(f"there are already {MAX_ACTIVE_SILENCES} silences; expire some")
    silence_id = uuid.uuid4().hex
    conn.execute(
        f"INSERT INTO silences ({_SILENCE_COLUMNS}, author_id) VALUES (?, ?, ?, ?, ?, ?, ?, NULL,"
        " ?)",
        (
            silence_id,
            orjson.dumps([m.model_dump() for m in matchers]).decode(),
            starts_us,
            ends_us,
            actor.name,
            comment,
            now_us,
            actor.id,
        ),
    )
    found = get_silence(conn, silence_id)
    assert found is not None  # noqa: S101 - just inserted
    return found


def get_silence(conn: sqlite3.Connection, silence_id: str) -> Silence | None:
    found = _silences(conn, "id = ?", (silence_id,))
    return found[0] if found else None


def list_silences(conn: sqlite3.Connection, now_us: int, include_expired: bool) -> list[Silence]:
    if include_expired:
        return _silences(conn, "1 = 1", ())
    return _silences(conn, "ends_us > ?", (now_us,))


def expire_silence(
    conn: sqlite3.Connection, silence_id: str, actor: Principal, now_us: int
) -> Silence | None:
    """End the silence now (kept, with who ended it); an ended one is left as it is."""
    conn.execute(
        "UPDATE silences SET ends_us = ?, expired_by = ? WHERE id = ? AND ends_us > ?",
        (now_us, actor.name, silence_id, now_us),
    )
    return get_silence(conn, silence_id)


# -- suppressions -------------------------------------------------------------------------


def _suppression(row: Sequence[Any]) -> Suppression:
    return Suppression(
        id=row[0],
        source=row[1],
        entity=row[2],
        values=orjson.loads(row[3]),
        alert_id=row[4],
        author=row[5],
        created_at=from_us(row[6]),
        expires_at=from_us(row[7]),
        hits=row[8],
        last_hit=opt_from_us(row[9]),
    )


def suppressed(
    conn: sqlite3.Connection, source: str, entity: str, values: Mapping[str, Any], now_us: int
) -> bool:
    """Whether an active suppression swallows this detection (and count the hit on it)."""
    rows = conn.execute(
        f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions"
        " WHERE source = ? AND entity = ? AND expires_us > ? ORDER BY created_us",
        (source, entity, now_us),
    ).fetchall()
    # Evidence values went through JSON into the store: compare them as JSON gives them back.
    seen = orjson.loads(orjson.dumps(dict(values), default=str))
    for row in rows:
        suppression = _suppression(row)
        if suppression.matches(source, entity, seen):
            conn.execute(
                "UPDATE suppressions SET hits = hits + 1, last_hit_us = ? WHERE id = ?",
                (now_us, suppression.id),
            )
            return True
    return False


def add_suppression(
    conn: sqlite3.Connection,
    alert_id: str,
    fields: Sequence[str],
    days: int,
    actor: Principal,
    now_us: int,
) -> Suppression:
    """A suppression of the alert's source and entity, narrowed to the evidence values named
    in ``fields`` (each must be one the alert has). Raises ``ValueError`` otherwise."""
    row = conn.execute(
        "SELECT source, entity, evidence FROM alerts WHERE id = ?", (alert_id,)
    ).fetchone()
    if row is None:
        raise LookupError(alert_id)
    evidence_values = orjson.loads(row[2]).get("values", {})
    missing = sorted(set(fields) - set(evidence_values))
    if missing:
        raise ValueError(
            f"the alert's evidence has no value {', '.join(missing)} to narrow the suppression"
            f" by (it has: {', '.join(sorted(evidence_values)) or 'none'})"
        )
    active = conn.execute(
        "SELECT count(*) FROM suppressions WHERE expires_us > ?", (now_us,)
    ).fetchone()
    if active[0] >= MAX_ACTIVE_SUPPRESSIONS:
        raise ConflictError(f"there are already {MAX_ACTIVE_SUPPRESSIONS} active suppressions")
    suppression_id = uuid.uuid4().hex
    conn.execute(
        f"INSERT INTO suppressions ({_SUPPRESSION_COLUMNS}, author_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
        (
            suppression_id,
            row[0],
            row[1],
            orjson.dumps({name: evidence_values[name] for name in sorted(fields)}).decode(),
            alert_id,
            actor.name,
            now_us,
            now_us + days * 86_400_000_000,
            actor.id,
        ),
    )
    found = get_suppression(conn, suppression_id)
    assert found is not None  # noqa: S101 - just inserted
    return found


def get_suppression(conn: sqlite3.Connection, suppression_id: str) -> Suppression | None:
    row = conn.execute(
        f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE id = ?", (suppression_id,)
    ).fetchone()
    return None if row is None else _suppression(row)


def list_suppressions(
    conn: sqlite3.Connection, now_us: int, include_expired: bool
) -> list[Suppression]:
    where, params = ("1 = 1", ()) if include_expired else ("expires_us > ?", (now_us,))
    rows = conn.execute(
        f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE {where}"
        " ORDER BY created_us DESC, id",
        params,
    ).fetchall()
    return [_suppression(row) for row in rows]


def lift_suppression(conn: sqlite3.Connection, suppression_id: str, now_us: int) -> bool:
    """End a suppression now (it stays listed with its hits); ``False``: no such one."""
    cursor = conn.execute(
        "UPDATE suppressions SET expires_us = min(expires_us, ?) WHERE id = ?",
        (now_us, suppression_id),
    )
    return cursor.rowcount == 1


def lift_for_alert(conn: sqlite3.Connection, alert_id: str, now_us: int) -> int:
    """A reopened false positive was not one: end the suppressions its verdict made."""
    return conn.execute(
        "UPDATE suppressions SET expires_us = ? WHERE alert_id = ? AND expires_us > ?",
        (now_us, alert_id, now_us),
    ).rowcount
