"""Information systems (admins declare, analysts and admins read): the agency that runs each,
its Decree 85/2016 security level, and the networks and host names it covers. Alerts about a
system of level 3 or more open with a raised severity (:mod:`api.systems`)."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated, Self

from fastapi import APIRouter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    StringConstraints,
    field_validator,
    model_validator,
)

from api.auth import AdminPrincipal, ReaderPrincipal
from api.dependencies import ClockDep, StoreDep
from api.systems import (
    MAX_HOSTS,
    MAX_LEVEL,
    MAX_NETWORKS,
    MIN_LEVEL,
    InformationSystem,
    NewSystem,
)

router = APIRouter(tags=["systems"])

Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"  # a DNS label; '_' as in real service names
HostName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=rf"(?i)^({_LABEL}\.)*{_LABEL}\.?$",
    ),
]


class SystemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] = Field(
        description="chosen by the admin: lower-case letters, digits, '.', '_', '-'"
    )
    name: Text
    agency: Text = Field(description="the agency that owns and runs the system")
    level: Annotated[int, Field(ge=MIN_LEVEL, le=MAX_LEVEL)] = Field(
        description="security level under Decree 85/2016, 1 (least) to 5"
    )
    networks: Annotated[list[IPvAnyNetwork], Field(max_length=MAX_NETWORKS)] = []
    hosts: Annotated[list[HostName], Field(max_length=MAX_HOSTS)] = []

    @field_validator("hosts")
    @classmethod
    def _names_not_addresses(cls, hosts: list[str]) -> list[str]:
        names = [host.rstrip(".") for host in hosts]
        for name in names:
            try:
                ip_address(name)
            except ValueError:
                continue
            raise ValueError(f"{name} is an address: list it under networks")
        return names

    @model_validator(mode="after")
    def _covers_something(self) -> Self:
        if not self.networks and not self.hosts:
            raise ValueError("a system covers at least one network or host name")
        return self


@router.post("/api/v1/systems", status_code=201, response_model=InformationSystem)
def create_system(
    body: SystemRequest, _: AdminPrincipal, store: StoreDep, clock: ClockDep
) -> InformationSystem:
    system = NewSystem(
        id=body.id,
        name=body.name,
        agency=body.agency,
        level=body.level,
        networks=tuple(dict.fromkeys(body.networks)),
        hosts=tuple(dict.fromkeys(body.hosts)),
    )
    return store.add_system(system, clock())


@router.get("/api/v1/systems", response_model=list[InformationSystem])
def list_systems(_: ReaderPrincipal, store: StoreDep) -> list[InformationSystem]:
    return store.list_systems()
