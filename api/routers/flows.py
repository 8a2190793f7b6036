"""``GET /api/v1/flows``: stored flow records for analysts, filtered and paginated.

Pagination is by keyset (an opaque cursor), newest flows first, so a page stays cheap however
deep it is and does not shift while new flows arrive.
"""

from __future__ import annotations

import base64
import binascii
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from api.auth import ReaderPrincipal
from api.dependencies import StoreDep
from api.errors import UnprocessableError
from api.store.protocol import FlowQuery
from sensors.wire import SensorId

router = APIRouter(tags=["flows"])

MAX_PAGE = 1000


class FlowPageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get("/api/v1/flows", summary="Flow records, newest first", response_model=FlowPageOut)
def list_flows(
    _: ReaderPrincipal,
    store: StoreDep,
    start: Annotated[AwareDatetime | None, Query(description="event.start at or after")] = None,
    end: Annotated[AwareDatetime | None, Query(description="event.start before")] = None,
    ip: Annotated[
        IPv4Address | IPv6Address | None, Query(description="source or destination IP")
    ] = None,
    port: Annotated[
        int | None,
        Query(
            ge=0,
            le=65535,
            description="destination (service) port: flows are "
            "bidirectional and their source is the side that started them",
        ),
    ] = None,
    sensor: Annotated[SensorId | None, Query(description="sensor id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
) -> FlowPageOut:
    if start is not None and end is not None and end <= start:
        raise UnprocessableError("end must be after start")
    page = store.query_flows(
        FlowQuery(
            start=start,
            end=end,
            ip=ip,
            port=port,
            sensor_id=sensor,
            limit=limit,
            after=decode_cursor(cursor) if cursor else None,
        )
    )
    return FlowPageOut(
        items=page.items,
        next_cursor=encode_cursor(page.next_after) if page.next_after else None,
    )


def encode_cursor(after: tuple[int, int]) -> str:
    """An opaque cursor for a keyset position (event.start in µs, sequence).

    >>> decode_cursor(encode_cursor((1700000000000000, 42)))
    (1700000000000000, 42)
    """
    return base64.urlsafe_b64encode(f"{after[0]}:{after[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        start, seq = (int(part) for part in raw.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise UnprocessableError("cursor is not one this API issued") from exc
    if not (0 <= start < 2**63 and 0 <= seq < 2**63):  # what SQLite's integers hold
        raise UnprocessableError("cursor is not one this API issued")
    return start, seq
