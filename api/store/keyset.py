"""Keyset pagination in SQL, newest first: the one way every list query in the store pages.

A page is ordered by a time column, then a unique tie-breaker, both descending; the cursor is
the last row's (time, tie-breaker), and the next page starts strictly after it. Pages stay
cheap however deep they go and do not shift while new rows arrive.

>>> sql, params = page_query("SELECT id FROM t", ["kind = ?"], ["x"], time_column="ts",
...     tie_column="id", start_us=None, end_us=5, after=(4, 9), limit=2)
>>> sql.split(" WHERE ")[1].split(" ORDER BY ")
['kind = ? AND ts < ? AND (ts < ? OR (ts = ? AND id < ?))', 'ts DESC, id DESC LIMIT ?']
>>> params
['x', 5, 4, 4, 9, 3]
"""

from __future__ import annotations

from typing import Any


def page_query(
    select: str,
    where: list[str],
    params: list[Any],
    *,
    time_column: str,
    tie_column: str,
    start_us: int | None,
    end_us: int | None,
    after: tuple[int, Any] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """``select`` with the filters, the time range [start, end), the cursor and the order.

    Asks for ``limit + 1`` rows: one more than the page shows whether there is a next page.
    """
    clauses, values = list(where), list(params)
    if start_us is not None:
        clauses.append(f"{time_column} >= ?")
        values.append(start_us)
    if end_us is not None:
        clauses.append(f"{time_column} < ?")
        values.append(end_us)
    if after is not None:
        clauses.append(f"({time_column} < ? OR ({time_column} = ? AND {tie_column} < ?))")
        values += [after[0], after[0], after[1]]
    sql = select + (" WHERE " + " AND ".join(clauses) if clauses else "")
    sql += f" ORDER BY {time_column} DESC, {tie_column} DESC LIMIT ?"
    values.append(limit + 1)
    return sql, values
