"""Triage (analysts and admins): move an alert through its lifecycle, assign it, add notes,
read its audit trail, and act on a filtered set of alerts at once.

The allowed transitions are :data:`api.lifecycle.TRANSITIONS`; any other is 409 with a detail
naming the alert's status and where it may go. Every change is audited with the token's
principal and the service clock.
"""

from __future__ import annotations

from typing import Annotated, Self, TypeVar

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.auth import ReaderPrincipal
from api.dependencies import ClockDep, SettingsDep, StoreDep
from api.errors import NotFoundError
from api.lifecycle import MAX_ASSIGNEE_CHARS, MAX_BULK, MAX_NOTE_CHARS, AlertStatus
from api.noise import MAX_SUPPRESSION_FIELDS
from api.ratings import RatingService
from api.severity import Severity
from api.store.protocol import (
    Alert,
    AlertQuery,
    AuditPage,
    BulkAssign,
    BulkResult,
    BulkTransition,
    Note,
    Suppress,
)

router = APIRouter(tags=["triage"])
T = TypeVar("T")

AlertId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
NoteText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_NOTE_CHARS,
        # Line breaks and tabs, but no other control characters: notes are shown in a console.
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
    ),
]
AssigneeName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_ASSIGNEE_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]*$",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuppressRequest(_Body):
    """Narrow the suppression a false-positive verdict makes: only detections whose evidence
    values named in ``fields`` equal this alert's, and/or for fewer days."""

    fields: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
        Field(max_length=MAX_SUPPRESSION_FIELDS),
    ] = []
    days: Annotated[int | None, Field(ge=1, le=3650)] = None


class TransitionRequest(_Body):
    to: AlertStatus
    note: NoteText | None = Field(default=None, description="stored as a note, in the same change")
    suppress: SuppressRequest | bool = Field(
        default=True,
        description="to false_positive: suppress the same detection about the same entity"
        " (true, for suppression_days), not at all (false), or narrower (an object)",
    )

    def suppression(self, default_days: int) -> Suppress | None:
        if self.to is not AlertStatus.FALSE_POSITIVE or self.suppress is False:
            return None
        if self.suppress is True:
            return Suppress(days=default_days)
        return Suppress(tuple(self.suppress.fields), self.suppress.days or default_days)


class AssignRequest(_Body):
    assignee: AssigneeName | None = Field(description="an analyst's name, or null to unassign")


class NoteRequest(_Body):
    text: NoteText


class AlertFilter(_Body):
    """The list's filters (``GET /api/v1/alerts``); at least one, so that an empty filter
    cannot change alerts by accident."""

    status: AlertStatus | None = None
    severity: Severity | None = None
    source: Annotated[str | None, Field(max_length=200)] = None
    entity: Annotated[str | None, Field(max_length=300)] = None
    start: AwareDatetime | None = Field(default=None, description="last seen at or after")
    end: AwareDatetime | None = Field(default=None, description="last seen before")

    @model_validator(mode="after")
    def _useful(self) -> Self:
        if all(value is None for _, value in self):
            raise ValueError("give at least one filter")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BulkRequest(_Body):
    filter: AlertFilter
    action: TransitionRequest | AssignRequest
    limit: Annotated[int, Field(ge=1, le=MAX_BULK)] = MAX_BULK


def _found(value: T | None, alert_id: str) -> T:
    if value is None:
        raise NotFoundError(f"no alert {alert_id}")
    return value


@router.post(
    "/api/v1/alerts/{alert_id}/transition", response_model=Alert, summary="Change the status"
)
def transition(
    alert_id: AlertId,
    body: TransitionRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
    settings: SettingsDep,
    request: Request,
) -> Alert:
    """A false-positive verdict also suppresses the same detection about the same entity for
    ``suppression_days`` unless ``suppress`` says otherwise; reopening lifts it."""
    suppress = body.suppression(settings.suppression_days)
    now = clock()
    alert = _found(
        store.transition_alert(
            alert_id, body.to, principal, now, note=body.note, suppress=suppress
        ),
        alert_id,
    )
    # An alert about a provider's site counts in its rating until confirmed or dismissed.
    ratings: RatingService = request.app.state.ratings
    ratings.alert_changed(alert.id, alert.entity, alert.status, now)
    return alert


@router.patch("/api/v1/alerts/{alert_id}", response_model=Alert, summary="Assign or unassign")
def assign(
    alert_id: AlertId,
    body: AssignRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
) -> Alert:
    return _found(store.assign_alert(alert_id, body.assignee, principal, clock()), alert_id)


@router.post(
    "/api/v1/alerts/{alert_id}/notes", status_code=201, response_model=Note, summary="Add a note"
)
def add_note(
    alert_id: AlertId,
    body: NoteRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
) -> Note:
    return _found(store.add_note(alert_id, body.text, principal, clock()), alert_id)


@router.get("/api/v1/alerts/{alert_id}/audit", response_model=AuditPage, summary="Who changed what")
def audit(
    alert_id: AlertId,
    _: ReaderPrincipal,
    store: StoreDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="next_after of a page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    return _found(store.alert_audit(alert_id, after, limit), alert_id)


@router.post("/api/v1/alerts/bulk", response_model=BulkResult, summary="Act on filtered alerts")
def bulk(
    body: BulkRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> BulkResult:
    """Apply one action to at most ``limit`` alerts the filter selects (newest first), each on
    its own: the alerts the action is valid for change, the others are listed in ``skipped``
    with their status and why. ``truncated`` means more alerts matched: send it again."""
    selected = body.filter
    action = (
        BulkTransition(
            to=body.action.to,
            note=body.action.note,
            suppress=body.action.suppression(settings.suppression_days),
        )
        if isinstance(body.action, TransitionRequest)
        else BulkAssign(assignee=body.action.assignee)
    )
    query = AlertQuery(
        status=selected.status,
        severity=selected.severity,
        source=selected.source,
        entity=selected.entity,
        start=selected.start,
        end=selected.end,
        limit=body.limit,
    )
    return store.bulk_update(query, action, principal, clock())
