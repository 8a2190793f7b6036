"""Online service providers (admins register and change them; analysts and admins read them)
and their current rating. Every change rates the provider again at once, and tells the
scheduler which sites to scan."""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.auth import AdminPrincipal, ReaderPrincipal
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError
from api.providers import MAX_SITES, NewProvider, Provider, Site, SiteRole
from api.ratings import RatingService
from api.routers.systems import HostName, Text
from api.systems import MAX_LEVEL, MIN_LEVEL

router = APIRouter(tags=["providers"])

ProviderId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: HostName = Field(description="the site's host name, e.g. portal.example.gov")
    role: SiteRole = Field(
        default=SiteRole.OTHER,
        description="primary (importance 3), transaction portal (2) or other (1)",
    )

    @field_validator("domain")
    @classmethod
    def _a_name(cls, domain: str) -> str:
        name = domain.rstrip(".")
        try:
            ip_address(name)
        except ValueError:
            if "." not in name:
                raise ValueError(f"{name} is not a fully qualified domain name") from None
            return name
        raise ValueError(f"{name} is an address: a site is named by its domain")


class ProviderFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text
    agency: Text = Field(description="the agency the provider answers to")
    level: Annotated[int, Field(ge=MIN_LEVEL, le=MAX_LEVEL)] = Field(
        description="declared security level under Decree 85/2016, 1 (least) to 5"
    )
    sites: Annotated[list[SiteIn], Field(min_length=1, max_length=MAX_SITES)]

    @field_validator("sites")
    @classmethod
    def _distinct(cls, sites: list[SiteIn]) -> list[SiteIn]:
        seen: set[str] = set()
        for site in sites:
            if site.domain in seen:
                raise ValueError(f"site {site.domain} is listed twice")
            seen.add(site.domain)
        return sites

    def to_new(self, provider_id: str) -> NewProvider:
        return NewProvider(
            id=provider_id,
            name=self.name,
            agency=self.agency,
            level=self.level,
            sites=tuple(Site(site.domain, site.role) for site in self.sites),
        )


class ProviderRequest(ProviderFields):
    id: ProviderId = Field(
        description="chosen by the admin: lower-case letters, digits, '.', '_', '-'"
    )


class SiteOut(BaseModel):
    domain: str
    role: SiteRole
    importance: int


class RatingHeadline(BaseModel):
    status: str
    grade: str
    score: float | None
    computed_at: datetime


class ProviderOut(BaseModel):
    id: str
    name: str
    agency: str
    level: int
    sites: list[SiteOut]
    created_at: datetime
    updated_at: datetime
    rating: RatingHeadline | None = None


def _out(provider: Provider, store: StoreDep) -> ProviderOut:
    stored = store.current_rating(provider.id)
    return ProviderOut(
        id=provider.id,
        name=provider.name,
        agency=provider.agency,
        level=provider.level,
        sites=[
            SiteOut(domain=s.domain, role=s.role, importance=s.importance) for s in provider.sites
        ],
        created_at=provider.created_at,
        updated_at=provider.updated_at,
        rating=None
        if stored is None
        else RatingHeadline(
            status=stored.status,
            grade=stored.grade,
            score=stored.score,
            computed_at=stored.computed_at,
        ),
    )


def _changed(request: Request, provider: Provider, now: datetime) -> None:
    ratings: RatingService = request.app.state.ratings
    ratings.rescore(provider, now)
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.sync()


@router.post("/api/v1/providers", status_code=201, response_model=ProviderOut)
def create_provider(
    body: ProviderRequest, _: AdminPrincipal, store: StoreDep, clock: ClockDep, request: Request
) -> ProviderOut:
    """Register a provider and its sites (409 if the id exists or a site belongs to another
    provider). It is rated at once: *Provisional* until its sites have been scanned."""
    now = clock()
    provider = store.add_provider(body.to_new(body.id), now)
    _changed(request, provider, now)
    return _out(provider, store)


@router.get("/api/v1/providers", response_model=list[ProviderOut])
def list_providers(_: ReaderPrincipal, store: StoreDep) -> list[ProviderOut]:
    return [_out(provider, store) for provider in store.list_providers()]


@router.get("/api/v1/providers/{provider_id}", response_model=ProviderOut)
def get_provider(provider_id: ProviderId, _: ReaderPrincipal, store: StoreDep) -> ProviderOut:
    provider = store.get_provider(provider_id)
    if provider is None:
        raise NotFoundError(f"no provider {provider_id}")
    return _out(provider, store)


@router.get(
    "/api/v1/providers/{provider_id}/rating",
    summary="The provider's current rating, whole (as the public lookup shows it)",
)
def get_rating(provider_id: ProviderId, _: ReaderPrincipal, store: StoreDep) -> Response:
    stored = store.current_rating(provider_id)
    if stored is None:
        raise NotFoundError(f"no rating for provider {provider_id}")
    return Response(stored.doc, media_type="application/json")


@router.put("/api/v1/providers/{provider_id}", response_model=ProviderOut)
def replace_provider(
    provider_id: ProviderId,
    body: ProviderFields,
    _: AdminPrincipal,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
) -> ProviderOut:
    """Change name, agency, level and sites; what was learned about removed sites goes."""
    now = clock()
    provider = store.replace_provider(body.to_new(provider_id), now)
    if provider is None:
        raise NotFoundError(f"no provider {provider_id}")
    _changed(request, provider, now)
    return _out(provider, store)


@router.delete("/api/v1/providers/{provider_id}", status_code=204)
def delete_provider(
    provider_id: ProviderId, _: AdminPrincipal, store: StoreDep, request: Request
) -> Response:
    """Remove a provider with its sites, incidents and ratings (its scans stay)."""
    if not store.delete_provider(provider_id):
        raise NotFoundError(f"no provider {provider_id}")
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.sync()
    return Response(status_code=204)
