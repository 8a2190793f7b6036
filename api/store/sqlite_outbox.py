"""The outbox in the SQLite store: notifications to the coordination centre, their attempts.

Part of :class:`~api.store.sqlite.SqliteStore`; functions take the connection of its write
transaction (or a read). An alert is routed (:func:`route_alert`) in the transaction that
stores it, so an alert that is stored is queued, and one that is not is not: nothing is lost
and nothing sent for a batch that rolled back.

A notification goes through ``pending`` → ``sending`` (the worker took it) → ``delivered``,
back to ``pending`` with a later ``not_before`` for a retry, or ``dead`` (given up, or 410
Gone; replayed by hand). Until the worker first takes it, a notification is *unsealed*: alerts
of its group join it. Taking it seals it, so what was sent is what it holds. A ``sending``
notification found at start-up (the service died mid-attempt) is ``pending`` again and is sent
again with the same id: the receiver's deduplication makes that exactly once.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any, Final

import orjson

from api.delivery.routing import Routing
from api.store import sqlite_noise
from api.store.keyset import page_query
from api.store.protocol import (
    AttemptResult,
    Claimed,
    DeliveryAttempt,
    DeliveryView,
    Notification,
    NotificationPage,
    NotificationRef,
)
from api.store.timeconv import from_us, opt_from_us, to_us
from api.systems import SystemIndex

_ID_CHUNK: Final = 500
MAX_ALERTS_PER_NOTIFICATION: Final = 100
"""A full notification is ~0.4 MB (alerts and their STIX objects), under the 1 MiB a receiver
like ours accepts; the group's next alerts start another notification for the same window."""
_NOTIFICATION_COLUMNS: Final = (
    "id, receiver, state, group_key, attempts, created_us, not_before_us, deadline_us,"
    " delivered_us, last_error"
)


def alert_fields(
    conn: sqlite3.Connection, alert_id: str, systems: SystemIndex
) -> dict[str, Any] | None:
    """The fields routing, grouping and silences look at, with the agency of the alert's
    information system (``None`` when it is about no declared system)."""
    row = conn.execute(
        "SELECT id, source, rule_id, title, severity, entity, system_id, status FROM alerts"
        " WHERE id = ?",
        (alert_id,),
    ).fetchone()
    if row is None:
        return None
    system = systems.by_id.get(row[6]) if row[6] is not None else None
    return {
        "id": row[0],
        "source": row[1],
        "rule_id": row[2],
        "title": row[3],
        "severity": row[4],
        "entity": row[5],
        "system_id": row[6],
        "agency": None if system is None else system.agency,
        "status": row[7],
    }


def route_alert(
    conn: sqlite3.Connection,
    alert_id: str,
    routing: Routing,
    systems: SystemIndex,
    now_us: int,
    firing_window_us: int,
) -> bool:
    """Queue the alert for every receiver that takes it and does not have it yet, unless
    noise control mutes it (then ``muted_by`` says why). Called when an alert opens and when
    a repeat changes it (a repeat may raise it over a receiver's threshold). Returns whether
    it was queued anywhere."""
    fields = alert_fields(conn, alert_id, systems)
    if fields is None:
        return False
    wanted = [r for r in routing.receivers if r.takes(fields["severity"], fields["agency"])]
    if not wanted:
        return False
    queued = {
        row[0]
        for row in conn.execute(
            "SELECT receiver FROM notification_alerts WHERE alert_id = ?", (alert_id,)
        )
    }
    todo = [receiver for receiver in wanted if receiver.name not in queued]
    if not todo:
        return False
    muted = sqlite_noise.mute_reason(conn, fields, now_us, firing_window_us)
    conn.execute("UPDATE alerts SET muted_by = ? WHERE id = ?", (muted, alert_id))
    if muted is not None:
        return False
    key = routing.group_key(fields)
    for receiver in todo:
        _enqueue(conn, receiver.name, key, alert_id, routing, now_us)
    return True


