"""Authentication and role checks for route handlers.

``Authorization: Bearer tw_…`` names a principal (see :mod:`api.tokens`). A missing, malformed,
unknown or revoked token is 401; a valid token whose role does not allow the route is 403.
Routes declare what they need with :data:`SensorPrincipal`, :data:`ReaderPrincipal` or
:data:`AdminPrincipal`; public routes declare nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.dependencies import StoreDep
from api.errors import ForbiddenError, UnauthorizedError
from api.tokens import Principal, Role, parse_token, verify_secret

bearer_scheme = HTTPBearer(auto_error=False, description="a TrustWatch token: tw_<key id>_<secret>")


def authenticate(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    store: StoreDep,
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("a bearer token is required")
    parsed = parse_token(credentials.credentials)
    if parsed is None:
        raise UnauthorizedError("malformed token")
    stored = store.credentials(parsed.key_id)
    valid = verify_secret(parsed.secret, stored.secret_hash if stored else None)
    if stored is None or not valid or stored.info.revoked_at is not None:
        raise UnauthorizedError("invalid or revoked token")
    info = stored.info
    return Principal(id=info.id, name=info.name, role=info.role, sensor_id=info.sensor_id)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = frozenset(roles)
    names = " or ".join(sorted(role.value for role in allowed))

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(f"this needs a {names} token")
        return principal

    return check


SensorPrincipal = Annotated[Principal, Depends(require(Role.SENSOR))]
ReaderPrincipal = Annotated[Principal, Depends(require(Role.ANALYST, Role.ADMIN))]
AdminPrincipal = Annotated[Principal, Depends(require(Role.ADMIN))]
