"""Noise control (analysts and admins): silences that mute the delivery of matching alerts
for a while, and the suppressions false-positive verdicts made (listed, and lifted by hand).
:mod:`api.noise` says what each does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final, Self

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.auth import ReaderPrincipal
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError, UnprocessableError
from api.noise import MAX_MATCHERS, Matcher, Silence, Suppression

router = APIRouter(tags=["noise control"])

MAX_SILENCE: Final = timedelta(days=90)  # a longer mute is a rule change, not a silence
HexId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class SilenceRequest(BaseModel):
    """Mute delivery of alerts matching every matcher, from ``starts_at`` (now if left out)
    for ``duration_seconds`` or until ``ends_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matchers: Annotated[list[Matcher], Field(min_length=1, max_length=MAX_MATCHERS)]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    duration_seconds: Annotated[int | None, Field(ge=60, le=int(MAX_SILENCE.total_seconds()))] = (
        None
    )
    comment: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$"
        ),
    ]

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.ends_at is None) == (self.duration_seconds is None):
            raise ValueError("give ends_at or duration_seconds, one of them")
        return self


class SilenceList(BaseModel):
    items: list[Silence]


class SuppressionList(BaseModel):
    items: list[Suppression]


@router.post("/api/v1/silences", status_code=201, response_model=Silence, summary="Add a silence")
def add_silence(
    body: SilenceRequest, principal: ReaderPrincipal, store: StoreDep, clock: ClockDep
) -> Silence:
    now = clock()
    starts = body.starts_at or now
    if abs(starts - now) > MAX_SILENCE:
        raise UnprocessableError(f"starts_at must be within {MAX_SILENCE.days} days of now")
    ends: datetime = (
        body.ends_at
        if body.ends_at is not None
        else starts + timedelta(seconds=body.duration_seconds or 0)
    )
    if ends <= now or ends <= starts:
        raise UnprocessableError("the silence must end after it starts, and in the future")
    if ends - max(starts, now) > MAX_SILENCE:
        raise UnprocessableError(f"a silence lasts at most {MAX_SILENCE.days} days")
    return store.add_silence(body.matchers, starts, ends, body.comment, principal, now)


@router.get("/api/v1/silences", response_model=SilenceList, summary="Silences, oldest first")
def list_silences(
    _: ReaderPrincipal, store: StoreDep, clock: ClockDep, expired: bool = False
) -> SilenceList:
    return SilenceList(items=store.list_silences(clock(), include_expired=expired))


@router.delete("/api/v1/silences/{silence_id}", response_model=Silence, summary="End a silence now")
def expire_silence(
    silence_id: HexId, principal: ReaderPrincipal, store: StoreDep, clock: ClockDep
) -> Silence:
    found = store.expire_silence(silence_id, principal, clock())
    if found is None:
        raise NotFoundError(f"no silence {silence_id}")
    return found


@router.get(
    "/api/v1/suppressions", response_model=SuppressionList, summary="Suppressions, newest first"
)
def list_suppressions(
    _: ReaderPrincipal, store: StoreDep, clock: ClockDep, expired: bool = False
) -> SuppressionList:
    return SuppressionList(items=store.list_suppressions(clock(), include_expired=expired))


@router.delete(
    "/api/v1/suppressions/{suppression_id}",
    response_model=Suppression,
    summary="Lift a suppression now (it stays listed with its hits)",
)
def lift_suppression(
    suppression_id: HexId, _: ReaderPrincipal, store: StoreDep, clock: ClockDep
) -> Suppression:
    found = store.lift_suppression(suppression_id, clock())
    if found is None:
        raise NotFoundError(f"no suppression {suppression_id}")
    return found