def _enqueue(
    conn: sqlite3.Connection, receiver: str, key: str, alert_id: str, routing: Routing, now: int
) -> None:
    row = conn.execute(
        "SELECT id, window_start_us FROM notifications WHERE receiver = ? AND group_key = ?"
        " AND state = 'pending' AND sealed = 0 ORDER BY window_start_us DESC LIMIT 1",
        (receiver, key),
    ).fetchone()
    full = row is not None and (
        conn.execute(
            "SELECT count(*) FROM notification_alerts WHERE notification_id = ?", (row[0],)
        ).fetchone()[0]
        >= MAX_ALERTS_PER_NOTIFICATION
    )
    if row is not None and not full:
        notification_id = row[0]
    else:
        last = conn.execute(
            "SELECT max(window_start_us) FROM notifications WHERE receiver = ? AND group_key = ?",
            (receiver, key),
        ).fetchone()[0]
        # The group's first notification goes at once; within a window of the last one, the
        # next waits for the window's end (and gathers what comes meanwhile).
        window = routing.group_window_us
        start = now if last is None or last + window <= now else last + window
        if full:
            start = row[1]  # an overflow of the same window, sent with it
        notification_id = f"msg_{uuid.uuid4().hex}"
        conn.execute(
            "INSERT INTO notifications (id, receiver, group_key, state, sealed, window_start_us,"
            " created_us, not_before_us, deadline_us) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
            (notification_id, receiver, key, start, now, start, start + routing.max_age_us),
        )
    conn.execute(
        "INSERT INTO notification_alerts (notification_id, alert_id, receiver) VALUES (?, ?, ?)",
        (notification_id, alert_id, receiver),
    )


def claim_due(
    conn: sqlite3.Connection,
    now_us: int,
    limit: int,
    systems: SystemIndex,
    firing_window_us: int,
) -> list[Claimed]:
    """Take the notifications due now (oldest first) for sending: seal the ones taken for the
    first time, after dropping their alerts that noise control mutes by now (a silence made
    since they were queued, a critical alert about the same host); a notification left with
    no alert is ``muted`` and not sent."""
    rows = conn.execute(
        "SELECT id, receiver, group_key, sealed, attempts, deadline_us, payload"
        " FROM notifications WHERE state = 'pending' AND not_before_us <= ?"
        " ORDER BY not_before_us, id LIMIT ?",
        (now_us, limit),
    ).fetchall()
    claimed = []
    for notification_id, receiver, key, sealed, attempts, deadline, payload in rows:
        alert_ids = _alert_ids(conn, notification_id)
        if not sealed:
            for alert_id in list(alert_ids):
                fields = alert_fields(conn, alert_id, systems)
                muted = (
                    sqlite_noise.mute_reason(conn, fields, now_us, firing_window_us)
                    if fields is not None
                    else "deleted"
                )
                if muted is not None:
                    alert_ids.remove(alert_id)
                    conn.execute(
                        "DELETE FROM notification_alerts"
                        " WHERE notification_id = ? AND alert_id = ?",
                        (notification_id, alert_id),
                    )
                    conn.execute("UPDATE alerts SET muted_by = ? WHERE id = ?", (muted, alert_id))
            if not alert_ids:
                conn.execute(
                    "UPDATE notifications SET state = 'muted', sealed = 1 WHERE id = ?",
                    (notification_id,),
                )
                continue
        conn.execute(
            "UPDATE notifications SET state = 'sending', sealed = 1 WHERE id = ?",
            (notification_id,),
        )
        claimed.append(
            Claimed(
                id=notification_id,
                receiver=receiver,
                group=orjson.loads(key),
                alert_ids=alert_ids,
                attempts=attempts,
                deadline=from_us(deadline),
                payload=None if payload is None else bytes(payload),
            )
        )
    return claimed


def _alert_ids(conn: sqlite3.Connection, notification_id: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT alert_id FROM notification_alerts WHERE notification_id = ? ORDER BY alert_id",
            (notification_id,),
        )
    ]


def record_attempt(conn: sqlite3.Connection, result: AttemptResult) -> None:
    """Record one attempt and move its notification on (delivered, due again, or dead)."""
    at = to_us(result.at)
    conn.execute(
        "INSERT INTO delivery_attempts (notification_id, at_us, duration_us, outcome, status,"
        " error) VALUES (?, ?, ?, ?, ?, ?)",
        (
            result.notification_id,
            at,
            round(result.duration_ms * 1000),
            result.outcome,
            result.status,
            result.error,
        ),
    )
    if result.outcome == "delivered":
        conn.execute(
            "UPDATE notifications SET state = 'delivered', attempts = attempts + 1,"
            " payload = coalesce(?, payload), delivered_us = ?, last_error = NULL WHERE id = ?",
            (result.payload, at, result.notification_id),
        )
    elif result.outcome == "retry":
        assert result.next_attempt_at is not None  # noqa: S101 - the worker sets it for a retry
        conn.execute(
            "UPDATE notifications SET state = 'pending', attempts = attempts + 1,"
            " payload = coalesce(?, payload), not_before_us = ?, last_error = ? WHERE id = ?",
            (result.payload, to_us(result.next_attempt_at), result.error, result.notification_id),
        )
    else:
        conn.execute(
            "UPDATE notifications SET state = 'dead', attempts = attempts + 1,"
            " payload = coalesce(?, payload),"
            " last_error = ? WHERE id = ?",
            (result.payload, result.error, result.notification_id),
        )


