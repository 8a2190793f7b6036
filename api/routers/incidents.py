"""Incidents of providers (analysts and admins record and change them): what TNM-1's
incident penalties and caps are computed from. A confirmed SOC alert about a provider's site
becomes an incident with one call (``POST /api/v1/alerts/{id}/incident``); marking that alert
a false positive later dismisses the incident, retroactively."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final, Self

from fastapi import APIRouter, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.auth import ReaderPrincipal
from api.dependencies import ClockDep, StoreDep
from api.errors import ConflictError, NotFoundError, UnprocessableError
from api.lifecycle import AlertStatus
from api.providers import Incident, IncidentState, NewIncident, Provider
from api.ratings import RatingService
from api.routers.providers import ProviderId
from api.routers.systems import HostName
from api.store import Store
from scoring.trust_model import IncidentKind

router = APIRouter(tags=["incidents"])

CLOCK_SKEW: Final = timedelta(minutes=5)  # a start "now" from a client a little ahead is fine
IncidentId = Annotated[str, Path(pattern=r"^inc-[0-9a-f]{16}$")]
AlertId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Summary = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class IncidentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind
    started: AwareDatetime
    resolved: AwareDatetime | None = None
    site: HostName | None = Field(default=None, description="one of the provider's sites")
    summary: Summary = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.resolved is not None and self.resolved < self.started:
            raise ValueError("resolved is before started")
        return self


class IncidentChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: IncidentState | None = Field(
        default=None, description="resolved, dismissed (recorded in error), or active again"
    )
    resolved: AwareDatetime | None = Field(
        default=None, description="when it ended (default: now, when state is resolved)"
    )
    summary: Summary | None = None


class FromAlertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind = Field(description="what the alert turned out to be")
    provider: ProviderId | None = Field(
        default=None, description="default: the provider owning the alert's entity"
    )
    summary: Summary = ""


def _ratings(request: Request) -> RatingService:
    service: RatingService = request.app.state.ratings
    return service


def _provider(store: Store, provider_id: str) -> Provider:
    provider = store.get_provider(provider_id)
    if provider is None:
        raise NotFoundError(f"no provider {provider_id}")
    return provider


def _not_future(moment: datetime | None, now: datetime, name: str) -> None:
    if moment is not None and moment > now + CLOCK_SKEW:
        raise UnprocessableError(f"{name} is in the future")


@router.post("/api/v1/providers/{provider_id}/incidents", status_code=201, response_model=Incident)
def add_incident(
    provider_id: ProviderId,
    body: IncidentRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
) -> Incident:
    now = clock()
    provider = _provider(store, provider_id)
    _not_future(body.started, now, "started")
    _not_future(body.resolved, now, "resolved")
    if body.site is not None and body.site not in {s.domain for s in provider.sites}:
        raise UnprocessableError(f"{body.site} is not a site of provider {provider_id}")
    incident = store.add_incident(
        NewIncident(
            provider=provider_id,
            kind=body.kind,
            started=body.started,
            resolved=body.resolved,
            site=body.site,
            summary=body.summary,
        ),
        principal.name,
        now,
    )
    _ratings(request).rescore(provider, now)
    return incident


@router.get("/api/v1/providers/{provider_id}/incidents", response_model=list[Incident])
def list_incidents(provider_id: ProviderId, _: ReaderPrincipal, store: StoreDep) -> list[Incident]:
    _provider(store, provider_id)
    return store.list_incidents(provider_id)


@router.patch("/api/v1/incidents/{incident_id}", response_model=Incident)
def change_incident(
    incident_id: IncidentId,
    body: IncidentChange,
    _: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
) -> Incident:
    now = clock()
    _not_future(body.resolved, now, "resolved")
    changed = store.update_incident(
        incident_id, now, state=body.state, resolved=body.resolved, summary=body.summary
    )
    if changed is None:
        raise NotFoundError(f"no incident {incident_id}")
    _ratings(request).rescore_id(changed.provider, now)
    return changed


@router.post("/api/v1/alerts/{alert_id}/incident", status_code=201, response_model=Incident)
def incident_from_alert(
    alert_id: AlertId,
    body: FromAlertRequest,
    principal: ReaderPrincipal,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
) -> Incident:
    """Confirm an alert about a provider's site as an incident of ``kind``: it starts when the
    alert was first seen and is active until resolved. 409 for a false positive, or an alert
    already confirmed; 422 if no provider owns the alert's entity (name one)."""
    now = clock()
    alert = store.get_alert(alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    if alert.status == AlertStatus.FALSE_POSITIVE:
        raise ConflictError("the alert was marked a false positive; reopen it first")
    entity = alert.entity.lower().rstrip(".")
    if body.provider is not None:
        provider = _provider(store, body.provider)
    else:
        owners = store.providers_for_domains([entity])
        if not owners:
            raise UnprocessableError(
                f"no provider owns {alert.entity}: name the provider in the request"
            )
        provider = owners[0]
    site = entity if entity in {s.domain for s in provider.sites} else None
    incident = store.add_incident(
        NewIncident(
            provider=provider.id,
            kind=body.kind,
            started=alert.first_seen,
            site=site,
            summary=body.summary or alert.title,
            alert_id=alert.id,
        ),
        principal.name,
        now,
    )
    _ratings(request).rescore(provider, now)
    return incident
