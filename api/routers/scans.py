"""``GET /api/v1/scans``: site-scan results as sensors shipped them, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import ReaderPrincipal
from api.cursors import decode_cursor, encode_cursor
from api.dependencies import StoreDep
from api.store.protocol import ScanQuery

router = APIRouter(tags=["scans"])

MAX_PAGE = 100


class ScanPageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get("/api/v1/scans", summary="Site scans, newest first", response_model=ScanPageOut)
def list_scans(
    _: ReaderPrincipal,
    store: StoreDep,
    domain: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=253,
            pattern=r"^[A-Za-z0-9._:\[\]-]+$",
            description="the scanned host (url.domain), exactly",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
) -> ScanPageOut:
    page = store.query_scans(
        ScanQuery(
            domain=domain.lower().rstrip(".") if domain else None,
            limit=limit,
            after=decode_cursor(cursor, int) if cursor else None,
        )
    )
    return ScanPageOut(
        items=page.items,
        next_cursor=encode_cursor(*page.next_after) if page.next_after else None,
    )