def recover(conn: sqlite3.Connection) -> int:
    """After a crash: what was being sent is due again (same id, so sent at most once more)."""
    return conn.execute(
        "UPDATE notifications SET state = 'pending' WHERE state = 'sending'"
    ).rowcount


def next_due_us(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(
        "SELECT min(not_before_us) FROM notifications WHERE state = 'pending'"
    ).fetchone()
    return None if row is None else row[0]


def replay(conn: sqlite3.Connection, notification_id: str, now_us: int, max_age_us: int) -> bool:
    """Make a dead notification due now with a fresh deadline; ``False`` if it is not dead."""
    return (
        conn.execute(
            "UPDATE notifications SET state = 'pending', not_before_us = ?, deadline_us = ?"
            " WHERE id = ? AND state = 'dead'",
            (now_us, now_us + max_age_us, notification_id),
        ).rowcount
        == 1
    )


def _notification(conn: sqlite3.Connection, row: Sequence[Any], with_log: bool) -> Notification:
    log = None
    if with_log:
        log = [
            DeliveryAttempt(
                at=from_us(a[0]),
                duration_ms=a[1] / 1000,
                outcome=a[2],
                status=a[3],
                error=a[4],
            )
            for a in conn.execute(
                "SELECT at_us, duration_us, outcome, status, error FROM delivery_attempts"
                " WHERE notification_id = ? ORDER BY seq",
                (row[0],),
            )
        ]
    return Notification(
        id=row[0],
        receiver=row[1],
        state=row[2],
        group=orjson.loads(row[3]),
        alert_ids=_alert_ids(conn, row[0]),
        attempts=row[4],
        created_at=from_us(row[5]),
        next_attempt_at=from_us(row[6]) if row[2] == "pending" else None,
        deadline=from_us(row[7]),
        delivered_at=opt_from_us(row[8]),
        last_error=row[9],
        attempt_log=log,
    )


def get_notification(conn: sqlite3.Connection, notification_id: str) -> Notification | None:
    row = conn.execute(
        f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?", (notification_id,)
    ).fetchone()
    return None if row is None else _notification(conn, row, with_log=True)


def query_notifications(
    conn: sqlite3.Connection,
    state: str | None,
    receiver: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> NotificationPage:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("state", state), ("receiver", receiver)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql, params = page_query(
        f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications",
        where,
        params,
        time_column="created_us",
        tie_column="id",
        start_us=None,
        end_us=None,
        after=after,
        limit=limit,
    )
    rows = conn.execute(sql, params).fetchall()
    items = [_notification(conn, row, with_log=False) for row in rows[:limit]]
    last = items[-1] if len(rows) > limit and items else None
    return NotificationPage(items, (to_us(last.created_at), last.id) if last else None)


def counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Notifications by (receiver, state), for ``/metrics``."""
    return {
        (row[0], row[1]): row[2]
        for row in conn.execute(
            "SELECT receiver, state, count(*) FROM notifications GROUP BY receiver, state"
        )
    }


def delivery_views(
    conn: sqlite3.Connection, muted: dict[str, str | None]
) -> dict[str, DeliveryView]:
    """The delivery state of each alert in ``muted`` (alert id → its ``muted_by``)."""
    refs: dict[str, list[NotificationRef]] = {alert_id: [] for alert_id in muted}
    ids = list(muted)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT na.alert_id, n.id, n.receiver, n.state, n.attempts, n.delivered_us"
            " FROM notification_alerts na JOIN notifications n ON n.id = na.notification_id"
            f" WHERE na.alert_id IN ({marks}) ORDER BY n.receiver",
            chunk,
        ):
            refs[row[0]].append(
                NotificationRef(
                    id=row[1],
                    receiver=row[2],
                    state=row[3],
                    attempts=row[4],
                    delivered_at=opt_from_us(row[5]),
                )
            )
    return {
        alert_id: DeliveryView(_state(refs[alert_id], by), by, refs[alert_id])
        for alert_id, by in muted.items()
    }


def _state(refs: list[NotificationRef], muted_by: str | None) -> Any:
    states = {ref.state for ref in refs}
    if "dead" in states:
        return "dead"
    if states & {"pending", "sending"}:
        return "pending"
    if states and states <= {"delivered"}:
        return "delivered"
    if muted_by is not None:
        return "inhibited" if muted_by.startswith("inhibited:") else "silenced"
    return "not_routed"
