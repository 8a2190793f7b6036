"""Tokens (admins): create, list, revoke. A created token is in the response once, never again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.auth import AdminPrincipal
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError
from api.principals import create_principal
from api.store.protocol import PrincipalInfo
from api.tokens import Role
from sensors.wire import SensorId

router = APIRouter(tags=["tokens"])

PrincipalName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: PrincipalName
    sensor_id: SensorId | None = Field(
        default=None, description="for role sensor: the sensor it may send for (default: name)"
    )


@dataclass(frozen=True)
class CreatedToken(PrincipalInfo):
    """A new principal with its token: in this one response, and never again."""

    token: str


@router.post("/api/v1/tokens", status_code=201, response_model=CreatedToken)
def create_token(
    body: TokenRequest, _: AdminPrincipal, store: StoreDep, clock: ClockDep
) -> CreatedToken:
    token, info = create_principal(store, body.role, body.name, body.sensor_id, clock())
    return CreatedToken(**vars(info), token=token)


@router.get("/api/v1/tokens", response_model=list[PrincipalInfo])
def list_tokens(_: AdminPrincipal, store: StoreDep) -> list[PrincipalInfo]:
    return store.list_principals()


@router.delete("/api/v1/tokens/{token_id}", response_model=PrincipalInfo)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    _: AdminPrincipal,
    store: StoreDep,
    clock: ClockDep,
) -> PrincipalInfo:
    info = store.revoke_principal(token_id, clock())
    if info is None:
        raise NotFoundError(f"no token with id {token_id}")
    return info
