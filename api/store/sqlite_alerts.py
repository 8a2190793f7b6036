"""Alert rows in the SQLite store: opening and merging them, and reading them back.

Part of :class:`~api.store.sqlite.SqliteStore`; the functions take the connection the store
gives them, inside its transaction or read.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

import orjson

from api.lifecycle import OPEN_STATUSES
from api.severity import worst
from api.store import sqlite_outbox
from api.store.keyset import page_query
from api.store.protocol import Alert, AlertPage, AlertQuery
from api.store.timeconv import from_us, to_us
from api.systems import SystemIndex, raise_severity

MAX_EVIDENCE_IDS: Final = 100  # event ids an alert keeps; its count stays exact
_ID_CHUNK: Final = 500  # ids per IN (...) lookup, well under SQLite's variable limit

_ALERT_COLUMNS: Final = (
    "id, source, rule_id, title, severity, entity, status, first_seen_us, last_seen_us, count,"
    " tags, evidence, created_us, updated_us, assignee, system_id, muted_by"
)
# Only open alerts absorb repeats: a resolved or false-positive one stays as the analyst left it.
_OPEN_SQL: Final = ", ".join(f"'{status.value}'" for status in sorted(OPEN_STATUSES))


def known_ids(
    conn: sqlite3.Connection, sensor_id: str, ids: list[str], table: str = "flows"
) -> set[str]:
    """Which of ``ids`` the sensor already sent (``table``: flows or scans)."""
    if table not in ("flows", "scans"):
        raise ValueError(f"no records table {table}")
    known: set[str] = set()
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT event_id FROM {table} WHERE sensor_id = ? AND event_id IN ({marks})",
            [sensor_id, *chunk],
        )
        known.update(row[0] for row in rows)
    return known


def record_alert(
    conn: sqlite3.Connection, detection: Any, now: int, window_us: int, systems: SystemIndex
) -> tuple[str, bool]:
    """Open an alert for ``detection``, or merge it into the open one it repeats.

    ``count`` counts detections (repeats); ``evidence.events`` the events behind them. A new
    alert about a declared information system keeps the system's id and has its severity
    raised by the system's security level (:mod:`api.systems`); a repeat is raised the same way.
    Returns the alert's id and whether it was opened (not merged)."""
    first, last = to_us(detection.first_seen), to_us(detection.last_seen)
    row = conn.execute(
        "SELECT id, first_seen_us, last_seen_us, evidence, severity, system_id FROM alerts"
        f" WHERE source = ? AND entity = ? AND status IN ({_OPEN_SQL})"
        " AND last_seen_us >= ?"
        " ORDER BY last_seen_us DESC LIMIT 1",
        (detection.source, detection.entity, first - window_us),
    ).fetchone()
    if row is None:
        system = systems.match(detection.entity)
        level = detection.level if system is None else raise_severity(detection.level, system.level)
        evidence = {
            "events": detection.count,
            "event_ids": list(detection.event_ids)[:MAX_EVIDENCE_IDS],
            "values": dict(detection.values),
        }
        alert_id = uuid.uuid4().hex
        conn.execute(
            f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?,"
            " ?, ?, NULL, ?, NULL)",
            (
                alert_id,
                detection.source,
                detection.rule_id,
                detection.title,
                level,
                detection.entity,
                first,
                last,
                1,
                orjson.dumps(list(detection.tags)).decode(),
                orjson.dumps(evidence, default=str).decode(),
                now,
                now,
                None if system is None else system.id,
            ),
        )
        return alert_id, True
    evidence = orjson.loads(row[3])
    ids = evidence.get("event_ids", [])
    ids.extend(i for i in detection.event_ids if len(ids) < MAX_EVIDENCE_IDS)
    evidence["event_ids"] = ids
    evidence["events"] = evidence.get("events", 0) + detection.count
    evidence["values"] = dict(detection.values)
    # A repeat may be worse than the first (an anomaly further out): the alert takes the worst.
    system = systems.by_id.get(row[5]) if row[5] is not None else None
    level = detection.level if system is None else raise_severity(detection.level, system.level)
    severity = worst(row[4], level)
    conn.execute(
        "UPDATE alerts SET count = count + 1, first_seen_us = ?, last_seen_us = ?, evidence = ?,"
        " severity = ?, updated_us = ? WHERE id = ?",
        (
            min(row[1], first),
            max(row[2], last),
            orjson.dumps(evidence, default=str).decode(),
            severity,
            now,
            row[0],
        ),
    )
    return row[0], False


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(
        id=row[0],
        source=row[1],
        rule_id=row[2],
        title=row[3],
        severity=row[4],
        entity=row[5],
        status=row[6],
        first_seen=from_us(row[7]),
        last_seen=from_us(row[8]),
        count=row[9],
        tags=orjson.loads(row[10]),
        evidence=orjson.loads(row[11]),
        created_at=from_us(row[12]),
        updated_at=from_us(row[13]),
        assignee=row[14],
        system_id=row[15],
    )


def with_delivery(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Alert]:
    """Alerts from their rows, each with its delivery state."""
    views = sqlite_outbox.delivery_views(conn, {row[0]: row[16] for row in rows})
    return [replace(_alert(row), delivery=views[row[0]]) for row in rows]


def query_alerts(conn: sqlite3.Connection, query: AlertQuery) -> AlertPage:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", query.status),
        ("severity", query.severity),
        ("source", query.source),
        ("entity", query.entity),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql, params = page_query(
        f"SELECT {_ALERT_COLUMNS} FROM alerts",
        where,
        params,
        time_column="last_seen_us",
        tie_column="id",
        start_us=to_us(query.start) if query.start else None,
        end_us=to_us(query.end) if query.end else None,
        after=query.after,
        limit=query.limit,
    )
    rows = conn.execute(sql, params).fetchall()
    more = len(rows) > query.limit
    alerts = with_delivery(conn, rows[: query.limit])
    last = alerts[-1] if more and alerts else None
    return AlertPage(alerts, (to_us(last.last_seen), last.id) if last else None)


def get_alert(conn: sqlite3.Connection, alert_id: str) -> Alert | None:
    row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return None if row is None else with_delivery(conn, [row])[0]
