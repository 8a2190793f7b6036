"""Reading stored scan records from SQLite, newest first, by keyset pages."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from api.store.keyset import page_query
from api.store.protocol import ScanPage, ScanQuery


def query_scans(conn: sqlite3.Connection, query: ScanQuery) -> ScanPage:
    where: list[str] = []
    params: list[Any] = []
    if query.domain is not None:
        where.append("target = ?")  # scans_by_target (target, start_us) serves it
        params.append(query.domain)
    sql, params = page_query(
        "SELECT seq, start_us, doc FROM scans",
        where,
        params,
        time_column="start_us",
        tie_column="seq",
        start_us=None,
        end_us=None,
        after=query.after,
        limit=query.limit,
    )
    rows = conn.execute(sql, params).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return ScanPage(
        items=[orjson.loads(row[2]) for row in rows],
        next_after=(rows[-1][1], rows[-1][0]) if more and rows else None,
    )
