"""Information systems in the SQLite store, and the index alerts are matched against.

Part of :class:`~api.store.sqlite.SqliteStore`; the functions take the connection the store
gives them. Systems are only ever added, so the largest rowid names the table's content: the
index is rebuilt when it changes, which also notices a system added by another process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from ipaddress import ip_network
from typing import Any, Final

import orjson

from api.errors import ConflictError
from api.store.timeconv import from_us
from api.systems import MAX_SYSTEMS, InformationSystem, NewSystem, SystemIndex

_COLUMNS: Final = "id, name, agency, level, networks, hosts, created_us"


def add_system(conn: sqlite3.Connection, system: NewSystem, now: int) -> InformationSystem:
    count, exists = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE id = ?) FROM information_systems", (system.id,)
    ).fetchone()
    if exists:
        raise ConflictError(f"an information system with id {system.id!r} exists")
    if count >= MAX_SYSTEMS:
        raise ConflictError(f"the store holds its maximum of {MAX_SYSTEMS} information systems")
    row = (
        system.id,
        system.name,
        system.agency,
        system.level,
        orjson.dumps([str(network) for network in system.networks]).decode(),
        orjson.dumps(list(system.hosts)).decode(),
        now,
    )
    conn.execute(f"INSERT INTO information_systems ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    return _system(row)


def list_systems(conn: sqlite3.Connection) -> list[InformationSystem]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM information_systems ORDER BY id")
    return [_system(row) for row in rows]


def _system(row: Sequence[Any]) -> InformationSystem:
    return InformationSystem(
        id=row[0],
        name=row[1],
        agency=row[2],
        level=row[3],
        networks=tuple(ip_network(text) for text in orjson.loads(row[4])),
        hosts=tuple(orjson.loads(row[5])),
        created_at=from_us(row[6]),
    )


class SystemsCache:
    """The :class:`SystemIndex` of the stored systems, rebuilt only when they change. Used
    under the store's write lock."""

    def __init__(self) -> None:
        self._key: int | None = None
        self._index = SystemIndex(())

    def current(self, conn: sqlite3.Connection) -> SystemIndex:
        (key,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM information_systems").fetchone()
        if key != self._key:
            self._index = SystemIndex(list_systems(conn))
            self._key = key
        return self._index
