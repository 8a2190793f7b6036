"""The alert lifecycle in the SQLite store: transitions, assignment, notes, the audit trail and
bulk actions.

Part of :class:`~api.store.sqlite.SqliteStore`; every function takes the connection of the
store's write transaction (or a read), so a change, its note and its audit rows commit together
or not at all. Checks come before writes, so a refused change leaves nothing behind and a bulk
action can go on with the next alert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from api.errors import ConflictError, UnprocessableError
from api.lifecycle import MAX_NOTES_PER_ALERT, AlertStatus, TransitionError, check_transition
from api.store import sqlite_noise
from api.store.protocol import (
    AlertQuery,
    AuditEntry,
    AuditField,
    AuditPage,
    BulkAction,
    BulkResult,
    BulkSkip,
    BulkTransition,
    Note,
    Suppress,
)
from api.store.sqlite_alerts import query_alerts
from api.store.timeconv import from_us
from api.tokens import Principal

_NOTE_COLUMNS: Final = "id, alert_id, author_id, author, created_us, text"
_AUDIT_COLUMNS: Final = "seq, alert_id, at_us, actor_id, actor, field, old, new"


def transition(
    conn: sqlite3.Connection,
    alert_id: str,
    to: AlertStatus,
    actor: Principal,
    now: int,
    note: str | None,
    suppress: Suppress | None = None,
) -> bool:
    """Move the alert to ``to``; ``False`` if there is no such alert. Raises
    :class:`TransitionError` if the lifecycle refuses, :class:`ConflictError` if a note does
    not fit, :class:`UnprocessableError` if ``suppress`` names evidence the alert lacks.

    A false-positive verdict with ``suppress`` makes a suppression; reopening a false positive
    lifts the suppressions its verdict made."""
    row = conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return False
    current = check_transition(alert_id, row[0], to)
    if note is not None:
        _check_room_for_note(conn, alert_id)
    # Compare-and-set: the write applies only to the status just checked. Under SQLite's one
    # writer nothing can come between; the check keeps the statement right on its own.
    cursor = conn.execute(
        "UPDATE alerts SET status = ?, updated_us = ? WHERE id = ? AND status = ?",
        (to.value, now, alert_id, current.value),
    )
    if cursor.rowcount != 1:
        latest = conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        raise TransitionError(alert_id, AlertStatus(latest[0]), to)
    _audit(conn, alert_id, now, actor, AuditField.STATUS, current.value, to.value)
    if note is not None:
        _insert_note(conn, alert_id, note, actor, now)
    if to is AlertStatus.FALSE_POSITIVE and suppress is not None:
        try:
            sqlite_noise.add_suppression(conn, alert_id, suppress.fields, suppress.days, actor, now)
        except ValueError as exc:
            raise UnprocessableError(str(exc)) from exc
    elif current is AlertStatus.FALSE_POSITIVE:
        sqlite_noise.lift_for_alert(conn, alert_id, now)
    return True


def assign(
    conn: sqlite3.Connection, alert_id: str, assignee: str | None, actor: Principal, now: int
) -> bool | None:
    """Set the assignee: whether it changed, ``None`` if there is no such alert."""
    row = conn.execute("SELECT assignee FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    if row[0] == assignee:
        return False
    conn.execute(
        "UPDATE alerts SET assignee = ?, updated_us = ? WHERE id = ?", (assignee, now, alert_id)
    )
    _audit(conn, alert_id, now, actor, AuditField.ASSIGNEE, row[0], assignee)
    return True


def add_note(
    conn: sqlite3.Connection, alert_id: str, text: str, actor: Principal, now: int
) -> Note | None:
    if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is None:
        return None
    _check_room_for_note(conn, alert_id)
    note = _insert_note(conn, alert_id, text, actor, now)
    conn.execute("UPDATE alerts SET updated_us = ? WHERE id = ?", (now, alert_id))
    return note


def notes(conn: sqlite3.Connection, alert_id: str) -> list[Note]:
    rows = conn.execute(
        f"SELECT {_NOTE_COLUMNS} FROM alert_notes WHERE alert_id = ? ORDER BY id", (alert_id,)
    )
    return [_note(row) for row in rows]


def audit(conn: sqlite3.Connection, alert_id: str, after: int, limit: int) -> AuditPage | None:
    if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is None:
        return None
    rows = conn.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM alert_audit WHERE alert_id = ? AND seq > ?"
        " ORDER BY seq LIMIT ?",
        (alert_id, after, limit + 1),
    ).fetchall()
    items = [_entry(row) for row in rows[:limit]]
    return AuditPage(items, items[-1].seq if len(rows) > limit else None)


def bulk(
    conn: sqlite3.Connection, query: AlertQuery, action: BulkAction, actor: Principal, now: int
) -> BulkResult:
    """``action`` on each alert ``query`` selects, judged one by one: not all-or-nothing."""
    page = query_alerts(conn, query)
    changed = unchanged = 0
    skipped: list[BulkSkip] = []
    for alert in page.items:
        if isinstance(action, BulkTransition):
            # One alert's refusal undoes that alert's writes only: the others go on.
            conn.execute("SAVEPOINT bulk_one")
            try:
                transition(conn, alert.id, action.to, actor, now, action.note, action.suppress)
            except (ConflictError, UnprocessableError) as exc:
                conn.execute("ROLLBACK TO bulk_one")
                conn.execute("RELEASE bulk_one")
                skipped.append(BulkSkip(id=alert.id, status=alert.status, reason=str(exc)))
                continue
            conn.execute("RELEASE bulk_one")
            changed += 1
        elif assign(conn, alert.id, action.assignee, actor, now):
            changed += 1
        else:
            unchanged += 1
    return BulkResult(
        matched=len(page.items),
        changed=changed,
        unchanged=unchanged,
        skipped=skipped,
        truncated=page.next_after is not None,
    )


def _check_room_for_note(conn: sqlite3.Connection, alert_id: str) -> None:
    (count,) = conn.execute(
        "SELECT count(*) FROM alert_notes WHERE alert_id = ?", (alert_id,)
    ).fetchone()
    if count >= MAX_NOTES_PER_ALERT:
        raise ConflictError(f"alert {alert_id} has its maximum of {MAX_NOTES_PER_ALERT} notes")


def _insert_note(
    conn: sqlite3.Connection, alert_id: str, text: str, actor: Principal, now: int
) -> Note:
    row_id = conn.execute(
        "INSERT INTO alert_notes (alert_id, author_id, author, created_us, text)"
        " VALUES (?, ?, ?, ?, ?)",
        (alert_id, actor.id, actor.name, now, text),
    ).lastrowid
    assert row_id is not None  # noqa: S101 - an INSERT always sets it
    _audit(conn, alert_id, now, actor, AuditField.NOTE, None, text)
    return _note((row_id, alert_id, actor.id, actor.name, now, text))


def _audit(
    conn: sqlite3.Connection,
    alert_id: str,
    now: int,
    actor: Principal,
    what: AuditField,
    old: str | None,
    new: str | None,
) -> None:
    conn.execute(
        "INSERT INTO alert_audit (alert_id, at_us, actor_id, actor, field, old, new)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (alert_id, now, actor.id, actor.name, what.value, old, new),
    )


def _note(row: Sequence[Any]) -> Note:
    return Note(
        id=row[0],
        alert_id=row[1],
        author_id=row[2],
        author=row[3],
        created_at=from_us(row[4]),
        text=row[5],
    )


def _entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        seq=row[0],
        alert_id=row[1],
        at=from_us(row[2]),
        actor_id=row[3],
        actor=row[4],
        field=AuditField(row[5]),
        old=row[6],
        new=row[7],
    )
