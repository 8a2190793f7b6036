"""``POST /api/v1/providers/{provider_id}/rescan``: scan every site of a provider now, every
area (analysts and admins). The scans run in the background; the ratings follow them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel

from api.auth import ReaderPrincipal
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError
from api.scheduler import Scheduler

router = APIRouter(tags=["providers"])


class RescanOut(BaseModel):
    provider: str
    scheduled_at: datetime
    areas: list[str]
    domains: list[str]


def get_scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler | None = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        raise HTTPException(
            503,
            "the scan scheduler does not run in this process (TRUSTWATCH_SCHEDULER is off, or"
            " another process holds the data directory's scheduler.lock)",
        )
    return scheduler


@router.post(
    "/api/v1/providers/{provider_id}/rescan",
    status_code=202,
    summary="Scan all of a provider's sites now",
    response_model=RescanOut,
    responses={
        404: {"description": "no such provider"},
        429: {"description": "rescanned within the cooldown; Retry-After says when to retry"},
        503: {"description": "the scan scheduler does not run in this process"},
    },
)
def rescan(
    provider_id: Annotated[str, Path(min_length=1, max_length=128)],
    _: ReaderPrincipal,
    clock: ClockDep,
    store: StoreDep,
    request: Request,
) -> RescanOut:
    # The provider first, then the scheduler: who may not ask learns nothing about it.
    if store.get_provider(provider_id) is None:
        raise NotFoundError(f"no provider {provider_id!r}")
    ticket = get_scheduler(request).request_rescan(provider_id, clock())
    return RescanOut(
        provider=ticket.provider,
        scheduled_at=ticket.scheduled_at,
        areas=list(ticket.areas),
        domains=list(ticket.domains),
    )
