"""``GET /api/v1/flows``: stored flow records for analysts, filtered and paginated.

Pagination is by keyset (an opaque cursor), newest flows first, so a page stays cheap however
deep it is and does not shift while new flows arrive.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from api.auth import ReaderPrincipal
from api.cursors import decode_cursor, encode_cursor
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
            after=decode_cursor(cursor, int) if cursor else None,
        )
    )
    return FlowPageOut(
        items=page.items,
        next_cursor=encode_cursor(*page.next_after) if page.next_after else None,
    )
