"""Tokens (admins): create, list, revoke. A created token is in the response once, never again."""

from __future__ import annotations

from datetime import datetime
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


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    key_id: str
    sensor_id: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: PrincipalInfo) -> TokenOut:
        return cls(**vars(info))


class CreatedToken(TokenOut):
    token: str = Field(description="shown once; store it now")


@router.post("/api/v1/tokens", status_code=201, response_model=CreatedToken)
def create_token(
    body: TokenRequest, _: AdminPrincipal, store: StoreDep, clock: ClockDep
) -> CreatedToken:
    token, info = create_principal(store, body.role, body.name, body.sensor_id, clock())
    return CreatedToken(token=token, **vars(info))


@router.get("/api/v1/tokens", response_model=list[TokenOut])
def list_tokens(_: AdminPrincipal, store: StoreDep) -> list[TokenOut]:
    return [TokenOut.of(info) for info in store.list_principals()]


@router.delete("/api/v1/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[int, Path(ge=1)], _: AdminPrincipal, store: StoreDep, clock: ClockDep
) -> TokenOut:
    info = store.revoke_principal(token_id, clock())
    if info is None:
        raise NotFoundError(f"no token with id {token_id}")
    return TokenOut.of(info)
