"""Alerts for the SOC: list with filters (newest activity first), and one with its evidence
and notes. Changing them is :mod:`api.routers.triage`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel

from api.auth import ReaderPrincipal
from api.cursors import decode_cursor, encode_cursor
from api.dependencies import StoreDep
from api.errors import NotFoundError, UnprocessableError
from api.lifecycle import AlertStatus
from api.severity import Severity
from api.store.protocol import Alert, AlertQuery, Note

router = APIRouter(tags=["alerts"])


@dataclass(frozen=True)
class AlertDetail(Alert):
    """An alert with its notes, oldest first (the audit trail is ``/audit``)."""

    notes: list[Note] = field(default_factory=list)


class AlertPageOut(BaseModel):
    items: list[Alert]
    next_cursor: str | None


@router.get("/api/v1/alerts", response_model=AlertPageOut, summary="Alerts, latest first")
def list_alerts(
    _: ReaderPrincipal,
    store: StoreDep,
    status: AlertStatus | None = None,
    severity: Severity | None = None,
    source: Annotated[str | None, Query(max_length=200, description="rule:<id>")] = None,
    entity: Annotated[str | None, Query(max_length=300)] = None,
    start: Annotated[AwareDatetime | None, Query(description="last seen at or after")] = None,
    end: Annotated[AwareDatetime | None, Query(description="last seen before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> AlertPageOut:
    if start is not None and end is not None and end <= start:
        raise UnprocessableError("end must be after start")
    page = store.query_alerts(
        AlertQuery(
            status=status,
            severity=severity,
            source=source,
            entity=entity,
            start=start,
            end=end,
            limit=limit,
            after=decode_cursor(cursor, str) if cursor else None,
        )
    )
    return AlertPageOut(
        items=page.items,
        next_cursor=encode_cursor(*page.next_after) if page.next_after else None,
    )


@router.get("/api/v1/alerts/{alert_id}", response_model=AlertDetail, summary="One alert")
def get_alert(
    alert_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], _: ReaderPrincipal, store: StoreDep
) -> AlertDetail:
    alert = store.get_alert(alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    return AlertDetail(**vars(alert), notes=store.alert_notes(alert_id))
